//! The command line: every verb, its flags and its help text.
//!
//! Users type `kubectl mesh-upgrade <verb>`, so the parser calls itself that
//! everywhere (help, usage, errors), not by the binary's file name.
//!
//! The flags every verb shares live in one struct, [`GlobalArgs`], with
//! kubectl's names and meanings, and are `global` so they may come before or
//! after the verb (`kubectl mesh-upgrade -n shop status` and
//! `kubectl mesh-upgrade status -n shop` are the same). The parser only turns
//! text into values; checks that need the cluster (does the namespace exist?)
//! happen later, in the commands.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// The heading of the flags every verb shares in `--help`.
pub const KUBECTL_OPTIONS: &str = "Kubectl options";

/// The exit codes, shown in `--help` and documented in the README. Keep in
/// sync with [`crate::error::ExitCode`]. A macro so `concat!` can use it.
macro_rules! exit_codes_help {
    () => {
        "Exit codes:
  0    success
  1    error talking to the cluster, or an unexpected failure
  2    invalid usage or input
  3    status --exit-code: something is stale or broken; --require-unused: the revision is in use
  4    a rollout or verification failed
  5    refused (a precheck failed, no terminal and no --yes, or the answer was no)
  130  interrupted"
    };
}

const TOP_EXAMPLES: &str = concat!(
    "Examples:
  # Where the upgrade stands in every namespace
  kubectl mesh-upgrade status -A

  # Restart only the workloads whose sidecars run an old proxy, in two namespaces
  kubectl mesh-upgrade restart-sidecars -n shop,pay

  # Move a namespace to the canary revision, then restart its workloads
  kubectl mesh-upgrade relabel -n shop --to 1-22-3 --restart

  # Move every namespace on the prod-stable tag to the new revision, and restart
  kubectl mesh-upgrade tag set prod-stable --revision 1-22-3 --restart

",
    exit_codes_help!()
);

/// Upgrade an Istio data plane without downtime.
///
/// `status` shows which revision every namespace and workload runs and
/// should run; `relabel`, `tag`, `restart-sidecars` and `gateway-switch`
/// move them, checked and reversible; `ztunnel-roll` upgrades ambient mode's
/// ztunnel node by node.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl mesh-upgrade",
    bin_name = "kubectl mesh-upgrade",
    version,
    propagate_version = true,
    args_override_self = true,
    after_help = TOP_EXAMPLES,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every verb. They mean what they mean to kubectl, and
/// `--help` lists them under their own heading, after the verb's own flags
/// (as kubectl keeps its global flags apart in `kubectl options`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = KUBECTL_OPTIONS)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, merged like kubectl
    /// merges it, else ~/.kube/config)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current-context)
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The kubeconfig cluster to use instead of the context's
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The kubeconfig user to use instead of the context's
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// Namespaces to act on, comma-separated or repeated (default: the
    /// context's namespace)
    #[arg(
        short = 'n',
        long = "namespace",
        global = true,
        value_delimiter = ',',
        value_name = "NS[,NS...]",
        value_parser = parse_namespace_name,
    )]
    pub namespaces: Vec<String>,

    /// Act on every namespace
    #[arg(short = 'A', long, global = true, conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// Label selector for workloads and pods, or for relabel namespaces
    /// (e.g. app=cart,tier!=cache)
    #[arg(short = 'l', long, global = true, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// How long to wait for one API request: 30s, 1m, 1m30s, or 0 for no limit
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "0",
        value_parser = parse_request_timeout,
    )]
    pub request_timeout: RequestTimeout,

    /// Username to impersonate for the operation
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,

    /// Group to impersonate for the operation (repeat for several)
    #[arg(long = "as-group", global = true, value_name = "GROUP", action = ArgAction::Append)]
    pub as_groups: Vec<String>,

    /// Output format
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value_t = OutputFormat::Table,
    )]
    pub output: OutputFormat,

    /// Log detail on stderr: -v (requests summarised), -vv, or -v=N up to 9.
    /// Credentials are never logged at any level.
    #[arg(
        short = 'v',
        long = "verbose",
        alias = "v",
        global = true,
        num_args = 0..=1,
        default_missing_value = "1",
        value_name = "N",
        value_parser = clap::value_parser!(u8).range(0..=10),
    )]
    pub verbose: Option<u8>,

    /// Plain text without colours (also when NO_COLOR is set or the output is
    /// not a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Do not verify the API server's TLS certificate (insecure)
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,
}

impl GlobalArgs {
    /// The verbosity level: 0 when `-v` was not given.
    pub fn verbosity(&self) -> u8 {
        self.verbose.unwrap_or(0)
    }
}

/// The output formats every verb understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table (at a terminal, free text wraps to its width; names never do)
    Table,
    /// The table with more columns
    Wide,
    /// One JSON document on stdout
    Json,
    /// One YAML document on stdout
    Yaml,
}

