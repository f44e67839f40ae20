//! `kubectl mesh-upgrade completion <shell>` and the kubectl plugin
//! completion helper.
//!
//! Two ways in:
//! - Direct: `completion bash|zsh|fish` prints a script that completes
//!   `kubectl-mesh_upgrade` (the binary's own name) by calling the same
//!   hidden `__complete`; `completion powershell` prints clap's static
//!   script (verbs, flags and fixed values only).
//! - Through kubectl (1.26+): `kubectl mesh-upgrade <TAB>` makes kubectl run
//!   an executable named `kubectl_complete-mesh_upgrade` from PATH with the
//!   words typed so far, and read candidates one per line followed by a
//!   `:<directive>` line (cobra's protocol). `completion kubectl` prints that
//!   helper: a two-line script calling this binary's hidden `__complete`,
//!   answered from the same clap definition as the parser.
//!
//! `__complete` answers in two steps:
//!
//! ```text
//!  words ─► request (pure: which verb, which flag, what is typed) ─► Source
//!        ─► Fixed values, or one short lookup (kubeconfig / src/api, bounded
//!           by COMPLETION_TIMEOUT, no retries) ─► *_candidates (pure)
//!        ─► finish (prefix filter, `--flag=` and `a,b,` prefixes) ─► Output
//! ```
//!
//! A lookup that fails or runs out of time completes nothing: completion
//! output never carries an error, because the shell would offer it as a
//! candidate.

use std::path::PathBuf;
use std::time::Duration;

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{
    ApiClient, ConnectOptions, ListScope, ListSelector, RetryPolicy, kubeconfig_contexts,
};
use crate::cli::{Cli, CompletionArgs, CompletionTarget};
use crate::collect::{CollectOptions, ReadSet};
use crate::error::ExitCode;
use crate::mesh::control_plane::ControlPlane;
use crate::output::Output;
use crate::snapshot::gateway_api::{Gateway, GatewayClass, GatewayClassInfo, GatewayInfo};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Rollout, Scope, ServiceInfo};

/// The binary's file name: what a shell sees when it is run directly.
pub const BINARY_NAME: &str = "kubectl-mesh_upgrade";

/// The name kubectl looks for on PATH to complete this plugin's arguments.
pub const KUBECTL_HELPER_NAME: &str = "kubectl_complete-mesh_upgrade";

/// The bound of a completion's cluster lookup, each request and the whole:
/// a person waiting at a TAB gets nothing rather than a hang.
pub const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);

/// cobra's `ShellCompDirectiveNoFileComp`: do not fall back to file names.
const NO_FILE_COMPLETION: u8 = 4;
/// cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
const DEFAULT_DIRECTIVE: u8 = 0;

/// The keyword `relabel --to` takes for `istio-injection=enabled`.
const DEFAULT_INJECTION: &str = "default-injection";

/// The bash, zsh and fish scripts: each asks `__complete`, so the binary
/// run directly completes from the cluster as `kubectl mesh-upgrade` does.
const BASH_SCRIPT: &str = include_str!("completion/complete.bash");
const ZSH_SCRIPT: &str = include_str!("completion/complete.zsh");
const FISH_SCRIPT: &str = include_str!("completion/complete.fish");

/// Print the completion script.
pub fn run(args: &CompletionArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let script = match args.shell {
        CompletionTarget::Bash => BASH_SCRIPT.to_string(),
        CompletionTarget::Zsh => ZSH_SCRIPT.to_string(),
        CompletionTarget::Fish => FISH_SCRIPT.to_string(),
        // clap's script: verbs, flags and fixed values, no cluster lookups.
        CompletionTarget::Powershell => {
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(
                clap_complete::Shell::PowerShell,
                &mut command,
                BINARY_NAME,
                &mut script,
            );
            String::from_utf8_lossy(&script).into_owned()
        }
        CompletionTarget::Kubectl => kubectl_helper_script(),
    };
    output.print_raw(&script, false)?;
    Ok(ExitCode::Success)
}

