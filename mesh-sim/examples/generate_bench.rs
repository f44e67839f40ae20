//! Times the large-cluster generator and reports its memory.
//!
//! ```text
//! cargo run --release -p mesh-sim --example generate_bench -- [pods]
//! ```
//!
//! Generates about `pods` pods (default 50,000) with
//! `GenerateOptions::for_pods`, then prints the wall time of generation, of
//! one controllers pass over the result, and of serialising every pod as a
//! list response would, with the process's resident memory after each step.

use std::time::Instant;

use mesh_sim::generate::{GenerateOptions, generate};
use mesh_sim::resources::kinds;
use mesh_sim::world::{SimConfig, World};

/// `VmRSS` and `VmHWM` (peak) from /proc, in MiB, where the platform has them.
fn memory() -> String {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return "memory: unavailable".to_string();
    };
    let field = |name: &str| -> String {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or_else(|| "?".to_string(), |kb| format!("{} MiB", kb / 1024))
    };
    format!("rss {} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

fn main() -> anyhow::Result<()> {
    let pods: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| anyhow::anyhow!("pods must be a number: {e}"))?,
        None => 50_000,
    };
    let opts = GenerateOptions::for_pods(pods);
    let mut world = World::new(SimConfig::default());
    println!("before: {}", memory());

    let started = Instant::now();
    generate(&mut world, &opts)?;
    println!(
        "generated {} pods ({} namespaces x {} workloads x {} replicas, mix {:?}) in {:.2?}; {}",
        world.store.count(kinds::pods()),
        opts.namespaces,
        opts.workloads_per_namespace,
        opts.replicas,
        opts.kinds,
        started.elapsed(),
        memory()
    );

    let started = Instant::now();
    let changed = mesh_sim::controllers::reconcile(&mut world);
    println!(
        "one controllers pass: {:.2?}, changed anything: {changed}; {}",
        started.elapsed(),
        memory()
    );

    let started = Instant::now();
    let mut body = Vec::with_capacity(64 << 20);
    body.extend_from_slice(br#"{"kind":"PodList","apiVersion":"v1","items":["#);
    for (i, (_, pod)) in world.store.list_stored(kinds::pods(), None).enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(pod.json());
    }
    body.extend_from_slice(b"]}");
    println!(
        "serialised every pod as one list: {} MiB in {:.2?}; {}",
        body.len() / (1024 * 1024),
        started.elapsed(),
        memory()
    );
    Ok(())
}
