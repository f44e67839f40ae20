//! `mesh-sim serve`: runs the simulated cluster until Ctrl-C, for demos,
//! benchmarks, trying the plugin by hand and chaos runs driven from a
//! script (faults read from a file and reloaded on SIGHUP, every request
//! written to a log file).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mesh_sim::faults::file::FaultFile;
use mesh_sim::generate::GenerateOptions;
use mesh_sim::world::SimConfig;
use mesh_sim::{Sim, SimOptions};

/// A simulated Kubernetes cluster with Istio's sidecar injector.
#[derive(Debug, Parser)]
#[command(name = "mesh-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Kubernetes API over HTTPS on 127.0.0.1 until Ctrl-C.
    #[command(after_help = "Examples:\n  \
        mesh-sim serve --scenario canary --kubeconfig /tmp/mesh-sim.kubeconfig\n  \
        mesh-sim serve --manifests cluster/ --manifests extra.yaml --kubeconfig ./kubeconfig\n  \
        mesh-sim serve --generate --pods 50000 --kubeconfig ./kubeconfig\n  \
        mesh-sim serve --scenario canary --faults faults.yaml --request-log requests.jsonl\n  \
        kill -HUP <pid>   # reload faults.yaml\n  \
        export KUBECONFIG=./kubeconfig; kubectl get pods -A")]
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A YAML file or a directory of them, loaded in order after the
    /// scenario (repeatable); the controllers settle after each file.
    #[arg(long = "manifests", value_name = "FILE_OR_DIR")]
    manifests: Vec<PathBuf>,

    /// Where to write the kubeconfig (context `mesh-sim`).
    #[arg(long, value_name = "PATH", default_value = "mesh-sim.kubeconfig")]
    kubeconfig: PathBuf,

    /// A built-in scenario to load first (canary, in-place, revision-tags, empty).
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,

    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,

    /// Simulated seconds per wall-clock second (0 pauses the clock).
    #[arg(long, value_name = "X")]
    clock_speed: Option<f64>,

    /// Nodes in the cluster (DaemonSets run one pod on each).
    #[arg(long, value_name = "N")]
    nodes: Option<usize>,

    /// Simulated seconds from a pod's start until it is Ready.
    #[arg(long, value_name = "SECONDS")]
    pod_ready_delay: Option<f64>,

    /// Serve without the Gateway API's CRDs (GatewayClass, Gateway,
    /// HTTPRoute answer 404), as a cluster where nobody installed them.
    #[arg(long)]
    without_gateway_api: bool,

    /// Faults to inject, from a YAML file (see the README); read at start
    /// and again on SIGHUP.
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,

    /// Write every request as a JSON line to this file (method, path,
    /// query, status, the answer's content type, user, and the object's
    /// namespace and name).
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,

    /// Write a kubeconfig for the read-only user `observer`, whose requests
    /// no fault touches (to read the cluster while faults are on).
    #[arg(long, value_name = "PATH")]
    observer_kubeconfig: Option<PathBuf>,

    /// A cluster without Argo Rollouts: the `argoproj.io` group is not
    /// served (its requests answer 404, as without the CRD).
    #[arg(long)]
    no_argo_rollouts: bool,

    /// Answer every LIST in JSON, as an API server behind a JSON-only proxy
    /// would (by default LISTs of the built-in kinds are answered in
    /// protobuf to clients that prefer it, as kubectl's typed clients do).
    #[arg(long)]
    no_protobuf: bool,

    #[command(flatten)]
    generate: GenerateArgs,
}

/// A generated cluster for benchmarks: namespaces of workloads already
/// rolled out and injected, a share of them on the previous revision.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Generated cluster")]
struct GenerateArgs {
    /// Build a generated cluster (after the scenario, before the manifests).
    #[arg(long, conflicts_with = "scenario")]
    generate: bool,

    /// About this many pods, in namespaces of 100 three-replica workloads
    /// (sets the three options below).
    #[arg(long, value_name = "N", requires = "generate", conflicts_with_all = ["namespaces", "workloads_per_namespace", "replicas"])]
    pods: Option<usize>,

    /// Namespaces (`bench-001`, ...).
    #[arg(long, value_name = "N", requires = "generate")]
    namespaces: Option<usize>,

    /// Workloads in each namespace (mostly Deployments, some StatefulSets and DaemonSets).
    #[arg(long, value_name = "M", requires = "generate")]
    workloads_per_namespace: Option<usize>,

    /// Replicas of each Deployment and StatefulSet.
    #[arg(long, value_name = "R", requires = "generate")]
    replicas: Option<u32>,

    /// Share (0 to 1) of workloads whose pods still run the old revision.
    #[arg(long, value_name = "F", requires = "generate")]
    stale_share: Option<f64>,

    /// Istio version of the old revision (e.g. 1.21.2).
    #[arg(long, value_name = "VERSION", requires = "generate")]
    old_version: Option<String>,

    /// Istio version the namespaces now select (e.g. 1.22.3).
    #[arg(long, value_name = "VERSION", requires = "generate")]
    new_version: Option<String>,
}

