//! Read the cluster state every verb starts from: a fixed set of LISTs, run
//! concurrently, turned into a [`ClusterSnapshot`].
//!
//! The number of requests depends on the selection, never on the number of
//! workloads: one paginated LIST per kind (plus pages). Which URL each LIST
//! uses follows from the namespaces to read — the selection plus the control
//! plane's namespace (istiod, its Services and usually the gateways):
//!
//! ```text
//!  -A                         one cluster-wide LIST per kind
//!  -n shop  (reads shop +     one LIST per kind per namespace (2): small,
//!   istio-system)             and a big cluster's other namespaces are skipped
//!  -n a,b,c (reads 4)         one cluster-wide LIST per kind, filtered while paging
//! ```
//!
//! Namespaces and MutatingWebhookConfigurations are always listed whole: the
//! webhooks decide injection from namespace labels.
//!
//! `-l` is sent to the server for Deployments, StatefulSets and DaemonSets.
//! Pods and ReplicaSets are listed unfiltered and kept when their owning
//! workload was selected (a Deployment's pods need not carry its labels);
//! pods no restart can reach are matched by their own labels.
//!
//! A LIST that fails ends the collection with its error sentence, except where
//! showing the rest stays honest: PodDisruptionBudgets (risks become
//! "unknown"), EndpointSlices (gateway endpoints unknown) and the injector
//! ConfigMaps (versions come from istiod's image) may be forbidden; the
//! caller gets a warning and the kinds that could not be read.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::Resource;
use serde::de::DeserializeOwned;

use crate::api::{ApiClient, KnownScope, ListScope, ListSelector};
use crate::error::Error;
use crate::selector::LabelSelector;
use crate::snapshot::{
    ClusterSnapshot, DaemonSetInfo, DeploymentInfo, EndpointSliceInfo, InjectorConfigInfo,
    IstiodInfo, NamespaceInfo, OwnerRef, PdbInfo, PodInfo, ReplicaSetInfo, Scope, ServiceInfo,
    StatefulSetInfo, WebhookConfigurationInfo, controller_of,
};

/// What to read.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The namespaces the user selected.
    pub scope: Scope,
    /// Where istiod lives.
    pub control_plane_namespace: String,
    /// `-l`: applied to workloads and their pods.
    pub selector: Option<LabelSelector>,
}

/// A kind that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The resource plural: `poddisruptionbudgets`, `endpointslices`, `configmaps`.
    pub resource: &'static str,
    /// The error sentence.
    pub reason: String,
}

/// The snapshot, plus what could not be read.
#[derive(Debug, Clone)]
pub struct Collected {
    pub snapshot: ClusterSnapshot,
    /// Optional kinds that were forbidden; the snapshot has none of them.
    pub unreadable: Vec<Unreadable>,
    /// Sentences for stderr about what the snapshot lacks.
    pub warnings: Vec<String>,
}

impl Collected {
    /// Whether `resource` (a plural such as `poddisruptionbudgets`) was read.
    pub fn was_read(&self, resource: &str) -> bool {
        !self.unreadable.iter().any(|u| u.resource == resource)
    }
}

/// Up to this many namespaces to read are listed namespace by namespace;
/// more are listed cluster-wide in one LIST and filtered while paging.
const MAX_PER_NAMESPACE_LISTS: usize = 2;

/// The URLs the namespaced LISTs use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListPlan {
    /// One cluster-wide LIST per kind, keeping objects of these namespaces
    /// (`None`: every namespace).
    ClusterWide { keep: Option<BTreeSet<String>> },
    /// One LIST per kind per namespace.
    PerNamespace(Vec<String>),
}

impl ListPlan {
    fn for_selection(scope: &Scope, control_plane_namespace: &str) -> Self {
        match scope {
            Scope::All => ListPlan::ClusterWide { keep: None },
            Scope::Namespaces(selected) => {
                let mut read: BTreeSet<String> = selected.iter().cloned().collect();
                read.insert(control_plane_namespace.to_string());
                if read.len() <= MAX_PER_NAMESPACE_LISTS {
                    ListPlan::PerNamespace(read.into_iter().collect())
                } else {
                    ListPlan::ClusterWide { keep: Some(read) }
                }
            }
        }
    }
}

