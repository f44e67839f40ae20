//! `tag` and "when can the old revision go" end to end: `kubectl
//! mesh-upgrade ...` through the real kubectl's plugin discovery, against
//! mesh-sim, whose injector reads the webhook configurations the verb writes
//! as the API server would.
//!
//! The `tags` scenario: revisions 1-27-3 and 1-28-1; `shop` and `pay` on
//! `prod-stable` (-> 1-27-3), `search` on `prod-canary` (-> 1-28-1, webhook
//! configuration and Service), `reports` on `istio.io/rev=1-27-3` directly,
//! and an ingress gateway whose pods select `prod-stable` themselves.

use std::path::Path;
use std::time::Duration;

use mesh_sim::inject::{RevisionOptions, istio_revision_manifests};
use mesh_sim::resources::kinds;
use mesh_sim::{FaultRule, Faults, RequestRecord, Sim, SimOptions};
use serde_json::{Value, json};

use super::{Env, KUBECTL, PLUGIN, Run, canary};

/// kubectl with a PATH directory holding the plugin under the name kubectl
/// discovers (a link to the built binary).
struct Kubectl {
    env: Env,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn on(sim: &Sim) -> Kubectl {
        assert!(Path::new(KUBECTL).exists(), "these tests need {KUBECTL}");
        let dir = tempfile::tempdir().expect("a PATH directory");
        std::os::unix::fs::symlink(PLUGIN, dir.path().join("kubectl-mesh_upgrade"))
            .expect("linking the plugin");
        let env = Env::new()
            .kubeconfig(sim.kubeconfig_path())
            .var("PATH", &format!("{}:/usr/bin:/bin", dir.path().display()));
        Kubectl { env, _dir: dir }
    }

    /// `kubectl mesh-upgrade <args>`.
    fn mesh(&self, args: &[&str]) -> Run {
        let mut all = vec!["mesh-upgrade"];
        all.extend_from_slice(args);
        self.env.run(KUBECTL, &all)
    }

    /// Plain `kubectl <args>`.
    fn kubectl(&self, args: &[&str]) -> Run {
        self.env.run(KUBECTL, args)
    }
}

fn tags_scenario() -> Sim {
    Sim::start(SimOptions::default().scenario("tags")).expect("the tags scenario starts")
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
}

fn webhook_configuration(sim: &Sim, name: &str) -> Option<Value> {
    sim.get(kinds::mutating_webhooks(), "", name)
}

fn service(sim: &Sim, name: &str) -> Option<Value> {
    sim.get(kinds::services(), "istio-system", name)
}

fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect()
}

/// The `istio-proxy` images of the running pods of `namespace`.
fn proxy_images(sim: &Sim, namespace: &str) -> Vec<String> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some(namespace))
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|p| {
                p["spec"]["containers"]
                    .as_array()?
                    .iter()
                    .chain(p["spec"]["initContainers"].as_array().into_iter().flatten())
                    .find(|c| c["name"] == "istio-proxy")
                    .and_then(|c| c["image"].as_str().map(str::to_string))
            })
            .collect()
    })
}