/// The `kubectl_complete-mesh_upgrade` helper script.
pub fn kubectl_helper_script() -> String {
    format!(
        "#!/bin/sh\n# Install on PATH as {KUBECTL_HELPER_NAME} (executable) so that\n# `kubectl mesh-upgrade <TAB>` completes.\nexec {BINARY_NAME} __complete \"$@\"\n"
    )
}

/// Answer `__complete <words...>` (the last word is the one being typed)
/// and print cobra's format. Always succeeds: a failed lookup completes
/// nothing.
pub fn run_hidden_complete(words: &[String], output: &Output) -> ExitCode {
    let request = request(words);
    let values = match &request.source {
        Source::Fixed(values) => values.clone(),
        source => look_up_quickly(source, &request.typed),
    };
    let mut text = String::new();
    for candidate in finish(values, &request.partial, &request.prefix) {
        text.push_str(&candidate);
        text.push('\n');
    }
    text.push_str(&format!(":{}\n", request.directive));
    let _ = output.print_raw(&text, false);
    ExitCode::Success
}

/// Where the candidates for the word being typed come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Known without the cluster: verbs, flags, a flag's fixed values.
    Fixed(Vec<String>),
    /// The kubeconfig's contexts (read from files, no request).
    Contexts,
    /// The cluster's namespaces (`-n`).
    Namespaces,
    /// The control plane's revisions; with `tags` also its revision tags,
    /// with `default_injection` also `default-injection` (`relabel --to`).
    Revisions { tags: bool, default_injection: bool },
    /// `restart-sidecars` targets: the `KIND/NAME` of the namespace's
    /// workloads, of the `--kind` kinds when given, minus those typed.
    Workloads {
        kinds: Vec<String>,
        typed: Vec<String>,
    },
    /// `gateway-switch --service`: the namespace's Services.
    Services,
    /// `tag set <TAG>`, `tag remove <TAG>`: the revision tags.
    Tags,
    /// `gateway-switch --gateway`: the namespace's Gateway API Gateways of
    /// Istio's classes.
    Gateways,
    /// `ztunnel-roll` nodes: the cluster's Nodes, minus those typed.
    Nodes { typed: Vec<String> },
}

/// The flags typed so far that say where a lookup goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub as_user: Option<String>,
    pub as_groups: Vec<String>,
    pub insecure_skip_tls_verify: bool,
    /// The last namespace of `-n` (the context's when none).
    pub namespace: Option<String>,
    /// `gateway-switch --gateway` was typed: `--to` takes tags too.
    pub gateway: bool,
}

impl Typed {
    /// The connection a lookup uses: the typed flags, the completion bound.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            impersonate_user: self.as_user.clone(),
            impersonate_groups: self.as_groups.clone(),
            request_timeout: Some(COMPLETION_TIMEOUT),
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
        }
    }
}

/// What completing one word takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub source: Source,
    /// The part of the word a candidate must start with.
    pub partial: String,
    /// What is put back before each candidate: `--dry-run=` for a value
    /// typed after `=`, `shop,` for the next item of a list.
    pub prefix: String,
    /// cobra's directive.
    pub directive: u8,
    pub typed: Typed,
}

