//! istiod's own decision, once a webhook has called it: inject this pod, or
//! admit it unchanged.
//!
//! The webhook selectors (see the parent module) decide whether istiod is
//! *asked*; `injectRequired` in Istio's `pkg/kube/inject/inject.go` then
//! decides, in this order:
//!
//! ```text
//! spec.hostNetwork ──yes──► no
//! ignored namespace ─yes──► no        (pkg/kube/inject/initializer.go)
//! sidecar.istio.io/inject: label, else annotation
//!     "true" ─► yes    "false" ─► no    anything else ─┐
//! neverInjectSelector matches ─► no                    │  (injector ConfigMap `config`)
//! alwaysInjectSelector matches ─► yes                  │
//! policy: enabled ─► yes   disabled ─► no   other ─► no (even for "true" above)
//! ```
//!
//! The rules are written from that function, not from its tests; the shared
//! case table `testdata/injection-policy-cases.yaml` (which mesh-sim's
//! injector also runs) pins them.

use std::fmt;

use crate::snapshot::{INJECT_KEY, InjectionPolicyConfig, LabelLookup, Labels};

/// Namespaces istiod never injects, whatever the webhooks say
/// (`IgnoredNamespaces` in Istio's `pkg/kube/inject/initializer.go`).
pub const IGNORED_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

/// The facts of a new pod the decision reads.
#[derive(Clone, Copy, Debug)]
pub struct NewPod<'a> {
    pub labels: &'a dyn LabelLookup,
    /// Annotations; only `sidecar.istio.io/*` ones matter.
    pub annotations: &'a Labels,
    /// `spec.hostNetwork: true`.
    pub host_network: bool,
}

/// Why istiod admitted a pod without injecting it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Declined {
    /// `spec.hostNetwork: true`: iptables rules would change the node's
    /// routing, so Istio never injects such pods.
    HostNetwork,
    /// One of [`IGNORED_NAMESPACES`].
    IgnoredNamespace,
    /// `sidecar.istio.io/inject: "false"` as a label or annotation.
    OptedOut,
    /// A `neverInjectSelector` of the injector's config matches the pod.
    NeverInjectSelector,
    /// `policy: disabled` and nothing opted the pod in.
    PolicyDisabled,
    /// `policy` is neither `enabled` nor `disabled` (or missing): istiod
    /// turns injection off entirely.
    InvalidPolicy { policy: String },
}

impl fmt::Display for Declined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Declined::HostNetwork => f.write_str("hostNetwork pods are never injected"),
            Declined::IgnoredNamespace => f.write_str("the injector ignores this namespace"),
            Declined::OptedOut => f.write_str("opted out (sidecar.istio.io/inject=false)"),
            Declined::NeverInjectSelector => {
                f.write_str("the injector's neverInjectSelector matches it")
            }
            Declined::PolicyDisabled => f.write_str(
                "the injector's policy is disabled and nothing opts it in (sidecar.istio.io/inject=true or alwaysInjectSelector)",
            ),
            Declined::InvalidPolicy { policy } if policy.is_empty() => {
                f.write_str("the injector's config names no policy, so istiod injects nothing")
            }
            Declined::InvalidPolicy { policy } => write!(
                f,
                "the injector's policy {policy:?} is neither enabled nor disabled, so istiod injects nothing"
            ),
        }
    }
}

/// What the injector ConfigMap's `config` says when there is none to read
/// (not installed, or not readable): the charts' `policy: enabled` with no
/// selectors.
fn standard() -> InjectionPolicyConfig {
    InjectionPolicyConfig {
        policy: "enabled".to_string(),
        never_inject_selector: Vec::new(),
        always_inject_selector: Vec::new(),
    }
}

