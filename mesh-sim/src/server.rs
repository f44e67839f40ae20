//! The HTTPS front of the simulated cluster: connections, authentication,
//! the request log, faults, and dispatch to the endpoints.
//!
//! Every request takes the same path, so the log and the faults see all of
//! them, including rejected ones:
//!
//! ```text
//! TLS (h2 | http/1.1) ─> hyper ─> handle ─┬─ 401 without a known bearer token
//!                                         ├─ discovery, /version, OpenAPI (any user)
//!                                         └─ resource request ─> 403 outside the role
//!                                                              ─> faults (latency, error)
//!                                                              ─> get | list | watch | create | update | patch | delete
//!                                            └─> RequestRecord appended with the final status and content type
//! ```
//!
//! The world sits behind one mutex. Handlers hold it only to read or write
//! objects, never across an `.await`; large list bodies are serialized after
//! it is released (objects are `Arc`s). A controller task runs
//! [`crate::controllers::reconcile`] after every write and on a short tick.

pub mod discovery;
pub mod list;
mod objects;
pub mod openapi;
pub mod proto;
mod review;
pub mod route;
pub mod table;
pub mod watch;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::auth::{User, Users};
use crate::error::ApiError;
use crate::faults::FaultState;
use crate::world::World;

use route::{Query, Route};

/// Response bodies: whole documents or watch streams.
pub type Body = BoxBody<Bytes, Infallible>;

/// One request as the server saw it, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (percent-encoded, as sent).
    pub query: String,
    pub content_type: String,
    /// The request body, as text (lossy for non-UTF-8 bytes).
    pub body: String,
    /// The status answered (200 for a watch that started streaming).
    pub status: u16,
    /// The answer's `Content-Type` (`application/json`,
    /// `application/vnd.kubernetes.protobuf`, ...); empty if it had none.
    pub response_type: String,
    /// The authenticated user, empty when authentication failed.
    pub user: String,
    /// The object's namespace and name, for a request on one object (a
    /// create's from the stored object); empty otherwise.
    pub namespace: String,
    pub name: String,
}

/// One line of the request log file (`--request-log`): the record without
/// its body and the request's content type.
#[derive(Serialize)]
struct LogLine<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    status: u16,
    #[serde(rename = "responseType", skip_serializing_if = "str::is_empty")]
    response_type: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
}

impl RequestRecord {
    /// The record as one JSON line, without a newline.
    pub fn log_line(&self) -> String {
        serde_json::to_string(&LogLine {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            status: self.status,
            response_type: &self.response_type,
            user: &self.user,
            namespace: &self.namespace,
            name: &self.name,
        })
        .expect("log lines serialize")
    }
}

impl RequestRecord {
    /// Whether the request could change state (POST, PUT, PATCH, DELETE).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }

    /// A decoded query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        Query::parse(&self.query).get(key).map(str::to_string)
    }

    /// Whether the request was a dry run: `dryRun=All` in the query, or in
    /// the body's DeleteOptions (where kubectl puts it for deletions).
    pub fn is_dry_run(&self) -> bool {
        if self.query_param("dryRun").as_deref() == Some("All") {
            return true;
        }
        serde_json::from_str::<Value>(&self.body).is_ok_and(|body| {
            body.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"))
        })
    }
}

/// State shared by every connection and the controller task.
pub struct Shared {
    pub world: Arc<Mutex<World>>,
    pub users: RwLock<Users>,
    pub faults: Mutex<FaultState>,
    /// Users whose requests no fault touches (observers a script reads
    /// the cluster with while faults are on).
    pub fault_exempt: RwLock<std::collections::HashSet<String>>,
    pub log: Mutex<Vec<RequestRecord>>,
    /// Where each record is also written as a JSON line, when set.
    pub log_file: Mutex<Option<std::fs::File>>,
    /// Woken after every write so controllers react at once.
    pub wake_controllers: Notify,
    /// `127.0.0.1:<port>`, for `/api`'s server address.
    pub server_address: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    pub fn new(
        world: Arc<Mutex<World>>,
        users: Users,
        server_address: String,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Shared {
            world,
            users: RwLock::new(users),
            faults: Mutex::new(FaultState::default()),
            fault_exempt: RwLock::new(std::collections::HashSet::new()),
            log: Mutex::new(Vec::new()),
            log_file: Mutex::new(None),
            wake_controllers: Notify::new(),
            server_address,
            shutdown,
        }
    }
}

/// Locks a mutex, carrying on after a panic elsewhere poisoned it (the data
/// is a simulation; a test that panicked has already failed).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs controller passes until one changes nothing, at most `max_passes`;
/// returns whether the world went quiet.
pub fn reconcile_until_quiet(world: &mut World, max_passes: usize) -> bool {
    for _ in 0..max_passes {
        if !crate::controllers::reconcile(world) {
            return true;
        }
    }
    false
}

/// Controller passes per wake-up; a rollout takes a few, a big cluster more.
const PASSES_PER_TICK: usize = 64;
/// How often controllers run while something is pending (pods becoming
/// Ready, rollouts progressing).
const BUSY_TICK: Duration = Duration::from_millis(10);
/// How often they run when the cluster is settled; writes wake them at once.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Runs the controllers after every write and on a tick until shutdown.
pub async fn run_controllers(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let mut settled = false;
    loop {
        let tick = if settled { IDLE_TICK } else { BUSY_TICK };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(tick) => {}
            _ = shared.wake_controllers.notified() => {}
        }
        let world = shared.world.clone();
        // Controllers are CPU work under the lock: keep them off the
        // threads that serve connections.
        settled = tokio::task::spawn_blocking(move || {
            let mut world = lock(&world);
            reconcile_until_quiet(&mut world, PASSES_PER_TICK);
            crate::controllers::is_settled(&world)
        })
        .await
        .unwrap_or(false);
    }
}