/// The request for the words typed after `kubectl mesh-upgrade`, the last
/// being the partial word. Pure: no request, no file read.
pub fn request(words: &[String]) -> Request {
    let mut root = Cli::command();
    root.build();
    let (before, word) = match words.split_last() {
        Some((word, before)) => (before, word.as_str()),
        None => (&[][..], ""),
    };

    // Walk the typed words: the verb, the flags' values, the positionals,
    // and whether the last one is a flag still waiting for its value.
    let mut current = &root;
    let mut pending: Option<&clap::Arg> = None;
    let mut typed = Typed::default();
    let mut kinds: Vec<String> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut only_positionals = false;
    for w in before {
        if let Some(arg) = pending.take() {
            record(arg, w, &mut typed, &mut kinds);
            continue;
        }
        if !only_positionals && w == "--" {
            only_positionals = true;
            continue;
        }
        if !only_positionals && w.len() > 1 && w.starts_with('-') {
            let flag = &w[1..];
            if let Some((name, value)) = flag.split_once('=') {
                if let Some(arg) = find_flag(current, name) {
                    record(arg, value, &mut typed, &mut kinds);
                }
            } else if let Some(arg) = find_flag(current, flag) {
                if needs_value(arg) {
                    pending = Some(arg);
                } else {
                    record(arg, "", &mut typed, &mut kinds);
                }
            } else if !flag.starts_with('-')
                && let Some((short, value)) = flag.split_at_checked(1)
                && let Some(arg) = find_flag(current, short)
                && needs_value(arg)
            {
                // `-nshop`
                record(arg, value, &mut typed, &mut kinds);
            }
            continue;
        }
        if positionals.is_empty()
            && let Some(sub) = current.find_subcommand(w)
        {
            current = sub;
            continue;
        }
        positionals.push(w.clone());
    }

    let mut request = Request {
        source: Source::Fixed(Vec::new()),
        partial: word.to_string(),
        prefix: String::new(),
        directive: NO_FILE_COMPLETION,
        typed,
    };
    if let Some(arg) = pending {
        value_request(&mut request, current, arg, word, "");
        return request;
    }
    if !only_positionals && word.starts_with('-') {
        if let Some((name, value)) = word[1..].split_once('=')
            && let Some(arg) = find_flag(current, name)
            && arg.get_action().takes_values()
        {
            let prefix = format!("-{name}=");
            value_request(&mut request, current, arg, value, &prefix);
            return request;
        }
        let mut flags = Vec::new();
        for arg in current.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                flags.push(format!("--{long}"));
            }
            if !word.starts_with("--")
                && let Some(short) = arg.get_short()
            {
                flags.push(format!("-{short}"));
            }
        }
        request.source = Source::Fixed(flags);
        return request;
    }
    if current.has_subcommands() {
        let verbs = current
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .collect();
        request.source = Source::Fixed(verbs);
        return request;
    }
    request.source = if current.get_name() == "restart-sidecars" {
        Source::Workloads {
            kinds,
            typed: positionals,
        }
    } else if matches!(current.get_name(), "set" | "remove") && positionals.is_empty() {
        Source::Tags
    } else if current.get_name() == "ztunnel-roll" {
        Source::Nodes { typed: positionals }
    } else {
        Source::Fixed(
            current
                .get_positionals()
                .flat_map(possible_values)
                .collect(),
        )
    };
    request
}

/// Note a typed flag's value where a lookup needs it.
fn record(arg: &clap::Arg, value: &str, typed: &mut Typed, kinds: &mut Vec<String>) {
    let value = value.to_string();
    match arg.get_id().as_str() {
        "kubeconfig" => typed.kubeconfig = Some(PathBuf::from(value)),
        "context" => typed.context = Some(value),
        "cluster" => typed.cluster = Some(value),
        "user" => typed.user = Some(value),
        "as_user" => typed.as_user = Some(value),
        "as_groups" => typed.as_groups.push(value),
        "insecure_skip_tls_verify" => typed.insecure_skip_tls_verify = true,
        "gateway" => typed.gateway = true,
        "namespaces" => {
            if let Some(last) = value.split(',').rfind(|n| !n.is_empty()) {
                typed.namespace = Some(last.to_string());
            }
        }
        "kinds" => kinds.extend(
            value
                .split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        ),
        _ => {}
    }
}

