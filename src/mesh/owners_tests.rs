//! The owners beyond the apps kinds, through the pure middle: Argo Rollouts
//! found through their ReplicaSets and restarted by `spec.restartAt`, the
//! Deployment a Rollout takes its template from, Job and CronJob pods with
//! their remedies, and restarts held or paced by PodDisruptionBudgets.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::fixtures::{
    ClusterFixture, PodFixture, ProxySpec, ROLLOUT_HASH, RolloutFixture, WorkloadFixture,
};
use crate::mesh::pacing::Budget;
use crate::mesh::restart::{
    RestartMethod, RestartOptions, RestartPlan, TargetRef, plan, pods_not_running_expected,
};
use crate::mesh::status::build_status;
use crate::mesh::workloads::{
    Classification, Risk, UnreachableReason, Workload, WorkloadKind, WorkloadState, classify,
};
use crate::write::{Change, ObjectKind, ObjectRef, Patch, Precondition};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap()
}

fn cluster() -> ClusterFixture {
    ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .tag("default", "1-21-2")
        .namespace("shop", &[("istio-injection", "enabled")])
        .namespace("pay", &[("istio.io/rev", "1-22-3")])
        .namespace("batch", &[("istio.io/rev", "1-22-3")])
}

fn classified(fixture: ClusterFixture) -> Classification {
    let snapshot = fixture.build();
    classify(&snapshot, &ControlPlane::from_snapshot(&snapshot))
}

fn workload<'a>(c: &'a Classification, kind: WorkloadKind, name: &str) -> &'a Workload {
    c.workloads
        .iter()
        .find(|w| w.kind == kind && w.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} in {:?}", c.workloads))
}

fn plan_of(fixture: ClusterFixture, options: &RestartOptions) -> RestartPlan {
    plan(&fixture.build(), options, now()).expect("a plan")
}

// ---------------------------------------------------------------- detection

#[test]
fn a_rollouts_pods_belong_to_the_rollout_through_its_replica_set() {
    let c = classified(cluster().rollout(
        RolloutFixture::new("pay", "checkout").pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
    ));
    let w = workload(&c, WorkloadKind::Rollout, "checkout");
    assert_eq!(w.state, WorkloadState::Stale);
    assert_eq!(w.stale_pods, 2);
    assert_eq!(w.expected_revision(), Some("1-22-3"));
    assert_eq!(w.update_strategy, "Canary");
    assert_eq!(w.reference(), "rollout/checkout");
    assert!(c.unreachable.is_empty(), "{:?}", c.unreachable);
}

#[test]
fn without_the_rollout_list_a_rollouts_pods_are_pods_no_restart_reaches() {
    // The LIST answered 404 or was forbidden: the owner is known only from
    // the ReplicaSet's reference, as before Rollouts were read.
    let c = classified(
        cluster()
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .edit(|s| {
                s.rollouts.clear();
                s.rollouts_served = Some(false);
            }),
    );
    assert!(c.workloads.is_empty());
    assert_eq!(
        c.unreachable[0].reason,
        UnreachableReason::ForeignOwner {
            owner_kind: "Rollout".into(),
            name: "checkout".into()
        }
    );
    assert_eq!(
        c.unreachable[0].command,
        "kubectl argo rollouts restart checkout -n pay"
    );
}

#[test]
fn a_workload_ref_rollout_runs_the_deployments_template_which_is_never_restarted_itself() {
    let fixture = || {
        cluster()
            .workload(
                WorkloadFixture::deployment("pay", "api")
                    .replicas(0)
                    .template_label("tier", "backend"),
            )
            .rollout(
                RolloutFixture::new("pay", "api")
                    .workload_ref("api")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
    };
    let c = classified(fixture());
    let rollout = workload(&c, WorkloadKind::Rollout, "api");
    assert_eq!(rollout.template.labels.get("tier"), Some("backend"));
    assert_eq!(rollout.state, WorkloadState::Stale);
    let deployment = workload(&c, WorkloadKind::Deployment, "api");
    assert_eq!(deployment.template_of.as_deref(), Some("api"));
    assert!(
        deployment
            .notes
            .iter()
            .any(|n| n.starts_with("the template of Rollout api (spec.workloadRef)")),
        "{:?}",
        deployment.notes
    );

    // Every workload restarted (--all): the Rollout, never its Deployment.
    let all = RestartOptions {
        selection: crate::mesh::workloads::RestartSelection {
            all: true,
            include_uninjected: true,
        },
        ..RestartOptions::default()
    };
    let p = plan_of(fixture(), &all);
    let names: Vec<String> = p.actions.iter().map(|a| a.reference()).collect();
    assert_eq!(names, ["rollout/api"]);
    // Named explicitly, it is skipped with the reason.
    let p = plan_of(
        fixture(),
        &RestartOptions {
            targets: vec![TargetRef::parse("deployment/api").unwrap()],
            ..RestartOptions::default()
        },
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped[0].reason, "workload-ref");
    assert!(p.skipped[0].note.contains("restart rollout/api instead"));
}

#[test]
fn a_single_replica_rollout_is_flagged_because_argo_evicts_before_it_surges() {
    let c = classified(
        cluster().rollout(
            RolloutFixture::new("pay", "solo")
                .replicas(1)
                .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
    );
    let w = workload(&c, WorkloadKind::Rollout, "solo");
    assert!(w.risks.contains(&Risk::SingleReplica), "{:?}", w.risks);
    assert!(
        w.notes
            .iter()
            .any(|n| n.contains("Argo evicts its pod before a replacement starts")),
        "{:?}",
        w.notes
    );
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "solo")
                .replicas(1)
                .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
        &RestartOptions::default(),
    );
    assert!(p.actions[0].risks.contains(&Risk::SingleReplica));
}