/// istiod's `injectRequired`: `Ok` when it injects `pod` (created in
/// `namespace`), else why not. `config` is the revision's injector `config`
/// (`None`: the standard one).
pub fn inject_required(
    namespace: &str,
    pod: &NewPod<'_>,
    config: Option<&InjectionPolicyConfig>,
) -> Result<(), Declined> {
    if pod.host_network {
        return Err(Declined::HostNetwork);
    }
    if IGNORED_NAMESPACES.contains(&namespace) {
        return Err(Declined::IgnoredNamespace);
    }
    let standard = standard();
    let config = config.unwrap_or(&standard);
    // The label is the newer form; when both are set the label wins.
    let asked = pod
        .labels
        .label(INJECT_KEY)
        .or_else(|| pod.annotations.get(INJECT_KEY).map(String::as_str));
    let explicit = match asked {
        Some("true") => Some(true),
        Some("false") => Some(false),
        // Absent, or any other value (istiod warns and uses its default).
        _ => None,
    };
    let decided = explicit.or_else(|| {
        if config
            .never_inject_selector
            .iter()
            .any(|s| s.matches(pod.labels))
        {
            Some(false)
        } else if config
            .always_inject_selector
            .iter()
            .any(|s| s.matches(pod.labels))
        {
            Some(true)
        } else {
            None
        }
    });
    match config.policy.as_str() {
        "enabled" | "disabled" => {}
        other => {
            return Err(Declined::InvalidPolicy {
                policy: other.to_string(),
            });
        }
    }
    match decided {
        Some(true) => Ok(()),
        Some(false) if explicit == Some(false) => Err(Declined::OptedOut),
        Some(false) => Err(Declined::NeverInjectSelector),
        None if config.policy == "enabled" => Ok(()),
        None => Err(Declined::PolicyDisabled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    use crate::snapshot::InjectorConfigInfo;

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Table {
        policy: Vec<PolicyCase>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PolicyCase {
        name: String,
        #[serde(default = "shop")]
        namespace: String,
        #[serde(default)]
        labels: Labels,
        #[serde(default)]
        annotations: Labels,
        #[serde(default)]
        host_network: bool,
        config: Option<String>,
        inject: bool,
    }

    fn shop() -> String {
        "shop".to_string()
    }

    /// The config as the snapshot extracts it from an injector ConfigMap.
    fn config_from_configmap(text: &str) -> Option<InjectionPolicyConfig> {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"config": text},
        }))
        .expect("a ConfigMap");
        InjectorConfigInfo::from(&cm).policy
    }

    #[test]
    fn every_policy_case_of_the_shared_table_is_decided_as_injectrequired_decides_it() {
        let table: Table = serde_yaml::from_str(include_str!(
            "../../../testdata/injection-policy-cases.yaml"
        ))
        .expect("the case table parses");
        assert!(table.policy.len() > 20);
        for case in &table.policy {
            let config = case.config.as_deref().map(|text| {
                config_from_configmap(text)
                    .unwrap_or_else(|| panic!("{}: the config does not parse", case.name))
            });
            let pod = NewPod {
                labels: &case.labels,
                annotations: &case.annotations,
                host_network: case.host_network,
            };
            let decision = inject_required(&case.namespace, &pod, config.as_ref());
            assert_eq!(decision.is_ok(), case.inject, "{}: {decision:?}", case.name);
        }
    }

    #[test]
    fn each_refusal_says_which_rule_refused() {
        let none = Labels::new();
        let out = Labels::from([(INJECT_KEY.to_string(), "false".to_string())]);
        let pod = |labels, annotations, host_network| NewPod {
            labels,
            annotations,
            host_network,
        };
        assert_eq!(
            inject_required("shop", &pod(&none, &none, true), None),
            Err(Declined::HostNetwork)
        );
        assert_eq!(
            inject_required("kube-node-lease", &pod(&none, &none, false), None),
            Err(Declined::IgnoredNamespace)
        );
        assert_eq!(
            inject_required("shop", &pod(&none, &out, false), None),
            Err(Declined::OptedOut)
        );
        let never = config_from_configmap(
            "policy: enabled\nneverInjectSelector:\n- {}\n- matchLabels: {app: job}\n",
        )
        .unwrap();
        assert_eq!(
            never.never_inject_selector.len(),
            1,
            "the empty one is dropped"
        );
        let job = Labels::from([("app".to_string(), "job".to_string())]);
        assert_eq!(
            inject_required("shop", &pod(&job, &none, false), Some(&never)),
            Err(Declined::NeverInjectSelector)
        );
        let disabled = config_from_configmap("policy: disabled\n").unwrap();
        assert_eq!(
            inject_required("shop", &pod(&none, &none, false), Some(&disabled)),
            Err(Declined::PolicyDisabled)
        );
        let missing = config_from_configmap("defaultTemplates: [sidecar]\n").unwrap();
        assert_eq!(
            inject_required("shop", &pod(&none, &none, false), Some(&missing)),
            Err(Declined::InvalidPolicy {
                policy: String::new()
            })
        );
    }
}