/// Complete the value of `arg` (of the verb `command`), typed as `value`
/// after `prefix` (`--flag=`, or nothing when it is its own word).
fn value_request(
    request: &mut Request,
    command: &clap::Command,
    arg: &clap::Arg,
    value: &str,
    prefix: &str,
) {
    // One item of a comma-separated list (`-n shop,pa`, `--kind a,b`).
    let (done, partial) = match value.rsplit_once(',') {
        Some((done, partial)) if arg.get_value_delimiter().is_some() => {
            (format!("{done},"), partial)
        }
        _ => (String::new(), value),
    };
    request.partial = partial.to_string();
    request.prefix = format!("{prefix}{done}");
    request.source = match (command.get_name(), arg.get_id().as_str()) {
        (_, "namespaces") => Source::Namespaces,
        (_, "context") => Source::Contexts,
        ("relabel", "to") => Source::Revisions {
            tags: true,
            default_injection: true,
        },
        ("relabel", "from") => Source::Revisions {
            tags: true,
            default_injection: false,
        },
        // The selector value is the gateways' `version` label: a revision;
        // a Gateway's istio.io/rev may name a tag too.
        ("gateway-switch", "to") => Source::Revisions {
            tags: request.typed.gateway,
            default_injection: false,
        },
        ("gateway-switch", "service") => Source::Services,
        // `tag set --revision`, `status --require-unused`: revisions, not tags.
        ("set", "revision") | ("status", "require_unused") => Source::Revisions {
            tags: false,
            default_injection: false,
        },
        ("gateway-switch", "gateway") => Source::Gateways,
        _ => Source::Fixed(possible_values(arg)),
    };
    if arg.get_value_hint() == clap::ValueHint::FilePath || arg.get_long() == Some("kubeconfig") {
        request.directive = DEFAULT_DIRECTIVE;
    }
}

/// The candidates that start with `partial`, each with `prefix` before it.
pub fn finish(candidates: Vec<String>, partial: &str, prefix: &str) -> Vec<String> {
    candidates
        .into_iter()
        .filter(|c| c.starts_with(partial))
        .map(|c| format!("{prefix}{c}"))
        .collect()
}

