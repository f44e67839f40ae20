//! `kubectl mesh-upgrade gateway-switch`: declared with its flags; the verb itself
//! is not implemented in this version and says so with a non-zero exit.

use crate::cli::{GatewaySwitchArgs, GlobalArgs};
use crate::error::{Error, ExitCode};
use crate::output::Output;

/// Refuse: the verb is not available yet.
pub async fn run(
    _global: &GlobalArgs,
    _args: &GatewaySwitchArgs,
    _output: &Output,
) -> anyhow::Result<ExitCode> {
    Err(Error::NotYetAvailable {
        verb: "gateway-switch",
    }
    .into())
}