/// Run the LISTs and build the snapshot.
pub async fn collect(api: &ApiClient, options: &CollectOptions) -> anyhow::Result<Collected> {
    let plan = ListPlan::for_selection(&options.scope, &options.control_plane_namespace);
    let cp = options.control_plane_namespace.as_str();
    let workload_selector = ListSelector::maybe_labels(options.selector.as_ref());
    let all = ListSelector::everything();
    let istiod_selector =
        ListSelector::labels(LabelSelector::parse("app=istiod").map_err(anyhow::Error::msg)?);
    let cp_scope = ListScope::Namespace(cp.to_string());

    let (
        namespaces,
        webhooks,
        deployments,
        stateful_sets,
        daemon_sets,
        replica_sets,
        pods,
        services,
        pdbs,
        slices,
        istiods,
        injector_configs,
    ) = tokio::join!(
        read_namespaces(api, options),
        api.list_all::<MutatingWebhookConfiguration, _>(&ListScope::All, &all, |w| {
            Some(WebhookConfigurationInfo::from(&w))
        }),
        list_namespaced::<Deployment, _>(api, &plan, &workload_selector, |d| {
            let istiod = IstiodInfo::is_istiod(&d, cp).then(|| IstiodInfo::from(&d));
            Some((DeploymentInfo::from(&d), istiod))
        }),
        list_namespaced::<StatefulSet, _>(api, &plan, &workload_selector, |s| Some(
            StatefulSetInfo::from(&s)
        )),
        list_namespaced::<DaemonSet, _>(api, &plan, &workload_selector, |d| Some(
            DaemonSetInfo::from(&d)
        )),
        list_namespaced::<ReplicaSet, _>(api, &plan, &all, |r| Some(ReplicaSetInfo::from(&r))),
        list_namespaced::<Pod, _>(api, &plan, &all, |p| Some(PodInfo::from(&p))),
        list_namespaced::<Service, _>(api, &plan, &all, |s| Some(ServiceInfo::from(&s))),
        list_namespaced::<PodDisruptionBudget, _>(api, &plan, &all, |p| Some(PdbInfo::from(&p))),
        list_namespaced::<EndpointSlice, _>(api, &plan, &all, |e| Some(EndpointSliceInfo::from(
            &e
        ))),
        async {
            // Without -l the Deployments LIST already holds istiod; with -l it
            // may not, so istiod gets its own small LIST.
            if options.selector.is_some() {
                api.list_all::<Deployment, _>(&cp_scope, &istiod_selector, |d| {
                    IstiodInfo::is_istiod(&d, cp).then(|| IstiodInfo::from(&d))
                })
                .await
                .map(Some)
            } else {
                Ok(None)
            }
        },
        api.list_all::<ConfigMap, _>(&cp_scope, &all, |c| {
            InjectorConfigInfo::is_injector_config(&c).then(|| InjectorConfigInfo::from(&c))
        }),
    );

    let (namespaces, mut warnings) = namespaces?;
    let mut snapshot = ClusterSnapshot::new(cp, options.scope.clone());
    snapshot.namespaces = namespaces;
    check_selected_namespaces_exist(&snapshot, &api.target().context)?;
    snapshot.webhook_configurations = webhooks?;
    let (deployments, istiods_from_deployments): (Vec<_>, Vec<_>) =
        deployments?.into_iter().unzip();
    snapshot.deployments = deployments;
    snapshot.istiods = match istiods? {
        Some(listed) => listed,
        None => istiods_from_deployments.into_iter().flatten().collect(),
    };
    snapshot.stateful_sets = stateful_sets?;
    snapshot.daemon_sets = daemon_sets?;
    snapshot.replica_sets = replica_sets?;
    snapshot.pods = pods?;
    snapshot.services = services?;

    let mut unreadable = Vec::new();
    snapshot.pod_disruption_budgets = optional(
        pdbs,
        "poddisruptionbudgets",
        "PodDisruptionBudgets could not be read, so downtime risks are unknown",
        &mut unreadable,
        &mut warnings,
    )?;
    snapshot.endpoint_slices = optional(
        slices,
        "endpointslices",
        "EndpointSlices could not be read, so which gateway pods serve traffic is unknown",
        &mut unreadable,
        &mut warnings,
    )?;
    snapshot.injector_configs = optional(
        injector_configs,
        "configmaps",
        "the injector ConfigMaps could not be read, so proxy versions come from istiod's image",
        &mut unreadable,
        &mut warnings,
    )?;

    if let Some(selector) = &options.selector {
        keep_selected_workloads_pods(&mut snapshot, selector);
    }
    tracing::info!(
        namespaces = snapshot.namespaces.len(),
        pods = snapshot.pods.len(),
        deployments = snapshot.deployments.len(),
        istiods = snapshot.istiods.len(),
        "collected the cluster state"
    );
    Ok(Collected {
        snapshot,
        unreadable,
        warnings,
    })
}

