//! Lists: selectors, `limit` + `continue` pagination, and the list body.
//!
//! A continue token is base64 of a small JSON document holding the key of
//! the last object sent and the list's resource version, so the next page
//! starts strictly after that key and reports the same `resourceVersion` as
//! the first page did (like the API server, which serves later pages from
//! the first page's snapshot; here later pages see current objects).
//!
//! Items are the store's JSON text, copied into the body as they are; only
//! a selector makes the list decode an object (its labels alone for a label
//! selector). A protobuf list ([`list_body_protobuf`]) copies each item's
//! protobuf message likewise, made once per stored object and kept with it.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::selectors::{
    FieldSelectorExpr, LabelSelectorExpr, labels_of, parse_field_selector, parse_label_selector,
};
use crate::store::{ObjKey, Store, Stored};

use super::proto;
use super::route::Query;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueToken {
    /// Resource version of the first page.
    pub rv: u64,
    /// Namespace of the last object sent (empty for cluster-scoped kinds).
    pub ns: String,
    /// Name of the last object sent.
    pub name: String,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a token always serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(token: &str) -> ApiResult<Self> {
        let invalid =
            |why: String| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| invalid(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))
    }
}

/// The selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub labels: Option<LabelSelectorExpr>,
    pub fields: Option<FieldSelectorExpr>,
}

impl Selectors {
    pub fn from_query(query: &Query) -> ApiResult<Self> {
        let labels = query
            .non_empty("labelSelector")
            .map(|s| {
                parse_label_selector(s)
                    .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))
            })
            .transpose()?;
        let fields = query
            .non_empty("fieldSelector")
            .map(|s| {
                parse_field_selector(s)
                    .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))
            })
            .transpose()?;
        Ok(Selectors { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(&labels_of(obj)))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }

    /// [`Selectors::matches`] on a stored object, decoding no more of it
    /// than the selectors look at.
    pub fn matches_stored(&self, stored: &Stored) -> bool {
        match (&self.labels, &self.fields) {
            (None, None) => true,
            (Some(labels), None) => labels.matches(&stored_labels(stored)),
            _ => self.matches(&stored.value()),
        }
    }
}

