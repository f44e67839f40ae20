//! The `kubectl-mesh_upgrade` binary: parse, set up logging, run, and turn
//! the outcome into one line on stderr and an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use kubectl_mesh_upgrade::cli::{Cli, normalize_verbosity_args};
use kubectl_mesh_upgrade::commands::completion;
use kubectl_mesh_upgrade::error::{self, exit_code_of, is_broken_pipe};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // kubectl's plugin completion helper calls `__complete <words...>`.
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return completion::run_hidden_complete(&words).into();
    }
    let cli = match Cli::try_parse_from(normalize_verbosity_args(args)) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    kubectl_mesh_upgrade::logging::init(cli.global.verbosity());

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return report(&anyhow::Error::new(err).context("starting the async runtime")),
    };
    // A panic is a bug; say so in one line (the hook) and exit 1, not 101.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error{location}: {message} (this is a bug in kubectl mesh-upgrade; please report it)"
        );
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(kubectl_mesh_upgrade::run(cli))
    }));
    // Don't wait for lingering connection tasks.
    runtime.shutdown_background();
    match outcome {
        Ok(Ok(code)) => code.into(),
        Ok(Err(err)) => report(&err),
        Err(_) => error::ExitCode::Failure.into(),
    }
}

/// Print the error chain once and pick the exit code; a closed stdout ends quietly.
fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return error::ExitCode::Success.into();
    }
    let prefix = if std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    let _ = writeln!(std::io::stderr(), "{prefix} {err:#}");
    exit_code_of(err).into()
}