/// LIST a namespaced kind as the plan says, converting while paging.
async fn list_namespaced<K, T>(
    api: &ApiClient,
    plan: &ListPlan,
    selector: &ListSelector,
    map: impl Fn(K) -> Option<T> + Clone,
) -> anyhow::Result<Vec<T>>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + std::fmt::Debug,
    K::Scope: KnownScope,
{
    match plan {
        ListPlan::ClusterWide { keep: None } => api.list_all(&ListScope::All, selector, map).await,
        ListPlan::ClusterWide { keep: Some(keep) } => {
            api.list_all(&ListScope::All, selector, |object: K| {
                let namespace = object.meta().namespace.as_deref().unwrap_or_default();
                if keep.contains(namespace) {
                    map(object)
                } else {
                    None
                }
            })
            .await
        }
        ListPlan::PerNamespace(namespaces) => {
            let lists = try_join_all(namespaces.iter().map(|namespace| {
                let map = map.clone();
                async move {
                    api.list_all(&ListScope::Namespace(namespace.clone()), selector, map)
                        .await
                }
            }))
            .await?;
            Ok(lists.into_iter().flatten().collect())
        }
    }
}

/// LIST every namespace. A user who may not list namespaces but named them
/// (`-n shop`) can still be served by reading each named one, which a Role
/// with `get` on those namespaces allows.
async fn read_namespaces(
    api: &ApiClient,
    options: &CollectOptions,
) -> anyhow::Result<(Vec<NamespaceInfo>, Vec<String>)> {
    let listed = api
        .list_all::<Namespace, _>(&ListScope::All, &ListSelector::everything(), |n| {
            Some(NamespaceInfo::from(&n))
        })
        .await;
    let list_error = match listed {
        Ok(namespaces) => return Ok((namespaces, Vec::new())),
        Err(err) if crate::error::is_forbidden(&err) => err,
        Err(err) => return Err(err),
    };
    let Scope::Namespaces(selected) = &options.scope else {
        return Err(list_error);
    };
    let mut wanted: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
    wanted.insert(&options.control_plane_namespace);
    let read = try_join_all(wanted.iter().map(|name| api.get::<Namespace>(None, name))).await;
    match read {
        Ok(found) => {
            let warning = format!(
                "{list_error:#}; read the {} selected namespaces one by one instead",
                found.len()
            );
            Ok((
                found.iter().flatten().map(NamespaceInfo::from).collect(),
                vec![warning],
            ))
        }
        Err(_) => Err(list_error),
    }
}

