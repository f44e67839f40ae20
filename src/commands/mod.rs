//! One file per verb: the wiring from parsed flags to the API layer, the
//! model and the output. The work itself lives in `collect`, `mesh`,
//! `render` and `api`; these files stay short.

pub mod completion;
pub mod gateway_move;
pub mod gateway_switch;
pub mod relabel;
pub mod restart_sidecars;
pub mod status;
pub mod tag;
pub mod version;
pub mod ztunnel_roll;

use crate::api::{ApiClient, ConnectOptions, WriteMode};
use crate::cli::{DryRun, GlobalArgs, WriteArgs};
use crate::confirm::{Decision, DryRunMode, WriteIntent};
use crate::error::{Error, ExitCode};
use crate::output::Output;
use crate::run::Interrupts;
use crate::selector::LabelSelector;
use crate::snapshot::Scope;

// The flags become the plain types of the layers below here, so that nothing
// under `commands` depends on how the command line is parsed.

impl From<&GlobalArgs> for ConnectOptions {
    fn from(args: &GlobalArgs) -> Self {
        ConnectOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            cluster: args.cluster.clone(),
            user: args.user.clone(),
            impersonate_user: args.as_user.clone(),
            impersonate_groups: args.as_groups.clone(),
            request_timeout: args.request_timeout.0,
            insecure_skip_tls_verify: args.insecure_skip_tls_verify,
        }
    }
}

impl From<DryRun> for DryRunMode {
    fn from(dry_run: DryRun) -> Self {
        match dry_run {
            DryRun::None => DryRunMode::None,
            DryRun::Client => DryRunMode::Client,
            DryRun::Server => DryRunMode::Server,
        }
    }
}

impl From<&WriteArgs> for WriteIntent {
    fn from(args: &WriteArgs) -> Self {
        WriteIntent {
            dry_run: args.dry_run.into(),
            yes: args.yes,
        }
    }
}

impl From<DryRun> for WriteMode {
    fn from(dry_run: DryRun) -> Self {
        match dry_run {
            DryRun::None => WriteMode::Write,
            DryRun::Client => WriteMode::ClientDryRun,
            DryRun::Server => WriteMode::ServerDryRun,
        }
    }
}

/// The API client for the global flags.
pub async fn connect(global: &GlobalArgs) -> anyhow::Result<ApiClient> {
    ApiClient::connect(&ConnectOptions::from(global)).await
}

/// The namespaces selected: `-A`, the `-n` list (duplicates removed, order
/// kept), or the context's namespace.
pub fn selected_scope(global: &GlobalArgs, context_namespace: &str) -> Scope {
    if global.all_namespaces {
        return Scope::All;
    }
    if global.namespaces.is_empty() {
        return Scope::Namespaces(vec![context_namespace.to_string()]);
    }
    let mut names: Vec<String> = Vec::new();
    for name in &global.namespaces {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Scope::Namespaces(names)
}

/// The `-l` selector, parsed; a malformed one is a usage error before any
/// request is sent.
pub fn label_selector(global: &GlobalArgs) -> anyhow::Result<Option<LabelSelector>> {
    let Some(text) = global.selector.as_deref() else {
        return Ok(None);
    };
    LabelSelector::parse(text).map(Some).map_err(|reason| {
        Error::InvalidSelector {
            selector: text.to_string(),
            reason,
        }
        .into()
    })
}

/// With `-o json|yaml`, a verb that runs restart-sidecars after itself
/// (`--restart`) still prints one document: `verb` prints into an Output
/// that holds its documents back, printed after it as a `List` of both
/// reports (or the one that exists). The verb's error wins over a printing
/// one.
pub async fn as_one_document(
    output: &Output,
    verb: impl AsyncFnOnce(&Output) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let collecting = output.collecting();
    let result = verb(&collecting).await;
    let printed = collecting.print_held();
    let code = result?;
    printed?;
    Ok(code)
}

/// Ctrl-C from here on, before the first write of an applied (or
/// server-rehearsed) plan, is counted, never fatal; a plan-only run keeps
/// the default.
pub fn interrupts_for(decision: Decision) -> Interrupts {
    match decision {
        Decision::Apply | Decision::RehearseOnServer => Interrupts::from_ctrl_c(),
        Decision::PlanOnly | Decision::NothingToDo => Interrupts::none(),
    }
}

/// Log the request counts at `-v`.
pub fn log_request_summary(api: &ApiClient) {
    tracing::info!("{}", api.stats().summary());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn global(args: &[&str]) -> GlobalArgs {
        let argv = std::iter::once("kubectl-mesh_upgrade")
            .chain(args.iter().copied())
            .chain(["status"]);
        Cli::parse_from(argv).global
    }

    #[test]
    fn without_flags_the_context_namespace_is_selected() {
        assert_eq!(
            selected_scope(&global(&[]), "team-a"),
            Scope::Namespaces(vec!["team-a".into()])
        );
    }

    #[test]
    fn a_namespace_list_keeps_its_order_without_duplicates() {
        assert_eq!(
            selected_scope(&global(&["-n", "shop,pay,shop"]), "default"),
            Scope::Namespaces(vec!["shop".into(), "pay".into()])
        );
        assert_eq!(selected_scope(&global(&["-A"]), "default"), Scope::All);
    }

    fn write_args(args: &[&str]) -> WriteArgs {
        let argv = ["kubectl-mesh_upgrade", "relabel", "--to", "x"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::parse_from(argv).command {
            crate::cli::Command::Relabel(relabel) => relabel.write,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_dry_run_flag_becomes_the_write_intent_and_the_write_mode() {
        let cases = [
            (&[][..], DryRunMode::None, WriteMode::Write),
            (
                &["--dry-run"][..],
                DryRunMode::Client,
                WriteMode::ClientDryRun,
            ),
            (
                &["--dry-run=server"][..],
                DryRunMode::Server,
                WriteMode::ServerDryRun,
            ),
        ];
        for (flags, intent, mode) in cases {
            let args = write_args(flags);
            assert_eq!(
                WriteIntent::from(&args),
                WriteIntent {
                    dry_run: intent,
                    yes: false
                },
                "{flags:?}"
            );
            assert_eq!(WriteMode::from(args.dry_run), mode, "{flags:?}");
        }
        assert!(WriteIntent::from(&write_args(&["--yes"])).yes);
    }

    #[test]
    fn the_global_flags_become_the_connect_options() {
        let options = ConnectOptions::from(&global(&[
            "--kubeconfig",
            "kc",
            "--context",
            "prod",
            "--as",
            "alice",
            "--as-group",
            "ops",
            "--request-timeout",
            "5s",
            "--insecure-skip-tls-verify",
        ]));
        assert_eq!(
            options.kubeconfig.as_deref(),
            Some(std::path::Path::new("kc"))
        );
        assert_eq!(options.context.as_deref(), Some("prod"));
        assert_eq!(options.impersonate_user.as_deref(), Some("alice"));
        assert_eq!(options.impersonate_groups, ["ops"]);
        assert_eq!(
            options.request_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert!(options.insecure_skip_tls_verify);
    }

    #[test]
    fn a_malformed_selector_is_a_usage_error() {
        let err = label_selector(&global(&["-l", "app=(x"])).unwrap_err();
        assert_eq!(
            crate::error::exit_code_of(&err),
            crate::error::ExitCode::Usage
        );
        assert!(
            err.to_string()
                .starts_with("invalid label selector \"app=(x\""),
            "{err}"
        );
        assert!(label_selector(&global(&["-l", "app=x"])).unwrap().is_some());
    }
}
