//! `kubectl mesh-upgrade version`: the plugin's version, and the API
//! server's when the cluster answers.
//!
//! The plugin's version is always printed: `version` is how an install is
//! checked, often before any cluster is configured. A cluster that cannot be
//! reached is a note on stderr, not a failure. The git commit the binary was
//! built from follows when the build knew it (`build.rs` records it from a git
//! checkout; a build from a crate tarball has none).

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::error::ExitCode;
use crate::output::Output;

/// The `-o json|yaml` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionReport {
    pub client_version: ClientVersion,
    /// `None` when no cluster answered.
    pub server_version: Option<ServerVersion>,
}

/// The plugin's build.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientVersion {
    pub version: &'static str,
    /// The short commit the binary was built from; `None` (null) when the
    /// build had no git checkout to ask.
    pub git_commit: Option<&'static str>,
}

/// What `build.rs` recorded.
pub const GIT_COMMIT: Option<&str> = option_env!("MESH_UPGRADE_GIT_COMMIT");

/// The API server's `/version`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    pub git_version: String,
    pub platform: String,
    pub context: String,
    pub server: String,
}

/// Print the versions.
pub async fn run(global: &GlobalArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let server_version = match server_version(global).await {
        Ok(version) => Some(version),
        Err(err) => {
            output.note(&format!("server version unknown: {err:#}"));
            None
        }
    };
    let report = VersionReport {
        client_version: ClientVersion {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: GIT_COMMIT,
        },
        server_version,
    };
    if output.is_machine_readable() {
        output.print_document(&report)?;
    } else {
        output.print_text(&render(&report))?;
    }
    Ok(ExitCode::Success)
}

async fn server_version(global: &GlobalArgs) -> anyhow::Result<ServerVersion> {
    let api = super::connect(global).await?;
    let info = api.server_version().await?;
    super::log_request_summary(&api);
    Ok(ServerVersion {
        git_version: info.git_version,
        platform: info.platform,
        context: api.target().context.clone(),
        server: api.target().server.clone(),
    })
}

fn render(report: &VersionReport) -> String {
    let mut text = format!("kubectl mesh-upgrade v{}\n", report.client_version.version);
    if let Some(commit) = report.client_version.git_commit {
        text.push_str(&format!("Commit: {commit}\n"));
    }
    if let Some(server) = &report.server_version {
        text.push_str(&format!(
            "Server: Kubernetes {} ({}, context {})\n",
            server.git_version, server.server, server.context
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_plugin_its_commit_and_the_server() {
        let report = VersionReport {
            client_version: ClientVersion {
                version: "1.2.3",
                git_commit: Some("0a1b2c3"),
            },
            server_version: Some(ServerVersion {
                git_version: "v1.33.0".into(),
                platform: "linux/amd64".into(),
                context: "prod".into(),
                server: "https://10.0.0.1:6443".into(),
            }),
        };
        assert_eq!(
            render(&report),
            "kubectl mesh-upgrade v1.2.3\nCommit: 0a1b2c3\nServer: Kubernetes v1.33.0 (https://10.0.0.1:6443, context prod)\n"
        );
    }

    #[test]
    fn a_build_without_a_commit_prints_the_version_line_alone() {
        let report = VersionReport {
            client_version: ClientVersion {
                version: "1.2.3",
                git_commit: None,
            },
            server_version: None,
        };
        assert_eq!(render(&report), "kubectl mesh-upgrade v1.2.3\n");
    }

    #[test]
    fn the_json_has_a_null_server_version_without_a_cluster() {
        let report = VersionReport {
            client_version: ClientVersion {
                version: "1.2.3",
                git_commit: Some("0a1b2c3"),
            },
            server_version: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "clientVersion": {"version": "1.2.3", "gitCommit": "0a1b2c3"},
                "serverVersion": null
            })
        );
    }
}
