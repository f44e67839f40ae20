//! When can the old revision go? Per revision, everything that still uses
//! it, and when nothing does, the command that removes it.
//!
//! ```text
//! snapshot + ControlPlane + classification ─► per revision:
//!   used by: namespaces whose new pods get it (directly, through a tag, through
//!            istio-injection=enabled) or whose istio.io/rev label names it or a tag of it,
//!            tags pointing at it, workloads and gateways whose pods run its proxy
//!            (or whose pod template selects it), pods no restart reaches running it,
//!            other webhook configurations calling its istiod, and its own webhooks
//!            while they serve istio-injection=enabled (the default revision)
//!   own:     its istiod Deployment, its own webhook configuration(s), its istiod
//!            Services, its injector ConfigMap (what removing it removes)
//!   remove:  `helm uninstall <release> -n <ns>` when istiod carries Helm's release
//!            annotations, else `istioctl uninstall --revision <rev>`
//! ```
//!
//! Namespaces, tags and webhooks are always read whole; pods only in the
//! namespaces read, so a revision is called removable only when every
//! namespace was read (`complete`), and only when a newer revision runs
//! beside it: a canary just installed, with nothing on it yet, is unused but
//! not to be removed, and neither is the only control plane.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::mesh::control_plane::{ControlPlane, REV_LABEL, TAG_LABEL, WebhookTarget};
use crate::mesh::injection::{INJECTION_LABEL, InjectionOutcome, expected_revision};
use crate::mesh::proxy::Version;
use crate::mesh::workloads::Classification;
use crate::snapshot::{ClusterSnapshot, Labels, Scope, SharedStr};

/// One thing that uses a revision.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionUser {
    /// `Namespace`, `RevisionTag`, `Deployment`, `StatefulSet`, `DaemonSet`,
    /// `Pod` or `MutatingWebhookConfiguration`.
    pub kind: &'static str,
    /// `null` for cluster-scoped things (namespaces, tags, webhook configurations).
    pub namespace: Option<SharedStr>,
    pub name: SharedStr,
    /// Why it counts, in a few words. Workloads alike give the same words:
    /// one string shared by all of them.
    pub reason: SharedStr,
}

/// An object of the revision's own install.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnObject {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// What uses one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionUsage {
    pub revision: String,
    /// Sorted by kind, namespace, name.
    pub used_by: Vec<RevisionUser>,
    /// Its own control-plane objects: not users, what removing it removes.
    pub own_objects: Vec<OwnObject>,
    /// The command that removes it.
    pub remove_command: String,
    /// Every namespace was read, so `used_by` is whole.
    pub complete: bool,
    /// A revision of a newer Istio version runs beside it (what is left
    /// once this one goes).
    pub superseded: bool,
}

impl RevisionUsage {
    pub fn in_use(&self) -> bool {
        !self.used_by.is_empty()
    }

    /// Nothing uses it, the whole cluster was read, and a newer revision
    /// runs beside it.
    pub fn removable(&self) -> bool {
        !self.in_use() && self.complete && self.superseded
    }
}

fn user(kind: &'static str, namespace: Option<&str>, name: &str, reason: String) -> RevisionUser {
    RevisionUser {
        kind,
        namespace: namespace.map(SharedStr::from),
        name: name.into(),
        reason: reason.into(),
    }
}

/// One shared string per distinct reason: a revision's users are tens of
/// thousands of workloads whose reasons are a handful of sentences.
#[derive(Default)]
struct Reasons(HashMap<(bool, usize, Option<SharedStr>), SharedStr>);