impl OutputFormat {
    /// JSON and YAML carry a machine-readable document on stdout, so human
    /// text (warnings, progress, prompts) must go to stderr.
    pub fn is_machine_readable(self) -> bool {
        matches!(self, OutputFormat::Json | OutputFormat::Yaml)
    }
}

impl From<OutputFormat> for crate::output::Format {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => crate::output::Format::Table,
            OutputFormat::Wide => crate::output::Format::Wide,
            OutputFormat::Json => crate::output::Format::Json,
            OutputFormat::Yaml => crate::output::Format::Yaml,
        }
    }
}

/// kubectl's `--request-timeout`: a bound for each API request, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestTimeout(pub Option<Duration>);

impl fmt::Display for RequestTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("0"),
            Some(d) => write!(f, "{}ms", d.as_millis()),
        }
    }
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show where the upgrade stands: revisions, namespaces, workloads, gateways,
    /// ztunnel and istio-cni
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),

    /// Restart the workloads whose sidecars run a proxy other than the one
    /// they should run now
    #[command(after_help = RESTART_EXAMPLES)]
    RestartSidecars(RestartSidecarsArgs),

    /// Move namespaces to another revision or tag, with a way back
    ///
    /// Sets `istio.io/rev=<target>` and removes `istio-injection` (or, with
    /// `--to default-injection`, sets `istio-injection=enabled` and removes
    /// `istio.io/rev`); no other label is touched. The labels a namespace had
    /// before its first relabel are kept in its annotation
    /// `mesh-upgrade.io/previous-injection-labels`, and `--undo` restores
    /// them. Relabelling changes what new pods get: running pods keep their
    /// proxy until restarted (`--restart`, or `restart-sidecars`).
    ///
    /// Namespaces: `-n a,b`, the context's namespace by default, `-l` (for
    /// relabel, a selector on NAMESPACE labels), or `-A --from <revision>`.
    /// kube-system, kube-public, kube-node-lease, istio-system, ambient
    /// namespaces and those with injection disabled are left alone unless
    /// named with `-n` and `--force`.
    #[command(after_help = RELABEL_EXAMPLES)]
    Relabel(RelabelArgs),

    /// Point a LoadBalancer Service at another revision's gateway, checked and
    /// rolled back automatically if endpoints do not converge
    #[command(after_help = GATEWAY_SWITCH_EXAMPLES)]
    GatewaySwitch(GatewaySwitchArgs),

    /// List, create, move and remove revision tags, with a plan first
    ///
    /// A revision tag is an alias namespaces select with
    /// `istio.io/rev=<tag>`: moving it moves every such namespace's new pods
    /// to another revision at once. `tag set` writes the objects `istioctl
    /// tag set` of the target revision's Istio version writes (the webhook
    /// configuration `istio-revision-tag-<tag>`, and from Istio 1.28 the
    /// Service `istiod-revision-tag-<tag>`), records where the tag pointed
    /// for `--undo`, and shows first which namespaces' new pods change
    /// revision and which workloads become stale.
    #[command(after_help = TAG_EXAMPLES, subcommand_required = true)]
    Tag(TagArgs),
    /// Upgrade ambient mode's ztunnel one node at a time: cordon, evict the
    /// pods it carries, replace it, wait until the new one is Ready, uncordon
    ///
    /// The ztunnel DaemonSet must use `updateStrategy: OnDelete` and already
    /// carry the new version in its template (`helm upgrade ztunnel ...`):
    /// this verb replaces each node's ztunnel with what the template says.
    /// `-l` selects nodes by their labels here.
    #[command(after_help = ZTUNNEL_ROLL_EXAMPLES)]
    ZtunnelRoll(ZtunnelRollArgs),

    /// Print the plugin's version, and the cluster's when it answers
    #[command(after_help = VERSION_EXAMPLES)]
    Version,

    /// Print a shell completion script
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion(CompletionArgs),
}

const STATUS_EXAMPLES: &str = concat!(
    "Examples:
  # Every namespace, as a table
  kubectl mesh-upgrade status -A

  # Two namespaces, more columns
  kubectl mesh-upgrade status -n shop,pay -o wide

  # The stable JSON document (apiVersion mesh-upgrade/v1, kind Status)
  kubectl mesh-upgrade status -A -o json

  # Gate a CI pipeline: exit 3 when something is stale or broken
  kubectl mesh-upgrade status -A --exit-code

  # Gate the old revision's removal: exit 0 only when nothing uses 1-21-2 any more
  kubectl mesh-upgrade status --exit-code --require-unused 1-21-2 && istioctl uninstall --revision 1-21-2

  # Follow an upgrade live: the screen is redrawn as rollouts progress (Ctrl-C stops)
  kubectl mesh-upgrade status -n shop --watch

  # One JSON document per change, for a script
  kubectl mesh-upgrade status -A -w -o json | jq -c .summary.workloads

",
    exit_codes_help!()
);

