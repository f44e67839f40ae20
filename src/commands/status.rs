//! `kubectl mesh-upgrade status`: collect → build the report → print it.

use crate::cli::{GlobalArgs, StatusArgs};
use crate::collect::{CollectOptions, collect};
use crate::error::ExitCode;
use crate::output::Output;
use crate::snapshot::DEFAULT_CONTROL_PLANE_NAMESPACE;

/// Show where the upgrade stands.
pub async fn run(
    global: &GlobalArgs,
    _args: &StatusArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    let api = super::connect(global).await?;
    let options = CollectOptions {
        scope: super::selected_scope(global, api.default_namespace()),
        control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
        selector,
    };
    let collected = collect(&api, &options).await?;
    super::log_request_summary(&api);
    for warning in &collected.warnings {
        output.warn(warning);
    }
    anyhow::bail!("the status report is not built yet in this version")
}