impl Reasons {
    /// `3 pods run its proxy (1.22.3)`, with `gateway: ` before it for a gateway.
    fn running(&mut self, gateway: bool, pods: usize, version: Option<&SharedStr>) -> SharedStr {
        self.0
            .entry((gateway, pods, version.cloned()))
            .or_insert_with(|| {
                let what = if gateway { "gateway: " } else { "" };
                let version = version.map(|v| format!(" ({v})")).unwrap_or_default();
                let runs = if pods == 1 { "runs" } else { "run" };
                format!("{what}{} {runs} its proxy{version}", plural(pods, "pod")).into()
            })
            .clone()
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// What uses each revision of `control_plane`, in its order.
pub fn revision_usage(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    classification: &Classification,
) -> Vec<RevisionUsage> {
    let complete = snapshot.scope == Scope::All;
    let cp_namespace = &snapshot.control_plane_namespace;
    let default_tag = control_plane.tag("default");
    // What a plain new pod of each namespace gets, computed once (a big
    // cluster has many workloads per namespace).
    let namespace_gets: HashMap<&str, Option<String>> = snapshot
        .namespaces
        .iter()
        .map(|n| {
            let outcome = expected_revision(n, &Labels::new(), &Labels::new(), control_plane);
            (n.name.as_str(), outcome.revision().map(str::to_string))
        })
        .collect();
    control_plane
        .revisions
        .iter()
        .map(|revision| {
            let rev = revision.revision.as_str();
            let tags = control_plane.tags_of(rev);
            let mut used_by: Vec<RevisionUser> = Vec::new();

            for tag in control_plane.tags.iter().filter(|t| t.revision.as_deref() == Some(rev)) {
                let objects: Vec<String> = tag
                    .configuration
                    .iter()
                    .map(|c| format!("webhook configuration {c}"))
                    .chain(tag.service.iter().map(|s| format!("Service {s}")))
                    .collect();
                used_by.push(user(
                    "RevisionTag",
                    None,
                    &tag.name,
                    format!("points at {rev} ({})", objects.join(", ")),
                ));
            }

            for ns in snapshot.namespaces.iter().filter(|n| !n.terminating) {
                let label = ns.labels.get(REV_LABEL);
                let outcome = expected_revision(ns, &Labels::new(), &Labels::new(), control_plane);
                let gets = outcome.revision() == Some(rev)
                    && !matches!(outcome, InjectionOutcome::NotInjected { .. });
                let reason = if gets {
                    let via = match &outcome {
                        InjectionOutcome::Injected {
                            via_tag: Some(t), ..
                        } => match ns.labels.get(INJECTION_LABEL) {
                            Some(v) => format!("{INJECTION_LABEL}={v} through tag {t}"),
                            None => format!("{REV_LABEL}={} through tag {t}", label.map_or(t.as_str(), String::as_str)),
                        },
                        _ => match (ns.labels.get(INJECTION_LABEL), label) {
                            (Some(v), _) => format!("{INJECTION_LABEL}={v}"),
                            (None, Some(l)) => format!("{REV_LABEL}={l}"),
                            (None, None) => "no injection label".to_string(),
                        },
                    };
                    Some(format!("new pods get {rev} ({via})"))
                } else {
                    label
                        .filter(|l| l.as_str() == rev || tags.contains(&l.as_str()))
                        .map(|l| {
                            format!(
                                "labelled {REV_LABEL}={l}, which names {rev} (another label decides today)"
                            )
                        })
                };
                if let Some(reason) = reason {
                    used_by.push(user("Namespace", None, &ns.name, reason));
                }
            }

            let mut reasons = Reasons::default();
            for w in &classification.workloads {
                let running = w.pods.iter().filter(|p| p.revision.as_deref() == Some(rev));
                let version = running
                    .clone()
                    .filter_map(|p| p.proxy.as_ref())
                    .find_map(|p| p.version.as_ref());
                let count = running.count();
                let what = if w.is_gateway { "gateway: " } else { "" };
                if count > 0 {
                    // Each workload appears once in the classification.
                    used_by.push(RevisionUser {
                        kind: w.kind.as_str(),
                        namespace: Some(w.namespace.clone()),
                        name: w.name.clone(),
                        reason: reasons.running(w.is_gateway, count, version),
                    });
                    continue;
                }
                // A template that selects the revision itself, in a
                // namespace that does not.
                let namespace_revision = namespace_gets
                    .get(w.namespace.as_str())
                    .and_then(|r| r.as_deref());
                if w.expected.revision() == Some(rev) && namespace_revision != Some(rev) {
                    used_by.push(RevisionUser {
                        kind: w.kind.as_str(),
                        namespace: Some(w.namespace.clone()),
                        name: w.name.clone(),
                        reason: format!("{what}its pod template selects {rev}").into(),
                    });
                }
            }

            for p in &classification.unreachable {
                if p.revision.as_deref() == Some(rev) {
                    used_by.push(user(
                        "Pod",
                        Some(&p.namespace),
                        &p.name,
                        format!("runs its proxy; {}", p.reason),
                    ));
                }
            }

            let own_configuration = |labels: &Labels| {
                labels.get(REV_LABEL).map(String::as_str) == Some(rev) && !labels.contains_key(TAG_LABEL)
            };
            let mut foreign: BTreeMap<&str, ()> = BTreeMap::new();
            for hook in &control_plane.webhooks {
                let calls_it = matches!(hook.target, WebhookTarget::Revision(i) if control_plane.revisions[i].revision == rev);
                let config = snapshot.webhook_configurations.iter().find(|c| c.name == hook.configuration);
                let own = config.is_some_and(|c| own_configuration(&c.labels));
                if calls_it && hook.tag.is_none() && !own {
                    foreign.insert(hook.configuration.as_str(), ());
                }
            }
            for name in foreign.keys() {
                used_by.push(user(
                    "MutatingWebhookConfiguration",
                    None,
                    name,
                    format!("its webhooks call istiod {}", revision.deployment),
                ));
            }
            let serves_default = control_plane.default_revision().as_deref() == Some(rev)
                && default_tag.is_none_or(|t| t.revision.as_deref() != Some(rev));
            if serves_default {
                for config in snapshot.webhook_configurations.iter().filter(|c| own_configuration(&c.labels)) {
                    used_by.push(user(
                        "MutatingWebhookConfiguration",
                        None,
                        &config.name,
                        format!(
                            "its own webhooks serve {INJECTION_LABEL}=enabled: {rev} is the default revision until the default tag points elsewhere"
                        ),
                    ));
                }
            }
            used_by.sort();
            used_by.dedup();

            let mut own_objects = vec![OwnObject {
                kind: "Deployment".into(),
                namespace: Some(revision.namespace.clone()),
                name: revision.deployment.clone(),
            }];
            for config in snapshot.webhook_configurations.iter().filter(|c| own_configuration(&c.labels)) {
                own_objects.push(OwnObject {
                    kind: "MutatingWebhookConfiguration".into(),
                    namespace: None,
                    name: config.name.clone(),
                });
            }
            let istiod = snapshot.istiods.iter().find(|i| i.name == revision.deployment);
            if let Some(istiod) = istiod {
                for s in snapshot.services.iter().filter(|s| {
                    &s.namespace == cp_namespace
                        && !s.labels.contains_key(TAG_LABEL)
                        && s.selects(&istiod.template_labels)
                        // `istiod` selects every revision's pods by
                        // app/istio labels: it is the default revision's.
                        && (s.selector.contains_key(REV_LABEL) || rev == "default")
                }) {
                    own_objects.push(OwnObject {
                        kind: "Service".into(),
                        namespace: Some(s.namespace.clone()),
                        name: s.name.clone(),
                    });
                }
            }
            for config in snapshot.injector_configs.iter().filter(|c| c.revision == rev && &c.namespace == cp_namespace) {
                own_objects.push(OwnObject {
                    kind: "ConfigMap".into(),
                    namespace: Some(config.namespace.clone()),
                    name: config.name.clone(),
                });
            }
            own_objects.sort();

            let remove_command = match istiod.and_then(|i| i.helm_release.as_ref()) {
                Some(release) => format!("helm uninstall {} -n {}", release.name, release.namespace),
                None => format!("istioctl uninstall --revision {rev}"),
            };
            RevisionUsage {
                revision: rev.to_string(),
                used_by,
                own_objects,
                remove_command,
                complete,
                superseded: control_plane.revisions.iter().any(|other| {
                    match (
                        revision.istiod_version.as_deref().and_then(Version::parse),
                        other.istiod_version.as_deref().and_then(Version::parse),
                    ) {
                        (Some(this), Some(that)) => that > this,
                        _ => false,
                    }
                }),
            }
        })
        .collect()
}

/// A sentence summarising `used_by`: `2 namespaces (legacy, shop), 1 tag
/// (default), 5 workloads, 1 gateway, 1 pod`.
pub fn summary(used_by: &[RevisionUser]) -> String {
    summary_parts(used_by).join(", ")
}

/// The parts of [`summary`], one per kind.
pub fn summary_parts(used_by: &[RevisionUser]) -> Vec<String> {
    let names = |kind: &str| -> Vec<&str> {
        used_by
            .iter()
            .filter(|u| u.kind == kind)
            .map(|u| u.name.as_str())
            .collect()
    };
    let mut parts = Vec::new();
    for (kind, word) in [("Namespace", "namespace"), ("RevisionTag", "tag")] {
        let list = names(kind);
        if !list.is_empty() {
            parts.push(format!(
                "{} ({})",
                plural(list.len(), word),
                list.join(", ")
            ));
        }
    }
    let workloads = |gateway: bool| {
        used_by
            .iter()
            .filter(|u| matches!(u.kind, "Deployment" | "StatefulSet" | "DaemonSet"))
            .filter(|u| u.reason.starts_with("gateway") == gateway)
            .count()
    };
    if workloads(false) > 0 {
        parts.push(plural(workloads(false), "workload"));
    }
    if workloads(true) > 0 {
        parts.push(plural(workloads(true), "gateway"));
    }
    let pods = names("Pod").len();
    if pods > 0 {
        parts.push(plural(pods, "pod"));
    }
    let webhooks = names("MutatingWebhookConfiguration");
    if !webhooks.is_empty() {
        parts.push(format!(
            "{} ({})",
            plural(webhooks.len(), "webhook configuration"),
            webhooks.join(", ")
        ));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture, canary_fixture};
    use crate::mesh::workloads::classify;
    use crate::snapshot::HelmRelease;

    fn usage(snapshot: &ClusterSnapshot) -> Vec<RevisionUsage> {
        let cp = ControlPlane::from_snapshot(snapshot);
        let classification = classify(snapshot, &cp);
        revision_usage(snapshot, &cp, &classification)
    }

    fn of<'a>(all: &'a [RevisionUsage], rev: &str) -> &'a RevisionUsage {
        all.iter().find(|u| u.revision == rev).expect(rev)
    }

