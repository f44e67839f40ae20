//! `kubectl mesh-upgrade relabel`: declared with its flags; the verb itself
//! is not implemented in this version and says so with a non-zero exit.

use crate::cli::{GlobalArgs, RelabelArgs};
use crate::error::{Error, ExitCode};
use crate::output::Output;

/// Refuse: the verb is not available yet.
pub async fn run(
    _global: &GlobalArgs,
    _args: &RelabelArgs,
    _output: &Output,
) -> anyhow::Result<ExitCode> {
    Err(Error::NotYetAvailable { verb: "relabel" }.into())
}
