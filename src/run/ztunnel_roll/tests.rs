//! The roll engine against an in-process mesh-sim (the `ambient`
//! scenario): how a node ends when it is stopped before and after its
//! ztunnel was deleted. Ctrl-C is pressed by the reporter at a named step,
//! so nothing depends on timing.

use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use mesh_sim::resources::kinds;
use mesh_sim::{Sim, SimOptions};

use super::*;
use crate::api::ConnectOptions;
use crate::collect::{CollectOptions, collect};
use crate::mesh::ztunnel_roll::{RollOptions, plan};
use crate::run::{InterruptHandle, StepReporter};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Presses Ctrl-C twice when a step reports a line starting with `at`.
struct PressAt {
    at: &'static str,
    handle: InterruptHandle,
    lines: Mutex<Vec<String>>,
}

impl Reporter for PressAt {
    fn note(&self, message: &str) {
        self.lines.lock().unwrap().push(message.to_string());
    }
    fn step(&self, _label: &str) -> Box<dyn StepReporter + '_> {
        Box::new(PressStep(self))
    }
}

struct PressStep<'a>(&'a PressAt);

impl StepReporter for PressStep<'_> {
    fn update(&self, message: &str) {
        self.0.lines.lock().unwrap().push(message.to_string());
        if message.starts_with(self.0.at) {
            self.0.handle.press();
            self.0.handle.press();
        }
    }
    fn done(&self, _message: &str) {}
}

async fn roll_one_node(sim: &Sim, node: &str, press_at: &'static str) -> (RollPlan, RollRun) {
    let api = ApiClient::connect(&ConnectOptions {
        kubeconfig: Some(sim.kubeconfig_path().to_path_buf()),
        ..ConnectOptions::default()
    })
    .await
    .expect("connects to mesh-sim");
    let collected = collect(
        &api,
        &CollectOptions {
            scope: Scope::All,
            control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
            selector: None,
        },
    )
    .await
    .expect("reads the cluster");
    let plan = plan(
        &collected.snapshot,
        &RollOptions {
            nodes: vec![node.to_string()],
            drain: true,
            nodes_at_once: 1,
            node_selector: None,
        },
        Utc::now(),
    )
    .expect("a plan");
    assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
    let (interrupts, handle) = Interrupts::manual();
    let reporter = PressAt {
        at: press_at,
        handle,
        lines: Mutex::new(Vec::new()),
    };
    let run = run_roll(
        &api,
        &plan,
        RollSettings {
            timeout: Duration::from_secs(600),
            nodes_at_once: 1,
            rehearsal: false,
        },
        &interrupts,
        &reporter,
    )
    .await;
    (plan, run)
}

fn node_cordoned(sim: &Sim, node: &str) -> (bool, bool) {
    let n = sim.get(kinds::nodes(), "", node).unwrap();
    (
        n["spec"]["unschedulable"].as_bool().unwrap_or(false),
        n["metadata"]["annotations"]["mesh-upgrade.io/cordoned-by"] == "ztunnel-roll",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_while_a_budget_holds_an_eviction_the_node_is_uncordoned_and_its_ztunnel_kept() {
    let sim = Sim::start(SimOptions::default().scenario("ambient")).unwrap();
    // ledger's budget allows nothing: its eviction waits.
    sim.apply_yaml(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: ledger, namespace: payments}\nspec:\n  maxUnavailable: 0\n  selector:\n    matchLabels: {app: ledger}\n",
    )
    .unwrap();
    sim.settle();
    let node = sim.get(kinds::pods(), "payments", "ledger-0").unwrap()["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let (plan, run) = roll_one_node(&sim, &node, "PDB ledger allows no disruption").await;
    assert!(run.interrupted || run.results[0].outcome == NodeOutcome::Interrupted);
    let result = &run.results[0];
    assert_eq!(result.outcome, NodeOutcome::Interrupted, "{result:?}");
    assert_eq!(result.cordon, CordonEnd::Uncordoned, "{result:?}");
    assert!(result.replaced.is_none());
    assert!(
        result
            .detail
            .as_deref()
            .unwrap()
            .ends_with("uncordoned again (its ztunnel was not replaced)"),
        "{result:?}"
    );
    assert_eq!(node_cordoned(&sim, &node), (false, false));
    let old = plan.nodes[0].ztunnel_pod.clone().unwrap();
    assert!(
        sim.get(kinds::pods(), "istio-system", &old).is_some(),
        "the old ztunnel still runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_while_the_new_ztunnel_is_not_ready_the_node_stays_cordoned_and_is_named() {
    let sim = Sim::start(SimOptions::default().scenario("ambient")).unwrap();
    // No new pod becomes Ready while the clock stands.
    sim.pause_clock();
    let (_, run) = roll_one_node(&sim, "sim-node-1", "waiting for the new ztunnel").await;
    let result = &run.results[0];
    assert_eq!(result.outcome, NodeOutcome::Interrupted, "{result:?}");
    assert_eq!(result.cordon, CordonEnd::LeftCordoned);
    assert!(result.replaced.is_some() && result.new_ztunnel.is_none());
    let detail = result.detail.as_deref().unwrap();
    assert!(
        detail.contains("left cordoned: its new ztunnel is not Ready yet")
            && detail.contains("`kubectl uncordon sim-node-1`"),
        "{detail}"
    );
    assert_eq!(node_cordoned(&sim, "sim-node-1"), (true, true));
    assert!(!result.evicted.is_empty(), "the drain came first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninterrupted_node_ends_rolled_uncordoned_and_on_the_template() {
    let sim = Sim::start(SimOptions::default().scenario("ambient")).unwrap();
    let (plan, run) = roll_one_node(&sim, "sim-node-1", "never said").await;
    let result = &run.results[0];
    assert_eq!(result.outcome, NodeOutcome::Rolled, "{result:?}");
    assert_eq!(result.cordon, CordonEnd::Uncordoned);
    assert_eq!(
        result.evicted.len(),
        plan.nodes[0].evictions.len(),
        "{result:?}"
    );
    let new = result.new_ztunnel.clone().unwrap();
    let pod = sim.get(kinds::pods(), "istio-system", &new).unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "docker.io/istio/ztunnel:1.23.1"
    );
    assert_eq!(pod["spec"]["nodeName"], "sim-node-1");
    assert_eq!(node_cordoned(&sim, "sim-node-1"), (false, false));
}
