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
use crate::snapshot::{Labels, NamespaceInfo};

/// Namespace label turning injection on (`enabled`) or off (anything else).
pub const INJECTION_LABEL: &str = "istio-injection";
/// Namespace or pod label choosing a revision or tag.
pub const REV_LABEL: &str = "istio.io/rev";
/// Pod label (or legacy annotation) opting a pod in or out.
pub const INJECT_LABEL: &str = "sidecar.istio.io/inject";
/// Namespace label of ambient mode.
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";
/// Namespaces Istio's injector never injects, whatever the webhooks say.
pub const IGNORED_NAMESPACES: &[&str] = &["kube-system", "kube-public"];

/// What a new pod would get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InjectionOutcome {
    /// A proxy from `revision`.
    Injected {
        revision: String,
        /// The proxy version that revision injects (unknown for a remote istiod).
        version: Option<String>,
        /// The webhook that matched (`configuration/webhook`).
        via_webhook: String,
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
    /// The pod says `sidecar.istio.io/inject: "false"`.
    OptedOut,
    /// The namespace is in ambient mode.
    Ambient,
    /// The namespace says `istio-injection` with a value other than `enabled`.
    Disabled,
    /// `kube-system` or `kube-public`: the injector skips them.
    IgnoredNamespace,
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
/// `namespace` would get. `annotations` only matter for the legacy
/// `sidecar.istio.io/inject` annotation, which the injector (not the API
/// server) honours.
pub fn expected_revision(
    namespace: &NamespaceInfo,
    labels: &Labels,
    annotations: &Labels,
    control_plane: &ControlPlane,
) -> InjectionOutcome {
    if namespace
        .labels
        .get(DATAPLANE_MODE_LABEL)
        .map(String::as_str)
        == Some("ambient")
    {
        return InjectionOutcome::NotInjected {
            reason: NotInjectedReason::Ambient,
        };
    }
    match first_answer(namespace, labels, control_plane) {
        Some(Answer::Inject {
            revision,
            version,
            via_webhook,
            via_tag,
        }) => {
            if IGNORED_NAMESPACES.contains(&namespace.name.as_str()) {
                return InjectionOutcome::NotInjected {
                    reason: NotInjectedReason::IgnoredNamespace,
                };
            }
            if annotations.get(INJECT_LABEL).map(String::as_str) == Some("false") {
                return InjectionOutcome::NotInjected {
                    reason: NotInjectedReason::OptedOut,
                };
            }
            InjectionOutcome::Injected {
                revision,
                version,
                via_webhook,
                via_tag,
            }
        }
        Some(Answer::Fail { webhook, revision }) => {
            InjectionOutcome::WouldFail { webhook, revision }
        }
        Some(Answer::SkippedUnavailable { revision }) => InjectionOutcome::NotInjected {
            reason: NotInjectedReason::InjectorUnavailable { revision },
        },
        None => InjectionOutcome::NotInjected {
            reason: no_match_reason(namespace, labels, control_plane),
        },
    }
}

enum Answer {
    Inject {
        revision: String,
        version: Option<String>,
        via_webhook: String,
        via_tag: Option<String>,
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

fn first_answer(
    namespace: &NamespaceInfo,
    labels: &Labels,
    control_plane: &ControlPlane,
) -> Option<Answer> {
    let mut skipped: Option<String> = None;
    for hook in &control_plane.webhooks {
        if !hook.webhook.namespace_selector.matches(&namespace.labels)
            || !hook.webhook.object_selector.matches(labels)
        {
            continue;
        }
        let (revision, available, version) = match &hook.target {
            WebhookTarget::Revision(index) => {
                let r = &control_plane.revisions[*index];
                (r.revision.clone(), r.is_ready(), r.proxy_version.clone())
            }
            WebhookTarget::External { revision, .. } => (
                revision.clone().unwrap_or_else(|| "unknown".to_string()),
                true,
                None,
            ),
            WebhookTarget::Unresolved { revision, .. } => (
                revision.clone().unwrap_or_else(|| "unknown".to_string()),
                false,
                None,
            ),
        };
        if available {
            return Some(Answer::Inject {
                revision,
                version,
                via_webhook: hook.qualified_name(),
                via_tag: hook.tag.clone(),
            });
        }
        if hook.webhook.fails_closed() {
            return Some(Answer::Fail {
                webhook: hook.qualified_name(),
                revision,
            });
        }
        // failurePolicy: Ignore — the API server goes on to the next webhook.
        skipped.get_or_insert(revision);
    }
    skipped.map(|revision| Answer::SkippedUnavailable { revision })
}

/// Why nothing matched, in the terms a person labelled things with.
fn no_match_reason(
    namespace: &NamespaceInfo,
    labels: &Labels,
    control_plane: &ControlPlane,
) -> NotInjectedReason {
    if labels.get(INJECT_LABEL).map(String::as_str) == Some("false") {
        let mut without = labels.clone();
        without.remove(INJECT_LABEL);
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
        .or_else(|| labels.get(REV_LABEL))
    {
        return NotInjectedReason::MissingRevision {
            selected: selected.clone(),
        };
    }
    if labels.get(INJECT_LABEL).map(String::as_str) == Some("true") {
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
        // `enableNamespacesByDefault`: the namespace webhook matches every
        // namespace without an opt-out, labelled or not.
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .enable_namespaces_by_default("1-22-3")
            .build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let unlabelled = namespace("anything", &[]);
        assert_eq!(
            expected_revision(&unlabelled, &Labels::new(), &Labels::new(), &cp).revision(),
            Some("1-22-3")
        );
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
