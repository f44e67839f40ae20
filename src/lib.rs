//! `kubectl mesh-upgrade`: upgrade a service mesh's data plane without downtime.
//!
//! Data flows one way: read cluster state (`collect`, through `api`) → build
//! a model (`snapshot`, `mesh`, pure) → render it (`render`, pure text) →
//! print it (`output`, the one object that writes). Each verb's wiring is
//! one file under `commands`.

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
pub mod protobuf;
pub mod render;
pub mod run;
pub mod selector;
pub mod snapshot;
pub mod wrap;
pub mod write;

use cli::{Cli, Command};
use error::ExitCode;
use output::Output;

/// Run one parsed command line with the process's stdout and stderr.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let output = Output::from_env(cli.global.output.into(), cli.global.no_color);
    run_with(&cli, &output).await
}

/// Run one parsed command line, printing through `output`, and return the
/// exit code for a normal end; errors carry their own (see
/// [`error::exit_code_of`]) and are the caller's to print
/// ([`Output::error`]).
pub async fn run_with(cli: &Cli, output: &Output) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    match &cli.command {
        Command::Status(args) => commands::status::run(global, args, output).await,
        Command::RestartSidecars(args) => {
            commands::restart_sidecars::run(global, args, output).await
        }
        Command::Relabel(args) => commands::relabel::run(global, args, output).await,
        Command::GatewaySwitch(args) => commands::gateway_switch::run(global, args, output).await,
        Command::Tag(args) => commands::tag::run(global, args, output).await,
        Command::ZtunnelRoll(args) => commands::ztunnel_roll::run(global, args, output).await,
        Command::Version => commands::version::run(global, output).await,
        Command::Completion(args) => commands::completion::run(args, output),
    }
}