/// Contexts, in the kubeconfig's order, each once.
pub fn context_candidates(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Namespace names, sorted.
pub fn namespace_candidates(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

/// The revisions (and tags, and `default-injection`) a verb may target,
/// sorted, each once.
pub fn revision_candidates(
    control_plane: &ControlPlane,
    tags: bool,
    default_injection: bool,
) -> Vec<String> {
    let mut out: Vec<String> = control_plane
        .revisions
        .iter()
        .map(|r| r.revision.clone())
        .collect();
    if tags {
        out.extend(control_plane.tags.iter().map(|t| t.name.clone()));
    }
    out.sort();
    out.dedup();
    if default_injection {
        out.push(DEFAULT_INJECTION.to_string());
    }
    out
}

/// The revision tags, sorted.
pub fn tag_candidates(control_plane: &ControlPlane) -> Vec<String> {
    let mut out: Vec<String> = control_plane.tags.iter().map(|t| t.name.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// `KIND/NAME` for each workload (`kind` as `--kind` spells it), only of
/// `kinds` when any is given, minus the targets already typed.
pub fn workload_candidates(
    workloads: &[(&str, String)],
    kinds: &[String],
    typed: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = workloads
        .iter()
        .filter(|(kind, _)| kinds.is_empty() || kinds.iter().any(|k| k == kind))
        .map(|(kind, name)| format!("{kind}/{name}"))
        .filter(|target| !typed.contains(target))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The Services `gateway-switch --service` may name: the LoadBalancer and
/// NodePort ones (the verb switches those), or every Service when the
/// namespace has none; sorted.
pub fn service_candidates(services: &[ServiceInfo]) -> Vec<String> {
    let external: Vec<&ServiceInfo> = services.iter().filter(|s| s.is_external()).collect();
    let chosen: Vec<&ServiceInfo> = if external.is_empty() {
        services.iter().collect()
    } else {
        external
    };
    let mut out: Vec<String> = chosen.iter().map(|s| s.name.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// The Gateways `gateway-switch --gateway` may name: those of Istio's
/// classes (the GatewayClass's controller, else the builtin class names); sorted.
pub fn gateway_candidates(gateways: &[GatewayInfo], classes: &[GatewayClassInfo]) -> Vec<String> {
    let mut snapshot = crate::snapshot::ClusterSnapshot::new(
        DEFAULT_CONTROL_PLANE_NAMESPACE,
        Scope::Namespaces(Vec::new()),
    );
    snapshot.gateway_api.classes = classes.to_vec();
    let mut out: Vec<String> = gateways
        .iter()
        .filter(|g| crate::mesh::gateway_api::gateway_kind(&snapshot, &g.class).is_some())
        .map(|g| g.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Node names, sorted, minus the nodes already typed.
pub fn node_candidates(mut names: Vec<String>, typed: &[String]) -> Vec<String> {
    names.retain(|n| !typed.contains(n));
    names.sort();
    names.dedup();
    names
}

/// [`look_up`] on a runtime of its own, bounded by [`COMPLETION_TIMEOUT`];
/// nothing when it fails or runs out of time.
fn look_up_quickly(source: &Source, typed: &Typed) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let found = runtime.block_on(crate::run::within(
        COMPLETION_TIMEOUT,
        look_up(source, typed),
    ));
    // Don't wait for a connection still being set up.
    runtime.shutdown_background();
    match found {
        Some(Ok(values)) => values,
        _ => Vec::new(),
    }
}

/// The candidates of a source: contexts from the kubeconfig, the rest with
/// as few LISTs as they need, through the API layer without retries.
pub async fn look_up(source: &Source, typed: &Typed) -> anyhow::Result<Vec<String>> {
    if let Source::Fixed(values) = source {
        return Ok(values.clone());
    }
    if let Source::Contexts = source {
        return Ok(context_candidates(kubeconfig_contexts(
            typed.kubeconfig.as_deref(),
        )?));
    }
    let api = ApiClient::connect(&typed.connect_options())
        .await?
        .with_retry_policy(RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        });
    let all = ListSelector::everything();
    let namespace = ListScope::Namespace(
        typed
            .namespace
            .clone()
            .unwrap_or_else(|| api.default_namespace().to_string()),
    );
    let names = |meta: &ObjectMeta| meta.name.clone();
    Ok(match source {
        Source::Fixed(_) | Source::Contexts => Vec::new(),
        Source::Namespaces => namespace_candidates(
            api.list_all::<Namespace, _>(&ListScope::All, &all, |n| names(&n.metadata))
                .await?,
        ),
        Source::Tags => {
            let options = CollectOptions {
                scope: Scope::Namespaces(Vec::new()),
                control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
                selector: None,
            };
            let collected = crate::collect::read(&api, &options, ReadSet::ControlPlane).await?;
            tag_candidates(&ControlPlane::from_snapshot(&collected.snapshot))
        }
        Source::Revisions {
            tags,
            default_injection,
        } => {
            let options = CollectOptions {
                scope: Scope::Namespaces(Vec::new()),
                control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
                selector: None,
            };
            let collected = crate::collect::read(&api, &options, ReadSet::ControlPlane).await?;
            revision_candidates(
                &ControlPlane::from_snapshot(&collected.snapshot),
                *tags,
                *default_injection,
            )
        }
        Source::Workloads {
            kinds,
            typed: targets,
        } => {
            let (deployments, stateful_sets, daemon_sets, rollouts) = tokio::join!(
                api.list_all::<Deployment, _>(&namespace, &all, |d| names(&d.metadata)),
                api.list_all::<StatefulSet, _>(&namespace, &all, |s| names(&s.metadata)),
                api.list_all::<DaemonSet, _>(&namespace, &all, |d| names(&d.metadata)),
                api.list_all::<Rollout, _>(&namespace, &all, |r| names(&r.metadata)),
            );
            // Without Argo Rollouts (404) or the right to list them: none.
            let rollouts = rollouts.unwrap_or_default();
            let workloads: Vec<(&str, String)> = deployments?
                .into_iter()
                .map(|n| ("deployment", n))
                .chain(stateful_sets?.into_iter().map(|n| ("statefulset", n)))
                .chain(daemon_sets?.into_iter().map(|n| ("daemonset", n)))
                .chain(rollouts.into_iter().map(|n| ("rollout", n)))
                .collect();
            workload_candidates(&workloads, kinds, targets)
        }
        Source::Services => service_candidates(
            &api.list_all::<Service, _>(&namespace, &all, |s| Some(ServiceInfo::from(&s)))
                .await?,
        ),
        Source::Gateways => {
            let (gateways, classes) = tokio::join!(
                api.list_all::<Gateway, _>(&namespace, &all, |g| Some(GatewayInfo::from(&g))),
                api.list_all::<GatewayClass, _>(&ListScope::All, &all, |c| {
                    Some(GatewayClassInfo::from(&c))
                }),
            );
            gateway_candidates(&gateways?, &classes.unwrap_or_default())
        }
        Source::Nodes { typed: nodes } => node_candidates(
            api.list_all::<Node, _>(&ListScope::All, &all, |n| names(&n.metadata))
                .await?,
            nodes,
        ),
    })
}

fn find_flag<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a clap::Arg> {
    match flag.strip_prefix('-') {
        Some(long) => command.get_arguments().find(|a| {
            a.get_long() == Some(long)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long))
        }),
        // `-n` waits for a value; `-nshop` already has it.
        None if flag.chars().count() == 1 => {
            let short = flag.chars().next()?;
            command
                .get_arguments()
                .find(|a| a.get_short() == Some(short))
        }
        None => None,
    }
}

/// Whether the flag consumes the next word (an optional value, like `-v`'s,
/// does not).
fn needs_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() > 0) && arg.get_action().takes_values()
}

fn possible_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    /// The candidates and directive of words completed without the cluster.
    fn complete(text: &str) -> (Vec<String>, u8) {
        let request = request(&words(text));
        match request.source {
            Source::Fixed(values) => (
                finish(values, &request.partial, &request.prefix),
                request.directive,
            ),
            other => panic!("{text:?} needs a lookup: {other:?}"),
        }
    }

    /// Where the candidates of `text` come from, and the partial word.
    fn source(text: &str) -> (Source, String, String) {
        let request = request(&words(text));
        (request.source, request.partial, request.prefix)
    }

    #[test]
    fn an_empty_word_completes_the_verbs() {
        let (candidates, directive) = complete("");
        assert_eq!(
            candidates,
            [
                "status",
                "restart-sidecars",
                "relabel",
                "gateway-switch",
                "tag",
                "ztunnel-roll",
                "version",
                "completion"
            ]
        );
        assert_eq!(directive, NO_FILE_COMPLETION);
        assert_eq!(complete("re").0, ["restart-sidecars", "relabel"]);
    }

    #[test]
    fn flags_of_the_verb_include_the_global_ones() {
        let (candidates, _) = complete("status --ex");
        assert_eq!(candidates, ["--exit-code"]);
        let (candidates, _) = complete("status --all-n");
        assert_eq!(candidates, ["--all-namespaces"]);
    }

    #[test]
    fn the_output_flag_completes_its_formats() {
        let (candidates, directive) = complete("status -o ");
        assert_eq!(candidates, ["table", "wide", "json", "yaml"]);
        assert_eq!(directive, NO_FILE_COMPLETION);
        assert_eq!(complete("status -n shop --output j").0, ["json"]);
    }

    #[test]
    fn the_kubeconfig_flag_lets_the_shell_complete_files() {
        let (_, directive) = complete("status --kubeconfig ");
        assert_eq!(directive, DEFAULT_DIRECTIVE);
    }

    #[test]
    fn completion_completes_its_shells() {
        assert_eq!(
            complete("completion ").0,
            ["bash", "zsh", "fish", "powershell", "kubectl"]
        );
    }

    #[test]
    fn dry_run_completes_its_modes_after_the_equals_sign() {
        assert_eq!(
            complete("restart-sidecars --dry-run=").0,
            ["--dry-run=none", "--dry-run=client", "--dry-run=server"]
        );
        assert_eq!(complete("relabel --dry-run=s").0, ["--dry-run=server"]);
        assert_eq!(complete("status -o=j").0, ["-o=json"]);
    }

    #[test]
    fn ztunnel_roll_completes_its_flags_and_nodes_not_yet_typed() {
        let (flags, _) = complete("ztunnel-roll --n");
        assert_eq!(
            flags,
            ["--no-drain", "--nodes-at-once", "--namespace", "--no-color"]
        );
        assert!(
            complete("ztunnel-roll --")
                .0
                .contains(&"--timeout".to_string())
        );
        assert!(complete("ztunnel-roll --dry-run=s").0 == ["--dry-run=server"]);
        assert_eq!(
            node_candidates(
                vec!["n2".into(), "n1".into(), "n3".into()],
                &["n2".to_string()]
            ),
            ["n1", "n3"]
        );
    }

    #[test]
    fn kind_completes_each_item_of_its_list() {
        assert_eq!(
            complete("restart-sidecars --kind ").0,
            ["deployment", "statefulset", "daemonset", "rollout"]
        );
        assert_eq!(
            complete("restart-sidecars --kind deployment,st").0,
            ["deployment,statefulset"]
        );
    }

    #[test]
    fn each_flag_that_names_a_cluster_object_asks_for_a_lookup() {
        let revisions = |tags, default_injection| Source::Revisions {
            tags,
            default_injection,
        };
        let cases = [
            ("restart-sidecars -n ", Source::Namespaces),
            ("-n ", Source::Namespaces),
            ("status --namespace=sh", Source::Namespaces),
            ("status --context ", Source::Contexts),
            ("relabel --to ", revisions(true, true)),
            ("relabel -A --from 1-2", revisions(true, false)),
            ("gateway-switch --to ", revisions(false, false)),
            (
                "gateway-switch -n istio-gateways --service ",
                Source::Services,
            ),
            ("tag set prod-stable --revision ", revisions(false, false)),
            ("tag set --undo ", Source::Tags),
            ("tag set prod-", Source::Tags),
            ("tag remove ", Source::Tags),
            (
                "status --exit-code --require-unused ",
                revisions(false, false),
            ),
            ("gateway-switch -n edge --gateway ", Source::Gateways),
            (
                "gateway-switch --gateway public --to ",
                revisions(true, false),
            ),
            (
                "ztunnel-roll --nodes-at-once 2 sim-node-1 ",
                Source::Nodes {
                    typed: vec!["sim-node-1".into()],
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(source(text).0, expected, "{text:?}");
        }
        assert_eq!(
            source("status --namespace=sh"),
            (Source::Namespaces, "sh".into(), "--namespace=".into())
        );
        assert_eq!(
            source("status -n shop,pa"),
            (Source::Namespaces, "pa".into(), "shop,".into())
        );
    }

    #[test]
    fn restart_targets_are_the_workloads_of_the_typed_kinds_minus_those_typed() {
        let request = request(&words(
            "restart-sidecars -n shop --kind deployment deployment/cart ",
        ));
        assert_eq!(
            request.source,
            Source::Workloads {
                kinds: vec!["deployment".into()],
                typed: vec!["deployment/cart".into()],
            }
        );
        assert_eq!(request.typed.namespace.as_deref(), Some("shop"));
        let workloads = [
            ("deployment", "cart".to_string()),
            ("deployment", "api".to_string()),
            ("statefulset", "db".to_string()),
            ("daemonset", "agent".to_string()),
        ];
        assert_eq!(
            workload_candidates(&workloads, &[], &[]),
            [
                "daemonset/agent",
                "deployment/api",
                "deployment/cart",
                "statefulset/db"
            ]
        );
        assert_eq!(
            workload_candidates(
                &workloads,
                &["deployment".into()],
                &["deployment/cart".into()]
            ),
            ["deployment/api"]
        );
    }

    #[test]
    fn the_typed_connection_flags_direct_the_lookup() {
        let request = request(&words(
            "--kubeconfig kc --context prod -nshop,pay --as alice --as-group ops --insecure-skip-tls-verify status -n ",
        ));
        let options = request.typed.connect_options();
        assert_eq!(
            options.kubeconfig.as_deref(),
            Some(std::path::Path::new("kc"))
        );
        assert_eq!(options.context.as_deref(), Some("prod"));
        assert_eq!(options.impersonate_user.as_deref(), Some("alice"));
        assert_eq!(options.impersonate_groups, ["ops"]);
        assert!(options.insecure_skip_tls_verify);
        assert_eq!(options.request_timeout, Some(COMPLETION_TIMEOUT));
        assert_eq!(request.typed.namespace.as_deref(), Some("pay"));
    }

    #[test]
    fn revisions_and_tags_come_from_the_control_plane() {
        use crate::mesh::fixtures::ClusterFixture;
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .revision("1-21-2", "1.21.2")
            .tag("prod-stable", "1-21-2")
            .tag("prod-canary", "1-22-3")
            .build();
        let control_plane = ControlPlane::from_snapshot(&snapshot);
        assert_eq!(
            revision_candidates(&control_plane, true, true),
            [
                "1-21-2",
                "1-22-3",
                "prod-canary",
                "prod-stable",
                "default-injection"
            ]
        );
        assert_eq!(
            revision_candidates(&control_plane, false, false),
            ["1-21-2", "1-22-3"]
        );
    }

    #[test]
    fn tag_completes_its_subcommands_and_offers_tags_once() {
        assert_eq!(complete("tag ").0, ["list", "set", "remove"]);
        let (candidates, _) = complete("tag set prod-stable --re");
        assert_eq!(candidates, ["--revision", "--restart", "--request-timeout"]);
        // After the tag, nothing more is a tag.
        assert_eq!(source("tag set prod-stable ").0, Source::Fixed(Vec::new()));
        use crate::mesh::fixtures::canary_fixture;
        let control_plane = ControlPlane::from_snapshot(&canary_fixture().build());
        assert_eq!(
            tag_candidates(&control_plane),
            ["default", "prod-canary", "prod-stable"]
        );
    }

    #[test]
    fn services_are_the_external_ones_when_there_are_any() {
        use crate::mesh::fixtures::ClusterFixture;
        let snapshot = ClusterFixture::new()
            .service("gw", "ingress", "LoadBalancer", &[], &[])
            .service("gw", "ingress-1-22-3", "ClusterIP", &[], &[])
            .service("gw", "edge", "NodePort", &[], &[])
            .build();
        assert_eq!(service_candidates(&snapshot.services), ["edge", "ingress"]);
        let internal: Vec<ServiceInfo> = snapshot
            .services
            .into_iter()
            .filter(|s| s.type_ == "ClusterIP")
            .collect();
        assert_eq!(service_candidates(&internal), ["ingress-1-22-3"]);
    }

    #[test]
    fn contexts_keep_the_kubeconfig_order_and_namespaces_are_sorted() {
        assert_eq!(
            context_candidates(vec!["b".into(), "a".into(), "b".into()]),
            ["b", "a"]
        );
        assert_eq!(
            namespace_candidates(vec!["shop".into(), "pay".into()]),
            ["pay", "shop"]
        );
        assert_eq!(
            finish(vec!["pay".into(), "shop".into()], "s", "pay,"),
            ["pay,shop"]
        );
    }

    #[test]
    fn the_kubectl_helper_calls_the_binary() {
        let script = kubectl_helper_script();
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.ends_with("exec kubectl-mesh_upgrade __complete \"$@\"\n"));
    }
}
