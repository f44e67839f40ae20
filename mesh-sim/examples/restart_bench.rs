//! The restart benchmark of `kubectl mesh-upgrade restart-sidecars`
//! against the bash loop it replaces (the `terminationGracePeriodSeconds`
//! toggle from the seeds), each on a fresh simulated cluster.
//!
//! ```text
//! cargo run --release -p mesh-sim --example restart_bench -- \
//!     --plugin target/release/kubectl-mesh_upgrade --loop mesh-sim/bench/seed-restart-loop.sh \
//!     [--stale 200] [--up-to-date 50] [--replicas 3] [--namespaces N] \
//!     [--runs loop,1,10] [--out FILE]
//! ```
//! (`mesh-sim/bench/restart.sh` builds both and runs this; the write-scale
//! part of `mesh-sim/bench/status.sh` runs it with `--stale 2000
//! --up-to-date 0 --namespaces 100 --runs 20`.)
//!
//! The cluster comes from the generator: `stale + up-to-date` three-replica
//! Deployments in namespaces of 50 (`restart-001`, ...; `--namespaces`
//! spreads them over that many instead), every namespace labelled for the
//! new revision, the stale ones' pods still on the old proxy. Each run in
//! `--runs` gets a fresh cluster:
//!
//! - **loop**: the seeds' script run as written with the real kubectl, once
//!   per namespace; it waits for nothing, so the clock stops when every pod
//!   runs the new proxy and the controllers have settled;
//! - **N** (a number): `restart-sidecars -A --yes --concurrency N`; the clock
//!   stops when it exits (it waits and verifies), then the same check
//!   confirms every pod runs the new proxy. The plugin runs under GNU time
//!   (`/usr/bin/time`, when present) for its own CPU seconds and peak
//!   resident memory: the client's cost, apart from the cluster's rollouts.
//!
//! Requests are counted from the simulated API server's own request log
//! (every HTTP request it served, kubectl's discovery included), by the verb
//! RBAC would name. "Needless restarts" are PATCHes of Deployments that
//! were already up to date when the run started.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mesh_sim::generate::GenerateOptions;
use mesh_sim::resources::kinds;
use mesh_sim::{RequestRecord, Sim, SimOptions};

/// GNU time, for the plugin's CPU seconds and peak memory.
const GNU_TIME: &str = "/usr/bin/time";

struct Args {
    plugin: PathBuf,
    loop_script: PathBuf,
    stale: usize,
    up_to_date: usize,
    replicas: u32,
    namespaces: Option<usize>,
    runs: Vec<Run>,
    out: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Run {
    Loop,
    Plugin(u16),
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        plugin: PathBuf::from("target/release/kubectl-mesh_upgrade"),
        loop_script: PathBuf::from("mesh-sim/bench/seed-restart-loop.sh"),
        stale: 200,
        up_to_date: 50,
        replicas: 3,
        namespaces: None,
        runs: vec![Run::Loop, Run::Plugin(1), Run::Plugin(10)],
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--plugin" => args.plugin = PathBuf::from(value()?),
            "--loop" => args.loop_script = PathBuf::from(value()?),
            "--stale" => args.stale = value()?.parse().context("--stale")?,
            "--up-to-date" => args.up_to_date = value()?.parse().context("--up-to-date")?,
            "--replicas" => args.replicas = value()?.parse().context("--replicas")?,
            "--namespaces" => args.namespaces = Some(value()?.parse().context("--namespaces")?),
            "--runs" => {
                args.runs = value()?
                    .split(',')
                    .map(|run| match run {
                        "loop" => Ok(Run::Loop),
                        n => n.parse().map(Run::Plugin).with_context(|| {
                            format!("--runs: {n} is neither loop nor a concurrency")
                        }),
                    })
                    .collect::<anyhow::Result<_>>()?
            }
            "--out" => args.out = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// The generated cluster: `stale` stale and `up_to_date` current Deployments.
fn cluster(args: &Args) -> GenerateOptions {
    let total = args.stale + args.up_to_date;
    let mut options = GenerateOptions::stale_deployments(total, args.replicas);
    options.stale_share = args.stale as f64 / total.max(1) as f64;
    if let Some(namespaces) = args.namespaces.filter(|n| *n > 0) {
        options.namespaces = namespaces;
        options.workloads_per_namespace = total.div_ceil(namespaces);
    }
    options
}

fn start(args: &Args) -> anyhow::Result<Sim> {
    let sim = Sim::start(SimOptions::default().generate(cluster(args)))?;
    sim.settle();
    sim.clear_requests();
    Ok(sim)
}

/// Deployments (`namespace/name`) whose pods all run `version` now.
fn up_to_date_deployments(sim: &Sim, version: &str) -> BTreeSet<String> {
    let mut stale_owners = BTreeSet::new();
    let mut owners = BTreeSet::new();
    sim.with_world(|world| {
        for pod in world.store.list(kinds::pods(), None) {
            let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
            if !ns.starts_with("restart-") {
                continue;
            }
            // `<deployment>-<rs hash>-<pod suffix>`.
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            let deployment: Vec<&str> = name.rsplitn(3, '-').collect();
            let Some(deployment) = deployment.get(2) else {
                continue;
            };
            let key = format!("{ns}/{deployment}");
            owners.insert(key.clone());
            if !runs(&pod, version) {
                stale_owners.insert(key);
            }
        }
    });
    owners.difference(&stale_owners).cloned().collect()
}

fn runs(pod: &serde_json::Value, version: &str) -> bool {
    ["containers", "initContainers"].iter().any(|field| {
        pod["spec"][field].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["name"] == "istio-proxy"
                    && c["image"]
                        .as_str()
                        .is_some_and(|i| i.ends_with(&format!(":{version}")))
            })
        })
    })
}

