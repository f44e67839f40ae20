//! The tower layer under every request ([`ObserveLayer`]): it counts the
//! request by its RBAC verb in [`RequestStats`] (`-v` prints the summary;
//! benchmarks and tests read it), logs method, path, query and status (never
//! a header), and copies a 429's `Retry-After` header into the Status body,
//! where the retries can read it (kube-rs drops response headers on errors).
//!
//! It sits outside kube's auth layer, so it never sees an `Authorization`
//! header.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use serde_json::Value;
use tower::{BoxError, Layer, Service};

/// The Kubernetes verbs requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestVerb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Other,
}

impl RequestVerb {
    const ALL: [RequestVerb; 8] = [
        RequestVerb::Get,
        RequestVerb::List,
        RequestVerb::Watch,
        RequestVerb::Create,
        RequestVerb::Update,
        RequestVerb::Patch,
        RequestVerb::Delete,
        RequestVerb::Other,
    ];

    /// The verb as RBAC names it.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestVerb::Get => "get",
            RequestVerb::List => "list",
            RequestVerb::Watch => "watch",
            RequestVerb::Create => "create",
            RequestVerb::Update => "update",
            RequestVerb::Patch => "patch",
            RequestVerb::Delete => "delete",
            RequestVerb::Other => "other",
        }
    }

    /// Classify an HTTP request the way the API server's RBAC does: a GET of
    /// a collection is a list, with `watch=true` a watch, of one object a get.
    pub fn of(method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let watching = query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair == "watch=true" || pair == "watch=1")
        });
        match *method {
            http::Method::GET if watching => RequestVerb::Watch,
            http::Method::GET if is_collection_path(path) => RequestVerb::List,
            http::Method::GET => RequestVerb::Get,
            http::Method::POST => RequestVerb::Create,
            http::Method::PUT => RequestVerb::Update,
            http::Method::PATCH => RequestVerb::Patch,
            http::Method::DELETE => RequestVerb::Delete,
            _ => RequestVerb::Other,
        }
    }
}

/// Whether a resource path names a collection (`/api/v1/pods`,
/// `/apis/apps/v1/namespaces/shop/deployments`, `/api/v1/namespaces`) rather
/// than one object or a non-resource path such as `/version`.
fn is_collection_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return false,
    };
    matches!(rest, [_] | ["namespaces", _, _])
}

/// Request counters, shared by every clone of one [`ApiClient`].
#[derive(Debug, Default)]
pub struct RequestStats {
    by_verb: [AtomicU64; 8],
    retries: AtomicU64,
}

impl RequestStats {
    fn record(&self, verb: RequestVerb) {
        let index = RequestVerb::ALL
            .iter()
            .position(|v| *v == verb)
            .unwrap_or(7);
        self.by_verb[index].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// HTTP requests sent with this verb (retries included).
    pub fn count(&self, verb: RequestVerb) -> u64 {
        let index = RequestVerb::ALL
            .iter()
            .position(|v| *v == verb)
            .unwrap_or(7);
        self.by_verb[index].load(Ordering::Relaxed)
    }

    /// Every HTTP request sent.
    pub fn total(&self) -> u64 {
        self.by_verb.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Requests that were retries of a failed attempt.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// One line such as `9 requests: 8 list, 1 get; 0 retries`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = RequestVerb::ALL
            .iter()
            .filter_map(|verb| {
                let n = self.count(*verb);
                (n > 0).then(|| format!("{n} {}", verb.as_str()))
            })
            .collect();
        let detail = if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        };
        format!(
            "{} API requests: {detail}; {} retries",
            self.total(),
            self.retries()
        )
    }
}

