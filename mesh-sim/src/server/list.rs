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
//! selector).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::selectors::{
    FieldSelectorExpr, LabelSelectorExpr, labels_of, parse_field_selector, parse_label_selector,
};
use crate::store::{ObjKey, Store, Stored};

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
}
