//! Which revision a new pod of a template would get, decided the way the API
//! server decides it.
//!
//! The API server calls, in order (configurations sorted by name, webhooks in
//! their listed order), every webhook whose rules cover pod CREATE and whose
//! `namespaceSelector` matches the namespace's labels and `objectSelector` the
//! pod's labels (an absent selector matches everything). Istio's injector
//! leaves a pod alone once it carries a proxy, so the first Istio webhook that
//! answers decides the revision; a later one does not re-inject. A webhook
//! whose istiod cannot answer fails the pod's creation under
//! `failurePolicy: Fail` and is skipped under `Ignore`.
//!
//! Evaluating the selectors rather than reading label rules honours revision
//! tags, a moved `default` tag, `enableNamespacesByDefault` installs and
//! custom selectors; on standard installs the two agree (the tests show both).
//!
//! ```text
//! namespace labels ─┐
//! template labels ──┼─► webhooks in call order ─► first match ─► Service ─► istiod ─► revision, version
//! ```

use std::fmt;

use crate::mesh::control_plane::{ControlPlane, WebhookTarget};
use crate::snapshot::{InjectionPolicyConfig, LabelLookup, Labels, NamespaceInfo, SharedStr};

pub mod policy;

pub use policy::{Declined, IGNORED_NAMESPACES, NewPod, inject_required};

/// Namespace label turning injection on (`enabled`) or off (anything else).
pub const INJECTION_LABEL: &str = "istio-injection";
/// Namespace or pod label choosing a revision or tag.
pub const REV_LABEL: &str = "istio.io/rev";
/// Pod label (or legacy annotation) opting a pod in or out.
pub const INJECT_LABEL: &str = crate::snapshot::INJECT_KEY;
/// Namespace (or pod) label of ambient mode.
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";

/// What a new pod would get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InjectionOutcome {
    /// A proxy from `revision`.
    Injected {
        revision: String,
        /// The proxy version that revision injects (unknown for a remote istiod).
        version: Option<String>,
        /// The webhook that matched (`configuration/webhook`).
        via_webhook: SharedStr,
        /// The revision tag whose configuration matched, if any.
        via_tag: Option<String>,
    },
    /// No proxy.
    NotInjected { reason: NotInjectedReason },
    /// A matching `failurePolicy: Fail` webhook whose istiod has no Ready
    /// pod: the pod's creation would be refused.
    WouldFail { webhook: String, revision: String },
}

impl InjectionOutcome {
    /// The revision a new pod would run (or would have run, for `WouldFail`).
    pub fn revision(&self) -> Option<&str> {
        match self {
            InjectionOutcome::Injected { revision, .. } => Some(revision),
            InjectionOutcome::WouldFail { revision, .. } => Some(revision),
            InjectionOutcome::NotInjected { .. } => None,
        }
    }

    /// Whether a new pod would be created with a proxy.
    pub fn is_injected(&self) -> bool {
        matches!(self, InjectionOutcome::Injected { .. })
    }
}

/// Why a new pod would get no proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotInjectedReason {
    /// The pod says `sidecar.istio.io/inject: "false"` (label or annotation).
    OptedOut,
    /// The namespace (or pod) is in ambient mode and nothing asks for a sidecar.
    Ambient,
    /// The namespace says `istio-injection` with a value other than `enabled`.
    Disabled,
    /// `kube-system`, `kube-public`, `kube-node-lease` or
    /// `local-path-storage`: istiod skips them.
    IgnoredNamespace,
    /// `spec.hostNetwork: true`: istiod never injects it.
    HostNetwork,
    /// The injector config of `revision` refuses it: a `neverInjectSelector`
    /// matches, or its policy is disabled (or invalid) and nothing opts in.
    DeclinedByPolicy { revision: String, why: Declined },
    /// A label names a revision or tag that no webhook serves (`selected` is
    /// that name, `default` for `istio-injection=enabled` with no default).
    MissingRevision { selected: String },
    /// The matching webhooks' istiod has no Ready pod and they fail open
    /// (`failurePolicy: Ignore`).
    InjectorUnavailable { revision: String },
    /// Nothing selects the pod for injection.
    NoMatchingWebhook,
}

