//! Connecting: the kubeconfig read the way kubectl reads it, the global
//! flags applied, and the [`ApiClient`] built on top.
//!
//! ```text
//! --kubeconfig ─┐
//! KUBECONFIG ───┼─► load_kubeconfig (merged first-wins, missing files skipped)
//! ~/.kube/config┘      ─► resolve_config (--context, --cluster, --user, --as,
//!                          --as-group, --insecure-skip-tls-verify, --request-timeout)
//!                      ─► kube::Client with the Observe layer ─► ApiClient
//! ```
//!
//! `--kubeconfig` alone if given, else every file in `KUBECONFIG` merged
//! first-wins with missing files skipped, else `~/.kube/config`. Nothing is
//! sent here: an unreachable server shows up on the first request. Every
//! failure is one of the kubeconfig sentences of [`crate::error::Error`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::{BoxError, Layer, Service};

use super::ApiClient;
use super::classify::deepest_message;
use super::observe::{ObserveLayer, RequestStats};
use super::request::{DEFAULT_PAGE_SIZE, RetryPolicy, WriteMode};
use crate::error::{ClusterTarget, Error};

/// Everything needed to reach the cluster (`commands` fills it from the
/// global flags).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub impersonate_user: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub request_timeout: Option<Duration>,
    pub insecure_skip_tls_verify: bool,
}