/// Flags of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Exit with code 3 when a workload is stale or something is broken
    /// (errors still exit 1)
    #[arg(long)]
    pub exit_code: bool,

    /// Ask the API server too: create one pod per distinct namespace and pod
    /// template with dryRun=All (nothing is stored) and compare the sidecar
    /// the webhooks inject with the computed one
    #[arg(long)]
    pub verify_injection: bool,

    /// Exit with code 3 while anything still uses this revision (namespaces,
    /// tags, workloads, gateways, pods); 0 once it can be removed. Reads
    /// every namespace, as -A
    #[arg(long, value_name = "REVISION")]
    pub require_unused: Option<String>,

    /// After the first screen, keep watching and show what changes until
    /// Ctrl-C (exit 130): at a terminal the screen is redrawn, in a pipe each
    /// change prints the rows that changed, with -o json|yaml one document
    /// per change
    #[arg(short = 'w', long, conflicts_with_all = ["exit_code", "verify_injection", "require_unused"])]
    pub watch: bool,
}

const RESTART_EXAMPLES: &str = "\
Examples:
  # Restart the stale workloads of one namespace, after a plan and a prompt
  kubectl mesh-upgrade restart-sidecars -n shop

  # Show the plan only
  kubectl mesh-upgrade restart-sidecars -A --dry-run

  # Two explicit targets, no prompt, three at a time
  kubectl mesh-upgrade restart-sidecars -n shop deployment/cart statefulset/db --yes --concurrency 3

  # OnDelete StatefulSets too: their pods are deleted one at a time, highest ordinal first
  kubectl mesh-upgrade restart-sidecars -n pay --delete-pods

  # Argo Rollouts only: spec.restartAt is set, Argo evicts the old pods
  kubectl mesh-upgrade restart-sidecars -n shop --kind rollout

  # Refuse (exit 5, nothing written) if a PodDisruptionBudget allows no disruption
  kubectl mesh-upgrade restart-sidecars -A --fail-on-blocked --yes

Only workloads with a pod on another proxy than a new pod would get are
restarted; an explicit target that is up to date is skipped unless --all.
Argo Rollouts are restarted as `kubectl argo rollouts restart` does (a
merge patch of spec.restartAt), and waited for until status.restartedAt has
reached it and the Rollout is Healthy. Restarts sharing a
PodDisruptionBudget run no more at once than it allows disruptions; a
workload whose budget allows none is held (listed, not restarted), or the
whole run is refused with --fail-on-blocked. Paused workloads, workloads
scaled to zero, a Deployment a Rollout takes its template from
(workloadRef) and pods no restart reaches (standalone, Jobs and CronJobs,
bare ReplicaSets, other owners) are listed, never touched. A rollout that
fails or passes --timeout stops the run (exit 4); Ctrl-C stops starting new
restarts (exit 130). Running the same command again continues with what is
still stale.";

/// Whether and how a write is rehearsed instead of made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DryRun {
    /// Write for real
    #[default]
    None,
    /// Print the plan and send no write at all
    Client,
    /// Send the writes with dryRun=All: the server checks them and stores nothing
    Server,
}

/// Flags every writing verb shares: rehearsal and confirmation.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Print the plan without changing anything (`--dry-run` means client;
    /// `--dry-run=server` lets the API server check the writes)
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = DryRun::None,
        default_missing_value = "client",
        value_name = "MODE",
    )]
    pub dry_run: DryRun,

    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Workload kinds a restart can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadKind {
    Deployment,
    Statefulset,
    Daemonset,
    /// Argo Rollouts' Rollout (argoproj.io)
    Rollout,
}

/// Flags of `restart-sidecars`.
#[derive(Debug, Clone, Args)]
pub struct RestartSidecarsArgs {
    /// Explicit targets such as deployment/cart statefulset/db (default: every
    /// stale workload in the selection)
    #[arg(value_name = "KIND/NAME")]
    pub targets: Vec<String>,

    #[command(flatten)]
    pub restart: RestartFlags,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// How restarts run: the flags `restart-sidecars` and `relabel --restart` share.
#[derive(Debug, Clone, Args)]
pub struct RestartFlags {
    /// Only these kinds, comma-separated
    #[arg(long = "kind", value_enum, value_delimiter = ',')]
    pub kinds: Vec<WorkloadKind>,

    /// Restart every injected workload, not only the stale ones
    #[arg(long)]
    pub all: bool,

    /// Also restart workloads whose namespace selects a revision but whose
    /// pods have no proxy yet
    #[arg(long)]
    pub include_uninjected: bool,

