//! Where `status`'s memory and time go, in process, on a generated cluster.
//!
//! ```text
//! cargo run --release --example snapshot_memory -- [pods]     # default 50000
//! ```
//!
//! Generates a `mesh-sim` cluster of about `pods` pods, writes each kind's
//! LIST pages as the API server would (500 objects a page), then decodes
//! them with the plugin's page decoders, builds the snapshot and runs the
//! status model, counting with a counting allocator: the bytes and
//! allocations each step leaves live, the highest live total, and the
//! time each step takes. No server, no TLS, no threads: the figures are
//! the snapshot's and the model's own, apart from the network and the
//! allocator's per-thread arenas. A by-hand tool (`status.sh` measures the
//! real binary); nothing asserts on its output.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kubectl_mesh_upgrade::collect::{self, CollectOptions, RawLists};
use kubectl_mesh_upgrade::snapshot::decode::{self, Decoded};
use kubectl_mesh_upgrade::snapshot::{NamespaceInfo, Scope, ServiceInfo, WebhookConfigurationInfo};
use mesh_sim::resources::{Resource, kinds};
use serde_json::{Value, json};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn page(items: &[Value]) -> Vec<u8> {
    json!({
        "kind": "List", "apiVersion": "v1",
        "metadata": {"resourceVersion": "42"},
        "items": items,
    })
    .to_string()
    .into_bytes()
}

/// Runs `step`, printing what it left live and how long it took.
fn step<T>(name: &str, objects: usize, step: impl FnOnce() -> T) -> T {
    let (live, allocations) = (
        LIVE.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    );
    PEAK.store(live, Ordering::Relaxed);
    let started = Instant::now();
    let out = step();
    let took = started.elapsed();
    let kept = LIVE.load(Ordering::Relaxed) as isize - live as isize;
    let made = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let peak = PEAK.load(Ordering::Relaxed) - live;
    let per = |v: f64| if objects > 0 { v / objects as f64 } else { 0.0 };
    eprintln!(
        "{name:<28} {objects:>7} objects {:>8.1} ms  kept {:>7.1} MB ({:>6.0} B each)  \
         allocations {:>9} ({:>5.1} each)  step peak {:>7.1} MB",
        took.as_secs_f64() * 1e3,
        kept as f64 / 1e6,
        per(kept as f64),
        made,
        per(made as f64),
        peak as f64 / 1e6,
    );
    out
}

fn decode_all<T>(pages: &[Vec<u8>], decode: impl Fn(&[u8], &mut Vec<T>) -> Decoded) -> Vec<T> {
    let mut out = Vec::new();
    for p in pages {
        decode(p, &mut out).expect("the page decodes");
    }
    out
}