/// An object's labels, decoded from its JSON text without the rest.
fn stored_labels(stored: &Stored) -> std::collections::BTreeMap<String, String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Metadata,
    }
    #[derive(Deserialize, Default)]
    struct Metadata {
        #[serde(default)]
        labels: Option<std::collections::BTreeMap<String, Value>>,
    }
    serde_json::from_slice::<Object>(stored.json())
        .ok()
        .and_then(|o| o.metadata.labels)
        .map(|labels| {
            labels
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<Stored>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
}

/// Reads a page of `resource` in `namespace` (all when `None`) as the query asks.
pub fn list(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    query: &Query,
) -> ApiResult<ListPage> {
    let selectors = Selectors::from_query(query)?;
    let limit = match query.non_empty("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?,
        None => 0,
    };
    let token = query
        .non_empty("continue")
        .map(ContinueToken::decode)
        .transpose()?;
    let resource_version = token.as_ref().map_or(store.resource_version(), |t| t.rv);
    let candidates = match &token {
        Some(t) => store.list_stored_after(resource, namespace, &ObjKey::new(&t.ns, &t.name)),
        None => store.list_stored(resource, namespace),
    };
    let mut items = Vec::new();
    let mut last: Option<&ObjKey> = None;
    let mut more = false;
    for (key, stored) in candidates.filter(|(_, s)| selectors.matches_stored(s)) {
        if limit > 0 && items.len() == limit {
            more = true;
            break;
        }
        items.push(stored.clone());
        last = Some(key);
    }
    let continue_token = match last {
        Some(key) if more => Some(
            ContinueToken {
                rv: resource_version,
                ns: key.namespace.clone(),
                name: key.name.clone(),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(ListPage {
        items,
        resource_version,
        continue_token,
    })
}

/// The list metadata of a page.
pub fn list_meta(page: &ListPage) -> Value {
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(token) = &page.continue_token {
        meta["continue"] = json!(token);
    }
    meta
}

/// The JSON body of a `<Kind>List`: the list head, then the items' stored
/// text.
pub fn list_body(resource: &Resource, page: &ListPage) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(256 + page.items.iter().map(|i| i.json().len() + 1).sum::<usize>());
    let head = json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": list_meta(page)});
    let head = serde_json::to_string(&head).expect("list head serializes");
    // `{"apiVersion":...,"kind":...,"metadata":{...}` then `,"items":[...]}`.
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.json());
    }
    out.extend_from_slice(b"]}");
    out
}

/// The protobuf body of a `<Kind>List` (see [`super::proto::list_body`]),
/// or `None` when the kind has no protobuf schema or an item cannot be
/// encoded exactly (a field the schema lacks): the caller answers in JSON.
pub fn list_body_protobuf(resource: &Resource, page: &ListPage) -> Option<Vec<u8>> {
    let api_version = resource.api_version();
    let schema = proto::schema_of(&api_version, resource.kind)?;
    let encode = |json: &[u8]| {
        let object: serde_json::Map<String, Value> = serde_json::from_slice(json).ok()?;
        match proto::encode(schema, &object) {
            Ok(message) => Some(message),
            Err(why) => {
                tracing::debug!(kind = resource.kind, %why, "a list is answered in JSON");
                None
            }
        }
    };
    let items = page
        .items
        .iter()
        .map(|item| item.protobuf(encode))
        .collect::<Option<Vec<&[u8]>>>()?;
    Some(proto::list_body(
        &api_version,
        &format!("{}List", resource.kind),
        &page.resource_version.to_string(),
        page.continue_token.as_deref(),
        items.iter().copied(),
    ))
}

/// Writes `obj` with its `apiVersion` and `kind`, which list items carry.
pub fn write_object(out: &mut Vec<u8>, resource: &Resource, obj: &Value) {
    if obj.get("kind").is_some() && obj.get("apiVersion").is_some() {
        serde_json::to_writer(&mut *out, obj).expect("objects serialize");
    } else {
        let mut typed = obj.clone();
        if let Some(map) = typed.as_object_mut() {
            map.insert("apiVersion".into(), json!(resource.api_version()));
            map.insert("kind".into(), json!(resource.kind));
        }
        serde_json::to_writer(&mut *out, &typed).expect("objects serialize");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds;

    fn store_with_pods(n: usize) -> Store {
        let mut store = Store::default();
        for i in 0..n {
            store.put(
                kinds::pods(),
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"namespace": if i % 2 == 0 { "a" } else { "b" }, "name": format!("p{i:02}"),
                                    "labels": {"app": if i % 3 == 0 { "web" } else { "db" }}}}),
            );
        }
        store
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = ContinueToken {
            rv: 42,
            ns: "shop".into(),
            name: "web-1".into(),
        };
        assert_eq!(ContinueToken::decode(&token.encode()).unwrap(), token);
        let err = ContinueToken::decode("not a token!").unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn pages_cover_every_object_once_at_the_first_pages_version() {
        let store = store_with_pods(7);
        let mut names = Vec::new();
        let mut query = "limit=3".to_string();
        let mut versions = Vec::new();
        loop {
            let page = list(&store, kinds::pods(), None, &Query::parse(&query)).unwrap();
            names.extend(
                page.items
                    .iter()
                    .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string()),
            );
            versions.push(page.resource_version);
            match page.continue_token {
                Some(t) => query = format!("limit=3&continue={t}"),
                None => break,
            }
        }
        assert_eq!(names, ["p00", "p02", "p04", "p06", "p01", "p03", "p05"]);
        assert_eq!(versions.len(), 3);
        assert!(versions.iter().all(|v| *v == versions[0]));
    }

    #[test]
    fn namespace_scoped_pages_stay_in_their_namespace() {
        let store = store_with_pods(7);
        let first = list(&store, kinds::pods(), Some("a"), &Query::parse("limit=2")).unwrap();
        let token = first.continue_token.clone().unwrap();
        let second = list(
            &store,
            kinds::pods(),
            Some("a"),
            &Query::parse(&format!("limit=2&continue={token}")),
        )
        .unwrap();
        let names: Vec<_> = second
            .items
            .iter()
            .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["p04", "p06"]);
        assert!(second.continue_token.is_none());
    }

    #[test]
    fn label_and_field_selectors_filter_stored_objects() {
        let store = store_with_pods(6);
        let names = |query: &str| -> Vec<String> {
            list(&store, kinds::pods(), None, &Query::parse(query))
                .unwrap()
                .items
                .iter()
                .map(|o| o.value()["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("labelSelector=app%3Dweb"), ["p00", "p03"]);
        assert_eq!(
            names("labelSelector=app%21%3Dweb"),
            ["p02", "p04", "p01", "p05"]
        );
        assert_eq!(
            names("labelSelector=app%3Dweb&fieldSelector=metadata.namespace%3Db"),
            ["p03"]
        );
    }

    #[test]
    fn list_body_is_a_typed_list_with_metadata() {
        let store = store_with_pods(2);
        let page = list(&store, kinds::pods(), None, &Query::parse("")).unwrap();
        let body: Value = serde_json::from_slice(&list_body(kinds::pods(), &page)).unwrap();
        assert_eq!(body["kind"], "PodList");
        assert_eq!(
            body["metadata"]["resourceVersion"],
            page.resource_version.to_string()
        );
        assert_eq!(body["items"].as_array().unwrap().len(), 2);
        assert_eq!(body["items"][0]["kind"], "Pod");
    }

    /// A page's items as the protobuf list carries them: without
    /// `apiVersion` and `kind`, and as the decoder writes JSON.
    fn as_protobuf_items(page: &ListPage) -> Vec<Value> {
        page.items
            .iter()
            .map(|item| {
                let mut object = item.value().as_object().unwrap().clone();
                object.remove("apiVersion");
                object.remove("kind");
                Value::Object(proto::as_decoded(
                    proto::schema_of("v1", "Pod").unwrap(),
                    &object,
                ))
            })
            .collect()
    }

    #[test]
    fn a_protobuf_page_has_its_list_meta_then_its_items() {
        let store = store_with_pods(5);
        let page = list(&store, kinds::pods(), None, &Query::parse("limit=3")).unwrap();
        let token = page.continue_token.clone().expect("a second page");
        let body = list_body_protobuf(kinds::pods(), &page).expect("pods encode");

        let unknown = proto::Message::parse(body.strip_prefix(b"k8s\0").unwrap()).unwrap();
        let list = unknown.message(2).unwrap();
        let numbers: Vec<u64> = list.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 2, 2], "ListMeta first, then the items");

        let decoded = proto::list_from_body(&body).unwrap();
        assert_eq!(decoded["apiVersion"], "v1");
        assert_eq!(decoded["kind"], "PodList");
        assert_eq!(
            decoded["metadata"],
            json!({"resourceVersion": page.resource_version.to_string(), "continue": token})
        );
        assert_eq!(decoded["items"], Value::Array(as_protobuf_items(&page)));
        assert_eq!(decoded["items"][0]["metadata"]["labels"]["app"], "web");
    }

    #[test]
    fn protobuf_messages_are_made_once_and_kept_with_the_stored_object() {
        let store = store_with_pods(2);
        let page = list(&store, kinds::pods(), None, &Query::parse("")).unwrap();
        let first = list_body_protobuf(kinds::pods(), &page).unwrap();
        // The store's own copy (a clone shares the text) now holds the message.
        let stored = store.get_stored(kinds::pods(), "a", "p00").unwrap();
        let kept = stored
            .protobuf(|_| panic!("encoded a second time"))
            .unwrap();
        assert!(first.windows(kept.len()).any(|w| w == kept));
        assert_eq!(list_body_protobuf(kinds::pods(), &page).unwrap(), first);
    }

    #[test]
    fn a_page_with_a_field_the_schema_lacks_or_a_kind_without_one_has_no_protobuf_body() {
        let mut store = store_with_pods(2);
        store.put(
            kinds::pods(),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"namespace": "b", "name": "odd"},
                   "spec": {"containers": [{"name": "app", "image": "app:1", "futureField": true}]}}),
        );
        let only_a = list(&store, kinds::pods(), Some("a"), &Query::parse("")).unwrap();
        assert!(list_body_protobuf(kinds::pods(), &only_a).is_some());
        let all = list(&store, kinds::pods(), None, &Query::parse("")).unwrap();
        assert!(list_body_protobuf(kinds::pods(), &all).is_none());
        // The item that could not be encoded is not tried again, and the
        // others keep their messages.
        let odd = store.get_stored(kinds::pods(), "b", "odd").unwrap();
        assert!(odd.protobuf(|_| panic!("tried again")).is_none());

        store.put(kinds::nodes(), json!({"metadata": {"name": "n1"}}));
        let nodes = list(&store, kinds::nodes(), None, &Query::parse("")).unwrap();
        assert!(list_body_protobuf(kinds::nodes(), &nodes).is_none());
    }
}