    /// Delete the pods of OnDelete StatefulSets one at a time, highest ordinal
    /// first, waiting for each replacement
    #[arg(long)]
    pub delete_pods: bool,

    /// Bound for each rollout: 30s, 5m, 1h
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How many workloads to restart at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Patch and return without waiting for the rollouts (pods of OnDelete
    /// StatefulSets are still replaced one at a time, each waited for)
    #[arg(long)]
    pub no_wait: bool,

    /// Refuse (exit 5) before writing anything when a PodDisruptionBudget
    /// allows no disruption to a workload to restart, instead of holding
    /// that workload and restarting the others
    #[arg(long)]
    pub fail_on_blocked: bool,
}

const RELABEL_EXAMPLES: &str = "\
Examples:
  # Move one namespace to the canary revision
  kubectl mesh-upgrade relabel -n shop --to 1-22-3

  # Move every namespace on the old revision, then restart their workloads
  kubectl mesh-upgrade relabel -A --from 1-21-2 --to prod-stable --restart --yes

  # Every namespace labelled team=payments (-l selects namespaces here)
  kubectl mesh-upgrade relabel -l team=payments --to prod-canary --dry-run

  # Back to istio-injection=enabled
  kubectl mesh-upgrade relabel -n shop --to default-injection

  # Restore the labels the namespaces had before their first relabel
  kubectl mesh-upgrade relabel -n shop --undo
  kubectl mesh-upgrade relabel -A --undo";

/// Flags of `relabel`.
#[derive(Debug, Clone, Args)]
pub struct RelabelArgs {
    /// Target revision or tag, or `default-injection` for istio-injection=enabled
    #[arg(long, value_name = "REVISION", required_unless_present = "undo")]
    pub to: Option<String>,

    /// Only namespaces whose new pods now get this revision (a tag means its
    /// revision; istio-injection=enabled counts for the default revision)
    #[arg(long, value_name = "REVISION")]
    pub from: Option<String>,

    /// Restore the injection labels recorded before each namespace's first relabel
    #[arg(long, conflicts_with_all = ["to", "from"])]
    pub undo: bool,

    /// Continue into restart-sidecars for the relabelled namespaces: one plan,
    /// one question; --kind, --all, --timeout, --concurrency, ... apply to it
    #[arg(long)]
    pub restart: bool,

    /// Proceed although the target's istiod is not Ready, or touch an excluded
    /// namespace named explicitly
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub restart_flags: RestartFlags,

    #[command(flatten)]
    pub write: WriteArgs,
}

const GATEWAY_SWITCH_EXAMPLES: &str = "\
Examples:
  # Point the ingress LoadBalancer at the 1-22-3 gateway
  kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --to 1-22-3

  # Rehearse it on the server
  kubectl mesh-upgrade gateway-switch -n istio-gateways --to 1-22-3 --dry-run=server

  # Go back to the previous selector
  kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --rollback

  # Move a Gateway API gateway (or a waypoint) to the canary revision or a tag
  kubectl mesh-upgrade gateway-switch -n edge --gateway public --to 1-22-3
  kubectl mesh-upgrade gateway-switch -n ambient-apps --gateway waypoint --to prod-canary

  # Put it back on the label recorded by the last move
  kubectl mesh-upgrade gateway-switch -n edge --gateway public --rollback

The switch patches only the selector key's value (other selector keys stay)
and records the replaced selector and the time in the Service's annotations
mesh-upgrade.io/previous-selector and mesh-upgrade.io/switched-at. It then
waits until the Service's EndpointSlices list only Ready pods of the new
selector; if they do not within --timeout, it switches back, verifies that,
and exits 4. It refuses a Service istiod renders for a Gateway API Gateway
(istiod would put the selector back): move the Gateway with --gateway.

With --gateway it sets the Gateway's istio.io/rev (a JSON merge patch on its
resourceVersion, recording the label it replaced in the annotation
mesh-upgrade.io/previous-revision) and waits until istiod has re-rendered the
Deployment with the target revision's proxy, the rollout is complete with every
pod on it, the Gateway is Programmed and its Service's EndpointSlices list only
those pods; if not within --timeout, it puts the label back, verifies that,
and exits 4.

Exit codes of gateway-switch: 0 switched and verified, nothing to do, or a
dry run; 2 no --service and not exactly one LoadBalancer/NodePort Service in
front of gateway pods (the candidates are listed), or no such Service (or
Gateway, or no Gateway API on the cluster);
5 a precheck failed or the switch was not confirmed; 4 the endpoints did not
converge (switched back); 1 the Service changed while planning (run again).";

/// Flags of `gateway-switch`.
#[derive(Debug, Clone, Args)]
pub struct GatewaySwitchArgs {
    /// The LoadBalancer or NodePort Service (default: the only one selecting
    /// gateway pods in the namespace)
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Move this Gateway API Gateway instead: set its istio.io/rev to --to and
    /// let istiod re-render it (Istio classes: istio, istio-waypoint,
    /// istio-east-west)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["service", "selector_key"])]
    pub gateway: Option<String>,

