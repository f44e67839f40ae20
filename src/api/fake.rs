//! An in-memory API server for unit tests of the API layer and of what is
//! built on it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};

use super::ApiClient;
use crate::error::ClusterTarget;

/// What the fake server saw: method, path and query of each request.
pub(crate) type Requests = Arc<Mutex<Vec<String>>>;

/// One answer of the fake server.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

/// An answer with no headers.
pub(crate) fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A Status object, as the API server sends with an error.
pub(crate) fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message})
}

/// A client whose server answers with `handler(method, path, query, call number)`.
pub(crate) fn replying(
    handler: impl Fn(&str, &str, &str, usize) -> Reply + Send + Sync + 'static,
) -> (ApiClient, Requests) {
    let seen: Requests = Arc::default();
    let log = seen.clone();
    let handler = Arc::new(handler);
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let call = {
            let mut log = log.lock().unwrap();
            log.push(format!("{method} {path}?{query}"));
            log.len()
        };
        let Reply {
            status,
            headers,
            body,
        } = handler(&method, &path, &query, call);
        async move {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            Ok::<_, Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
        }
    });
    let target = ClusterTarget {
        context: "test".into(),
        server: "https://127.0.0.1:1".into(),
    };
    (ApiClient::from_service(service, target, "default"), seen)
}

/// A client whose server answers `handler(method, path, query, call number)`
/// with a status and a body (watch bodies are newline-separated events).
pub(crate) fn fake_client(
    handler: impl Fn(&str, &str, &str, usize) -> (u16, String) + Send + Sync + 'static,
) -> (ApiClient, Requests) {
    replying(move |method, path, query, call| {
        let (status, body) = handler(method, path, query, call);
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    })
}

/// A ConfigMap in namespace "shop" whose `data.v` is `value`.
pub(crate) fn config_map(name: &str, version: &str, value: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": version},
        "data": {"v": value},
    })
}

/// A LIST answer of `items` taken at `version`.
pub(crate) fn list_body(version: &str, items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": version}, "items": items})
        .to_string()
}

/// A WATCH answer: one line per event, of (type, object).
pub(crate) fn events(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(kind, object)| json!({"type": kind, "object": object}).to_string() + "\n")
        .collect()
}

/// A WATCH answer that says the version asked for has expired (410 Gone).
pub(crate) fn gone_event() -> String {
    let status = status_body(410, "Expired", "too old resource version");
    json!({"type": "ERROR", "object": status}).to_string() + "\n"
}

/// A 403 answer: `what` is forbidden.
pub(crate) fn forbidden(what: &str) -> (u16, String) {
    let body = status_body(403, "Forbidden", &format!("{what} is forbidden"));
    (403, body.to_string())
}

/// The `resourceVersion` a request's query asks for.
pub(crate) fn resource_version_of(request: &str) -> Option<&str> {
    let (_, query) = request.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("resourceVersion="))
}
