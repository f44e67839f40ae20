//! Serve a generated cluster of about N pods for the benchmarks.
//!
//! ```text
//! cargo run --release -p mesh-sim --example generated_cluster -- <pods> <kubeconfig-path>
//! ```
//!
//! Prints `ready <pods>` on stdout once the cluster has settled (`<pods>`:
//! every pod in it, istiod's included), then serves until stdin is closed
//! (the benchmark script holds it open), so the script never has to kill a
//! process by name.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use mesh_sim::generate::{GenerateOptions, generate};
use mesh_sim::{Sim, SimOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args
        .next()
        .context("usage: generated_cluster <pods> <kubeconfig-path>")?
        .parse()
        .context("<pods> must be a number")?;
    let kubeconfig = PathBuf::from(
        args.next()
            .context("usage: generated_cluster <pods> <kubeconfig-path>")?,
    );

    let sim = Sim::start(SimOptions::default().kubeconfig_path(&kubeconfig))?;
    let options = GenerateOptions::for_pods(pods);
    sim.with_world(|world| generate(world, &options))?;
    sim.settle();
    let pods = sim.with_world(|world| world.store.count(mesh_sim::resources::kinds::pods()));
    println!("ready {pods}");
    eprintln!(
        "serving {} at {} ({} namespaces x {} workloads x {} replicas); close stdin to stop",
        kubeconfig.display(),
        sim.url(),
        options.namespaces,
        options.workloads_per_namespace,
        options.replicas
    );
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}