/// Accepts TLS connections until shutdown.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut shutdown = shared.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            // Out of file descriptors and the like: back off, keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the handlers need from a request.
pub struct ApiRequest {
    pub method: hyper::Method,
    pub path: String,
    pub query: Query,
    pub content_type: String,
    pub accept: String,
    pub body: Bytes,
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header(CONTENT_TYPE);
    let accept = header(hyper::header::ACCEPT);
    let authorization = header(hyper::header::AUTHORIZATION);
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let incoming = ApiRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: Query::parse(&raw_query),
        content_type: content_type.clone(),
        accept,
        body: body.clone(),
    };
    let user: Option<User> = shared
        .users
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .authenticate(
            Some(&authorization)
                .filter(|a| !a.is_empty())
                .map(String::as_str),
        )
        .cloned();
    // `kubectl --as` / the plugin's `--as` send Impersonate-User; the request
    // then runs with the impersonated user's rights, as on a real cluster.
    let impersonate = header(hyper::header::HeaderName::from_static("impersonate-user"));
    let user: Result<Option<User>, ApiError> = match user {
        Some(actor) if !impersonate.is_empty() => shared
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .impersonate(&actor, &impersonate)
            .map(Some),
        other => Ok(other),
    };
    let (mut response, user) = match user {
        Err(refused) => (error_response(&refused), None),
        Ok(None) => (error_response(&ApiError::unauthorized()), None),
        Ok(Some(user)) => (dispatch(&shared, &user, &incoming).await, Some(user)),
    };
    let (mut namespace, mut name) = match route::route(&incoming.path) {
        Route::Resource(path) => (
            path.namespace.unwrap_or_default(),
            path.name.unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    if parts.method == hyper::Method::POST && name.is_empty() && response.status().is_success() {
        // A create names its object in the body (or the server picks the
        // name from generateName): read it back from the answer.
        let (head, answer) = response.into_parts();
        let bytes = answer
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if let Ok(created) = serde_json::from_slice::<Value>(&bytes) {
            let field = |f: &str| {
                created
                    .pointer(&format!("/metadata/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            name = field("name");
            if namespace.is_empty() {
                namespace = field("namespace");
            }
        }
        response = Response::from_parts(head, full(bytes));
    }
    let record = RequestRecord {
        method: parts.method.to_string(),
        path: incoming.path,
        query: raw_query,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
        status: response.status().as_u16(),
        response_type: response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        user: user.map(|u| u.name).unwrap_or_default(),
        namespace,
        name,
    };
    {
        // One line per write, under the log's lock so lines keep the order
        // of the in-memory log; a failed write drops the line, not the request.
        let mut log = lock(&shared.log);
        if let Some(file) = lock(&shared.log_file).as_mut() {
            use std::io::Write;
            let mut line = record.log_line();
            line.push('\n');
            let _ = file.write_all(line.as_bytes());
        }
        log.push(record);
    }
    response
}

async fn dispatch(shared: &Arc<Shared>, user: &User, request: &ApiRequest) -> Response<Body> {
    let route = route::route(&request.path);
    if !matches!(route, Route::Resource(_)) && request.method != hyper::Method::GET {
        return error_response(&ApiError::method_not_allowed(format!(
            "{} is not supported on {}",
            request.method, request.path
        )));
    }
    // Every kind this cluster serves: the built-in ones, the custom kinds
    // whose CRDs are installed, and the kinds its objects were registered as.
    let served = || -> Vec<&'static crate::resources::Resource> {
        let world = lock(&shared.world);
        let mut all = discovery::all_resources(world.custom_kinds().chain(world.store.kinds()));
        all.retain(|r| world.serves(r));
        all
    };
    match route {
        Route::Version => json_response(StatusCode::OK, &discovery::version()),
        Route::Health => text_response(StatusCode::OK, "ok"),
        Route::CoreVersions => json_response(
            StatusCode::OK,
            &discovery::core_versions(&shared.server_address),
        ),
        Route::Groups => json_response(StatusCode::OK, &discovery::groups(&served())),
        Route::Group(name) => match discovery::group(&served(), &name) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => error_response(&not_found_path()),
        },
        Route::ResourceList { group, version } => {
            match discovery::resource_list(&served(), &group, &version) {
                Some(doc) => json_response(StatusCode::OK, &doc),
                None => error_response(&not_found_path()),
            }
        }
        Route::OpenApiV3(None) => json_response(StatusCode::OK, &openapi::root(&served())),
        Route::OpenApiV3(Some(path)) => match openapi::group_version(&served(), &path) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => error_response(&not_found_path()),
        },
        Route::OpenApiV2 => error_response(&not_found_path()),
        Route::Resource(path) => match review::handle(user, request, &path) {
            Some(Ok(response)) => response,
            Some(Err(e)) => error_response(&e),
            None => match objects::resource_request(shared, user, request, &path).await {
                Ok(response) => response,
                Err(e) => objects::error_answer(shared, request, &path, &e),
            },
        },
        Route::NotFound => error_response(&not_found_path()),
    }
}

/// The API server's answer to a path it does not serve.
pub fn not_found_path() -> ApiError {
    ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".to_string(),
        retry_after: None,
        details: None,
        causes: None,
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(
        status,
        "application/json",
        serde_json::to_vec(value).expect("JSON values serialize"),
    )
}

pub fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    bytes_response(status, "text/plain; charset=utf-8", text)
}

/// A `Status` response for `error`, with `Retry-After` when it has one.
pub fn error_response(error: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &error.to_status());
    if let Some(secs) = error.retry_after {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, value);
        }
    }
    response
}