/// Whether every generated pod runs `version` and nothing is left to do.
fn done(sim: &Sim, version: &str) -> bool {
    sim.with_world(|world| {
        mesh_sim::controllers::is_settled(world)
            && world
                .store
                .list(kinds::pods(), None)
                .filter(|p| {
                    p["metadata"]["namespace"]
                        .as_str()
                        .is_some_and(|ns| ns.starts_with("restart-"))
                })
                .all(|p| runs(&p, version))
    })
}

fn wait_until_done(sim: &Sim, version: &str, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while !done(sim, version) {
        if started.elapsed() > limit {
            bail!("not every pod ran {version} after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The verb RBAC would name for a request.
fn verb(r: &RequestRecord) -> &'static str {
    let watching = r
        .query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => &[],
    };
    match r.method.as_str() {
        "GET" if watching => "watch",
        "GET" if rest.is_empty() => "discovery",
        "GET" if matches!(rest, [_] | ["namespaces", _, _]) => "list",
        "GET" => "get",
        "PATCH" => "patch",
        "DELETE" => "delete",
        "POST" => "create",
        "PUT" => "update",
        _ => "other",
    }
}

struct Measured {
    name: String,
    seconds: f64,
    /// The plugin's own CPU seconds (user + system) and peak resident
    /// memory in KB, from GNU time.
    plugin: Option<(f64, u64)>,
    by_verb: BTreeMap<&'static str, usize>,
    total: usize,
    restarted: usize,
    needless: usize,
}

fn measure(
    name: &str,
    sim: &Sim,
    up_to_date: &BTreeSet<String>,
    seconds: f64,
    plugin: Option<(f64, u64)>,
) -> Measured {
    let requests = sim.requests();
    let mut by_verb = BTreeMap::new();
    for r in &requests {
        *by_verb.entry(verb(r)).or_insert(0) += 1;
    }
    let patched: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.status < 300 && r.path.contains("/deployments/"))
        .filter_map(|r| {
            let parts: Vec<&str> = r.path.split('/').collect();
            let at = parts.iter().position(|p| *p == "namespaces")?;
            Some(format!("{}/{}", parts.get(at + 1)?, parts.get(at + 3)?))
        })
        .collect();
    Measured {
        name: name.to_string(),
        seconds,
        plugin,
        total: requests.len(),
        by_verb,
        restarted: patched.len(),
        needless: patched.intersection(up_to_date).count(),
    }
}

fn namespaces(sim: &Sim) -> Vec<String> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::namespaces(), None)
            .filter_map(|n| n["metadata"]["name"].as_str().map(String::from))
            .filter(|n| n.starts_with("restart-"))
            .collect()
    })
}