impl fmt::Display for NotInjectedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotInjectedReason::OptedOut => f.write_str("opted out (sidecar.istio.io/inject=false)"),
            NotInjectedReason::Ambient => f.write_str("ambient namespace"),
            NotInjectedReason::Disabled => f.write_str("injection disabled in the namespace"),
            NotInjectedReason::IgnoredNamespace => {
                f.write_str("the injector ignores this namespace")
            }
            NotInjectedReason::HostNetwork => f.write_str("hostNetwork pods are never injected"),
            NotInjectedReason::DeclinedByPolicy { revision, why } => {
                write!(f, "istiod {revision} declines it: {why}")
            }
            NotInjectedReason::MissingRevision { selected } => {
                write!(f, "no injector serves revision or tag {selected}")
            }
            NotInjectedReason::InjectorUnavailable { revision } => {
                write!(f, "istiod {revision} has no Ready pod (webhook fails open)")
            }
            NotInjectedReason::NoMatchingWebhook => f.write_str("not selected for injection"),
        }
    }
}

/// What a new pod of a template with `labels` and `annotations` in
/// `namespace` would get (not host-network). `annotations` only matter for
/// what istiod (not the API server) reads: the legacy
/// `sidecar.istio.io/inject` annotation.
pub fn expected_revision(
    namespace: &NamespaceInfo,
    labels: &dyn LabelLookup,
    annotations: &Labels,
    control_plane: &ControlPlane,
) -> InjectionOutcome {
    expected_for_pod(
        namespace,
        &NewPod {
            labels,
            annotations,
            host_network: false,
        },
        control_plane,
    )
}

/// What a new `pod` in `namespace` would get: the API server's webhook
/// selection, then istiod's own decision ([`inject_required`]).
pub fn expected_for_pod(
    namespace: &NamespaceInfo,
    pod: &NewPod<'_>,
    control_plane: &ControlPlane,
) -> InjectionOutcome {
    match first_answer(namespace, pod.labels, control_plane) {
        Some(Answer::Inject {
            revision,
            version,
            via_webhook,
            via_tag,
            policy,
        }) => match inject_required(&namespace.name, pod, policy) {
            Ok(()) => InjectionOutcome::Injected {
                revision,
                version,
                via_webhook,
                via_tag,
            },
            Err(why) => InjectionOutcome::NotInjected {
                reason: match why {
                    Declined::HostNetwork => NotInjectedReason::HostNetwork,
                    Declined::IgnoredNamespace => NotInjectedReason::IgnoredNamespace,
                    Declined::OptedOut => NotInjectedReason::OptedOut,
                    why => NotInjectedReason::DeclinedByPolicy { revision, why },
                },
            },
        },
        Some(Answer::Fail { webhook, revision }) => {
            InjectionOutcome::WouldFail { webhook, revision }
        }
        Some(Answer::SkippedUnavailable { revision }) => InjectionOutcome::NotInjected {
            reason: NotInjectedReason::InjectorUnavailable { revision },
        },
        None => InjectionOutcome::NotInjected {
            reason: no_match_reason(namespace, pod.labels, control_plane),
        },
    }
}

/// The injection labels of a namespace that conflict, as istioctl analyze
/// reports them (IST0123, `NamespaceMultipleInjectionLabels`, in Istio's
/// `pkg/config/analysis/analyzers/injection/injection.go`): `istio-injection`
/// if set, plus `istio.io/rev` and `istio.io/dataplane-mode` if set, the last
/// two only while `istio-injection` is absent or `enabled` (disabling is
/// deliberate). Two or more is a conflict; the control-plane namespace is
/// never reported. Returns the conflicting `key=value` pairs, or empty.
pub fn conflicting_injection_labels(
    namespace: &NamespaceInfo,
    control_plane_namespace: &str,
) -> Vec<String> {
    if namespace.name == control_plane_namespace {
        return Vec::new();
    }
    let labels = &namespace.labels;
    let legacy = labels.get(INJECTION_LABEL);
    let mut found: Vec<String> = legacy
        .map(|v| format!("{INJECTION_LABEL}={v}"))
        .into_iter()
        .collect();
    if legacy.is_none_or(|v| v == "enabled") {
        for key in [REV_LABEL, DATAPLANE_MODE_LABEL] {
            if let Some(value) = labels.get(key) {
                found.push(format!("{key}={value}"));
            }
        }
    }
    if found.len() > 1 { found } else { Vec::new() }
}

