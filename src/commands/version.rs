//! `kubectl mesh-upgrade version`: the plugin's version, and the API
//! server's when the cluster answers.
//!
//! The plugin's version is always printed: `version` is how an install is
//! checked, often before any cluster is configured. A cluster that cannot be
//! reached is a note on stderr, not a failure.

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
}

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
    fn the_text_names_the_plugin_and_the_server() {
        let report = VersionReport {
            client_version: ClientVersion { version: "1.2.3" },
            server_version: Some(ServerVersion {
                git_version: "v1.33.0".into(),
                platform: "linux/amd64".into(),
                context: "prod".into(),
                server: "https://10.0.0.1:6443".into(),
            }),
        };
        assert_eq!(
            render(&report),
            "kubectl mesh-upgrade v1.2.3\nServer: Kubernetes v1.33.0 (https://10.0.0.1:6443, context prod)\n"
        );
    }

    #[test]
    fn the_json_has_a_null_server_version_without_a_cluster() {
        let report = VersionReport {
            client_version: ClientVersion { version: "1.2.3" },
            server_version: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"clientVersion": {"version": "1.2.3"}, "serverVersion": null})
        );
    }
}