    fn keys(u: &RevisionUsage) -> Vec<String> {
        u.used_by
            .iter()
            .map(|x| match &x.namespace {
                Some(ns) => format!("{}/{ns}/{}", x.kind, x.name),
                None => format!("{}/{}", x.kind, x.name),
            })
            .collect()
    }

    #[test]
    fn the_old_revision_of_the_canary_is_used_by_namespaces_tags_workloads_gateways_and_pods() {
        let all = usage(&canary_fixture().build());
        let old = of(&all, "1-21-2");
        assert_eq!(
            keys(old),
            [
                "Deployment/cart/cart",
                "Deployment/istio-gateways/istio-ingressgateway-1-21-2",
                "Deployment/legacy/inventory",
                "Deployment/pay/payments",
                "Deployment/shop/frontend",
                "Deployment/shop/recommendations",
                "Namespace/cart",
                "Namespace/legacy",
                "Namespace/shop",
                "Pod/pay/debug-shell",
                "RevisionTag/default",
                "RevisionTag/prod-stable",
                "StatefulSet/pay/ledger",
            ]
        );
        let reason = |key: &str| {
            old.used_by
                .iter()
                .find(|u| format!("{}/{}", u.kind, u.name) == key)
                .map(|u| u.reason.clone())
                .unwrap()
        };
        assert_eq!(
            reason("Namespace/cart"),
            "new pods get 1-21-2 (istio.io/rev=prod-stable through tag prod-stable)"
        );
        assert_eq!(
            reason("Namespace/shop"),
            "new pods get 1-21-2 (istio-injection=enabled through tag default)"
        );
        assert_eq!(
            reason("RevisionTag/default"),
            "points at 1-21-2 (webhook configuration istio-revision-tag-default)"
        );
        assert_eq!(
            reason("Deployment/recommendations"),
            "1 pod runs its proxy (1.21.2)"
        );
        assert_eq!(
            reason("Deployment/payments"),
            "2 pods run its proxy (1.21.2)"
        );
        assert_eq!(
            reason("Deployment/istio-ingressgateway-1-21-2"),
            "gateway: 2 pods run its proxy (1.21.2)"
        );
        assert!(old.in_use() && !old.removable());
        assert_eq!(
            summary(&old.used_by),
            "3 namespaces (cart, legacy, shop), 2 tags (default, prod-stable), 6 workloads, 1 gateway, 1 pod"
        );
        assert_eq!(old.remove_command, "istioctl uninstall --revision 1-21-2");
        assert_eq!(
            old.own_objects
                .iter()
                .map(|o| format!("{}/{}", o.kind, o.name))
                .collect::<Vec<_>>(),
            [
                "ConfigMap/istio-sidecar-injector-1-21-2",
                "Deployment/istiod-1-21-2",
                "MutatingWebhookConfiguration/istio-sidecar-injector-1-21-2",
                "Service/istiod-1-21-2",
            ]
        );
    }