/// Whether the namespace or the pod's labels enrol it in ambient mode.
fn is_ambient(namespace: &NamespaceInfo, labels: &dyn LabelLookup) -> bool {
    let ambient = |l: &dyn LabelLookup| l.label(DATAPLANE_MODE_LABEL) == Some("ambient");
    labels.label(DATAPLANE_MODE_LABEL) != Some("none")
        && (ambient(&namespace.labels) || ambient(labels))
}

enum Answer<'a> {
    Inject {
        revision: String,
        version: Option<String>,
        via_webhook: SharedStr,
        via_tag: Option<String>,
        /// The answering istiod's injector `config` (`None`: unknown).
        policy: Option<&'a InjectionPolicyConfig>,
    },
    Fail {
        webhook: String,
        revision: String,
    },
    /// Only `Ignore` webhooks matched and none could answer.
    SkippedUnavailable {
        revision: String,
    },
}

fn first_answer<'a>(
    namespace: &NamespaceInfo,
    labels: &dyn LabelLookup,
    control_plane: &'a ControlPlane,
) -> Option<Answer<'a>> {
    let mut skipped: Option<String> = None;
    for hook in &control_plane.webhooks {
        if !hook.webhook.namespace_selector.matches(&namespace.labels)
            || !hook.webhook.object_selector.matches(labels)
        {
            continue;
        }
        let (revision, available, version, policy) = match &hook.target {
            WebhookTarget::Revision(index) => {
                let r = &control_plane.revisions[*index];
                (
                    r.revision.clone(),
                    r.is_ready(),
                    r.proxy_version.clone(),
                    r.injection_policy.as_ref(),
                )
            }
            WebhookTarget::External { revision, .. } => (
                revision.clone().unwrap_or_else(|| "unknown".to_string()),
                true,
                None,
                None,
            ),
            WebhookTarget::Unresolved { revision, .. } => (
                revision.clone().unwrap_or_else(|| "unknown".to_string()),
                false,
                None,
                None,
            ),
        };
        if available {
            return Some(Answer::Inject {
                revision,
                version,
                via_webhook: hook.qualified_name.clone(),
                via_tag: hook.tag.clone(),
                policy,
            });
        }
        if hook.webhook.fails_closed() {
            return Some(Answer::Fail {
                webhook: hook.qualified_name.to_string(),
                revision,
            });
        }
        // failurePolicy: Ignore — the API server goes on to the next webhook.
        skipped.get_or_insert(revision);
    }
    skipped.map(|revision| Answer::SkippedUnavailable { revision })
}

/// Labels without one key (what a pod's labels would be without its opt-out).
#[derive(Debug)]
struct Without<'a>(&'a dyn LabelLookup, &'a str);

impl LabelLookup for Without<'_> {
    fn label(&self, key: &str) -> Option<&str> {
        if key == self.1 {
            None
        } else {
            self.0.label(key)
        }
    }
}

