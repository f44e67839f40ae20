//! The handle tests hold: start a simulated cluster in-process, talk to it
//! through its kubeconfig, and reach inside it (objects, clock, faults, the
//! request log) without going through HTTP.
//!
//! [`Sim::start`] is synchronous so plain `#[test]` functions can use it: each
//! handle runs its own tokio runtime on a background thread, serving on an
//! ephemeral port of 127.0.0.1, so many handles run side by side in one test
//! binary. Dropping the handle stops the server, its controller task and its
//! thread, and removes the temporary directory holding its kubeconfigs.
//!
//! ```no_run
//! let sim = mesh_sim::Sim::start(mesh_sim::SimOptions::default().scenario("canary"))?;
//! let status = std::process::Command::new("kubectl")
//!     .env("KUBECONFIG", sim.kubeconfig_path())
//!     .args(["get", "pods", "-A"])
//!     .status()?;
//! assert!(status.success());
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::auth::{Role, Users};
use crate::faults::{FaultState, Faults};
use crate::resources::Resource;
use crate::server::{self, RequestRecord, Shared, lock};
use crate::world::{SimConfig, World};

/// Where a manifest comes from.
#[derive(Debug, Clone)]
enum Manifests {
    Text(String),
    Path(PathBuf),
}

/// How to start a simulated cluster. Loading happens in this order: the
/// built-in scenario (`empty`, the standard namespaces, when none is named),
/// the generated cluster if asked for, then manifests in the order they were
/// added, each followed by the controllers settling.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    scenario: Option<String>,
    manifests: Vec<Manifests>,
    config: SimConfig,
    port: u16,
    kubeconfig: Option<PathBuf>,
    generate: Option<crate::generate::GenerateOptions>,
    request_log: Option<PathBuf>,
    faults: Faults,
}

impl SimOptions {
    /// Loads a built-in scenario (`canary`, `in-place`, ...; see
    /// [`crate::scenario::builtin_names`]).
    pub fn scenario(mut self, name: &str) -> Self {
        self.scenario = Some(name.to_string());
        self
    }

    /// Installs a registry-mirroring webhook that rewrites the image prefix
    /// `from` to `to` in pods created from then on, after Istio's injector
    /// chose their images (see [`crate::inject::registry_mirror_webhook`]).
    /// It loads in order with [`Self::manifests`], after the scenario.
    pub fn registry_mirror(self, from: &str, to: &str) -> Self {
        let webhook = crate::inject::registry_mirror_webhook(from, to);
        let yaml = serde_yaml::to_string(&webhook).expect("a webhook configuration as YAML");
        self.manifests(&yaml)
    }

    /// Loads a multi-document YAML text.
    pub fn manifests(mut self, yaml: &str) -> Self {
        self.manifests.push(Manifests::Text(yaml.to_string()));
        self
    }

    /// Loads a YAML file, or every `.yaml`/`.yml`/`.json` file of a
    /// directory in name order.
    pub fn manifest_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifests.push(Manifests::Path(path.into()));
        self
    }

    /// Builds a large generated cluster (for benchmarks) after the scenario
    /// and before the manifests; see [`crate::generate`].
    pub fn generate(mut self, options: crate::generate::GenerateOptions) -> Self {
        self.generate = Some(options);
        self
    }

    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// Without the Gateway API's CRDs: its kinds answer 404 and are not
    /// in discovery (see [`SimConfig::gateway_api`]).
    pub fn without_gateway_api(mut self) -> Self {
        self.config.gateway_api = false;
        self
    }

    /// Simulated seconds per wall second (0 starts with the clock paused).
    pub fn clock_speed(mut self, speed: f64) -> Self {
        self.config.clock_speed = speed;
        self
    }

    /// Whether Argo Rollouts is installed (the default): with `false` the
    /// `argoproj.io` group is not served and its requests answer 404.
    pub fn argo_rollouts(mut self, installed: bool) -> Self {
        self.config.argo_rollouts = installed;
        self
    }

    /// Whether LISTs are answered in protobuf to clients that prefer it, as
    /// the API server answers kubectl's typed clients (the default); with
    /// `false` every LIST is answered in JSON (see [`SimConfig::protobuf`]).
    pub fn protobuf(mut self, enabled: bool) -> Self {
        self.config.protobuf = enabled;
        self
    }

    /// Serves on this port instead of an ephemeral one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Also writes every request to this file as a JSON line (created or
    /// truncated at start); see [`RequestRecord::log_line`].
    pub fn request_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.request_log = Some(path.into());
        self
    }

    /// Serves with these faults from the first request on.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Writes the admin kubeconfig here instead of in a temporary directory
    /// (restricted users' kubeconfigs go next to it).
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }
}