/// Keep an optional kind's list, or record it as unreadable when forbidden.
fn optional<T>(
    result: anyhow::Result<Vec<T>>,
    resource: &'static str,
    consequence: &str,
    unreadable: &mut Vec<Unreadable>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<T>> {
    match result {
        Ok(items) => Ok(items),
        Err(err) if crate::error::is_forbidden(&err) => {
            warnings.push(format!("{consequence} ({err:#})"));
            unreadable.push(Unreadable {
                resource,
                reason: format!("{err:#}"),
            });
            Ok(Vec::new())
        }
        Err(err) => Err(err),
    }
}

/// A selected namespace that does not exist is an error, not an empty report.
fn check_selected_namespaces_exist(
    snapshot: &ClusterSnapshot,
    context: &str,
) -> anyhow::Result<()> {
    if let Scope::Namespaces(selected) = &snapshot.scope
        && let Some(missing) = selected
            .iter()
            .find(|name| snapshot.namespace(name).is_none())
    {
        return Err(Error::NamespaceNotFound {
            namespace: missing.clone(),
            context: context.to_string(),
        }
        .into());
    }
    Ok(())
}

/// After `-l` filtered the workloads on the server, keep only the
/// ReplicaSets and pods that belong to a selected workload, plus the pods and
/// bare ReplicaSets no workload owns whose own labels match.
fn keep_selected_workloads_pods(snapshot: &mut ClusterSnapshot, selector: &LabelSelector) {
    let mut selected_owners: BTreeSet<String> = BTreeSet::new();
    selected_owners.extend(snapshot.deployments.iter().map(|d| d.uid.clone()));
    selected_owners.extend(snapshot.stateful_sets.iter().map(|s| s.uid.clone()));
    selected_owners.extend(snapshot.daemon_sets.iter().map(|d| d.uid.clone()));

    // ReplicaSet uid -> whether it is kept.
    let mut kept_replica_sets: BTreeMap<String, bool> = BTreeMap::new();
    for rs in &snapshot.replica_sets {
        let keep = match controller_of(&rs.owners) {
            Some(owner) if owner.kind == "Deployment" => selected_owners.contains(&owner.uid),
            // A bare (or foreign-owned) ReplicaSet is its own unit.
            _ => rs
                .template
                .as_ref()
                .is_some_and(|t| selector.matches(&t.labels)),
        };
        kept_replica_sets.insert(rs.uid.clone(), keep);
    }
    snapshot
        .replica_sets
        .retain(|rs| kept_replica_sets.get(&rs.uid).copied().unwrap_or(false));

    let restartable_owner = |owner: &OwnerRef| -> Option<bool> {
        match owner.kind.as_str() {
            "ReplicaSet" => kept_replica_sets.get(&owner.uid).copied(),
            "StatefulSet" | "DaemonSet" => Some(selected_owners.contains(&owner.uid)),
            _ => None,
        }
    };
    snapshot.pods.retain(|pod| {
        match controller_of(&pod.owners).and_then(restartable_owner) {
            Some(keep) => keep,
            // Standalone, Job-owned, foreign-owned, or an owner that was not
            // listed: the pod stands for itself.
            None => selector.matches(&pod.labels),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{LabelMatcher, PodTemplateInfo, ProxyFacts};

    fn owner(kind: &str, name: &str, uid: &str) -> OwnerRef {
        OwnerRef {
            kind: kind.into(),
            api_version: "apps/v1".into(),
            name: name.into(),
            uid: uid.into(),
            controller: true,
        }
    }

    fn pod(name: &str, labels: &[(&str, &str)], owners: Vec<OwnerRef>) -> PodInfo {
        PodInfo {
            namespace: "shop".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owners,
            phase: "Running".into(),
            ready: true,
            terminating: false,
            created: None,
            proxy: ProxyFacts::default(),
        }
    }

    fn replica_set(
        name: &str,
        uid: &str,
        owners: Vec<OwnerRef>,
        template_labels: Option<&[(&str, &str)]>,
    ) -> ReplicaSetInfo {
        ReplicaSetInfo {
            namespace: "shop".into(),
            name: name.into(),
            uid: uid.into(),
            owners,
            desired: 1,
            replicas: 1,
            ready: 1,
            available: 1,
            deployment_revision: None,
            template: template_labels.map(|labels| PodTemplateInfo {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..PodTemplateInfo::default()
            }),
            selector: LabelMatcher::nothing(),
        }
    }

    #[test]
    fn one_namespace_is_listed_beside_the_control_plane_namespace() {
        let plan = ListPlan::for_selection(&Scope::Namespaces(vec!["shop".into()]), "istio-system");
        assert_eq!(
            plan,
            ListPlan::PerNamespace(vec!["istio-system".into(), "shop".into()])
        );
        let plan = ListPlan::for_selection(
            &Scope::Namespaces(vec!["istio-system".into()]),
            "istio-system",
        );
        assert_eq!(plan, ListPlan::PerNamespace(vec!["istio-system".into()]));
    }

    #[test]
    fn several_namespaces_are_listed_cluster_wide_and_filtered() {
        let plan = ListPlan::for_selection(
            &Scope::Namespaces(vec!["shop".into(), "pay".into()]),
            "istio-system",
        );
        let keep: BTreeSet<String> = ["istio-system", "pay", "shop"].map(String::from).into();
        assert_eq!(plan, ListPlan::ClusterWide { keep: Some(keep) });
        assert_eq!(
            ListPlan::for_selection(&Scope::All, "istio-system"),
            ListPlan::ClusterWide { keep: None }
        );
    }

    #[test]
    fn a_selected_namespace_that_does_not_exist_is_an_error() {
        let mut snapshot = ClusterSnapshot::new(
            "istio-system",
            Scope::Namespaces(vec!["shop".into(), "typo".into()]),
        );
        snapshot.namespaces = vec![NamespaceInfo {
            name: "shop".into(),
            labels: Default::default(),
            terminating: false,
        }];
        let err = check_selected_namespaces_exist(&snapshot, "prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace \"typo\" does not exist in context prod"
        );
        snapshot.scope = Scope::All;
        assert!(check_selected_namespaces_exist(&snapshot, "prod").is_ok());
    }

    #[test]
    fn the_selector_keeps_pods_of_selected_workloads_and_matching_unowned_pods() {
        let selector = LabelSelector::parse("app=cart").unwrap();
        let mut snapshot = ClusterSnapshot::new("istio-system", Scope::All);
        // The server returned only the cart Deployment and the db StatefulSet.
        snapshot.deployments = vec![];
        snapshot.replica_sets = vec![
            replica_set(
                "cart-1",
                "rs-cart",
                vec![owner("Deployment", "cart", "dep-cart")],
                None,
            ),
            replica_set(
                "web-1",
                "rs-web",
                vec![owner("Deployment", "web", "dep-web")],
                None,
            ),
            replica_set("bare", "rs-bare", vec![], Some(&[("app", "cart")])),
        ];
        let mut cart = crate::snapshot::DeploymentInfo::from(&Deployment::default());
        cart.uid = "dep-cart".into();
        snapshot.deployments.push(cart);
        snapshot.pods = vec![
            // Labels differ from the Deployment's: kept through ownership.
            pod(
                "cart-1-a",
                &[("component", "cart")],
                vec![owner("ReplicaSet", "cart-1", "rs-cart")],
            ),
            pod(
                "web-1-a",
                &[("app", "cart")],
                vec![owner("ReplicaSet", "web-1", "rs-web")],
            ),
            pod("bare-a", &[], vec![owner("ReplicaSet", "bare", "rs-bare")]),
            pod("standalone-cart", &[("app", "cart")], vec![]),
            pod("standalone-web", &[("app", "web")], vec![]),
            pod(
                "job-cart",
                &[("app", "cart")],
                vec![owner("Job", "migrate", "job-1")],
            ),
            pod(
                "rollout-web",
                &[("app", "web")],
                vec![owner("Rollout", "web", "ro-1")],
            ),
        ];
        keep_selected_workloads_pods(&mut snapshot, &selector);
        let rs: Vec<&str> = snapshot
            .replica_sets
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(rs, ["cart-1", "bare"]);
        let pods: Vec<&str> = snapshot.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["cart-1-a", "bare-a", "standalone-cart", "job-cart"]);
    }

    #[test]
    fn a_forbidden_optional_kind_becomes_a_warning() {
        let forbidden: anyhow::Result<Vec<u8>> = Err(Error::Forbidden {
            verb: "list".into(),
            resource: "poddisruptionbudgets".into(),
            scope: "in all namespaces".into(),
            user: "alice".into(),
        }
        .into());
        let mut unreadable = Vec::new();
        let mut warnings = Vec::new();
        let items = optional(
            forbidden,
            "poddisruptionbudgets",
            "risks unknown",
            &mut unreadable,
            &mut warnings,
        )
        .unwrap();
        assert!(items.is_empty());
        assert_eq!(unreadable[0].resource, "poddisruptionbudgets");
        assert!(
            warnings[0].starts_with("risks unknown (forbidden: cannot list poddisruptionbudgets"),
            "{}",
            warnings[0]
        );

        let other: anyhow::Result<Vec<u8>> = Err(anyhow::anyhow!("server exploded"));
        assert!(
            optional(
                other,
                "poddisruptionbudgets",
                "x",
                &mut unreadable,
                &mut warnings
            )
            .is_err()
        );
    }
}