fn run_loop(args: &Args, new_version: &str) -> anyhow::Result<Measured> {
    let sim = start(args)?;
    let up_to_date = up_to_date_deployments(&sim, new_version);
    let home = tempfile::tempdir()?;
    let started = Instant::now();
    for namespace in namespaces(&sim) {
        let output = Command::new("bash")
            .arg(&args.loop_script)
            .arg(&namespace)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("KUBECONFIG", sim.kubeconfig_path())
            .output()
            .context("running the loop")?;
        if !output.status.success() {
            bail!(
                "the loop failed in {namespace}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let loop_seconds = started.elapsed().as_secs_f64();
    wait_until_done(&sim, new_version, Duration::from_secs(600))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("loop: the script ran {loop_seconds:.1}s, settled after {seconds:.1}s");
    Ok(measure(
        "bash loop (seeds)",
        &sim,
        &up_to_date,
        seconds,
        None,
    ))
}

fn run_plugin(args: &Args, concurrency: u16, new_version: &str) -> anyhow::Result<Measured> {
    let sim = start(args)?;
    let up_to_date = up_to_date_deployments(&sim, new_version);
    let home = tempfile::tempdir()?;
    let gnu_time = Path::new(GNU_TIME).exists();
    let time_file = home.path().join("time");
    let mut command = if gnu_time {
        let mut c = Command::new(GNU_TIME);
        c.arg("-f").arg("%U %S %M").arg("-o").arg(&time_file);
        c.arg(&args.plugin);
        c
    } else {
        Command::new(&args.plugin)
    };
    let started = Instant::now();
    let output = command
        .args(["restart-sidecars", "-A", "--yes", "--concurrency"])
        .arg(concurrency.to_string())
        .env_clear()
        .env("HOME", home.path())
        .env("KUBECONFIG", sim.kubeconfig_path())
        .output()
        .context("running the plugin")?;
    let exited = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "the plugin failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The plugin waited and verified; this only confirms it.
    wait_until_done(&sim, new_version, Duration::from_secs(60))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "plugin c={concurrency}: exited after {exited:.1}s, all on {new_version} at {seconds:.1}s"
    );
    let plugin = if gnu_time {
        let text = std::fs::read_to_string(&time_file).context("reading GNU time's output")?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [user, system, kb] => Some((
                user.parse::<f64>()? + system.parse::<f64>()?,
                kb.parse::<u64>()?,
            )),
            _ => bail!("unexpected GNU time output {text:?}"),
        }
    } else {
        None
    };
    Ok(measure(
        &format!("restart-sidecars --concurrency {concurrency}"),
        &sim,
        &up_to_date,
        seconds,
        plugin,
    ))
}

fn table(args: &Args, rows: &[Measured]) -> String {
    let verbs: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.by_verb.keys().copied())
        .collect();
    let options = cluster(args);
    let mut out = format!(
        "{} stale + {} up-to-date Deployments x {} replicas ({} pods) in {} namespaces, fresh simulated cluster per run\n\n",
        args.stale,
        args.up_to_date,
        args.replicas,
        (args.stale + args.up_to_date) * args.replicas as usize,
        options.namespaces,
    );
    out.push_str("| run | wall time | plugin CPU | plugin peak memory | requests |");
    for v in &verbs {
        out.push_str(&format!(" {v} |"));
    }
    out.push_str(
        " workloads restarted | requests per restarted workload | restarted needlessly |\n|---|---:|---:|---:|---:|",
    );
    for _ in &verbs {
        out.push_str("---:|");
    }
    out.push_str("---:|---:|---:|\n");
    for r in rows {
        let (cpu, memory) = match r.plugin {
            Some((cpu, kb)) => (format!("{cpu:.2} s"), format!("{} MB", kb / 1024)),
            None => ("-".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "| {} | {:.1} s | {cpu} | {memory} | {} |",
            r.name, r.seconds, r.total
        ));
        for v in &verbs {
            out.push_str(&format!(" {} |", r.by_verb.get(v).copied().unwrap_or(0)));
        }
        let per_workload = if r.restarted > 0 {
            format!("{:.2}", r.total as f64 / r.restarted as f64)
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            " {} | {per_workload} | {} |\n",
            r.restarted, r.needless
        ));
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let new_version = cluster(&args).new_version;
    let mut rows = Vec::new();
    for run in &args.runs {
        rows.push(match *run {
            Run::Loop => run_loop(&args, &new_version)?,
            Run::Plugin(concurrency) => run_plugin(&args, concurrency, &new_version)?,
        });
    }
    let text = table(&args, &rows);
    print!("{text}");
    if let Some(out) = &args.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