#[test]
fn a_rollout_mid_update_is_rolling_and_a_degraded_one_stuck() {
    let c = classified(
        cluster()
            .rollout(
                RolloutFixture::new("pay", "moving")
                    .phase("Progressing", "more replicas need to be updated")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .rollout(
                RolloutFixture::new("pay", "broken")
                    .phase("Degraded", "ProgressDeadlineExceeded: timed out")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            ),
    );
    let moving = workload(&c, WorkloadKind::Rollout, "moving");
    assert_eq!(moving.state, WorkloadState::Rolling);
    assert_eq!(
        moving.rollout_in_progress.as_deref(),
        Some("Progressing: more replicas need to be updated")
    );
    let broken = workload(&c, WorkloadKind::Rollout, "broken");
    assert!(broken.risks.contains(&Risk::RolloutStuck));
}

#[test]
fn job_and_cron_job_pods_are_reported_with_what_becomes_of_them() {
    let c = classified(
        cluster()
            .cron_job("batch", "nightly", "0 2 * * *", false)
            .job(
                "batch",
                "nightly-29000000",
                Some("nightly"),
                ProxySpec::istio("1-21-2", "1.21.2"),
            )
            .job(
                "batch",
                "migrate",
                None,
                ProxySpec::istio("1-21-2", "1.21.2"),
            )
            .pod(PodFixture::new("batch", "debug").spec(&ProxySpec::istio("1-21-2", "1.21.2"))),
    );
    let pod = |prefix: &str| {
        c.unreachable
            .iter()
            .find(|p| p.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {:?}", c.unreachable))
    };
    let cron = pod("nightly-29000000");
    assert_eq!(
        cron.reason,
        UnreachableReason::CronJob {
            job: "nightly-29000000".into(),
            name: "nightly".into(),
            schedule: "0 2 * * *".into(),
            suspended: false
        }
    );
    assert_eq!(
        cron.remedy,
        "the next run gets the new proxy (schedule 0 2 * * *)"
    );
    assert_eq!(
        cron.command,
        "none needed; to run it now: kubectl create job nightly-now --from=cronjob/nightly -n batch"
    );
    let job = pod("migrate");
    assert_eq!(
        job.remedy,
        "finishes on the old proxy: wait, or delete and rerun the Job"
    );
    assert_eq!(
        job.command,
        "kubectl delete job migrate -n batch, then create it again from its manifest"
    );
    assert_eq!(pod("debug").reason, UnreachableReason::Standalone);
}

#[test]
fn a_suspended_cron_job_says_no_run_comes_until_it_is_resumed() {
    let c = classified(
        cluster()
            .cron_job("batch", "weekly", "0 3 * * 0", true)
            .job(
                "batch",
                "weekly-1",
                Some("weekly"),
                ProxySpec::istio("1-21-2", "1.21.2"),
            ),
    );
    assert_eq!(
        c.unreachable[0].remedy,
        "the next run gets the new proxy (schedule 0 3 * * 0; suspended: no run until it is resumed)"
    );
}

#[test]
fn the_status_document_carries_the_remedy_and_a_cron_jobs_run_needs_no_attention() {
    let report = build_status(
        &cluster()
            .cron_job("batch", "nightly", "0 2 * * *", false)
            .job(
                "batch",
                "nightly-1",
                Some("nightly"),
                ProxySpec::istio("1-21-2", "1.21.2"),
            )
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            )
            .build(),
        now(),
    );
    let document = serde_json::to_value(&report).unwrap();
    let pod = &document["unreachablePods"][0];
    assert_eq!(pod["reasonCode"], "cronjob");
    assert_eq!(pod["owner"], "CronJob/nightly");
    assert_eq!(pod["reason"], "owned by Job nightly-1 of CronJob nightly");
    assert_eq!(
        pod["remedy"],
        "the next run gets the new proxy (schedule 0 2 * * *)"
    );
    assert_eq!(pod["state"], "stale");
    let rollout = document["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "Rollout")
        .expect("the Rollout is a workload");
    assert_eq!(rollout["name"], "checkout");
    assert_eq!(rollout["state"], "up-to-date");
    assert_eq!(
        document["summary"]["needsAttention"],
        json!(false),
        "{:#}",
        document["summary"]
    );
}

// ---------------------------------------------------------------- plans

#[test]
fn a_rollout_is_restarted_with_argos_merge_patch_of_restart_at() {
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "checkout").pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
        &RestartOptions::default(),
    );
    assert_eq!(p.restarted_at, "2026-11-23T14:05:09Z");
    let action = &p.actions[0];
    assert_eq!(action.kind, WorkloadKind::Rollout);
    let RestartMethod::RestartAt { write } = &action.method else {
        panic!("a restartAt patch: {:?}", action.method);
    };
    assert_eq!(
        write.target,
        ObjectRef::namespaced(ObjectKind::Rollout, "pay", "checkout")
    );
    assert_eq!(
        write.change,
        Change::Patch(Patch::Merge(
            json!({"spec": {"restartAt": "2026-11-23T14:05:09Z"}})
        ))
    );
    assert_eq!(write.precondition, Precondition::None);
    let document = serde_json::to_value(&p).unwrap();
    assert_eq!(
        document["actions"][0]["method"],
        json!({"type": "restartAt", "patch": {"spec": {"restartAt": "2026-11-23T14:05:09Z"}}})
    );
    assert_eq!(document["actions"][0]["kind"], "Rollout");
}

