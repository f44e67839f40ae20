//! Injection facts end to end: the plugin, run by the real kubectl as a
//! plugin, reading what mesh-sim's injector and charts produced. The model's
//! rules are unit-tested in both crates against shared tables; these tests
//! check that the facts survive the real path (LIST pages, conversion,
//! kubectl's plugin discovery) on the scenarios built for them.

use super::*;

/// `kubectl mesh-upgrade <args>` through kubectl's plugin discovery.
fn kubectl_plugin(sim: &Sim, args: &[&str]) -> Run {
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));
    let mut full = vec!["mesh-upgrade"];
    full.extend_from_slice(args);
    env.run(KUBECTL, &full)
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {list:#}"))
}

#[test]
fn tags_are_read_from_their_webhook_configurations_and_from_their_services() {
    let sim = Sim::start(SimOptions::default().scenario("revision-tags"))
        .expect("the revision-tags scenario starts");
    let run = kubectl_plugin(&sim, &["status", "-A", "-o", "json", "--exit-code"]);
    assert_eq!(
        run.code, 3,
        "a tag without a webhook needs attention: {run:#?}"
    );
    let report = parse_json(&run);

    let revision = |rev: &str| {
        report["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["revision"] == rev)
            .unwrap_or_else(|| panic!("no revision {rev}: {report:#}"))
            .clone()
    };
    assert_eq!(
        revision("1-26-2")["tags"],
        serde_json::json!(["prod-legacy", "prod-stable"])
    );
    assert_eq!(
        revision("1-27-1")["tags"],
        serde_json::json!(["prod-canary"])
    );

    let namespaces = &report["namespaces"];
    for name in ["legacy", "stable"] {
        let ns = named(namespaces, name);
        assert_eq!(ns["revision"], "1-26-2", "{ns:#}");
        assert_eq!(ns["problems"], serde_json::json!([]), "{ns:#}");
    }
    let canary = named(namespaces, "canary");
    assert_eq!(canary["revision"], Value::Null);
    assert_eq!(
        canary["problems"][0]["code"], "tag-without-webhook",
        "{canary:#}"
    );

    let web = |namespace: &str| {
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["namespace"] == namespace && w["name"] == "web")
            .unwrap()
            .clone()
    };
    assert_eq!(web("stable")["state"], "up-to-date");
    assert_eq!(
        web("stable")["expectedImage"],
        "docker.io/istio/proxyv2:1.26.2"
    );
    assert_eq!(web("legacy")["state"], "up-to-date");
    assert_eq!(web("canary")["state"], "not-injected");
}
