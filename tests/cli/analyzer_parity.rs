//! Parity with `istioctl analyze`'s injection analyzers: the kinds of
//! clusters Istio's own analyzer tests use (`analyzers_test.go`: the
//! `istioInjection*` cases for `injection.Analyzer`, the
//! `istioInjectionProxyImageMismatch*` and distroless cases for
//! `injection.ImageAnalyzer`), built here from scratch and loaded into
//! mesh-sim with a control plane as Istio's charts render it. The plugin runs
//! through the real kubectl's plugin discovery, and `status -o json` must
//! classify each namespace and workload as those analyzers would report it:
//!
//! | analyzer message | the plugin |
//! |---|---|
//! | IST0123 NamespaceMultipleInjectionLabels | namespace problem `both-labels` / `sidecar-and-ambient-labels` |
//! | IST0103 PodMissingProxy | workload `not-injected` |
//! | IST0158 PodsIstioProxyImageMismatchInNamespace | the namespace's mismatched workloads `stale` |
//! | IST0102 NamespaceNotInjected (info) | namespace `none`, no revision |
//! | nothing | none of the above |
//!
//! The clusters are built as they come about: a pod runs an old proxy
//! because it was injected before istiod was upgraded in place, and a pod
//! runs none because its namespace was labelled after it started. The
//! analyzer's cases are not copied; these are written from what its code
//! (`pkg/config/analysis/analyzers/injection/`) checks.

use super::*;
use serde_json::json;

use mesh_sim::inject::{RevisionOptions, istio_revision_manifests};

const HUB: &str = "registry.istio.io/release";

fn yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn namespace(name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A one-replica Deployment of `app`, with extra template labels and
/// annotations.
fn deployment(
    ns: &str,
    name: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    host_network: bool,
) -> Value {
    let mut template_labels = json!({"app": name});
    for (k, v) in labels {
        template_labels[*k] = json!(v);
    }
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": template_labels, "annotations": annotations},
                "spec": {
                    "hostNetwork": host_network,
                    "containers": [{"name": "details", "image": format!("{HUB}/examples-bookinfo-details-v1:1.15.0")}],
                },
            },
        },
    })
}

fn plain(ns: &str, name: &str) -> Value {
    deployment(ns, name, &[], &[], false)
}

/// A pod no controller owns.
fn bare_pod(ns: &str, name: &str, annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": {"containers": [{"name": "server", "image": "gcr.io/google-samples/microservices-demo/adservice:v0.1.1"}]},
    })
}

/// The default install (`revision: ""`) at `version`, from the hub above.
fn default_install(version: &str, opts: RevisionOptions) -> String {
    istio_revision_manifests(
        None,
        version,
        &RevisionOptions {
            hub: HUB.into(),
            ..opts
        },
    )
}