#[test]
fn the_restart_time_postdates_every_pod_of_a_rollout_and_its_last_restart() {
    // The cluster's clock is ahead of this client's: its pods were created
    // a minute "later" than now. Argo restarts only pods created before
    // restartAt, so the plan takes the second after the newest.
    let ahead = now() + chrono::Duration::seconds(61);
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "checkout")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2"))
                .pods_created(ahead + chrono::Duration::milliseconds(400)),
        ),
        &RestartOptions::default(),
    );
    assert_eq!(p.restarted_at, "2026-11-23T14:06:11Z");
    // A restartAt already at now (a run within the same second) moves on too.
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "checkout")
                .restart_at(now())
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
        &RestartOptions::default(),
    );
    assert_eq!(p.restarted_at, "2026-11-23T14:05:10Z");
}

#[test]
fn kind_rollout_and_rollout_targets_narrow_the_plan() {
    let fixture = || {
        cluster()
            .workload(
                WorkloadFixture::deployment("pay", "payments")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
    };
    let only_rollouts = RestartOptions {
        kinds: vec![WorkloadKind::Rollout],
        ..RestartOptions::default()
    };
    let names =
        |p: &RestartPlan| -> Vec<String> { p.actions.iter().map(|a| a.reference()).collect() };
    assert_eq!(
        names(&plan_of(fixture(), &only_rollouts)),
        ["rollout/checkout"]
    );
    for text in [
        "rollout/checkout",
        "ro/checkout",
        "rollouts.argoproj.io/checkout",
    ] {
        assert_eq!(
            TargetRef::parse(text).unwrap().kind,
            WorkloadKind::Rollout,
            "{text}"
        );
    }
    let err = TargetRef::parse("job/x").unwrap_err();
    assert!(err.contains("rollout/NAME"), "{err}");
}

#[test]
fn a_paused_rollout_is_skipped_with_argos_command() {
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "checkout")
                .paused()
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
        &RestartOptions {
            targets: vec![TargetRef::parse("rollout/checkout").unwrap()],
            ..RestartOptions::default()
        },
    );
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped[0].reason, "paused");
    assert!(
        p.skipped[0]
            .note
            .contains("kubectl argo rollouts promote checkout -n pay"),
        "{:?}",
        p.skipped
    );
}