    /// Target revision: the new value of the selector key (with --gateway: a
    /// revision or a tag, the Gateway's new istio.io/rev)
    #[arg(long, value_name = "REVISION", required_unless_present = "rollback")]
    pub to: Option<String>,

    /// The Service selector key that names the revision
    #[arg(long, default_value = "version", value_name = "KEY")]
    pub selector_key: String,

    /// Restore the selector (with --gateway: the istio.io/rev) recorded by the
    /// last switch
    #[arg(long, conflicts_with = "to")]
    pub rollback: bool,

    /// Override the soft prechecks (never "no Ready pods")
    #[arg(long)]
    pub force: bool,

    /// Bound for the switch to converge before rolling back: 30s, 2m
    /// (default 2m; with --gateway, 5m for the re-render and the rollout)
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    #[command(flatten)]
    pub write: WriteArgs,
}

const TAG_EXAMPLES: &str = "\
Examples:
  # Every tag, its revision, whether it is a webhook configuration, a Service or both, and its users
  kubectl mesh-upgrade tag list
  kubectl mesh-upgrade tag list -o wide

  # Move prod-stable to the new revision, then restart what became stale (one plan, one question)
  kubectl mesh-upgrade tag set prod-stable --revision 1-22-3 --restart

  # Show the plan only; or let the API server check the writes
  kubectl mesh-upgrade tag set prod-canary --revision 1-23-0 --dry-run
  kubectl mesh-upgrade tag set prod-canary --revision 1-23-0 --dry-run=server

  # istio-injection=enabled namespaces to 1-22-3 (the default revision's own webhooks stop matching)
  kubectl mesh-upgrade tag set default --revision 1-22-3

  # Back to where the last `tag set` found it
  kubectl mesh-upgrade tag set --undo prod-stable --restart

  # Remove a tag no namespace uses any more
  kubectl mesh-upgrade tag remove prod-old";

const TAG_SET_EXAMPLES: &str = "\
Examples:
  kubectl mesh-upgrade tag set prod-stable --revision 1-22-3
  kubectl mesh-upgrade tag set prod-stable --revision 1-22-3 --restart --yes
  kubectl mesh-upgrade tag set default --revision 1-22-3 --dry-run
  kubectl mesh-upgrade tag set --undo prod-stable

The tag's webhook configuration (and Service, Istio 1.28 on) is written as
`istioctl tag set` of the target revision's Istio version writes it, from
that revision's own webhook configuration (caBundle, service, labels). A
move patches each object on the resourceVersion it was read at and records
the revision it named before in its annotation
mesh-upgrade.io/previous-revision; --undo goes back one move and removes
the record (an object the move created is deleted). A tag cannot be named
like a revision. Running pods keep their proxy until restarted: --restart
restarts the workloads that became stale, with restart-sidecars' flags
(--timeout, --concurrency, --kind, --delete-pods, ...).";

const TAG_REMOVE_EXAMPLES: &str = "\
Examples:
  kubectl mesh-upgrade tag remove prod-old
  kubectl mesh-upgrade tag remove prod-old --dry-run

Deletes every webhook configuration labelled istio.io/tag=<tag> and the
control plane namespace's Services labelled with it. Refused while a
namespace uses the tag (labelled istio.io/rev=<tag>, or, for `default`,
istio-injection=enabled) unless --force: new pods there would start
without a proxy.";

/// Flags of `tag`.
#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    #[command(subcommand)]
    pub command: TagCommand,
}

/// What `tag` does.
#[derive(Debug, Clone, Subcommand)]
pub enum TagCommand {
    /// Every revision tag: the revision it points at, how it is represented
    /// (webhook configuration, Service, both), the namespaces and pods using it
    #[command(
        after_help = "Examples:\n  kubectl mesh-upgrade tag list\n  kubectl mesh-upgrade tag list -o json"
    )]
    List,

    /// Create a tag, or move it to another revision (or back, with --undo)
    #[command(after_help = TAG_SET_EXAMPLES)]
    Set(TagSetArgs),

    /// Remove a tag (refused while namespaces use it, unless --force)
    #[command(after_help = TAG_REMOVE_EXAMPLES)]
    Remove(TagRemoveArgs),
}

/// Flags of `tag set`.
#[derive(Debug, Clone, Args)]
pub struct TagSetArgs {
    /// The tag (`default` serves istio-injection=enabled namespaces)
    #[arg(value_name = "TAG")]
    pub tag: String,

    /// The revision the tag points at after
    #[arg(long, value_name = "REVISION", required_unless_present = "undo")]
    pub revision: Option<String>,