    #[test]
    fn a_revision_nothing_uses_is_removable_with_its_helm_release_when_helm_installed_it() {
        let snapshot = ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .namespace("shop", &[("istio.io/rev", "1-22-3")])
            .workload(
                WorkloadFixture::deployment("shop", "web")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            )
            .edit(|s| {
                let old = s
                    .istiods
                    .iter_mut()
                    .find(|i| i.revision == "1-21-2")
                    .unwrap();
                old.helm_release = Some(HelmRelease {
                    name: "istiod-1-21-2".into(),
                    namespace: "istio-system".into(),
                });
            })
            .build();
        let all = usage(&snapshot);
        let old = of(&all, "1-21-2");
        assert!(old.used_by.is_empty(), "{:?}", old.used_by);
        assert!(old.removable());
        assert_eq!(
            old.remove_command,
            "helm uninstall istiod-1-21-2 -n istio-system"
        );
        // Read for -n shop only, it is not called removable.
        let scoped = usage(
            &ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .scope(&["shop"])
                .namespace("shop", &[])
                .build(),
        );
        assert!(!of(&scoped, "1-21-2").removable());
    }

    #[test]
    fn the_default_revision_is_used_by_its_own_webhooks_until_the_default_tag_moves() {
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .build();
        let all = usage(&snapshot);
        assert_eq!(
            keys(of(&all, "default")),
            ["MutatingWebhookConfiguration/istio-sidecar-injector"]
        );
        let moved = ClusterFixture::new()
            .default_revision_install("default", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-22-3")
            .build();
        let all = usage(&moved);
        assert!(of(&all, "default").used_by.is_empty());
        assert_eq!(keys(of(&all, "1-22-3")), ["RevisionTag/default"]);
    }

    #[test]
    fn status_proposes_moving_a_tag_with_the_plugin_and_then_removing_the_unused_revision() {
        use crate::mesh::fixtures::fixed_now;
        use crate::mesh::status::build_status;
        let on_tag = |tag_revision: &str, proxy: (&str, &str)| {
            ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .tag("prod-stable", tag_revision)
                .namespace("shop", &[("istio.io/rev", "prod-stable")])
                .workload(
                    WorkloadFixture::deployment("shop", "web")
                        .pods(2, ProxySpec::istio(proxy.0, proxy.1)),
                )
                .build()
        };
        let before = build_status(&on_tag("1-21-2", ("1-21-2", "1.21.2")), fixed_now());
        let commands: Vec<&str> = before
            .summary
            .next_steps
            .iter()
            .filter_map(|s| s.command.as_deref())
            .collect();
        assert_eq!(
            commands,
            ["kubectl mesh-upgrade tag set prod-stable --revision 1-22-3 --restart"]
        );
        let after = build_status(&on_tag("1-22-3", ("1-22-3", "1.22.3")), fixed_now());
        let old = after
            .revisions
            .iter()
            .find(|r| r.revision == "1-21-2")
            .unwrap();
        assert!(!old.in_use && old.removable, "{old:?}");
        let last = after.summary.next_steps.last().unwrap();
        assert_eq!(
            last.command.as_deref(),
            Some("istioctl uninstall --revision 1-21-2")
        );
        assert!(!after.needs_attention(), "an unused revision is no problem");
    }

    #[test]
    fn a_pod_template_that_selects_the_revision_itself_uses_it() {
        let snapshot = ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .namespace("jobs", &[])
            .workload(
                WorkloadFixture::deployment("jobs", "idle")
                    .replicas(0)
                    .template_label("istio.io/rev", "1-21-2"),
            )
            .build();
        let all = usage(&snapshot);
        assert_eq!(keys(of(&all, "1-21-2")), ["Deployment/jobs/idle"]);
    }
}