/// A running simulated cluster. Stops when dropped.
pub struct Sim {
    shared: Arc<Shared>,
    url: String,
    token: String,
    ca_pem: String,
    kubeconfig: PathBuf,
    /// Where restricted users' kubeconfigs go.
    config_dir: PathBuf,
    _temp_dir: Option<tempfile::TempDir>,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

/// Controller passes after [`Sim::advance`] before it returns regardless.
const PASSES_PER_STEP: usize = 256;

impl Sim {
    /// Loads the cluster and starts serving it; returns once it accepts
    /// connections.
    pub fn start(options: SimOptions) -> anyhow::Result<Sim> {
        let tls = crate::tls::generate()?;
        let world = load_world(&options)?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", options.port))
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        let address = listener
            .local_addr()
            .context("reading the listening address")?;
        let url = format!("https://{address}");

        let users = Users::new();
        let token = users.admin_token().to_string();
        let (temp_dir, kubeconfig) = match &options.kubeconfig {
            Some(path) => (None, path.clone()),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("mesh-sim-")
                    .tempdir()
                    .context("creating a directory for the kubeconfig")?;
                let path = dir.path().join("kubeconfig");
                (Some(dir), path)
            }
        };
        crate::kubeconfig::write(
            &kubeconfig,
            &url,
            &tls.ca_pem,
            crate::auth::ADMIN_USER,
            &token,
        )?;
        let config_dir = kubeconfig
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);

        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared::new(
            Arc::new(Mutex::new(world)),
            users,
            address.to_string(),
            shutdown_rx,
        ));
        *lock(&shared.faults) = FaultState::new(options.faults.clone());
        if let Some(path) = &options.request_log {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating the request log {}", path.display()))?;
            *lock(&shared.log_file) = Some(file);
        }
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let server_shared = shared.clone();
        let tls_config = tls.config.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mesh-sim-{}", address.port()))
            .spawn(move || run_server(listener, tls_config, server_shared, ready_tx))
            .context("starting the server thread")?;
        ready_rx
            .recv()
            .context("the server thread stopped before it was ready")??;
        Ok(Sim {
            shared,
            url,
            token,
            ca_pem: tls.ca_pem,
            kubeconfig,
            config_dir,
            _temp_dir: temp_dir,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The admin kubeconfig (context `mesh-sim`, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Applies multi-document YAML (create, or replace what exists), then
    /// settles the controllers.
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        {
            let mut world = lock(&self.shared.world);
            crate::scenario::load_yaml(&mut world, yaml)?;
        }
        self.settle();
        Ok(())
    }

    /// Runs the controllers, moving simulated time on as needed, until they
    /// report the cluster settled; gives up after fifteen simulated minutes
    /// (a workload marked never-ready stays unsettled). Returns whether it
    /// settled.
    pub fn settle(&self) -> bool {
        let mut world = lock(&self.shared.world);
        let settled = settle_world(&mut world);
        drop(world);
        self.shared.wake_controllers.notify_one();
        settled
    }

    /// Direct access to the world under its lock. The controllers run after
    /// the closure returns.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let result = {
            let mut world = lock(&self.shared.world);
            f(&mut world)
        };
        self.shared.wake_controllers.notify_one();
        result
    }

    /// A copy of one stored object.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.shared.world)
            .store
            .get(resource, namespace, name)
            .map(|o| (*o).clone())
    }

    /// Every request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Whether `resource` (`plural` or `plural/subresource`) is served,
    /// including kinds registered by the loaded manifests.
    pub fn serves(&self, resource: &str) -> bool {
        let extra: Vec<&'static Resource> = {
            let world = lock(&self.shared.world);
            world.custom_kinds().chain(world.store.kinds()).collect()
        };
        let (plural, sub) = match resource.split_once('/') {
            Some((plural, sub)) => (plural, Some(sub)),
            None => (resource, None),
        };
        let config = lock(&self.shared.world).config.clone();
        server::discovery::all_resources(extra)
            .iter()
            .filter(|r| config.serves(r))
            .any(|r| r.plural == plural && sub.is_none_or(|s| r.subresources.contains(&s)))
    }

    /// Replaces the injected faults (their counters start again).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// Registers a restricted user and writes a kubeconfig for it next to
    /// the admin's; returns its path.
    ///
    /// # Panics
    /// If the kubeconfig cannot be written to the handle's directory.
    pub fn add_user(&self, name: &str, role: Role) -> PathBuf {
        let token = self
            .shared
            .users
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(name, role);
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.config_dir.join(format!("{file}.kubeconfig"));
        crate::kubeconfig::write(&path, &self.url, &self.ca_pem, name, &token)
            .unwrap_or_else(|e| panic!("writing the kubeconfig of user {name}: {e:#}"));
        path
    }

    /// Registers a read-only user whose requests no fault touches, and
    /// writes its kubeconfig like [`Sim::add_user`]: a script reads the
    /// cluster through it while the faults are on, without using up the
    /// faults' counters.
    pub fn add_observer(&self, name: &str) -> PathBuf {
        let path = self.add_user(name, Role::read_only());
        self.shared
            .fault_exempt
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        path
    }

    /// Stops simulated time (it moves only through [`Sim::advance`]).
    pub fn pause_clock(&self) {
        self.set_clock_speed(0.0);
    }

    /// Simulated seconds per wall second from now on.
    pub fn set_clock_speed(&self, speed: f64) {
        let mut world = lock(&self.shared.world);
        world.clock.set_speed(speed);
        world.config.clock_speed = speed.max(0.0);
    }

    /// Moves simulated time forward and lets the controllers react.
    pub fn advance(&self, by: Duration) {
        let mut world = lock(&self.shared.world);
        world.advance(by);
        server::reconcile_until_quiet(&mut world, PASSES_PER_STEP);
        drop(world);
        self.shared.wake_controllers.notify_one();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Settles `world` with [`crate::controllers::settle`]: controller passes,
/// jumping the simulated clock to the controllers' next timer when they are
/// idle, until they report the cluster settled or fifteen simulated minutes
/// have passed. Returns whether it settled.
pub fn settle_world(world: &mut World) -> bool {
    crate::controllers::settle(world)
}

fn load_world(options: &SimOptions) -> anyhow::Result<World> {
    let mut world = World::new(options.config.clone());
    // Without a scenario the cluster starts as a fresh one does: the
    // standard namespaces (the `empty` scenario), so `default` exists.
    let scenario = options.scenario.as_deref().unwrap_or("empty");
    crate::scenario::load_builtin(&mut world, scenario)?;
    if let Some(generate) = &options.generate {
        crate::generate::generate(&mut world, generate).context("generating the cluster")?;
    }
    for manifests in &options.manifests {
        match manifests {
            Manifests::Text(yaml) => crate::scenario::load_yaml(&mut world, yaml)?,
            Manifests::Path(path) => {
                crate::scenario::load_files(&mut world, std::slice::from_ref(path))?
            }
        }
    }
    settle_world(&mut world);
    Ok(world)
}

fn run_server(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<anyhow::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mesh-sim-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(
                anyhow::Error::new(e).context("building the server runtime")
            ));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(
                    anyhow::Error::new(e).context("registering the listener")
                ));
                return;
            }
        };
        tokio::spawn(server::run_controllers(shared.clone()));
        let _ = ready.send(Ok(()));
        server::serve(listener, tls, shared).await;
    });
    // Open watch streams and connections end here, with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(500));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds;

    #[test]
    fn dropping_the_handle_stops_the_server() {
        let sim = Sim::start(SimOptions::default()).expect("starts");
        let address = sim.url().trim_start_matches("https://").to_string();
        assert!(std::net::TcpStream::connect(&address).is_ok());
        let kubeconfig = sim.kubeconfig_path().to_path_buf();
        assert!(kubeconfig.exists());
        drop(sim);
        assert!(std::net::TcpStream::connect(&address).is_err());
        assert!(
            !kubeconfig.exists(),
            "the temporary kubeconfig outlived the handle"
        );
    }

    #[test]
    fn apply_yaml_creates_then_replaces_objects() {
        let sim = Sim::start(SimOptions::default()).expect("starts");
        let cm = |v: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: default\ndata:\n  v: \"{v}\"\n"
            )
        };
        sim.apply_yaml(&cm("1")).expect("creates");
        sim.apply_yaml(&cm("2")).expect("replaces");
        let stored = sim
            .get(kinds::configmaps(), "default", "c")
            .expect("stored");
        assert_eq!(stored["data"]["v"], "2");
        assert!(
            sim.apply_yaml("apiVersion: v1\nkind: Nope\nmetadata: {name: x}\n")
                .is_err()
        );
    }

    #[test]
    fn a_paused_clock_moves_only_when_advanced() {
        let sim = Sim::start(SimOptions::default().clock_speed(0.0)).expect("starts");
        let before = sim.with_world(|w| w.clock.now());
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(sim.with_world(|w| w.clock.now()), before);
        sim.advance(Duration::from_secs(90));
        assert_eq!(
            sim.with_world(|w| w.clock.now()),
            before + chrono::Duration::seconds(90)
        );
        sim.set_clock_speed(10.0);
        std::thread::sleep(Duration::from_millis(20));
        assert!(sim.with_world(|w| w.clock.now()) > before + chrono::Duration::seconds(90));
    }

    #[test]
    fn each_user_gets_a_kubeconfig_with_its_own_token() {
        let sim = Sim::start(SimOptions::default()).expect("starts");
        let path = sim.add_user("ci viewer", Role::read_only());
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("ci_viewer.kubeconfig")
        );
        let doc: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("written")).expect("YAML");
        let token = doc["users"][0]["user"]["token"].as_str().expect("a token");
        assert_ne!(token, sim.token());
        assert_eq!(doc["users"][0]["name"], "ci viewer");
        assert_eq!(doc["clusters"][0]["cluster"]["server"], sim.url());
    }

    /// One GET over HTTPS as the admin, with this `Accept`: the status, the
    /// answer's `Content-Type` and its body.
    fn get_with_accept(sim: &Sim, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
        use http_body_util::BodyExt;
        use rustls::pki_types::pem::PemObject;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(
                    rustls::pki_types::CertificateDer::from_pem_slice(sim.ca_pem().as_bytes())
                        .expect("the CA"),
                )
                .expect("trusting the CA");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let authority = sim.url().trim_start_matches("https://").to_string();
            let tcp = tokio::net::TcpStream::connect(&authority)
                .await
                .expect("connects");
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("a name");
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .expect("the TLS handshake");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .expect("the HTTP handshake");
            tokio::spawn(connection);
            let request = hyper::Request::get(path)
                .header("host", authority)
                .header("authorization", format!("Bearer {}", sim.token()))
                .header("accept", accept)
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("a request");
            let response = sender.send_request(request).await.expect("an answer");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = response.into_body().collect().await.expect("a body");
            (status, content_type, body.to_bytes().to_vec())
        })
    }

    const TYPED_CLIENT: &str = "application/vnd.kubernetes.protobuf, application/json";
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

    #[test]
    fn a_typed_clients_pod_list_is_answered_in_protobuf_holding_the_json_lists_pods() {
        let dir = tempfile::tempdir().expect("a directory");
        let log = dir.path().join("requests.jsonl");
        let sim =
            Sim::start(SimOptions::default().scenario("canary").request_log(&log)).expect("starts");
        sim.pause_clock();
        let (status, content_type, json_body) =
            get_with_accept(&sim, "/api/v1/pods", "application/json");
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        let (status, content_type, body) = get_with_accept(&sim, "/api/v1/pods", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
        assert!(body.starts_with(b"k8s\0"));

        let json_list: Value = serde_json::from_slice(&json_body).expect("JSON");
        let protobuf_list = server::proto::list_from_body(&body).expect("a protobuf list");
        assert_eq!(protobuf_list["kind"], "PodList");
        assert_eq!(protobuf_list["metadata"], json_list["metadata"]);
        let schema = server::proto::schema_of("v1", "Pod").expect("a schema");
        let expected: Vec<Value> = json_list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| {
                let mut item = item.as_object().expect("an object").clone();
                item.remove("apiVersion");
                item.remove("kind");
                Value::Object(server::proto::as_decoded(schema, &item))
            })
            .collect();
        assert!(expected.len() > 5, "the canary scenario has pods");
        assert_eq!(protobuf_list["items"], Value::Array(expected));

        let types: Vec<String> = sim
            .requests()
            .iter()
            .map(|r| r.response_type.clone())
            .collect();
        assert_eq!(types, ["application/json", PROTOBUF]);
        let lines = std::fs::read_to_string(&log).expect("the log");
        assert!(
            lines.lines().nth(1).is_some_and(
                |l| l.contains(r#""responseType":"application/vnd.kubernetes.protobuf""#)
            ),
            "{lines}"
        );
    }

    #[test]
    fn a_failed_protobuf_list_is_answered_with_a_protobuf_status() {
        use crate::faults::{FaultRule, Faults};
        let sim = Sim::start(SimOptions::default().scenario("canary")).expect("starts");
        sim.set_faults(Faults {
            rules: vec![FaultRule::on("list", "pods").error_with_retry_after(429, 3)],
            ..Faults::default()
        });
        let (status, content_type, body) = get_with_accept(&sim, "/api/v1/pods", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (429, PROTOBUF));
        let unknown = server::proto::Message::parse(body.strip_prefix(b"k8s\0").expect("magic"))
            .expect("an envelope");
        let type_meta = unknown.message(1).expect("a TypeMeta");
        assert_eq!(
            (type_meta.string(1), type_meta.string(2)),
            (Some("v1"), Some("Status"))
        );
        let status_message = unknown.message(2).expect("a Status");
        assert_eq!(status_message.string(4), Some("TooManyRequests"));
        assert_eq!(status_message.varint(6), Some(429));
        let details = status_message.message(5).expect("details");
        assert_eq!(details.varint(5), Some(3), "retryAfterSeconds");
        // A client that asks for JSON, a GET of one object, and the switch
        // off get JSON, as before.
        let (status, content_type, body) =
            get_with_accept(&sim, "/api/v1/pods", "application/json");
        assert_eq!((status, content_type.as_str()), (429, "application/json"));
        let json: Value = serde_json::from_slice(&body).expect("a JSON Status");
        assert_eq!(json["details"]["retryAfterSeconds"], 3);
        let (status, content_type, _) =
            get_with_accept(&sim, "/api/v1/namespaces/pay/pods/nope", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (404, "application/json"));
        let off =
            Sim::start(SimOptions::default().scenario("canary").protobuf(false)).expect("starts");
        off.set_faults(Faults {
            rules: vec![FaultRule::on("list", "pods").error(500)],
            ..Faults::default()
        });
        let (status, content_type, _) = get_with_accept(&off, "/api/v1/pods", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (500, "application/json"));
    }

    #[test]
    fn without_protobuf_or_outside_the_schema_lists_are_answered_in_json() {
        let sim =
            Sim::start(SimOptions::default().scenario("canary").protobuf(false)).expect("starts");
        let (status, content_type, body) = get_with_accept(&sim, "/api/v1/pods", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        assert!(serde_json::from_slice::<Value>(&body).is_ok());
        // Even to a client that takes nothing else: a JSON-only proxy's answer.
        let (status, content_type, _) = get_with_accept(&sim, "/api/v1/pods", PROTOBUF);
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        assert_eq!(sim.requests()[0].response_type, "application/json");

        let sim = Sim::start(SimOptions::default()).expect("starts");
        // Nodes have no protobuf schema in mesh-sim.
        let (status, content_type, _) = get_with_accept(&sim, "/api/v1/nodes", TYPED_CLIENT);
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        let (status, content_type, body) = get_with_accept(&sim, "/api/v1/nodes", PROTOBUF);
        assert_eq!((status, content_type.as_str()), (406, "application/json"));
        let answer: Value = serde_json::from_slice(&body).expect("a Status");
        assert_eq!(answer["reason"], "NotAcceptable");
        // A GET of one object stays JSON.
        let (_, content_type, _) =
            get_with_accept(&sim, "/api/v1/namespaces/default", TYPED_CLIENT);
        assert_eq!(content_type, "application/json");
        // A pod holding a field the schema lacks turns its page to JSON.
        sim.with_world(|w| {
            w.store.put(
                kinds::pods(),
                serde_json::json!({"metadata": {"namespace": "default", "name": "odd"},
                    "spec": {"containers": [{"name": "a", "image": "a:1"}], "futureField": 1}}),
            )
        });
        let (_, content_type, _) =
            get_with_accept(&sim, "/api/v1/namespaces/default/pods", TYPED_CLIENT);
        assert_eq!(content_type, "application/json");
        let (_, content_type, _) =
            get_with_accept(&sim, "/api/v1/namespaces/kube-system/pods", TYPED_CLIENT);
        assert_eq!(content_type, PROTOBUF);
    }
}