impl ApiClient {
    /// Read the kubeconfig, apply the flags and build the client. Sends no
    /// request: an unreachable server shows up on the first call.
    pub async fn connect(options: &ConnectOptions) -> anyhow::Result<Self> {
        let loaded = load_kubeconfig(
            options.kubeconfig.as_deref(),
            std::env::var_os("KUBECONFIG"),
            home_dir(),
        )?;
        let resolved = resolve_config(loaded, options).await?;
        let stats = Arc::new(RequestStats::default());
        let client = kube::client::ClientBuilder::try_from(resolved.config)
            .map_err(|err| Error::BadKubeconfig {
                path: resolved.source.clone(),
                reason: format!(
                    "cannot set up the connection to {}: {}",
                    resolved.target,
                    deepest_message(&err)
                ),
            })?
            .with_layer(&ObserveLayer {
                stats: stats.clone(),
            })
            .build();
        Ok(ApiClient {
            client,
            target: resolved.target,
            user: resolved.user,
            default_namespace: resolved.default_namespace,
            write_mode: WriteMode::Write,
            stats,
            retry: RetryPolicy::default(),
            request_timeout: options.request_timeout,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// A client over any HTTP service (tests use an in-memory one).
    pub fn from_service<S, B>(service: S, target: ClusterTarget, default_namespace: &str) -> Self
    where
        S: Service<Request<kube::client::Body>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let stats = Arc::new(RequestStats::default());
        let service = ObserveLayer {
            stats: stats.clone(),
        }
        .layer(service);
        ApiClient {
            client: kube::Client::new(service, default_namespace),
            target,
            user: "the current user".to_string(),
            default_namespace: default_namespace.to_string(),
            write_mode: WriteMode::Write,
            stats,
            retry: RetryPolicy::default(),
            request_timeout: None,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// The kubeconfig as kubectl would assemble it, and where it came from.
#[derive(Debug)]
struct LoadedKubeconfig {
    config: Kubeconfig,
    /// The file(s) read, for messages.
    source: String,
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Read the kubeconfig like kubectl: `--kubeconfig` alone if given (it must
/// exist); else each file of `KUBECONFIG` that exists, merged with the first
/// file to set a value winning (kube-rs' `Kubeconfig::merge` implements those
/// rules; kubectl skips missing files, which kube-rs' own loader does not, so
/// the files are read here one by one); else `~/.kube/config`.
fn load_kubeconfig(
    explicit: Option<&Path>,
    kubeconfig_env: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
) -> anyhow::Result<LoadedKubeconfig> {
    let read = |path: &Path| -> anyhow::Result<Kubeconfig> {
        Kubeconfig::read_from(path).map_err(|err| {
            Error::BadKubeconfig {
                path: path.display().to_string(),
                reason: kubeconfig_reason(&err),
            }
            .into()
        })
    };
    if let Some(path) = explicit {
        return Ok(LoadedKubeconfig {
            config: read(path)?,
            source: path.display().to_string(),
        });
    }
    if let Some(value) = kubeconfig_env.filter(|v| !v.is_empty()) {
        let existing: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .filter(|p| p.exists())
            .collect();
        if existing.is_empty() {
            return Err(Error::NoKubeconfig.into());
        }
        let mut merged = Kubeconfig::default();
        for path in &existing {
            merged = merged
                .merge(read(path)?)
                .map_err(|err| Error::BadKubeconfig {
                    path: path.display().to_string(),
                    reason: kubeconfig_reason(&err),
                })?;
        }
        let source = existing
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(LoadedKubeconfig {
            config: merged,
            source,
        });
    }
    let path = home
        .map(|h| h.join(".kube").join("config"))
        .filter(|p| p.exists());
    match path {
        Some(path) => Ok(LoadedKubeconfig {
            config: read(&path)?,
            source: path.display().to_string(),
        }),
        None => Err(Error::NoKubeconfig.into()),
    }
}

fn kubeconfig_reason(err: &kube::config::KubeconfigError) -> String {
    match err {
        kube::config::KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => deepest_message(other),
    }
}

/// A kube `Config` with the flags applied, and the names for messages.
struct ResolvedConfig {
    config: kube::Config,
    target: ClusterTarget,
    user: String,
    default_namespace: String,
    source: String,
}

async fn resolve_config(
    loaded: LoadedKubeconfig,
    options: &ConnectOptions,
) -> anyhow::Result<ResolvedConfig> {
    let LoadedKubeconfig {
        config: kubeconfig,
        source,
    } = loaded;
    let known_contexts: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context_name = match options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()))
    {
        Some(name) => name,
        None => {
            return Err(Error::NoCurrentContext {
                known: known_contexts,
            }
            .into());
        }
    };
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
    else {
        return Err(Error::UnknownContext {
            name: context_name,
            known: known_contexts,
        }
        .into());
    };
    let cluster_name = options
        .cluster
        .clone()
        .unwrap_or_else(|| context.cluster.clone());
    if !kubeconfig.clusters.iter().any(|c| c.name == cluster_name) {
        return Err(Error::UnknownCluster {
            name: cluster_name,
            known: kubeconfig.clusters.iter().map(|c| c.name.clone()).collect(),
        }
        .into());
    }
    if let Some(user) = &options.user
        && !kubeconfig.auth_infos.iter().any(|u| &u.name == user)
    {
        return Err(Error::BadKubeconfig {
            path: source,
            reason: format!(
                "user {user:?} is not in it; known users: {}",
                kubeconfig
                    .auth_infos
                    .iter()
                    .map(|u| u.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    if !options.impersonate_groups.is_empty() && options.impersonate_user.is_none() {
        return Err(Error::Usage(
            "--as-group needs --as: say which user to impersonate".to_string(),
        )
        .into());
    }
    let kubeconfig_user = options.user.clone().or_else(|| context.user.clone());
    let kube_options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: options.cluster.clone(),
        user: options.user.clone(),
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| Error::BadKubeconfig {
            path: source.clone(),
            reason: format!("context {context_name}: {}", kubeconfig_reason(&err)),
        })?;
    // Retries happen in ApiClient, where they are counted and bounded.
    config.default_retry = false;
    if options.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(user) = &options.impersonate_user {
        config.auth_info.impersonate = Some(user.clone());
        if !options.impersonate_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(options.impersonate_groups.clone());
        }
    }
    if let Some(limit) = options.request_timeout {
        config.connect_timeout = Some(config.connect_timeout.map_or(limit, |c| c.min(limit)));
    }
    let target = ClusterTarget {
        context: context_name,
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
    };
    let user = options
        .impersonate_user
        .clone()
        .or(kubeconfig_user)
        .unwrap_or_else(|| "the anonymous user".to_string());
    let default_namespace = config.default_namespace.clone();
    Ok(ResolvedConfig {
        config,
        target,
        user,
        default_namespace,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG_A: &str = r#"
    apiVersion: v1
    kind: Config
    current-context: a
    clusters:
    - name: a
      cluster: {server: "https://127.0.0.1:6443"}
    - name: shared
      cluster: {server: "https://first.example:6443"}
    contexts:
    - name: a
      context: {cluster: a, user: a, namespace: shop}
    users:
    - name: a
      user: {token: secret-a}
    "#;

    const KUBECONFIG_B: &str = r#"
    apiVersion: v1
    kind: Config
    current-context: b
    clusters:
    - name: b
      cluster: {server: "https://127.0.0.2:6443"}
    - name: shared
      cluster: {server: "https://second.example:6443"}
    contexts:
    - name: b
      context: {cluster: b, user: b}
    - name: c
      context: {cluster: shared, user: b}
    users:
    - name: b
      user: {token: secret-b}
    "#;

    fn write_kubeconfigs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, KUBECONFIG_A).unwrap();
        std::fs::write(&b, KUBECONFIG_B).unwrap();
        (dir, a, b)
    }

    #[test]
    fn kubeconfig_paths_merge_first_wins_and_missing_files_are_skipped() {
        let (dir, a, b) = write_kubeconfigs();
        let missing = dir.path().join("missing.yaml");
        let env = std::env::join_paths([&missing, &a, &b]).unwrap();
        let loaded = load_kubeconfig(None, Some(env), None).unwrap();
        assert_eq!(loaded.config.current_context.as_deref(), Some("a"));
        let names: Vec<&str> = loaded
            .config
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        let shared = loaded
            .config
            .clusters
            .iter()
            .find(|c| c.name == "shared")
            .unwrap();
        assert_eq!(
            shared.cluster.as_ref().unwrap().server.as_deref(),
            Some("https://first.example:6443")
        );
    }

    #[test]
    fn no_kubeconfig_anywhere_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_kubeconfig(None, None, Some(dir.path().to_path_buf())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no kubeconfig found: set KUBECONFIG or pass --kubeconfig"
        );
        let env = dir.path().join("nothing-here.yaml").into_os_string();
        let err = load_kubeconfig(None, Some(env), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no kubeconfig found: set KUBECONFIG or pass --kubeconfig"
        );
    }

    #[test]
    fn an_explicit_kubeconfig_that_does_not_exist_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.yaml");
        let err = load_kubeconfig(Some(&path), None, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read the kubeconfig {}", path.display())),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_context_lists_the_known_ones() {
        let (_dir, a, b) = write_kubeconfigs();
        let env = std::env::join_paths([&a, &b]).unwrap();
        let loaded = load_kubeconfig(None, Some(env), None).unwrap();
        let options = ConnectOptions {
            context: Some("prod".into()),
            ..Default::default()
        };
        let err = resolve_config(loaded, &options).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "context \"prod\" is not in the kubeconfig; known contexts: a, b, c"
        );
    }

    #[tokio::test]
    async fn the_context_namespace_and_impersonation_are_applied() {
        let (_dir, a, _b) = write_kubeconfigs();
        let loaded = load_kubeconfig(Some(&a), None, None).unwrap();
        let options = ConnectOptions {
            impersonate_user: Some("bob".into()),
            impersonate_groups: vec!["ops".into()],
            insecure_skip_tls_verify: true,
            request_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let resolved = resolve_config(loaded, &options).await.unwrap();
        assert_eq!(resolved.default_namespace, "shop");
        assert_eq!(resolved.target.context, "a");
        assert_eq!(resolved.target.server, "https://127.0.0.1:6443");
        assert_eq!(resolved.user, "bob");
        assert_eq!(
            resolved.config.auth_info.impersonate.as_deref(),
            Some("bob")
        );
        assert_eq!(
            resolved.config.auth_info.impersonate_groups,
            Some(vec!["ops".to_string()])
        );
        assert!(resolved.config.accept_invalid_certs);
        assert!(!resolved.config.default_retry);
        assert_eq!(
            resolved.config.connect_timeout,
            Some(Duration::from_secs(2))
        );
    }

    #[tokio::test]
    async fn impersonating_groups_without_a_user_is_a_usage_error() {
        let (_dir, a, _b) = write_kubeconfigs();
        let loaded = load_kubeconfig(Some(&a), None, None).unwrap();
        let options = ConnectOptions {
            impersonate_groups: vec!["ops".into()],
            ..Default::default()
        };
        let err = resolve_config(loaded, &options).await.err().unwrap();
        assert_eq!(
            crate::error::exit_code_of(&err),
            crate::error::ExitCode::Usage
        );
    }
}