/// Starts mesh-sim with `phases` loaded in order (the controllers settle
/// after each) and returns `status -A -o json` as kubectl runs the plugin.
fn status_after(phases: &[String]) -> (Sim, Value) {
    let mut options = SimOptions::default().manifests(&yaml(&[namespace("istio-system", &[])]));
    for phase in phases {
        options = options.manifests(phase);
    }
    let sim = Sim::start(options).expect("the sim starts");
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));
    let run = env.run(KUBECTL, &["mesh-upgrade", "status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    (sim, report)
}

/// `namespace/name` → state, for every workload of the report.
fn states(report: &Value) -> BTreeMap<String, String> {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!(
                    "{}/{}",
                    w["namespace"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                w["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Namespaces with a problem of the analyzers' kinds, with its code.
fn label_conflicts(report: &Value) -> BTreeMap<String, String> {
    report["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| {
            n["problems"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(move |p| {
                    let code = p["code"].as_str().unwrap();
                    matches!(code, "both-labels" | "sidecar-and-ambient-labels")
                        .then(|| (n["name"].as_str().unwrap().to_string(), code.to_string()))
                })
        })
        .collect()
}

fn namespace_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no namespace {name}"))
}

fn expect_states(report: &Value, expected: &[(&str, &str)]) {
    let found = states(report);
    for (workload, state) in expected {
        assert_eq!(
            found.get(*workload).map(String::as_str),
            Some(*state),
            "{workload}; all: {found:#?}"
        );
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ------------------------------------------------ injection.Analyzer

/// The namespaces of the first analyzer case: every way of labelling one.
fn labelled_namespaces() -> Vec<Value> {
    vec![
        namespace("ambient", &[("istio.io/dataplane-mode", "ambient")]),
        namespace("foo", &[("istio-injection", "disabled")]),
        namespace("bar", &[]),
        namespace("canary-test", &[("istio.io/rev", "canary")]),
        namespace(
            "busted",
            &[("istio-injection", "enabled"), ("istio.io/rev", "canary")],
        ),
        namespace(
            "multi-ns-1",
            &[("istio-injection", "enabled"), ("istio.io/rev", "test")],
        ),
        namespace(
            "multi-ns-2",
            &[
                ("istio-injection", "enabled"),
                ("istio.io/dataplane-mode", "ambient"),
            ],
        ),
        namespace(
            "multi-ns-3",
            &[
                ("istio.io/rev", "test"),
                ("istio.io/dataplane-mode", "ambient"),
            ],
        ),
        namespace(
            "not-conflict-ns-1",
            &[
                ("istio-injection", "disabled"),
                ("istio.io/dataplane-mode", "ambient"),
            ],
        ),
        namespace(
            "not-conflict-ns-2",
            &[("istio-injection", "disabled"), ("istio.io/rev", "test")],
        ),
    ]
}

#[test]
fn injection_analyzer_cases_missing_proxies_opt_outs_and_conflicting_labels() {
    let canary = istio_revision_manifests(
        Some("canary"),
        "1.22.3",
        &RevisionOptions {
            hub: HUB.into(),
            ..RevisionOptions::default()
        },
    );
    let before_labelling = yaml(&[
        plain("default", "noninjected"),
        bare_pod("default", "noninjectedpod", &[]),
    ]);
    let mut labelled = vec![namespace("default", &[("istio-injection", "enabled")])];
    labelled.extend(labelled_namespaces());
    labelled.extend([
        plain("default", "injected"),
        deployment(
            "default",
            "podinjectiondisabled",
            &[],
            &[("sidecar.istio.io/inject", "false")],
            false,
        ),
        deployment(
            "default",
            "podinjectiondisabled-label",
            &[("sidecar.istio.io/inject", "false")],
            &[],
            false,
        ),
        deployment(
            "default",
            "podinjectiondisabled-label-and-anno",
            &[("sidecar.istio.io/inject", "false")],
            &[("sidecar.istio.io/inject", "true")],
            false,
        ),
        deployment("default", "noninjectedpodhostnetwork", &[], &[], true),
        bare_pod(
            "default",
            "podinjectiondisabled-bare",
            &[("sidecar.istio.io/inject", "false")],
        ),
    ]);
    let (_sim, report) = status_after(&[
        default_install("1.22.3", RevisionOptions::default()),
        canary,
        before_labelling,
        yaml(&labelled),
    ]);

    // IST0103 for the pods started before the label; nothing for the
    // opted-out and host-network ones.
    expect_states(
        &report,
        &[
            ("default/injected", "up-to-date"),
            ("default/noninjected", "not-injected"),
            ("default/podinjectiondisabled", "opted-out"),
            ("default/podinjectiondisabled-label", "opted-out"),
            ("default/podinjectiondisabled-label-and-anno", "opted-out"),
            ("default/noninjectedpodhostnetwork", "no-mesh"),
        ],
    );
    let bare: Vec<(&str, &str)> = report["unreachablePods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["state"].as_str().unwrap()))
        .collect();
    assert_eq!(bare, [("noninjectedpod", "not-injected")]);

    // IST0123, exactly where the analyzer reports it.
    assert_eq!(
        label_conflicts(&report),
        map(&[
            ("busted", "both-labels"),
            ("multi-ns-1", "both-labels"),
            ("multi-ns-2", "sidecar-and-ambient-labels"),
            ("multi-ns-3", "sidecar-and-ambient-labels"),
        ])
    );
    // Disabling is deliberate: a note, not a problem.
    let parked = namespace_of(&report, "not-conflict-ns-2");
    assert_eq!(parked["injection"], "disabled");
    assert_eq!(parked["problems"], json!([]));
    assert_eq!(parked["notes"].as_array().unwrap().len(), 1, "{parked:#}");
    assert_eq!(
        namespace_of(&report, "not-conflict-ns-1")["injection"],
        "ambient"
    );
    assert_eq!(namespace_of(&report, "ambient")["injection"], "ambient");
    assert_eq!(namespace_of(&report, "ambient")["problems"], json!([]));
    // With both labels sidecars win, as the webhooks decide.
    assert_eq!(namespace_of(&report, "multi-ns-2")["revision"], "default");
    // IST0102 (info): outside the mesh.
    let bar = namespace_of(&report, "bar");
    assert_eq!(
        (&bar["injection"], &bar["revision"]),
        (&json!("none"), &Value::Null)
    );
    assert_eq!(namespace_of(&report, "canary-test")["revision"], "canary");
}

#[test]
fn injection_analyzer_with_namespaces_enabled_by_default_injects_unlabelled_namespaces() {
    let (_sim, report) = status_after(&[
        default_install(
            "1.22.3",
            RevisionOptions {
                enable_namespaces_by_default: true,
                ..RevisionOptions::default()
            },
        ),
        yaml(&[namespace("bar", &[]), plain("bar", "details")]),
    ]);
    // NamespaceInjectionEnabledByDefault instead of IST0102: bar is injected.
    assert_eq!(namespace_of(&report, "bar")["revision"], "default");
    expect_states(&report, &[("bar/details", "up-to-date")]);
}

// ------------------------------------------------ injection.ImageAnalyzer

/// The workloads an image-mismatch case starts with, injected by the
/// 1.3.0-prerelease and 1.3.0 istiods before the upgrade to 1.3.1.
fn old_proxies(final_install: String, extra_after: Vec<Value>) -> Vec<String> {
    let native = [("sidecar.istio.io/nativeSidecar", "true")];
    let mut after = vec![
        // `default` is not injected any more: the analyzer skips it.
        namespace("default", &[]),
        plain("enabled-namespace", "details-v1-new"),
        deployment(
            "enabled-namespace",
            "details-v1-new-native",
            &[],
            &native,
            false,
        ),
        deployment(
            "enabled-namespace",
            "details-v1-overwritten-sidecar",
            &[],
            &[(
                "sidecar.istio.io/proxyImage",
                &format!("{HUB}/proxyv2:1.3.0-prerelease"),
            )],
            false,
        ),
    ];
    after.extend(extra_after);
    vec![
        default_install("1.3.0-prerelease", RevisionOptions::default()),
        yaml(&[
            namespace("enabled-namespace", &[("istio-injection", "enabled")]),
            namespace(
                "enabled-namespace-native",
                &[("istio-injection", "enabled")],
            ),
            namespace("default", &[("istio-injection", "enabled")]),
            plain("enabled-namespace", "details-v1-old-pre"),
        ]),
        default_install("1.3.0", RevisionOptions::default()),
        yaml(&[
            plain("enabled-namespace", "details-v1-old"),
            deployment(
                "enabled-namespace-native",
                "details-v1-old-native",
                &[],
                &native,
                false,
            ),
            plain("default", "details-v2-old"),
        ]),
        final_install,
        yaml(&after),
    ]
}

fn expect_image_mismatches(report: &Value) {
    expect_states(
        report,
        &[
            // IST0158 in enabled-namespace and enabled-namespace-native.
            ("enabled-namespace/details-v1-old", "stale"),
            ("enabled-namespace/details-v1-old-pre", "stale"),
            ("enabled-namespace-native/details-v1-old-native", "stale"),
            ("enabled-namespace/details-v1-new", "up-to-date"),
            ("enabled-namespace/details-v1-new-native", "up-to-date"),
            // A custom image always overrides the injector: not compared.
            (
                "enabled-namespace/details-v1-overwritten-sidecar",
                "custom-image",
            ),
            // Not an injected namespace: no mismatch. (The plugin says more
            // than the analyzer here: a restart would drop this proxy.)
            ("default/details-v2-old", "no-injector"),
        ],
    );
}

#[test]
fn image_analyzer_cases_old_proxies_are_stale_where_the_image_differs() {
    let (_sim, report) = status_after(&old_proxies(
        default_install("1.3.1", RevisionOptions::default()),
        Vec::new(),
    ));
    expect_image_mismatches(&report);
    let default = &report["revisions"][0];
    assert_eq!(default["proxyImage"], format!("{HUB}/proxyv2:1.3.1"));
}

#[test]
fn image_analyzer_cases_with_an_absolute_proxy_image_and_a_canary_revision() {
    // `global.proxy.image` as a whole reference: it wins over hub and tag,
    // even when `global.tag` (and istiod) still say 1.3.0.
    let absolute = RevisionOptions {
        proxy_image: Some(format!("{HUB}/proxyv2:1.3.1")),
        ..RevisionOptions::default()
    };
    let canary = |version: &str, opts: RevisionOptions| {
        istio_revision_manifests(
            Some("canary"),
            version,
            &RevisionOptions {
                hub: HUB.into(),
                ..opts
            },
        )
    };
    let mut phases = vec![
        canary("1.3.0", RevisionOptions::default()),
        yaml(&[
            namespace("revision-namespace", &[("istio.io/rev", "canary")]),
            plain("revision-namespace", "revision-details-v1-old"),
        ]),
        canary("1.3.1", absolute.clone()),
    ];
    phases.extend(old_proxies(
        default_install("1.3.0", absolute),
        vec![
            plain("revision-namespace", "revision-details-v1-new"),
            deployment(
                "revision-namespace",
                "revision-details-v1-overwritten-sidecar",
                &[],
                &[(
                    "sidecar.istio.io/proxyImage",
                    &format!("{HUB}/proxyv2:1.3.0-prerelease"),
                )],
                false,
            ),
        ],
    ));
    let (_sim, report) = status_after(&phases);
    expect_image_mismatches(&report);
    expect_states(
        &report,
        &[
            ("revision-namespace/revision-details-v1-old", "stale"),
            ("revision-namespace/revision-details-v1-new", "up-to-date"),
            (
                "revision-namespace/revision-details-v1-overwritten-sidecar",
                "custom-image",
            ),
        ],
    );
    let default = report["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == "default")
        .unwrap();
    assert_eq!(default["version"], "1.3.0", "istiod itself is 1.3.0");
    assert_eq!(default["proxyVersion"], "1.3.1");
}

#[test]
fn image_analyzer_distroless_cases_a_variant_is_no_mismatch_an_old_version_is() {
    // The analyzer takes the variant from the mesh config's image type;
    // `global.variant` renders the same image.
    let distroless = RevisionOptions {
        variant: Some("distroless".into()),
        ..RevisionOptions::default()
    };
    let (_sim, report) = status_after(&[
        default_install("1.3.0", RevisionOptions::default()),
        yaml(&[
            namespace("enabled-namespace", &[("istio-injection", "enabled")]),
            namespace("enabled-namespace-2", &[("istio-injection", "enabled")]),
            plain("enabled-namespace", "details-v1-old"),
        ]),
        default_install("1.3.1", RevisionOptions::default()),
        yaml(&[plain("enabled-namespace-2", "details-v1-new")]),
        default_install("1.3.1", distroless),
        yaml(&[plain("enabled-namespace-2", "details-v1-new-distroless")]),
    ]);
    expect_states(
        &report,
        &[
            ("enabled-namespace/details-v1-old", "stale"),
            ("enabled-namespace-2/details-v1-new", "up-to-date"),
            (
                "enabled-namespace-2/details-v1-new-distroless",
                "up-to-date",
            ),
        ],
    );
    let new = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "details-v1-new-distroless")
        .unwrap();
    assert_eq!(
        new["expectedImage"],
        format!("{HUB}/proxyv2:1.3.1-distroless")
    );
    assert_eq!(new["proxies"][0]["version"], "1.3.1");
}
