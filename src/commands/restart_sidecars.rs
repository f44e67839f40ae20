//! `kubectl mesh-upgrade restart-sidecars`: the wiring (being built).

use crate::api::ApiClient;
use crate::cli::{GlobalArgs, RestartSidecarsArgs};
use crate::error::{Error, ExitCode};
use crate::output::Output;

/// Restart the stale workloads of the selection.
pub async fn run(
    global: &GlobalArgs,
    args: &RestartSidecarsArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let api = super::connect(global).await?;
    let namespaces = global.namespaces.clone();
    restart_in_namespaces(&api, global, args, output, &namespaces).await
}

/// Restart the stale workloads of `namespaces` (the entry point `relabel
/// --restart` uses after relabelling them).
pub async fn restart_in_namespaces(
    _api: &ApiClient,
    _global: &GlobalArgs,
    _args: &RestartSidecarsArgs,
    _output: &Output,
    _namespaces: &[String],
) -> anyhow::Result<ExitCode> {
    Err(Error::NotYetAvailable {
        verb: "restart-sidecars",
    }
    .into())
}