fn main() {
    let pods: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of pods"))
        .unwrap_or(50_000);
    let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
    mesh_sim::generate::generate(
        &mut world,
        &mesh_sim::generate::GenerateOptions::for_pods(pods),
    )
    .expect("generates");
    let pages = |resource: &Resource| -> (usize, Vec<Vec<u8>>) {
        let items: Vec<Value> = world
            .store
            .list(resource, None)
            .map(|obj| (*obj).clone())
            .collect();
        (items.len(), items.chunks(500).map(page).collect())
    };
    let pod_pages = pages(kinds::pods());
    let rs_pages = pages(kinds::replicasets());
    let deployment_pages = pages(kinds::deployments());
    let sts_pages = pages(kinds::statefulsets());
    let ds_pages = pages(kinds::daemonsets());
    let pdb_pages = pages(kinds::pdbs());
    let ns_pages = pages(kinds::namespaces());
    let svc_pages = pages(kinds::services());
    let webhook_pages = pages(kinds::mutating_webhooks());
    let cm_pages = pages(kinds::configmaps());
    drop(world);
    eprintln!(
        "record sizes: PodInfo {} B, WorkloadPod {} B, Workload {} B, WorkloadStatus {} B",
        std::mem::size_of::<kubectl_mesh_upgrade::snapshot::PodInfo>(),
        std::mem::size_of::<kubectl_mesh_upgrade::mesh::workloads::WorkloadPod>(),
        std::mem::size_of::<kubectl_mesh_upgrade::mesh::workloads::Workload>(),
        std::mem::size_of::<kubectl_mesh_upgrade::mesh::status::WorkloadStatus>(),
    );
    let bytes: usize = pod_pages.1.iter().map(Vec::len).sum();
    eprintln!(
        "{} pods in {} pages of {} MB",
        pod_pages.0,
        pod_pages.1.len(),
        bytes / 1_000_000
    );

    let mut raw = RawLists::default();
    let interner = kubectl_mesh_upgrade::snapshot::Interner::default();
    step("scan pod pages (IgnoredAny)", pod_pages.0, || {
        for p in &pod_pages.1 {
            serde_json::from_slice::<serde::de::IgnoredAny>(p).expect("valid JSON");
        }
    });
    raw.pods = step("pods", pod_pages.0, || {
        decode_all(&pod_pages.1, |p, o| decode::pods(p, &interner, o))
    });
    raw.replica_sets = step("replica sets", rs_pages.0, || {
        decode_all(&rs_pages.1, |p, o| decode::replica_sets(p, &interner, o))
    });
    raw.deployments = step("deployments", deployment_pages.0, || {
        decode_all(&deployment_pages.1, |p, o| {
            decode::deployments(p, "istio-system", &interner, o)
        })
    });
    raw.stateful_sets = step("stateful sets", sts_pages.0, || {
        decode_all(&sts_pages.1, |p, o| decode::stateful_sets(p, &interner, o))
    });
    raw.daemon_sets = step("daemon sets", ds_pages.0, || {
        decode_all(&ds_pages.1, |p, o| decode::daemon_sets(p, &interner, o))
    });
    raw.pod_disruption_budgets = step("pod disruption budgets", pdb_pages.0, || {
        decode_all(&pdb_pages.1, decode::pod_disruption_budgets)
    });
    raw.namespaces = decode_all(
        &ns_pages.1,
        decode::typed(|n: Namespace| Some(NamespaceInfo::from(&n))),
    );
    raw.services = decode_all(
        &svc_pages.1,
        decode::typed(|s: Service| Some(ServiceInfo::from(&s))),
    );
    raw.webhook_configurations = decode_all(
        &webhook_pages.1,
        decode::typed(|w: MutatingWebhookConfiguration| Some(WebhookConfigurationInfo::from(&w))),
    );
    raw.injector_configs = decode_all(
        &cm_pages.1,
        decode::typed(|c: ConfigMap| collect::injector_config(&c)),
    );
    let options = CollectOptions {
        scope: Scope::All,
        control_plane_namespace: "istio-system".into(),
        selector: None,
    };
    let snapshot = step("assemble", 0, || collect::assemble(raw, &options));
    let now = chrono::Utc::now();
    let control_plane = step("control plane", 0, || {
        kubectl_mesh_upgrade::mesh::control_plane::ControlPlane::from_snapshot(&snapshot)
    });
    let classification = step("classify", pod_pages.0, || {
        kubectl_mesh_upgrade::mesh::workloads::classify(&snapshot, &control_plane)
    });
    let report = step("report from it", pod_pages.0, || {
        kubectl_mesh_upgrade::mesh::status::build_status_from(
            &snapshot,
            &control_plane,
            &classification,
            now,
        )
    });
    step("JSON document to a sink", 0, || {
        serde_json::to_writer(std::io::sink(), &report).expect("serialises")
    });
    eprintln!(
        "live at the end: {:.1} MB, of which the pages {:.1} MB",
        LIVE.load(Ordering::Relaxed) as f64 / 1e6,
        [
            &pod_pages,
            &rs_pages,
            &deployment_pages,
            &sts_pages,
            &ds_pages,
            &pdb_pages,
            &ns_pages,
            &svc_pages,
            &webhook_pages,
            &cm_pages
        ]
        .iter()
        .flat_map(|(_, p)| p.iter().map(Vec::capacity))
        .sum::<usize>() as f64
            / 1e6
    );
}