    /// Move the tag back to the revision recorded by the last `tag set`
    #[arg(long, conflicts_with = "revision")]
    pub undo: bool,

    /// Continue into restart-sidecars for the workloads that became stale:
    /// one plan, one question; --kind, --timeout, --concurrency, ... apply to
    /// it, and --all or --include-uninjected choose among the workloads whose
    /// new pods change revision
    #[arg(long)]
    pub restart: bool,

    /// Proceed although the target's istiod is not Ready
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub restart_flags: RestartFlags,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// Flags of `tag remove`.
#[derive(Debug, Clone, Args)]
pub struct TagRemoveArgs {
    /// The tag
    #[arg(value_name = "TAG")]
    pub tag: String,

    /// Remove it although namespaces still use it
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub write: WriteArgs,
}

const ZTUNNEL_ROLL_EXAMPLES: &str = "\
Examples:
  # The plan: which nodes, in which order, which pods each drain evicts
  kubectl mesh-upgrade ztunnel-roll --dry-run

  # Every node whose ztunnel does not run the DaemonSet's template, one at a time
  kubectl mesh-upgrade ztunnel-roll

  # Two named nodes, no prompt; or the nodes of one zone, two at a time
  kubectl mesh-upgrade ztunnel-roll node-a node-b --yes
  kubectl mesh-upgrade ztunnel-roll -l topology.kubernetes.io/zone=eu-west-1a --nodes-at-once 2

  # Only replace ztunnel, without cordoning or evicting (connections reset)
  kubectl mesh-upgrade ztunnel-roll --no-drain

Each node: cordon (annotated mesh-upgrade.io/cordoned-by=ztunnel-roll), evict
the pods ztunnel carries there (PodDisruptionBudgets decide when; the roll
waits), delete its ztunnel pod, wait until the new one is Ready on the
template's version, uncordon. A node someone else cordoned is rolled and
left cordoned. Refused (exit 5, nothing written) when the DaemonSet is not
OnDelete, when the istiod its template talks to is not Ready, or when
istio-cni is not Ready on a node to roll.

Ctrl-C stops starting nodes and lets the ones in flight finish; a second
Ctrl-C stops waiting: a node whose ztunnel was not yet deleted is uncordoned,
one whose new ztunnel is not Ready yet is left cordoned and named, with the
command that uncordons it. Running the same command again continues with the
nodes still on the old version and uncordons what an earlier run cordoned.
Exit 4 when a node failed or passed --timeout.";

const VERSION_EXAMPLES: &str = "\
Examples:
  kubectl mesh-upgrade version
  kubectl mesh-upgrade version -o json";

const COMPLETION_EXAMPLES: &str = "\
Examples:
  # Complete `kubectl mesh-upgrade <TAB>` through kubectl (1.26+): install
  # the helper kubectl looks for on PATH
  kubectl mesh-upgrade completion kubectl > ~/.local/bin/kubectl_complete-mesh_upgrade
  chmod +x ~/.local/bin/kubectl_complete-mesh_upgrade

  # Complete the binary run directly (kubectl-mesh_upgrade), bash
  source <(kubectl mesh-upgrade completion bash)

  # zsh
  kubectl mesh-upgrade completion zsh > \"${fpath[1]}/_kubectl-mesh_upgrade\"";

/// Flags of `ztunnel-roll`.
#[derive(Debug, Clone, Args)]
pub struct ZtunnelRollArgs {
    /// Nodes to roll (default: every node whose ztunnel does not run the
    /// DaemonSet's template)
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,

    /// Only replace each node's ztunnel: no cordon, no evictions (connections
    /// through the old ztunnel reset)
    #[arg(long)]
    pub no_drain: bool,

    /// How many nodes to roll at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub nodes_at_once: u16,

    /// Bound for each node, from cordon to uncordon: 30s, 10m
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// Flags of `completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell to print a completion script for, or `kubectl` for the
    /// kubectl_complete-mesh_upgrade helper
    #[arg(value_enum)]
    pub shell: CompletionTarget,
}

/// What `completion` prints a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionTarget {
    Bash,
    Zsh,
    Fish,
    Powershell,
    /// The helper kubectl runs to complete plugin arguments
    Kubectl,
}

pub use crate::duration::parse_duration;

/// `--request-timeout`: a duration where zero means no limit.
pub fn parse_request_timeout(text: &str) -> Result<RequestTimeout, String> {
    let duration = parse_duration(text)?;
    Ok(RequestTimeout((!duration.is_zero()).then_some(duration)))
}

/// A namespace name must be a DNS label; catching a typo such as `-n shop,`
/// or `-n Shop` here gives a clearer message than the server's 400.
fn parse_namespace_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
        ))
    }
}