#[test]
fn verification_counts_a_rollouts_pods_by_their_replica_set() {
    let snapshot = cluster()
        .rollout(
            RolloutFixture::new("pay", "checkout").pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .build();
    let p = plan(&snapshot, &RestartOptions::default(), now()).unwrap();
    let wrong = pods_not_running_expected(&p.actions[0], &snapshot.pods);
    assert_eq!(
        wrong,
        [
            format!("checkout-{ROLLOUT_HASH}-p0 runs 1.21.2 (1-21-2)"),
            format!("checkout-{ROLLOUT_HASH}-p1 runs 1.21.2 (1-21-2)"),
        ]
    );
}

// ---------------------------------------------------------------- budgets

#[test]
fn a_workload_whose_budget_allows_no_disruption_is_held_not_restarted() {
    let p = plan_of(
        cluster()
            .workload(
                WorkloadFixture::deployment("pay", "payments")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .pdb("pay", "payments", 0)
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .pdb("pay", "checkout", 1),
        &RestartOptions::default(),
    );
    let names: Vec<String> = p.actions.iter().map(|a| a.reference()).collect();
    assert_eq!(names, ["rollout/checkout"]);
    assert_eq!(
        p.actions[0].disruption_budgets,
        [Budget {
            name: "checkout".into(),
            disruptions_allowed: 1
        }]
    );
    assert_eq!(p.held.len(), 1);
    let held = &p.held[0];
    assert_eq!(
        (held.kind, held.name.as_str()),
        (WorkloadKind::Deployment, "payments")
    );
    assert_eq!(held.reason, "pdb-allows-zero");
    assert_eq!(held.disruption_budget, "payments");
    assert!(
        held.note
            .starts_with("PodDisruptionBudget payments allows 0 disruptions now")
    );
    let document = serde_json::to_value(&p).unwrap();
    assert_eq!(document["held"][0]["disruptionBudget"], "payments");
    assert_eq!(
        document["actions"][0]["disruptionBudgets"],
        json!([{"name": "checkout", "disruptionsAllowed": 1}])
    );
}

#[test]
fn restarts_under_one_budget_are_paced_by_what_it_allows() {
    // One PDB over every pod of shop (app=shop) allowing 1.
    let p = plan_of(
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .namespace("shop", &[("istio.io/rev", "1-22-3")])
            .workload(
                WorkloadFixture::deployment("shop", "cart")
                    .template_label("part-of", "shop")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .workload(
                WorkloadFixture::deployment("shop", "web")
                    .template_label("part-of", "shop")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .workload(
                WorkloadFixture::deployment("shop", "search")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .edit(|s| {
                s.pod_disruption_budgets.push(crate::snapshot::PdbInfo {
                    namespace: "shop".into(),
                    name: "shop-all".into(),
                    selector: crate::snapshot::LabelMatcher::from_map(
                        &crate::mesh::fixtures::labels(&[("part-of", "shop")]),
                    ),
                    min_available: None,
                    max_unavailable: Some("1".into()),
                    disruptions_allowed: 1,
                    current_healthy: 4,
                    desired_healthy: 3,
                    expected_pods: 4,
                })
            }),
        &RestartOptions::default(),
    );
    let index = |name: &str| p.actions.iter().position(|a| a.name == name).unwrap();
    let pacing = p.pacing();
    assert!(!pacing.may_start(index("web"), &[index("cart")]));
    assert!(pacing.may_start(index("search"), &[index("cart")]));
    assert!(pacing.may_start(index("web"), &[index("search")]));
    let text = crate::render::restart::plan_text(&p, &crate::render::Layout::unlimited());
    assert!(
        text.contains(
            "Paced: PodDisruptionBudget shop/shop-all allows 1 disruption, so its 2 workloads restart one at a time."
        ),
        "{text}"
    );
}

#[test]
fn a_stopped_run_says_a_rollouts_restart_has_nothing_to_undo() {
    use crate::mesh::restart::{Outcome, RestartReport, WorkloadResult};
    use crate::render::restart::written_and_undo;
    let p = plan_of(
        cluster().rollout(
            RolloutFixture::new("pay", "checkout").pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        ),
        &RestartOptions::default(),
    );
    let result = |kind, name: &str, outcome| WorkloadResult {
        namespace: "pay".into(),
        kind,
        name: name.into(),
        outcome,
        detail: None,
        seconds: None,
    };
    let only_rollouts = RestartReport::new(
        &p,
        vec![result(WorkloadKind::Rollout, "checkout", Outcome::TimedOut)],
    );
    assert_eq!(
        written_and_undo(&only_rollouts).as_deref(),
        Some(
            "already restarted (spec.restartAt set to this run's time): pay/rollout/checkout; Argo replaces their pods without changing a template, so there is nothing to undo"
        )
    );
    let mixed = RestartReport::new(
        &p,
        vec![
            result(WorkloadKind::Rollout, "checkout", Outcome::Restarted),
            result(WorkloadKind::Deployment, "payments", Outcome::TimedOut),
        ],
    );
    let sentence = written_and_undo(&mixed).unwrap();
    assert!(
        sentence.contains("kubectl rollout undo deployment/payments -n pay (a Rollout's restart changes no template: nothing to undo)"),
        "{sentence}"
    );
}