/// Why nothing matched, in the terms a person labelled things with.
fn no_match_reason(
    namespace: &NamespaceInfo,
    labels: &dyn LabelLookup,
    control_plane: &ControlPlane,
) -> NotInjectedReason {
    // The webhooks do not look at ambient mode: a namespace labelled both
    // ways gets sidecars (and the CNI leaves pods with a sidecar alone).
    // Only when no webhook matched is the pod ztunnel's.
    if is_ambient(namespace, labels) {
        return NotInjectedReason::Ambient;
    }
    if labels.label(INJECT_LABEL) == Some("false") {
        let without = Without(labels, INJECT_LABEL);
        if first_answer(namespace, &without, control_plane).is_some() {
            return NotInjectedReason::OptedOut;
        }
    }
    match namespace.labels.get(INJECTION_LABEL).map(String::as_str) {
        Some("enabled") => {
            return NotInjectedReason::MissingRevision {
                selected: "default".to_string(),
            };
        }
        Some(_) => return NotInjectedReason::Disabled,
        None => {}
    }
    if let Some(selected) = namespace
        .labels
        .get(REV_LABEL)
        .map(String::as_str)
        .or_else(|| labels.label(REV_LABEL))
    {
        return NotInjectedReason::MissingRevision {
            selected: selected.to_string(),
        };
    }
    if labels.label(INJECT_LABEL) == Some("true") {
        return NotInjectedReason::MissingRevision {
            selected: "default".to_string(),
        };
    }
    NotInjectedReason::NoMatchingWebhook
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, labels, namespace};

    /// The label rules of mesh-facts ("Which revision a namespace and a pod
    /// get"), written independently of webhooks, for standard installs.
    fn label_rules(
        ns: &Labels,
        pod: &Labels,
        cp: &ControlPlane,
        default: Option<&str>,
    ) -> Option<String> {
        if ns.get(DATAPLANE_MODE_LABEL).map(String::as_str) == Some("ambient") {
            return None;
        }
        if pod.get(INJECT_LABEL).map(String::as_str) == Some("false") {
            return None;
        }
        let exists = |name: &str| cp.resolve(name).map(str::to_string);
        match ns.get(INJECTION_LABEL).map(String::as_str) {
            Some("enabled") => return default.map(str::to_string),
            Some(_) => return None,
            None => {}
        }
        if let Some(rev) = ns.get(REV_LABEL) {
            return exists(rev);
        }
        if let Some(rev) = pod.get(REV_LABEL) {
            return exists(rev);
        }
        if pod.get(INJECT_LABEL).map(String::as_str) == Some("true") {
            return default.map(str::to_string);
        }
        None
    }

    struct Case {
        name: &'static str,
        ns: &'static [(&'static str, &'static str)],
        pod: &'static [(&'static str, &'static str)],
        expect: Option<&'static str>,
    }

    const STANDARD_CASES: &[Case] = &[
        Case {
            name: "istio-injection=enabled gets the default",
            ns: &[("istio-injection", "enabled")],
            pod: &[],
            expect: Some("1-21-2"),
        },
        Case {
            name: "istio.io/rev names a revision",
            ns: &[("istio.io/rev", "1-22-3")],
            pod: &[],
            expect: Some("1-22-3"),
        },
        Case {
            name: "both labels: legacy wins",
            ns: &[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")],
            pod: &[],
            expect: Some("1-21-2"),
        },
        Case {
            name: "a tag resolves to its revision",
            ns: &[("istio.io/rev", "prod-canary")],
            pod: &[],
            expect: Some("1-22-3"),
        },
        Case {
            name: "pod label istio.io/rev in an unlabelled namespace",
            ns: &[],
            pod: &[("istio.io/rev", "1-22-3")],
            expect: Some("1-22-3"),
        },
        Case {
            name: "pod inject=false opts out",
            ns: &[("istio-injection", "enabled")],
            pod: &[("sidecar.istio.io/inject", "false")],
            expect: None,
        },
        Case {
            name: "pod inject=true opts in with the default",
            ns: &[],
            pod: &[("sidecar.istio.io/inject", "true")],
            expect: Some("1-21-2"),
        },
        Case {
            name: "a missing revision matches nothing",
            ns: &[("istio.io/rev", "1-22-4")],
            pod: &[],
            expect: None,
        },
        Case {
            name: "injection disabled",
            ns: &[("istio-injection", "disabled")],
            pod: &[],
            expect: None,
        },
        Case {
            name: "unlabelled namespace",
            ns: &[],
            pod: &[],
            expect: None,
        },
        Case {
            name: "ambient namespace",
            ns: &[("istio.io/dataplane-mode", "ambient")],
            pod: &[],
            expect: None,
        },
        Case {
            name: "pod label disabled by namespace",
            ns: &[("istio-injection", "disabled")],
            pod: &[("istio.io/rev", "1-22-3")],
            expect: None,
        },
    ];

    fn canary_control_plane() -> ClusterFixture {
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .tag("prod-canary", "1-22-3")
    }

    #[test]
    fn webhook_evaluation_agrees_with_label_rules_on_a_standard_canary_install() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let default = cp.default_revision();
        assert_eq!(default.as_deref(), Some("1-21-2"));
        for case in STANDARD_CASES {
            let ns = namespace("ns", case.ns);
            let pod = labels(case.pod);
            let outcome = expected_revision(&ns, &pod, &Labels::new(), &cp);
            assert_eq!(
                outcome.revision(),
                case.expect,
                "{}: {outcome:?}",
                case.name
            );
            assert_eq!(
                label_rules(&ns.labels, &pod, &cp, default.as_deref()).as_deref(),
                case.expect,
                "label rules disagree: {}",
                case.name
            );
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Table {
        control_plane: TableControlPlane,
        admission: Vec<AdmissionCase>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TableControlPlane {
        default_revision: TableRevision,
        revisions: Vec<TableRevision>,
        tags: Vec<TableTag>,
    }

    #[derive(serde::Deserialize)]
    struct TableRevision {
        revision: Option<String>,
        version: String,
    }

    #[derive(serde::Deserialize)]
    struct TableTag {
        tag: String,
        revision: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct AdmissionCase {
        name: String,
        namespace: Option<String>,
        #[serde(default)]
        namespace_labels: Labels,
        #[serde(default)]
        labels: Labels,
        #[serde(default)]
        annotations: Labels,
        #[serde(default)]
        host_network: bool,
        revision: Option<String>,
    }

    #[test]
    fn every_admission_case_of_the_shared_table_gets_the_revision_istio_gives_it() {
        let table: Table =
            serde_yaml::from_str(include_str!("../../testdata/injection-policy-cases.yaml"))
                .expect("the case table parses");
        let plane = &table.control_plane;
        let mut fixture = ClusterFixture::new()
            .default_revision_install("default", &plane.default_revision.version);
        for r in &plane.revisions {
            fixture = fixture.revision(r.revision.as_deref().expect("a revision name"), &r.version);
        }
        for t in &plane.tags {
            fixture = fixture.tag(&t.tag, &t.revision);
        }
        let cp = ControlPlane::from_snapshot(&fixture.build());
        assert!(table.admission.len() > 15);
        for case in &table.admission {
            let mut ns = namespace(case.namespace.as_deref().unwrap_or("shop"), &[]);
            ns.labels.extend(case.namespace_labels.clone());
            let pod = NewPod {
                labels: &case.labels,
                annotations: &case.annotations,
                host_network: case.host_network,
            };
            let outcome = expected_for_pod(&ns, &pod, &cp);
            assert_eq!(
                outcome.revision(),
                case.revision.as_deref(),
                "{}: {outcome:?}",
                case.name
            );
        }
    }

    #[test]
    fn a_host_network_pod_in_an_injected_namespace_is_declined_not_missing_a_proxy() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let ns = namespace("shop", &[("istio-injection", "enabled")]);
        let none = Labels::new();
        let pod = NewPod {
            labels: &none,
            annotations: &none,
            host_network: true,
        };
        assert_eq!(
            expected_for_pod(&ns, &pod, &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::HostNetwork
            }
        );
    }

    #[test]
    fn the_answering_revisions_policy_decides_not_another_revisions() {
        // 1-22-3 runs with `policy: disabled`; 1-21-2 keeps the default.
        let snapshot = canary_control_plane()
            .edit(|s| {
                for c in s
                    .injector_configs
                    .iter_mut()
                    .filter(|c| c.revision == "1-22-3")
                {
                    c.policy = crate::snapshot::InjectionPolicyConfig::parse("policy: disabled\n");
                }
            })
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let none = Labels::new();
        let plain = NewPod {
            labels: &none,
            annotations: &none,
            host_network: false,
        };
        let canary = namespace("pay", &[("istio.io/rev", "1-22-3")]);
        assert_eq!(
            expected_for_pod(&canary, &plain, &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::DeclinedByPolicy {
                    revision: "1-22-3".into(),
                    why: Declined::PolicyDisabled
                }
            }
        );
        let asks = labels(&[("sidecar.istio.io/inject", "true")]);
        let opted_in = NewPod {
            labels: &asks,
            ..plain
        };
        assert_eq!(
            expected_for_pod(&canary, &opted_in, &cp).revision(),
            Some("1-22-3")
        );
        let stable = namespace("shop", &[("istio-injection", "enabled")]);
        assert_eq!(
            expected_for_pod(&stable, &plain, &cp).revision(),
            Some("1-21-2")
        );
    }

    #[test]
    fn conflicting_labels_are_those_istioctl_analyze_reports() {
        let conflict = |pairs: &[(&str, &str)]| {
            conflicting_injection_labels(&namespace("ns", pairs), "istio-system")
        };
        assert_eq!(
            conflict(&[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")]),
            ["istio-injection=enabled", "istio.io/rev=1-22-3"]
        );
        assert_eq!(
            conflict(&[
                ("istio-injection", "enabled"),
                ("istio.io/dataplane-mode", "ambient")
            ]),
            ["istio-injection=enabled", "istio.io/dataplane-mode=ambient"]
        );
        assert_eq!(
            conflict(&[
                ("istio.io/rev", "1-22-3"),
                ("istio.io/dataplane-mode", "ambient")
            ]),
            ["istio.io/rev=1-22-3", "istio.io/dataplane-mode=ambient"]
        );
        assert!(
            conflict(&[("istio-injection", "disabled"), ("istio.io/rev", "1-22-3")]).is_empty()
        );
        assert!(
            conflict(&[
                ("istio-injection", "disabled"),
                ("istio.io/dataplane-mode", "ambient")
            ])
            .is_empty()
        );
        assert!(conflict(&[("istio.io/rev", "1-22-3")]).is_empty());
        assert!(
            conflicting_injection_labels(
                &namespace(
                    "istio-system",
                    &[("istio-injection", "enabled"), ("istio.io/rev", "x")]
                ),
                "istio-system"
            )
            .is_empty()
        );
    }

    #[test]
    fn a_moved_default_tag_sends_enabled_namespaces_to_the_new_revision() {
        let snapshot = ClusterFixture::new()
            .default_revision_install("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-22-3")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("shop", &[("istio-injection", "enabled")]);
        let outcome = expected_revision(&ns, &Labels::new(), &Labels::new(), &cp);
        assert_eq!(outcome.revision(), Some("1-22-3"));
        assert_eq!(cp.default_revision().as_deref(), Some("1-22-3"));
        match outcome {
            InjectionOutcome::Injected { via_tag, .. } => {
                assert_eq!(via_tag.as_deref(), Some("default"))
            }
            other => panic!("expected injection, got {other:?}"),
        }
    }

    #[test]
    fn the_default_revision_install_serves_enabled_namespaces_without_a_tag() {
        let cp = ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .default_revision_install("default", "1.22.3")
                .build(),
        );
        let ns = namespace("shop", &[("istio-injection", "enabled")]);
        let outcome = expected_revision(&ns, &Labels::new(), &Labels::new(), &cp);
        assert_eq!(
            outcome,
            InjectionOutcome::Injected {
                revision: "default".into(),
                version: Some("1.22.3".into()),
                via_webhook: "istio-sidecar-injector/namespace.sidecar-injector.istio.io".into(),
                via_tag: None,
            }
        );
    }

    #[test]
    fn tag_injection_reports_the_tag_that_matched() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let ns = namespace("batch", &[("istio.io/rev", "prod-canary")]);
        match expected_revision(&ns, &Labels::new(), &Labels::new(), &cp) {
            InjectionOutcome::Injected {
                revision,
                via_tag,
                version,
                ..
            } => {
                assert_eq!(revision, "1-22-3");
                assert_eq!(via_tag.as_deref(), Some("prod-canary"));
                assert_eq!(version.as_deref(), Some("1.22.3"));
            }
            other => panic!("expected injection, got {other:?}"),
        }
    }

    #[test]
    fn a_revision_without_ready_istiod_makes_pod_creation_fail() {
        let snapshot = canary_control_plane().unready("1-22-3").build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("pay", &[("istio.io/rev", "1-22-3")]);
        assert_eq!(
            expected_revision(&ns, &Labels::new(), &Labels::new(), &cp),
            InjectionOutcome::WouldFail {
                webhook: "istio-sidecar-injector-1-22-3/rev.namespace.sidecar-injector.istio.io"
                    .into(),
                revision: "1-22-3".into(),
            }
        );
    }

    #[test]
    fn a_fail_open_webhook_without_istiod_lets_the_pod_through_uninjected() {
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .unready("1-22-3")
            .failure_policy_ignore()
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("pay", &[("istio.io/rev", "1-22-3")]);
        assert_eq!(
            expected_revision(&ns, &Labels::new(), &Labels::new(), &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::InjectorUnavailable {
                    revision: "1-22-3".into()
                }
            }
        );
    }

    #[test]
    fn a_label_naming_a_missing_revision_says_which_name() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let ns = namespace("typo", &[("istio.io/rev", "1-22-4")]);
        assert_eq!(
            expected_revision(&ns, &Labels::new(), &Labels::new(), &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::MissingRevision {
                    selected: "1-22-4".into()
                }
            }
        );
    }

    #[test]
    fn opting_out_is_told_apart_from_not_being_selected() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let opted = labels(&[("sidecar.istio.io/inject", "false")]);
        let meshed = namespace("shop", &[("istio-injection", "enabled")]);
        let plain = namespace("no-mesh", &[]);
        assert_eq!(
            expected_revision(&meshed, &opted, &Labels::new(), &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::OptedOut
            }
        );
        assert_eq!(
            expected_revision(&plain, &opted, &Labels::new(), &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::NoMatchingWebhook
            }
        );
    }

    #[test]
    fn the_legacy_inject_annotation_is_honoured_by_the_injector() {
        let cp = ControlPlane::from_snapshot(&canary_control_plane().build());
        let meshed = namespace("shop", &[("istio-injection", "enabled")]);
        let annotations = labels(&[("sidecar.istio.io/inject", "false")]);
        assert_eq!(
            expected_revision(&meshed, &Labels::new(), &annotations, &cp),
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::OptedOut
            }
        );
    }

    #[test]
    fn a_custom_namespace_selector_is_honoured() {
        // A team-specific injector: any namespace labelled team=payments.
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .custom_webhook("payments-injector", "1-22-3", &[("team", "payments")], &[])
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("ledger", &[("team", "payments")]);
        let outcome = expected_revision(&ns, &Labels::new(), &Labels::new(), &cp);
        assert_eq!(outcome.revision(), Some("1-22-3"));
        let other = namespace("other", &[("team", "search")]);
        assert!(!expected_revision(&other, &Labels::new(), &Labels::new(), &cp).is_injected());
    }

    #[test]
    fn an_enable_namespaces_by_default_webhook_injects_unlabelled_namespaces() {
        // `enableNamespacesByDefault` on the default install: the chart's
        // `auto.` webhook matches namespaces without injection labels.
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.22.3")
            .enable_namespaces_by_default("default")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let unlabelled = namespace("anything", &[]);
        match expected_revision(&unlabelled, &Labels::new(), &Labels::new(), &cp) {
            InjectionOutcome::Injected {
                revision,
                via_webhook,
                ..
            } => {
                assert_eq!(revision, "default");
                assert_eq!(
                    via_webhook,
                    "istio-sidecar-injector/auto.sidecar-injector.istio.io"
                );
            }
            other => panic!("expected injection, got {other:?}"),
        }
        let opted_out = labels(&[("sidecar.istio.io/inject", "false")]);
        assert!(!expected_revision(&unlabelled, &opted_out, &Labels::new(), &cp).is_injected());
        let disabled = namespace("off", &[("istio-injection", "disabled")]);
        assert!(!expected_revision(&disabled, &Labels::new(), &Labels::new(), &cp).is_injected());
        assert!(
            !expected_revision(
                &namespace("kube-system", &[]),
                &Labels::new(),
                &Labels::new(),
                &cp
            )
            .is_injected()
        );
    }

    #[test]
    fn webhooks_of_other_products_do_not_decide_injection() {
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .foreign_webhook("aaa-policy-agent")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        assert!(
            cp.webhooks
                .iter()
                .all(|w| w.configuration != "aaa-policy-agent")
        );
        let ns = namespace("pay", &[("istio.io/rev", "1-22-3")]);
        assert_eq!(
            expected_revision(&ns, &Labels::new(), &Labels::new(), &cp).revision(),
            Some("1-22-3")
        );
    }

    #[test]
    fn the_injector_configmap_tag_wins_over_the_istiod_image_tag() {
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .injector_tag("1-22-3", "1.22.4-distroless")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("pay", &[("istio.io/rev", "1-22-3")]);
        match expected_revision(&ns, &Labels::new(), &Labels::new(), &cp) {
            InjectionOutcome::Injected { version, .. } => {
                assert_eq!(version.as_deref(), Some("1.22.4"))
            }
            other => panic!("expected injection, got {other:?}"),
        }
        assert_eq!(
            cp.revision("1-22-3").unwrap().istiod_version.as_deref(),
            Some("1.22.3")
        );
    }

    #[test]
    fn a_tag_whose_service_selects_no_istiod_fails_pod_creation() {
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .tag_to_missing_service("prod-next", "1-23-0")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let ns = namespace("pay", &[("istio.io/rev", "prod-next")]);
        assert!(matches!(
            expected_revision(&ns, &Labels::new(), &Labels::new(), &cp),
            InjectionOutcome::WouldFail { .. }
        ));
        assert_eq!(cp.tag("prod-next").unwrap().revision, None);
    }
}
