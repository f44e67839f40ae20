//! The `kubectl-mesh_upgrade` binary: parse, set up logging, run, and turn
//! the outcome into one line on stderr and an exit code. Every line goes
//! through the one [`Output`]; only the panic hook writes to stderr itself,
//! because a panic may have happened while the output was in use.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use kubectl_mesh_upgrade::cli::{Cli, normalize_verbosity_args};
use kubectl_mesh_upgrade::commands::completion;
use kubectl_mesh_upgrade::error::{self, exit_code_of, is_broken_pipe};
use kubectl_mesh_upgrade::output::{Format, Output};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // kubectl's plugin completion helper calls `__complete <words...>`.
    if args.get(1).is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let output = Output::from_env(Format::Table, true);
        return completion::run_hidden_complete(&words, &output).into();
    }
    let cli = match Cli::try_parse_from(normalize_verbosity_args(args.iter().cloned())) {
        Ok(cli) => cli,
        Err(err) => return usage(&err, args.iter().any(|a| a == "--no-color")),
    };
    let output = Output::from_env(cli.global.output.into(), cli.global.no_color);
    kubectl_mesh_upgrade::logging::init(cli.global.verbosity(), output.log_writer());

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return report(
                &output,
                &anyhow::Error::new(err).context("starting the async runtime"),
            );
        }
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
        runtime.block_on(kubectl_mesh_upgrade::run_with(&cli, &output))
    }));
    // Don't wait for lingering connection tasks.
    runtime.shutdown_background();
    match outcome {
        Ok(Ok(code)) => code.into(),
        Ok(Err(err)) => report(&output, &err),
        Err(_) => error::ExitCode::Failure.into(),
    }
}

/// clap's answer when the command line does not parse: help and version on
/// stdout with 0, usage errors on stderr with 2; coloured only where the
/// output's settings allow.
fn usage(err: &clap::Error, no_color_flag: bool) -> ExitCode {
    let output = Output::from_env(Format::Table, no_color_flag);
    let to_stderr = err.use_stderr();
    let settings = output.settings();
    let color = if to_stderr {
        settings.color_stderr
    } else {
        settings.color_stdout
    };
    let rendered = err.render();
    let text = if color {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    let _ = output.print_raw(&text, to_stderr);
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// Print the error chain once and pick the exit code; a closed stdout ends quietly.
fn report(output: &Output, err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return error::ExitCode::Success.into();
    }
    output.error(err);
    exit_code_of(err).into()
}
