//! `kubectl mesh-upgrade`: upgrade a service mesh's data plane without downtime.
//!
//! Data flows one way: read cluster state (`collect`, through `api`) → build
//! a model (`snapshot`, `mesh`, pure) → render it (`render`, `output`). Each
//! verb's wiring is one file under `commands`.

pub mod api;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod confirm;
pub mod duration;
pub mod error;
pub mod logging;
pub mod mesh;
pub mod output;
pub mod render;
pub mod run;
pub mod selector;
pub mod snapshot;
pub mod wrap;
pub mod write;

use cli::{Cli, Command};
use error::ExitCode;
use output::Output;

/// Run one parsed command line and return the exit code for a normal end;
/// errors carry their own (see [`error::exit_code_of`]).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let output = Output::new(cli.global.output, cli.global.no_color);
    let global = &cli.global;
    match &cli.command {
        Command::Status(args) => commands::status::run(global, args, &output).await,
        Command::RestartSidecars(args) => {
            commands::restart_sidecars::run(global, args, &output).await
        }
        Command::Relabel(args) => commands::relabel::run(global, args, &output).await,
        Command::GatewaySwitch(args) => commands::gateway_switch::run(global, args, &output).await,
        Command::Version => commands::version::run(global, &output).await,
        Command::Completion(args) => commands::completion::run(args),
    }
}