/// The tower layer under every request: counts it, logs it without headers,
/// and puts a 429's `Retry-After` header into the Status body.
#[derive(Clone)]
pub(super) struct ObserveLayer {
    pub(super) stats: Arc<RequestStats>,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            stats: self.stats.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Observe<S> {
    inner: S,
    stats: Arc<RequestStats>,
}

type ObservedBody<B> = Either<B, Full<Bytes>>;

impl<S, B> Service<Request<kube::client::Body>> for Observe<S>
where
    S: Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ObservedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let verb = RequestVerb::of(req.method(), req.uri().path(), req.uri().query());
        self.stats.record(verb);
        // Only the method and the path with its query: never headers.
        let line = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map_or("/", |pq| pq.as_str())
        );
        let started = Instant::now();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(err) => {
                    let err: BoxError = err.into();
                    tracing::debug!(
                        "{line} -> failed after {} ms: {err}",
                        started.elapsed().as_millis()
                    );
                    return Err(err);
                }
            };
            // Which encoding came back, for the LISTs that ask for protobuf.
            let protobuf = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with(crate::protobuf::MEDIA_TYPE));
            tracing::debug!(
                "{line} -> {} in {} ms{}",
                response.status().as_u16(),
                started.elapsed().as_millis(),
                if protobuf { " (protobuf)" } else { "" }
            );
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response.map(Either::Left));
            }
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            let body = with_retry_after(&bytes, retry_after);
            Ok(Response::from_parts(parts, Either::Right(Full::new(body))))
        })
    }
}

/// A 429 body as a Status that carries `retryAfterSeconds` when the header
/// gave one and the body did not (API Priority and Fairness answers with a
/// plain-text body and only the header).
fn with_retry_after(body: &[u8], retry_after: Option<u64>) -> Bytes {
    // A request that asked for protobuf may get its Status in protobuf.
    let from_protobuf = || {
        crate::protobuf::is_protobuf(body)
            .then(|| crate::protobuf::status(body).ok())
            .flatten()
            .map(|status| status.to_json())
    };
    let parsed = serde_json::from_slice(body).ok().or_else(from_protobuf);
    let mut status: Value = parsed.unwrap_or_else(|| {
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": "TooManyRequests",
            "code": 429,
        })
    });
    if let (Some(seconds), Some(object)) = (retry_after, status.as_object_mut()) {
        let details = object
            .entry("details")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(details) = details.as_object_mut() {
            details
                .entry("retryAfterSeconds")
                .or_insert(serde_json::json!(seconds));
        }
    }
    Bytes::from(serde_json::to_vec(&status).unwrap_or_else(|_| body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::status_body;

    #[test]
    fn the_retry_after_header_is_copied_into_the_status_details() {
        let body = with_retry_after(b"Too many requests", Some(7));
        let status: kube::core::Status = serde_json::from_slice(&body).unwrap();
        assert_eq!(status.code, 429);
        assert_eq!(status.details.unwrap().retry_after_seconds, 7);

        let original = status_body(429, "TooManyRequests", "slow down");
        let body = with_retry_after(original.to_string().as_bytes(), Some(3));
        let status: kube::core::Status = serde_json::from_slice(&body).unwrap();
        assert_eq!(status.message, "slow down");
        assert_eq!(status.details.unwrap().retry_after_seconds, 3);
    }

    #[test]
    fn requests_are_counted_by_their_rbac_verb() {
        use http::Method;
        assert_eq!(
            RequestVerb::of(&Method::GET, "/api/v1/pods", Some("limit=500")),
            RequestVerb::List
        );
        assert_eq!(
            RequestVerb::of(&Method::GET, "/api/v1/namespaces", None),
            RequestVerb::List
        );
        assert_eq!(
            RequestVerb::of(&Method::GET, "/api/v1/namespaces/shop", None),
            RequestVerb::Get
        );
        assert_eq!(
            RequestVerb::of(&Method::GET, "/api/v1/namespaces/shop/pods", None),
            RequestVerb::List
        );
        assert_eq!(
            RequestVerb::of(
                &Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/cart",
                None
            ),
            RequestVerb::Get
        );
        assert_eq!(
            RequestVerb::of(
                &Method::GET,
                "/apis/apps/v1/deployments",
                Some("watch=true&resourceVersion=5")
            ),
            RequestVerb::Watch
        );
        assert_eq!(
            RequestVerb::of(&Method::GET, "/version", None),
            RequestVerb::Get
        );
        assert_eq!(
            RequestVerb::of(
                &Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/b",
                None
            ),
            RequestVerb::Patch
        );
    }
}