impl GenerateArgs {
    /// The generator's options, or `None` without `--generate`.
    fn options(&self) -> Option<GenerateOptions> {
        if !self.generate {
            return None;
        }
        let mut options = match self.pods {
            Some(pods) => GenerateOptions::for_pods(pods),
            None => GenerateOptions::default(),
        };
        if let Some(n) = self.namespaces {
            options.namespaces = n;
        }
        if let Some(m) = self.workloads_per_namespace {
            options.workloads_per_namespace = m;
        }
        if let Some(r) = self.replicas {
            options.replicas = r;
        }
        if let Some(share) = self.stale_share {
            options.stale_share = share;
        }
        if let Some(v) = &self.old_version {
            options.old_version = v.clone();
        }
        if let Some(v) = &self.new_version {
            options.new_version = v.clone();
        }
        Some(options)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Serve(args) = cli.command;
    let mut config = SimConfig::default();
    if let Some(speed) = args.clock_speed {
        config.clock_speed = speed;
    }
    if let Some(nodes) = args.nodes {
        config.node_count = nodes;
    }
    if args.without_gateway_api {
        config.gateway_api = false;
    }
    if let Some(delay) = args.pod_ready_delay {
        config.pod_ready_delay = Duration::try_from_secs_f64(delay).context("--pod-ready-delay")?;
    }
    config.argo_rollouts = !args.no_argo_rollouts;
    config.protobuf = !args.no_protobuf;
    let mut options = SimOptions::default()
        .config(config)
        .port(args.port)
        .kubeconfig_path(absolute(&args.kubeconfig)?);
    if let Some(name) = &args.scenario {
        options = options.scenario(name);
    }
    if let Some(generate) = args.generate.options() {
        options = options.generate(generate);
    }
    for path in &args.manifests {
        options = options.manifest_path(path);
    }
    if let Some(path) = &args.request_log {
        options = options.request_log(path);
    }
    // A broken fault file stops the start before anything is served.
    let faults = args.faults.as_deref().map(FaultFile::load).transpose()?;
    if let Some(file) = &faults {
        options = options.faults(file.faults.clone());
    }
    let sim = Sim::start(options)?;
    if let (Some(file), Some(path)) = (&faults, &args.faults) {
        if let Some(e) = file.unknown_resource(|r| sim.serves(r)) {
            anyhow::bail!("the fault file {}: {e}", path.display());
        }
    }
    if let Some(path) = &args.observer_kubeconfig {
        let written = sim.add_observer("observer");
        let path = absolute(path)?;
        if written != path {
            std::fs::copy(&written, &path)
                .with_context(|| format!("writing {}", path.display()))?;
            let _ = std::fs::remove_file(&written);
        }
    }
    // Listen for the signals before saying where the server is: a script
    // that reads the lines below may send SIGHUP at once, and a SIGHUP that
    // arrives before the handler exists would end the process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal runtime")?;
    let signals = {
        let _context = runtime.enter();
        Signals::listen()?
    };
    let kubeconfig = sim.kubeconfig_path().display();
    println!("mesh-sim serving {}", sim.url());
    println!("kubeconfig: {kubeconfig}");
    if let (Some(file), Some(path)) = (&faults, &args.faults) {
        println!("{}", faults_line(file, path));
    }
    println!("export KUBECONFIG={kubeconfig}");
    eprintln!("Press Ctrl-C to stop.");
    runtime.block_on(wait_for_signals(&sim, args.faults.as_deref(), signals))?;
    drop(sim);
    Ok(())
}

/// The line printed when faults are (re)loaded; scripts wait for it.
fn faults_line(file: &FaultFile, path: &Path) -> String {
    format!(
        "faults: {} rules from {} (seed {})",
        file.faults.rules.len(),
        path.display(),
        file.faults.seed
    )
}

/// The signals `serve` answers, listened for from the start.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers (inside a runtime's context).
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }
}

/// Until Ctrl-C (or SIGTERM): on SIGHUP reads the fault file again and
/// replaces the rules (their counters start again); a file that does not
/// parse leaves the rules in force and says why on stderr.
async fn wait_for_signals(
    sim: &Sim,
    faults: Option<&Path>,
    mut signals: Signals,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = signals.interrupt.recv() => return Ok(()),
            _ = signals.terminate.recv() => return Ok(()),
            _ = signals.hangup.recv() => {
                let Some(path) = faults else {
                    eprintln!("mesh-sim: SIGHUP ignored: no --faults file to reload");
                    continue;
                };
                let loaded = FaultFile::load(path).and_then(|file| {
                    match file.unknown_resource(|r| sim.serves(r)) {
                        Some(e) => anyhow::bail!("the fault file {}: {e}", path.display()),
                        None => Ok(file),
                    }
                });
                match loaded {
                    Ok(file) => {
                        sim.set_faults(file.faults.clone());
                        println!("{}", faults_line(&file, path));
                    }
                    Err(e) => eprintln!("mesh-sim: {e:#}; the rules in force are kept"),
                }
            }
        }
    }
}

fn absolute(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn generate_options_start_from_the_pods_preset_and_take_overrides() {
        let cli = Cli::try_parse_from([
            "mesh-sim",
            "serve",
            "--generate",
            "--pods",
            "3000",
            "--stale-share",
            "0.25",
            "--new-version",
            "1.23.0",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command;
        let options = args.generate.options().expect("generate asked for");
        assert_eq!(options.replicas, 3);
        assert_eq!(options.namespaces * options.workloads_per_namespace, 1000);
        assert_eq!(options.stale_share, 0.25);
        assert_eq!(options.new_version, "1.23.0");
    }

    #[test]
    fn generate_options_need_generate_and_exclude_a_scenario() {
        assert!(Cli::try_parse_from(["mesh-sim", "serve", "--pods", "10"]).is_err());
        assert!(
            Cli::try_parse_from(["mesh-sim", "serve", "--generate", "--scenario", "canary"])
                .is_err()
        );
        let Command::Serve(args) = Cli::try_parse_from(["mesh-sim", "serve"])
            .expect("parses")
            .command;
        assert!(args.generate.options().is_none());
    }
}