fn services_of_webhooks(config: &Value) -> Vec<String> {
    config["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|w| {
            w["clientConfig"]["service"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn revision_of<'a>(status: &'a Value, revision: &str) -> &'a Value {
    status["revisions"]
        .as_array()
        .expect("revisions")
        .iter()
        .find(|r| r["revision"] == revision)
        .unwrap_or_else(|| panic!("revision {revision} in {status:#}"))
}

fn users(revision: &Value) -> Vec<String> {
    revision["usedBy"]
        .as_array()
        .expect("usedBy")
        .iter()
        .map(|u| match u["namespace"].as_str() {
            Some(ns) => format!(
                "{}/{ns}/{}",
                u["kind"].as_str().unwrap(),
                u["name"].as_str().unwrap()
            ),
            None => format!(
                "{}/{}",
                u["kind"].as_str().unwrap(),
                u["name"].as_str().unwrap()
            ),
        })
        .collect()
}

#[test]
fn the_tag_based_canary_moves_the_tag_restarts_what_became_stale_and_ends_with_the_old_revision_removable()
 {
    let sim = tags_scenario();
    let k = Kubectl::on(&sim);

    // Before: the old revision is used by the tag, its namespaces and more.
    let run = k.mesh(&["status", "--exit-code", "--require-unused", "1-27-3"]);
    assert_eq!(run.code, 3, "{run:#?}");
    assert!(
        run.stderr.contains(
            "status --require-unused 1-27-3: still used by 3 namespaces (pay, reports, shop), 1 tag (prod-stable)"
        ),
        "{run:#?}"
    );

    // The move and the restarts: one plan, one question (--yes), one document.
    sim.clear_requests();
    let run = k.mesh(&[
        "tag",
        "set",
        "prod-stable",
        "--revision",
        "1-28-1",
        "--restart",
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let list = json_of(&run);
    assert_eq!(list["kind"], "List", "{list:#}");
    let report = &list["items"][0];
    assert_eq!(report["kind"], "TagReport");
    assert_eq!(
        (report["fromRevision"].clone(), report["toRevision"].clone()),
        (json!("1-27-3"), json!("1-28-1"))
    );
    let restart = &list["items"][1];
    let mut restarted: Vec<String> = restart["results"]
        .as_array()
        .expect("restart results")
        .iter()
        .map(|r| {
            format!(
                "{}/{} {}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect();
    restarted.sort();
    assert_eq!(
        restarted,
        [
            "istio-gateways/istio-ingressgateway restarted",
            "pay/payments restarted",
            "shop/web restarted",
        ],
        "{list:#}"
    );
    // The plan went to stderr beside the document, gateway and all.
    assert!(
        run.stderr
            .contains("Gateways affected: istio-gateways/istio-ingressgateway (1-27-3 → 1-28-1)."),
        "{run:#?}"
    );

    // What was written: the configuration moved on its resourceVersion, the
    // 1.28 Service created, each with its record.
    let config = webhook_configuration(&sim, "istio-revision-tag-prod-stable")
        .expect("the tag's configuration");
    assert_eq!(config["metadata"]["labels"]["istio.io/rev"], "1-28-1");
    assert_eq!(
        config["metadata"]["labels"]["helm.sh/chart"],
        "istiod-1.28.1"
    );
    assert_eq!(
        config["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"],
        r#"{"revision":"1-27-3"}"#
    );
    assert!(
        services_of_webhooks(&config)
            .iter()
            .all(|s| s == "istiod-1-28-1"),
        "{config:#}"
    );
    let tag_service = service(&sim, "istiod-revision-tag-prod-stable").expect("the tag's Service");
    assert_eq!(
        tag_service["spec"]["selector"],
        json!({"app": "istiod", "istio.io/rev": "1-28-1"})
    );
    let tag_writes: Vec<(String, String)> = writes(&sim)
        .iter()
        .filter(|r| !r.path.contains("/deployments/"))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        tag_writes,
        [
            (
                "PATCH".to_string(),
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-revision-tag-prod-stable".to_string()
            ),
            ("POST".to_string(), "/api/v1/namespaces/istio-system/services".to_string()),
        ]
    );
    // mesh-sim's injector honours it: the restarted pods run 1.28.1, and so
    // does a pod created now in a prod-stable namespace.
    for namespace in ["shop", "pay", "istio-gateways"] {
        let images = proxy_images(&sim, namespace);
        assert!(
            !images.is_empty() && images.iter().all(|i| i.ends_with(":1.28.1")),
            "{namespace}: {images:?}"
        );
    }
    let run = k.kubectl(&[
        "run",
        "probe",
        "-n",
        "shop",
        "--image=ghcr.io/example/probe:1",
        "--restart=Never",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let probe = sim
        .get(kinds::pods(), "shop", "probe")
        .expect("the probe pod");
    assert!(probe.to_string().contains("proxyv2:1.28.1"), "{probe:#}");
    let run = k.kubectl(&["delete", "pod", "probe", "-n", "shop", "--wait=false"]);
    assert_eq!(run.code, 0, "{run:#?}");

    // Nothing stale; the old revision is used only by what was left on it.
    let run = k.mesh(&["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let status = json_of(&run);
    assert_eq!(status["summary"]["workloads"]["stale"], 0, "{status:#}");
    let old = revision_of(&status, "1-27-3");
    assert_eq!(old["inUse"], true);
    assert_eq!(
        users(old),
        ["Deployment/reports/report", "Namespace/reports"]
    );
    assert_eq!(
        revision_of(&status, "1-28-1")["tags"],
        json!(["prod-canary", "prod-stable"])
    );
    let run = k.mesh(&["status", "--exit-code", "--require-unused", "1-27-3"]);
    assert_eq!(run.code, 3, "{run:#?}");

    // The last namespace moves; then the old revision can go.
    let run = k.mesh(&[
        "relabel",
        "-n",
        "reports",
        "--to",
        "prod-stable",
        "--restart",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let run = k.mesh(&["status", "--exit-code", "--require-unused", "1-27-3"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout.contains(
            "1-27-3    no      nothing: it can be removed with istioctl uninstall --revision 1-27-3"
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("status --require-unused 1-27-3: nothing uses it; remove it with: istioctl uninstall --revision 1-27-3"),
        "{run:#?}"
    );
    // An unknown revision is an error sentence.
    let run = k.mesh(&["status", "--require-unused", "1-26-0"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains("--require-unused 1-26-0: no such revision; revisions: 1-27-3, 1-28-1"),
        "{run:#?}"
    );

    // The way back: the configuration moves back, the Service the move
    // created is deleted, and the records are gone.
    let run = k.mesh(&["tag", "set", "--undo", "prod-stable", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let config =
        webhook_configuration(&sim, "istio-revision-tag-prod-stable").expect("still there");
    assert_eq!(config["metadata"]["labels"]["istio.io/rev"], "1-27-3");
    assert!(
        services_of_webhooks(&config)
            .iter()
            .all(|s| s == "istiod-1-27-3"),
        "{config:#}"
    );
    assert!(
        config["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"].is_null(),
        "{config:#}"
    );
    assert!(service(&sim, "istiod-revision-tag-prod-stable").is_none());
    let run = k.mesh(&["tag", "list", "-o", "json"]);
    let list = json_of(&run);
    let stable = &list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "prod-stable")
        .cloned()
        .unwrap();
    assert_eq!(stable["revision"], "1-27-3");
    assert_eq!(stable["representation"], "webhook");
    assert_eq!(stable["namespaces"], json!(["pay", "reports", "shop"]));
}

#[test]
fn tag_list_shows_each_tag_its_representation_and_its_users() {
    let sim = tags_scenario();
    let k = Kubectl::on(&sim);
    sim.clear_requests();
    let run = k.mesh(&["tag", "list"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // The fixed read every verb starts from: one LIST per kind, cluster-wide,
    // whatever the number of tags, namespaces or pods; nothing read by name.
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.name.is_empty()),
        "{requests:#?}"
    );
    assert_eq!(requests.len(), 17, "{requests:#?}");
    assert_eq!(
        run.stdout,
        "TAG          REVISION  AS       NAMESPACES  PODS\n\
         prod-canary  1-28-1    both     search      1\n\
         prod-stable  1-27-3    webhook  pay,shop    6\n"
    );
    let run = k.mesh(&["tag", "list", "-o", "yaml"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let list: Value = serde_yaml::from_str(&run.stdout).expect("YAML");
    assert_eq!(list["kind"], "TagList");
    let canary = &list["tags"][0];
    assert_eq!(
        canary["webhookConfiguration"],
        "istio-revision-tag-prod-canary"
    );
    assert_eq!(canary["service"], "istiod-revision-tag-prod-canary");
    assert_eq!(
        list["tags"][1]["podsByNamespace"],
        json!({"istio-gateways": 2, "pay": 2, "shop": 2})
    );
}

#[test]
fn a_dry_run_writes_nothing_and_a_server_dry_run_sends_every_write_with_dry_run() {
    let sim = tags_scenario();
    let k = Kubectl::on(&sim);
    let before = webhook_configuration(&sim, "istio-revision-tag-prod-stable");
    sim.clear_requests();
    let run = k.mesh(&[
        "tag",
        "set",
        "prod-stable",
        "--revision",
        "1-28-1",
        "--restart",
        "--dry-run",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains("Move tag prod-stable from 1-27-3 to 1-28-1:"),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("--restart: 3 workloads to restart"),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty(), "{:#?}", writes(&sim));

    let run = k.mesh(&[
        "tag",
        "set",
        "prod-stable",
        "--revision",
        "1-28-1",
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let plan = json_of(&run);
    assert_eq!(plan["kind"], "TagPlan");
    assert_eq!(
        plan["writes"][1]["change"]["create"]["kind"], "Service",
        "{plan:#}"
    );
    assert!(writes(&sim).is_empty());

    let run = k.mesh(&[
        "tag",
        "set",
        "prod-stable",
        "--revision",
        "1-28-1",
        "--dry-run=server",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let sent = writes(&sim);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(
        sent.iter().all(|r| r.is_dry_run() && r.status < 300),
        "{sent:#?}"
    );
    assert_eq!(
        webhook_configuration(&sim, "istio-revision-tag-prod-stable"),
        before
    );
    assert!(service(&sim, "istiod-revision-tag-prod-stable").is_none());

    // No terminal, no --yes: refused before any write.
    let run = k.mesh(&["tag", "set", "prod-stable", "--revision", "1-28-1"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert_eq!(writes(&sim).len(), 2, "nothing more was sent");
}

#[test]
fn remove_is_refused_while_namespaces_use_the_tag_and_force_removes_it() {
    let sim = canary();
    let k = Kubectl::on(&sim);
    sim.clear_requests();
    let run = k.mesh(&["tag", "remove", "prod-stable", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains("tag prod-stable is still used by 1 namespace (cart): new pods there would start without a proxy"),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty());
    // A tag named like a revision is refused, as istioctl refuses it.
    let run = k.mesh(&["tag", "set", "1-21-2", "--revision", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains("a revision named 1-21-2 exists"),
        "{run:#?}"
    );

    let run = k.mesh(&["tag", "remove", "prod-stable", "--force", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(webhook_configuration(&sim, "istio-revision-tag-prod-stable").is_none());
    assert!(
        run.stdout
            .contains("Undo with: kubectl mesh-upgrade tag set prod-stable --revision 1-21-2"),
        "{run:#?}"
    );
    let deletes: Vec<RequestRecord> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
}

/// The in-place scenario's default install (istiod, the four webhooks of
/// istio-sidecar-injector) and a new revision, 1-23-1, beside it.
fn in_place_with_a_new_revision() -> Sim {
    let sim = Sim::start(SimOptions::default().scenario("in-place")).expect("in-place starts");
    sim.apply_yaml(&istio_revision_manifests(
        Some("1-23-1"),
        "1.23.1",
        &RevisionOptions::default(),
    ))
    .expect("the new revision applies");
    sim.settle();
    sim
}

#[test]
fn moving_the_default_tag_deactivates_the_default_install_and_undo_brings_it_back() {
    let sim = in_place_with_a_new_revision();
    let k = Kubectl::on(&sim);
    let own_before =
        webhook_configuration(&sim, "istio-sidecar-injector").expect("the default install's");

    let run = k.mesh(&["tag", "set", "default", "--revision", "1-23-1", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let tag = webhook_configuration(&sim, "istio-revision-tag-default").expect("the default tag");
    let names: Vec<&str> = tag["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rev.namespace.sidecar-injector.istio.io",
            "rev.object.sidecar-injector.istio.io",
            "namespace.sidecar-injector.istio.io",
            "object.sidecar-injector.istio.io",
        ]
    );
    let own = webhook_configuration(&sim, "istio-sidecar-injector").expect("kept");
    for hook in own["webhooks"].as_array().unwrap() {
        assert_eq!(
            hook["namespaceSelector"],
            json!({"matchLabels": {"istio.io/deactivated": "never-match"}})
        );
        assert_eq!(
            hook["objectSelector"],
            json!({"matchLabels": {"istio.io/deactivated": "never-match"}})
        );
    }
    // An istio-injection=enabled namespace's new pod gets the new revision.
    let namespace = sim
        .with_world(|w| {
            w.store
                .list(kinds::namespaces(), None)
                .find(|n| n["metadata"]["labels"]["istio-injection"] == "enabled")
                .and_then(|n| n["metadata"]["name"].as_str().map(str::to_string))
        })
        .expect("an istio-injection=enabled namespace");
    let run = k.kubectl(&[
        "run",
        "probe",
        "-n",
        &namespace,
        "--image=ghcr.io/example/probe:1",
        "--restart=Never",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let probe = sim
        .get(kinds::pods(), &namespace, "probe")
        .expect("the probe pod");
    assert!(probe.to_string().contains("proxyv2:1.23.1"), "{probe:#}");
    // status sees it the same way.
    let run = k.mesh(&["status", "-A", "-o", "json"]);
    let status = json_of(&run);
    assert_eq!(revision_of(&status, "1-23-1")["default"], true);
    assert_eq!(
        users(revision_of(&status, "default"))
            .iter()
            .filter(|u| u.starts_with("MutatingWebhookConfiguration"))
            .count(),
        0
    );

    let run = k.mesh(&["tag", "set", "--undo", "default", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(webhook_configuration(&sim, "istio-revision-tag-default").is_none());
    let own_after = webhook_configuration(&sim, "istio-sidecar-injector").expect("kept");
    assert_eq!(own_after["webhooks"], own_before["webhooks"]);
    assert_eq!(
        own_after["metadata"]["annotations"],
        own_before["metadata"]["annotations"]
    );
}

#[test]
fn ctrl_c_between_the_writes_of_a_tag_stops_there_says_what_was_written_and_the_undo_takes_it_back()
{
    let sim = in_place_with_a_new_revision();
    let k = Kubectl::on(&sim);
    let own_before =
        webhook_configuration(&sim, "istio-sidecar-injector").expect("the default install's");
    // The first write (creating the tag's webhooks) is held three seconds:
    // the Ctrl-C lands while it is on the wire, before the second write
    // (deactivating the default install's own webhooks) may start.
    sim.set_faults(
        Faults::new().rule(
            FaultRule::on("create", "mutatingwebhookconfigurations")
                .latency(Duration::from_secs(3))
                .next(1),
        ),
    );
    sim.clear_requests();
    let run = k.env.interrupt_once_stdout_shows(
        KUBECTL,
        &[
            "mesh-upgrade",
            "tag",
            "set",
            "default",
            "--revision",
            "1-23-1",
            "--yes",
        ],
        "istio-sidecar-injector",
        Duration::from_millis(500),
    );
    assert_eq!(run.code, 130, "{run:#?}");
    assert_eq!(
        writes(&sim).len(),
        1,
        "only the write in flight: {:#?}",
        writes(&sim)
    );
    assert!(
        webhook_configuration(&sim, "istio-revision-tag-default").is_some(),
        "the write in flight finished"
    );
    let own = webhook_configuration(&sim, "istio-sidecar-injector").expect("kept");
    assert_eq!(own["webhooks"], own_before["webhooks"], "never deactivated");
    assert!(
        run.stdout.contains("not-sent"),
        "the report marks the write not sent: {run:#?}"
    );
    assert!(
        !run.stdout.contains("now points at"),
        "no success sentence: {run:#?}"
    );
    let undo = "kubectl mesh-upgrade tag set --undo default";
    assert!(
        run.stderr
            .contains("interrupted: tag set default stopped with 1 of its 2 writes not sent")
            && run.stderr.contains("already written: create")
            && run.stderr.contains(undo),
        "{run:#?}"
    );

    sim.clear_faults();
    let run = k.mesh(&["tag", "set", "--undo", "default", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(webhook_configuration(&sim, "istio-revision-tag-default").is_none());
    let own_after = webhook_configuration(&sim, "istio-sidecar-injector").expect("kept");
    assert_eq!(own_after["webhooks"], own_before["webhooks"]);
}