/// Rewrite `-vv`, `-vvv`… into `-v=2`, `-v=3`… before clap sees them.
///
/// `-v` takes an optional level (`-v`, `-v=3`, `-v 3`, kubectl's `--v=3`), and
/// clap cannot also count repeated short flags on such an argument; this keeps
/// both spellings working. Only whole `-vv…` tokens before a `--` are touched.
pub fn normalize_verbosity_args<I>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    let mut seen_double_dash = false;
    args.into_iter()
        .map(Into::into)
        .map(|arg| {
            if seen_double_dash {
                return arg;
            }
            if arg == "--" {
                seen_double_dash = true;
                return arg;
            }
            match arg.to_str() {
                Some(text)
                    if text.len() > 2
                        && text.starts_with('-')
                        && text[1..].chars().all(|c| c == 'v') =>
                {
                    format!("-v={}", text.len() - 1).into()
                }
                _ => arg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = normalize_verbosity_args(
            std::iter::once("kubectl-mesh_upgrade").chain(args.iter().copied()),
        );
        Cli::try_parse_from(argv)
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_and_usage_call_the_tool_kubectl_mesh_upgrade() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("kubectl mesh-upgrade"), "{help}");
        let err = parse(&["stauts"]).unwrap_err().to_string();
        assert!(err.contains("kubectl mesh-upgrade"), "{err}");
        assert!(!err.contains("kubectl-mesh_upgrade"), "{err}");
    }

    #[test]
    fn every_verb_has_examples_in_its_help() {
        let mut cli = Cli::command();
        for sub in cli.get_subcommands_mut() {
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Examples:"),
                "{} has no examples",
                sub.get_name()
            );
        }
    }

    /// The long flags of a help text in the order shown, each with the
    /// heading it is listed under.
    fn flags_by_heading(help: &str) -> Vec<(String, String)> {
        let mut heading = String::new();
        let mut flags = Vec::new();
        for line in help.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                heading = line.trim_end_matches(':').to_string();
                continue;
            }
            let trimmed = line.trim_start();
            let is_flag_line = line.len() - trimmed.len() <= 6
                && (trimmed.starts_with("--") || trimmed.starts_with('-'));
            if let Some(long) = is_flag_line
                .then(|| trimmed.split_whitespace().find(|w| w.starts_with("--")))
                .flatten()
            {
                let name = long
                    .trim_start_matches("--")
                    .split(['[', '=', ' ', ','])
                    .next()
                    .unwrap_or_default();
                flags.push((heading.clone(), name.to_string()));
            }
        }
        flags
    }

    #[test]
    fn each_verbs_help_lists_its_own_flags_first_and_the_kubectl_flags_after_under_their_heading() {
        let mut cli = Cli::command();
        cli.build();
        let shared: Vec<String> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        assert!(shared.contains(&"kubeconfig".to_string()), "{shared:?}");
        for sub in cli.get_subcommands_mut() {
            let name = sub.get_name().to_string();
            if name == "help" {
                continue;
            }
            let own: Vec<String> = sub
                .get_arguments()
                .filter(|a| !a.is_global_set())
                .filter_map(|a| a.get_long().map(str::to_string))
                .filter(|long| long != "help" && long != "version")
                .collect();
            for help in [
                sub.render_long_help().to_string(),
                sub.render_help().to_string(),
            ] {
                let flags = flags_by_heading(&help);
                let listed: Vec<&str> = flags.iter().map(|(_, f)| f.as_str()).collect();
                let expected: Vec<&str> = own
                    .iter()
                    .map(String::as_str)
                    .chain(["help", "version"])
                    .chain(shared.iter().map(String::as_str))
                    .collect();
                assert_eq!(listed, expected, "{name}: the flags' order\n{help}");
                for (heading, flag) in &flags {
                    let want = if shared.contains(flag) {
                        KUBECTL_OPTIONS
                    } else {
                        "Options"
                    };
                    assert_eq!(heading, want, "{name}: --{flag}\n{help}");
                }
            }
        }
    }

    #[test]
    fn namespaces_accept_a_comma_separated_list_and_repetition() {
        let cli = parse(&["status", "-n", "shop,pay", "-n", "web"]).unwrap();
        assert_eq!(cli.global.namespaces, ["shop", "pay", "web"]);
    }

    #[test]
    fn global_flags_may_come_before_the_verb() {
        let cli = parse(&["-n", "shop", "--context", "prod", "status"]).unwrap();
        assert_eq!(cli.global.namespaces, ["shop"]);
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
    }

    #[test]
    fn an_invalid_namespace_name_is_a_usage_error() {
        let err = parse(&["status", "-n", "Shop"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["status", "-n", "shop,"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn all_namespaces_conflicts_with_a_namespace_list() {
        let err = parse(&["status", "-A", "-n", "shop"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn watch_is_w_and_conflicts_with_the_one_shot_flags() {
        let watching = |args: &[&str]| match parse(args).unwrap().command {
            Command::Status(status) => status.watch,
            other => panic!("parsed as {other:?}"),
        };
        assert!(watching(&["status", "-w"]));
        assert!(watching(&["status", "-A", "--watch", "-o", "json"]));
        assert!(!watching(&["status"]));
        for flags in [
            &["--exit-code"][..],
            &["--verify-injection"],
            &["--require-unused", "1-21-2"],
        ] {
            let args: Vec<&str> = ["status", "--watch"].iter().chain(flags).copied().collect();
            let err = parse(&args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flags:?}"
            );
        }
    }

    #[test]
    fn verbosity_is_counted_or_given_as_a_number() {
        assert_eq!(parse(&["status"]).unwrap().global.verbosity(), 0);
        assert_eq!(parse(&["status", "-v"]).unwrap().global.verbosity(), 1);
        assert_eq!(parse(&["status", "-vv"]).unwrap().global.verbosity(), 2);
        assert_eq!(parse(&["status", "-vvvv"]).unwrap().global.verbosity(), 4);
        assert_eq!(parse(&["status", "-v=3"]).unwrap().global.verbosity(), 3);
        assert_eq!(parse(&["status", "-v", "9"]).unwrap().global.verbosity(), 9);
        assert_eq!(parse(&["status", "--v=6"]).unwrap().global.verbosity(), 6);
        assert_eq!(
            parse(&["-v=2", "status", "-v=5"])
                .unwrap()
                .global
                .verbosity(),
            5
        );
        assert!(parse(&["status", "-v=11"]).is_err());
    }

    #[test]
    fn verbosity_rewriting_leaves_other_arguments_alone() {
        let out = normalize_verbosity_args(["x", "-vv", "-v", "--verbose", "-vx", "--", "-vvv"]);
        assert_eq!(out, ["x", "-v=2", "-v", "--verbose", "-vx", "--", "-vvv"]);
    }

    #[test]
    fn durations_use_kubectl_syntax() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.5").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_zero_request_timeout_means_no_limit() {
        let cli = parse(&["status", "--request-timeout", "0"]).unwrap();
        assert_eq!(cli.global.request_timeout, RequestTimeout(None));
        let cli = parse(&["status", "--request-timeout=2s"]).unwrap();
        assert_eq!(
            cli.global.request_timeout,
            RequestTimeout(Some(Duration::from_secs(2)))
        );
        assert_eq!(
            parse(&["status"]).unwrap().global.request_timeout,
            RequestTimeout(None)
        );
        assert!(parse(&["status", "--request-timeout", "soon"]).is_err());
    }

    #[test]
    fn impersonation_groups_are_repeatable() {
        let cli = parse(&[
            "status",
            "--as",
            "alice",
            "--as-group",
            "a",
            "--as-group",
            "b",
        ])
        .unwrap();
        assert_eq!(cli.global.as_user.as_deref(), Some("alice"));
        assert_eq!(cli.global.as_groups, ["a", "b"]);
    }

    #[test]
    fn output_formats_are_the_four_kubectl_ones() {
        assert_eq!(
            parse(&["status"]).unwrap().global.output,
            OutputFormat::Table
        );
        assert_eq!(
            parse(&["status", "-o", "json"]).unwrap().global.output,
            OutputFormat::Json
        );
        assert_eq!(
            parse(&["status", "-o=yaml"]).unwrap().global.output,
            OutputFormat::Yaml
        );
        assert_eq!(
            parse(&["status", "-owide"]).unwrap().global.output,
            OutputFormat::Wide
        );
        assert!(parse(&["status", "-o", "jsonpath={.x}"]).is_err());
    }

    #[test]
    fn dry_run_without_a_value_means_client() {
        let Command::RestartSidecars(args) =
            parse(&["restart-sidecars", "--dry-run"]).unwrap().command
        else {
            panic!("expected restart-sidecars");
        };
        assert_eq!(args.write.dry_run, DryRun::Client);
        let Command::RestartSidecars(args) =
            parse(&["restart-sidecars", "--dry-run=server", "deployment/cart"])
                .unwrap()
                .command
        else {
            panic!("expected restart-sidecars");
        };
        assert_eq!(args.write.dry_run, DryRun::Server);
        assert_eq!(args.targets, ["deployment/cart"]);
    }

    #[test]
    fn status_takes_exit_code() {
        let Command::Status(args) = parse(&["status", "--exit-code"]).unwrap().command else {
            panic!("expected status");
        };
        assert!(args.exit_code);
    }

    #[test]
    fn relabel_needs_a_target_unless_undoing() {
        assert!(parse(&["relabel", "-n", "shop"]).is_err());
        assert!(parse(&["relabel", "-n", "shop", "--undo"]).is_ok());
        assert!(parse(&["relabel", "-n", "shop", "--to", "1-22-3"]).is_ok());
    }
}
