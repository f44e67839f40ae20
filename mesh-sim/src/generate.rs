//! A large simulated cluster for benchmarks: N namespaces × M workloads × R
//! replicas, a share of them still running the previous Istio revision.
//!
//! Running 50,000 pods through admission and the controllers' rollouts would
//! take minutes and prove nothing new, so the generator writes the cluster as
//! the controllers would have left it once settled: every Deployment with its
//! ReplicaSet (named `<deployment>-<pod-template-hash>`), every StatefulSet and
//! DaemonSet with its ControllerRevision, their pods already injected, Running
//! and Ready, with ownerReferences, and every status (workloads, ReplicaSets,
//! PDBs) consistent with those pods. The controllers' first pass then finds
//! nothing to create or delete.
//!
//! ```text
//!   istio-system: istiod-<old-rev>, istiod-<new-rev> (Ready, webhooks installed)
//!   bench-001 … bench-N  (istio.io/rev=<new-rev>)
//!     M workloads (Deployments / StatefulSets / DaemonSets per the mix)
//!       stale ones: pods injected by <old-rev> (proxyv2:<old-version>)
//!       others:     pods injected by <new-rev> (proxyv2:<new-version>)
//! ```
//!
//! Each workload's pod is injected once (through [`crate::inject::inject_as`],
//! the injector's own template) and cloned per replica, which keeps
//! generation fast; the objects are stored directly in the store, bypassing
//! admission, with uids from a range of their own.

use anyhow::Context;
use serde_json::{Value, json};

use crate::controllers::defaults::apply_defaults;
use crate::inject::{self, RevisionOptions, istio_revision_objects, revision_name};
use crate::resources::{self, Resource, kinds};
use crate::world::World;

/// Relative weights of workload kinds among the generated workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindMix {
    pub deployments: u32,
    pub statefulsets: u32,
    pub daemonsets: u32,
}

impl Default for KindMix {
    /// Mostly Deployments, as in real clusters.
    fn default() -> Self {
        KindMix {
            deployments: 90,
            statefulsets: 8,
            daemonsets: 2,
        }
    }
}

impl KindMix {
    pub fn deployments_only() -> Self {
        KindMix {
            deployments: 1,
            statefulsets: 0,
            daemonsets: 0,
        }
    }

    /// The kind of the `index`-th workload: the mix repeats every
    /// `deployments + statefulsets + daemonsets` workloads.
    fn kind_of(&self, index: usize) -> WorkloadKind {
        let total = (self.deployments + self.statefulsets + self.daemonsets).max(1) as usize;
        let slot = (index % total) as u32;
        if slot < self.deployments || self.statefulsets + self.daemonsets == 0 {
            WorkloadKind::Deployment
        } else if slot < self.deployments + self.statefulsets {
            WorkloadKind::StatefulSet
        } else {
            WorkloadKind::DaemonSet
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub namespaces: usize,
    pub workloads_per_namespace: usize,
    /// Replicas of each Deployment and StatefulSet (DaemonSets run one pod
    /// per node).
    pub replicas: u32,
    /// Share of workloads (0.0–1.0) whose pods still run the old revision.
    pub stale_share: f64,
    /// Istio version of the previous revision (`1.21.2` → revision `1-21-2`).
    pub old_version: String,
    /// Istio version the namespaces now select.
    pub new_version: String,
    pub kinds: KindMix,
    /// A PodDisruptionBudget (minAvailable 1) for each workload with at least
    /// two replicas.
    pub pdbs: bool,
    /// Namespaces are named `<prefix>-001`, `<prefix>-002`…
    pub namespace_prefix: String,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            namespaces: 10,
            workloads_per_namespace: 20,
            replicas: 2,
            stale_share: 0.5,
            old_version: "1.21.2".to_string(),
            new_version: "1.22.3".to_string(),
            kinds: KindMix::default(),
            pdbs: true,
            namespace_prefix: "bench".to_string(),
        }
    }
}

impl GenerateOptions {
    /// About `pods` pods of 3-replica workloads in namespaces of 100
    /// workloads each, half of them stale.
    pub fn for_pods(pods: usize) -> Self {
        let workloads = pods.div_ceil(3).max(1);
        let per_namespace = workloads.min(100);
        GenerateOptions {
            namespaces: workloads.div_ceil(per_namespace),
            workloads_per_namespace: per_namespace,
            replicas: 3,
            ..GenerateOptions::default()
        }
    }

    /// The restart benchmark: `deployments` stale Deployments of `replicas`
    /// replicas each, spread over a few namespaces (50 per namespace).
    pub fn stale_deployments(deployments: usize, replicas: u32) -> Self {
        let per_namespace = deployments.clamp(1, 50);
        GenerateOptions {
            namespaces: deployments.div_ceil(per_namespace),
            workloads_per_namespace: per_namespace,
            replicas,
            stale_share: 1.0,
            kinds: KindMix::deployments_only(),
            namespace_prefix: "restart".to_string(),
            ..GenerateOptions::default()
        }
    }

    fn workloads(&self) -> usize {
        self.namespaces * self.workloads_per_namespace
    }

    /// How many application pods [`generate`] creates with `nodes` nodes
    /// (istiod pods not counted).
    pub fn expected_pods(&self, nodes: usize) -> usize {
        (0..self.workloads())
            .map(|i| match self.kinds.kind_of(i) {
                WorkloadKind::DaemonSet => nodes,
                _ => self.replicas as usize,
            })
            .sum()
    }

    /// Whether the `index`-th workload is stale: spreads `stale_share` evenly
    /// over the workloads rather than bunching them at the start.
    fn is_stale(&self, index: usize) -> bool {
        let share = self.stale_share.clamp(0.0, 1.0);
        ((index + 1) as f64 * share).floor() > (index as f64 * share).floor()
    }
}

/// The `stale_deployments(n, replicas)` preset, named as the restart
/// benchmark refers to it.
pub fn stale_deployments(deployments: usize, replicas: u32) -> GenerateOptions {
    GenerateOptions::stale_deployments(deployments, replicas)
}

/// Builds the cluster `opts` describes into `world` (which may already hold
/// the default namespaces; nothing else is expected).
pub fn generate(world: &mut World, opts: &GenerateOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&opts.stale_share),
        "stale share must be between 0 and 1, got {}",
        opts.stale_share
    );
    let old_rev = revision_name(&opts.old_version);
    let new_rev = revision_name(&opts.new_version);
    let mut builder = Builder::new(world);
    for name in [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        inject::ISTIO_NAMESPACE,
    ] {
        builder.namespace(name, json!({}))?;
    }
    builder.nodes()?;

    let revision_opts = RevisionOptions::default();
    for (rev, version) in [(&old_rev, &opts.old_version), (&new_rev, &opts.new_version)] {
        for object in istio_revision_objects(Some(rev), version, &revision_opts) {
            if object["kind"] == "Deployment" {
                builder.deployment(object, None)?;
            } else {
                builder.put(object)?;
            }
        }
    }
    let old = Injection {
        revision: old_rev.clone(),
        image: format!("{}/proxyv2:{}", revision_opts.hub, opts.old_version),
    };
    let new = Injection {
        revision: new_rev.clone(),
        image: format!("{}/proxyv2:{}", revision_opts.hub, opts.new_version),
    };

    let mut index = 0;
    for n in 1..=opts.namespaces {
        let namespace = format!("{}-{n:03}", opts.namespace_prefix);
        builder.namespace(&namespace, json!({"istio.io/rev": new_rev}))?;
        for w in 1..=opts.workloads_per_namespace {
            let injection = if opts.is_stale(index) { &old } else { &new };
            let kind = opts.kinds.kind_of(index);
            index += 1;
            let (prefix, port) = match kind {
                WorkloadKind::Deployment => ("svc", 8080),
                WorkloadKind::StatefulSet => ("db", 5432),
                WorkloadKind::DaemonSet => ("agent", 9100),
            };
            let name = format!("{prefix}-{w:04}");
            let template = pod_template(&name, port);
            let replicas = opts.replicas;
            match kind {
                WorkloadKind::Deployment => {
                    let deployment = json!({
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                        "spec": {
                            "replicas": replicas,
                            "selector": {"matchLabels": {"app": name}},
                            "template": template,
                        },
                    });
                    builder.deployment(deployment, Some(injection))?;
                }
                WorkloadKind::StatefulSet => {
                    let statefulset = json!({
                        "apiVersion": "apps/v1",
                        "kind": "StatefulSet",
                        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                        "spec": {
                            "replicas": replicas,
                            "serviceName": name,
                            "selector": {"matchLabels": {"app": name}},
                            "template": template,
                        },
                    });
                    builder.statefulset(statefulset, injection)?;
                }
                WorkloadKind::DaemonSet => {
                    let daemonset = json!({
                        "apiVersion": "apps/v1",
                        "kind": "DaemonSet",
                        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                        "spec": {
                            "selector": {"matchLabels": {"app": name}},
                            "template": template,
                        },
                    });
                    builder.daemonset(daemonset, injection)?;
                }
            }
            if opts.pdbs && kind != WorkloadKind::DaemonSet && replicas >= 2 {
                builder.pdb(&namespace, &name, replicas)?;
            }
        }
    }
    Ok(())
}

fn pod_template(name: &str, port: u16) -> Value {
    json!({
        "metadata": {"labels": {"app": name, "version": "v1"}},
        "spec": {
            "containers": [{
                "name": name,
                "image": format!("ghcr.io/example/{name}:1.0.0"),
                "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
            }],
        },
    })
}

/// The revision whose istiod injected a workload's pods.
struct Injection {
    revision: String,
    image: String,
}

/// Writes settled objects straight into the store.
struct Builder<'w> {
    world: &'w mut World,
    /// Counter behind this generator's uids, kept apart from the World's.
    uids: u64,
    /// Counter behind pod IPs (10.128.0.0/9, away from the controllers').
    ips: u32,
    /// Node names and their InternalIPs.
    nodes: Vec<(String, String)>,
    /// When every generated object "was created": an hour before now, so
    /// every readiness delay has long passed.
    created: String,
}

impl<'w> Builder<'w> {
    fn new(world: &'w mut World) -> Self {
        let created = (world.clock.now() - chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Builder {
            world,
            uids: 0,
            ips: 0,
            nodes: Vec::new(),
            created,
        }
    }

    /// Stores `object` with the metadata the API server would have given it.
    fn put(&mut self, mut object: Value) -> anyhow::Result<crate::store::Obj> {
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        let kind = object["kind"].as_str().unwrap_or("");
        let resource = resources::lookup_kind(api_version, kind)
            .with_context(|| format!("{api_version} {kind} is not a kind mesh-sim serves"))?;
        apply_defaults(resource, &mut object);
        Ok(self.put_as(resource, object))
    }

    /// [`Builder::put`] for an object of a known kind whose defaults are
    /// already filled in (pods have none).
    fn put_as(&mut self, resource: &'static Resource, mut object: Value) -> crate::store::Obj {
        self.uids += 1;
        let meta = crate::world::metadata_mut(&mut object);
        meta.insert(
            "uid".into(),
            json!(format!("00000000-0000-4000-a000-{:012x}", self.uids)),
        );
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(self.created));
        if resource.has_generation() {
            meta.insert("generation".into(), json!(1));
        }
        self.world.store.put(resource, object)
    }

    fn namespace(&mut self, name: &str, labels: Value) -> anyhow::Result<()> {
        if self
            .world
            .store
            .get(kinds::namespaces(), "", name)
            .is_some()
        {
            return Ok(());
        }
        let mut labels = labels;
        labels["kubernetes.io/metadata.name"] = json!(name);
        self.put(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }))?;
        Ok(())
    }

    /// The cluster's nodes, created as the controllers create them (they
    /// would on their first pass) so DaemonSet pods and `spec.nodeName`
    /// have somewhere to be.
    fn nodes(&mut self) -> anyhow::Result<()> {
        crate::controllers::cluster::create_nodes(self.world, self.world.clock.now());
        self.nodes = self
            .world
            .store
            .list(kinds::nodes(), None)
            .map(|node| {
                let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
                let ip = node
                    .pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                    .and_then(|a| a["address"].as_str())
                    .unwrap_or("")
                    .to_string();
                (name, ip)
            })
            .collect();
        anyhow::ensure!(
            !self.nodes.is_empty(),
            "the cluster has no nodes to put pods on"
        );
        Ok(())
    }

    fn owner_reference(owner: &Value) -> Value {
        json!({
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }

    /// A Deployment, its ReplicaSet and its Ready pods.
    fn deployment(
        &mut self,
        mut deployment: Value,
        injection: Option<&Injection>,
    ) -> anyhow::Result<()> {
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
        let name = deployment["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        // Defaulted first, so the hash is the one the controllers compute
        // from the stored (defaulted) template.
        apply_defaults(crate::resources::kinds::deployments(), &mut deployment);
        let template = deployment["spec"]["template"].clone();
        let hash = pod_template_hash(&template);
        let rs_name = format!("{name}-{hash}");
        let revision_annotation = json!({"deployment.kubernetes.io/revision": "1"});
        deployment["metadata"]["annotations"] = revision_annotation.clone();
        deployment["status"] = json!({
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {
                    "type": "Available", "status": "True",
                    "lastUpdateTime": self.created, "lastTransitionTime": self.created,
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing", "status": "True",
                    "lastUpdateTime": self.created, "lastTransitionTime": self.created,
                    "reason": "NewReplicaSetAvailable",
                    "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                },
            ],
        });
        let deployment = self.put(deployment)?;

        let mut rs_template = template;
        rs_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = deployment["spec"]["selector"].clone();
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut annotations = revision_annotation;
        annotations["deployment.kubernetes.io/desired-replicas"] = json!(replicas.to_string());
        annotations["deployment.kubernetes.io/max-replicas"] =
            json!((replicas + replicas.div_ceil(4)).to_string());
        let replicaset = self.put(json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": deployment["metadata"]["namespace"],
                "labels": rs_template["metadata"]["labels"],
                "annotations": annotations,
                "ownerReferences": [Self::owner_reference(&deployment)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            "status": {
                "observedGeneration": 1,
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            },
        }))?;
        let prototype = self.prototype_pod(&replicaset, &rs_template, injection);
        for i in 0..replicas {
            let pod_name = self.unique_pod_name(&prototype, &rs_name);
            let node = (i as usize) % self.nodes.len().max(1);
            self.pod(&prototype, &pod_name, node)?;
        }
        Ok(())
    }

    /// A StatefulSet, its ControllerRevision and its Ready pods `<name>-<ordinal>`.
    fn statefulset(&mut self, mut statefulset: Value, injection: &Injection) -> anyhow::Result<()> {
        let replicas = statefulset["spec"]["replicas"].as_u64().unwrap_or(1);
        let name = statefulset["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        // Defaulted first, so the hash is the one the controllers compute
        // from the stored (defaulted) template.
        apply_defaults(crate::resources::kinds::statefulsets(), &mut statefulset);
        let template = statefulset["spec"]["template"].clone();
        let hash = pod_template_hash(&template);
        let revision = format!("{name}-{hash}");
        statefulset["status"] = json!({
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        });
        let statefulset = self.put(statefulset)?;
        self.controller_revision(&statefulset, &hash, &template)?;
        for ordinal in 0..replicas {
            let pod_name = format!("{name}-{ordinal}");
            let mut pod_template = template.clone();
            let labels = &mut pod_template["metadata"]["labels"];
            labels["controller-revision-hash"] = json!(revision);
            labels["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            labels["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
            let mut prototype = self.prototype_pod(&statefulset, &pod_template, Some(injection));
            prototype["spec"]["hostname"] = json!(pod_name);
            prototype["spec"]["subdomain"] = json!(name);
            let node = (ordinal as usize) % self.nodes.len().max(1);
            self.pod(&prototype, &pod_name, node)?;
        }
        Ok(())
    }

    /// A DaemonSet, its ControllerRevision and one Ready pod per node.
    fn daemonset(&mut self, mut daemonset: Value, injection: &Injection) -> anyhow::Result<()> {
        let nodes = self.nodes.len() as u64;
        // Defaulted first, so the hash is the one the controllers compute
        // from the stored (defaulted) template.
        apply_defaults(crate::resources::kinds::daemonsets(), &mut daemonset);
        let template = daemonset["spec"]["template"].clone();
        let name = daemonset["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let hash = pod_template_hash(&template);
        daemonset["status"] = json!({
            "observedGeneration": 1,
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "updatedNumberScheduled": nodes,
            "numberReady": nodes,
            "numberAvailable": nodes,
            "numberMisscheduled": 0,
        });
        let daemonset = self.put(daemonset)?;
        self.controller_revision(&daemonset, &hash, &template)?;
        let mut pod_template = template;
        pod_template["metadata"]["labels"]["controller-revision-hash"] = json!(hash);
        pod_template["metadata"]["labels"]["pod-template-generation"] = json!("1");
        let prototype = self.prototype_pod(&daemonset, &pod_template, Some(injection));
        for node in 0..self.nodes.len() {
            let pod_name = self.unique_pod_name(&prototype, &name);
            let mut pod = prototype.clone();
            // DaemonSet pods are pinned to their node by affinity.
            pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [self.nodes[node].0]}]}],
            }}});
            self.pod(&pod, &pod_name, node)?;
        }
        Ok(())
    }

    /// The ControllerRevision `<owner>-<hash>` recording `template`, shaped
    /// as the controllers write theirs (data is the patch `kubectl rollout
    /// undo` would apply), so they recognise it as the current revision.
    fn controller_revision(
        &mut self,
        owner: &Value,
        hash: &str,
        template: &Value,
    ) -> anyhow::Result<()> {
        let mut labels = template["metadata"]["labels"].clone();
        labels["controller-revision-hash"] = json!(hash);
        labels["controller.kubernetes.io/hash"] = json!(hash);
        let mut data_template = template.clone();
        data_template["$patch"] = json!("replace");
        self.put(json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": format!("{}-{hash}", owner["metadata"]["name"].as_str().unwrap_or("")),
                "namespace": owner["metadata"]["namespace"],
                "labels": labels,
                "ownerReferences": [Self::owner_reference(owner)],
            },
            "data": {"spec": {"template": data_template}},
            "revision": 1,
        }))?;
        Ok(())
    }

    fn pdb(&mut self, namespace: &str, name: &str, replicas: u32) -> anyhow::Result<()> {
        self.put(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
            "status": {
                "observedGeneration": 1,
                "currentHealthy": replicas,
                "desiredHealthy": 1,
                "expectedPods": replicas,
                "disruptionsAllowed": replicas - 1,
                "conditions": [{
                    "type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                    "message": "", "observedGeneration": 1, "lastTransitionTime": self.created,
                }],
            },
        }))?;
        Ok(())
    }

    /// The pod every replica of `owner` is a copy of: the template's labels
    /// and spec, owned by `owner`, injected as `injection`'s revision would,
    /// Running and Ready. Copies get their name, node and IPs in [`Builder::pod`].
    fn prototype_pod(
        &self,
        owner: &Value,
        template: &Value,
        injection: Option<&Injection>,
    ) -> Value {
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "namespace": owner["metadata"]["namespace"],
                "labels": template["metadata"]["labels"],
                "ownerReferences": [Self::owner_reference(owner)],
            },
            "spec": template["spec"],
        });
        if let Some(annotations) = template["metadata"].get("annotations") {
            pod["metadata"]["annotations"] = annotations.clone();
        }
        if let Some(injection) = injection {
            inject::inject_as(&mut pod, &injection.revision, &injection.image, false);
        }
        let running = |c: &Value| {
            json!({
                "name": c["name"],
                "image": c["image"],
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": self.created}},
            })
        };
        let containers: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().map(running).collect())
            .unwrap_or_default();
        let init_containers: Vec<Value> = pod["spec"]["initContainers"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let mut status = running(c);
                        // Native sidecars keep running; other init containers
                        // have completed.
                        if c["restartPolicy"] != "Always" {
                            status["started"] = json!(false);
                            status["state"] = json!({"terminated": {
                                "exitCode": 0, "reason": "Completed",
                                "startedAt": self.created, "finishedAt": self.created,
                            }});
                        }
                        status
                    })
                    .collect()
            })
            .unwrap_or_default();
        let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": self.created});
        pod["status"] = json!({
            "phase": "Running",
            "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            "startTime": self.created,
            "qosClass": "BestEffort",
            "containerStatuses": containers,
        });
        if !init_containers.is_empty() {
            pod["status"]["initContainerStatuses"] = json!(init_containers);
        }
        pod
    }

    /// `<prefix>-<5 random-looking characters>`, not yet taken in the
    /// prototype's namespace.
    fn unique_pod_name(&self, prototype: &Value, prefix: &str) -> String {
        let namespace = prototype["metadata"]["namespace"].as_str().unwrap_or("");
        let mut seed = u64::from(self.ips) + 1;
        loop {
            let name = format!("{prefix}-{}", crate::world::short_suffix(seed));
            if self
                .world
                .store
                .get(kinds::pods(), namespace, &name)
                .is_none()
            {
                return name;
            }
            seed += 0x9E37;
        }
    }

    /// Stores a copy of `prototype` named `name`, on node `node`, with a pod IP.
    fn pod(&mut self, prototype: &Value, name: &str, node: usize) -> anyhow::Result<()> {
        let mut pod = prototype.clone();
        self.ips += 1;
        let ip = format!(
            "10.{}.{}.{}",
            128 + (self.ips >> 16),
            (self.ips >> 8) & 255,
            self.ips & 255
        );
        let (node_name, host_ip) = self.nodes.get(node).cloned().unwrap_or_default();
        if let Some(meta) = pod["metadata"].as_object_mut() {
            meta.insert("name".into(), json!(name));
            if let Some((prefix, _)) = name.rsplit_once('-') {
                if pod_is_from_generate_name(prototype) {
                    meta.insert("generateName".into(), json!(format!("{prefix}-")));
                }
            }
        }
        pod["spec"]["nodeName"] = json!(node_name);
        let status = &mut pod["status"];
        status["hostIP"] = json!(host_ip);
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
        self.put_as(kinds::pods(), pod);
        Ok(())
    }
}

/// StatefulSet pods have fixed names; the others are named from a prefix.
fn pod_is_from_generate_name(pod: &Value) -> bool {
    pod["metadata"]["ownerReferences"][0]["kind"] != "StatefulSet"
}

/// The `pod-template-hash` (and revision hash) the controllers compute for
/// `template`, so generated ReplicaSets are named as theirs would be.
fn pod_template_hash(template: &Value) -> String {
    crate::controllers::util::template_hash(template, None)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use super::*;
    use crate::store::ObjKey;
    use crate::world::SimConfig;

    fn proxy_image(pod: &Value) -> Option<&str> {
        ["containers", "initContainers"].iter().find_map(|list| {
            pod["spec"][list]
                .as_array()?
                .iter()
                .find(|c| c["name"] == "istio-proxy")?
                .get("image")?
                .as_str()
        })
    }

    fn app_pods(world: &World) -> Vec<crate::store::Obj> {
        world
            .store
            .list(kinds::pods(), None)
            .filter(|p| p["metadata"]["namespace"] != inject::ISTIO_NAMESPACE)
            .collect()
    }

    #[test]
    fn two_thousand_pods_are_generated_owned_ready_and_injected() {
        let mut world = World::new(SimConfig::default());
        let opts = GenerateOptions {
            namespaces: 4,
            workloads_per_namespace: 250,
            replicas: 2,
            kinds: KindMix::deployments_only(),
            ..GenerateOptions::default()
        };
        assert_eq!(opts.expected_pods(world.config.node_count), 2000);
        generate(&mut world, &opts).unwrap();
        let pods = app_pods(&world);
        assert_eq!(pods.len(), 2000);
        assert_eq!(world.store.count(kinds::deployments()), 1000 + 2);
        assert_eq!(world.store.count(kinds::replicasets()), 1000 + 2);

        let uids: HashSet<String> = world
            .store
            .list(kinds::replicasets(), None)
            .filter_map(|rs| rs["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        let mut old = 0;
        for pod in &pods {
            let owner = &pod["metadata"]["ownerReferences"][0];
            assert_eq!(owner["kind"], "ReplicaSet");
            assert!(uids.contains(owner["uid"].as_str().unwrap()));
            assert_eq!(pod["status"]["phase"], "Running");
            match proxy_image(pod) {
                Some("docker.io/istio/proxyv2:1.21.2") => old += 1,
                Some("docker.io/istio/proxyv2:1.22.3") => {}
                other => panic!("unexpected proxy {other:?}"),
            }
        }
        // Half the workloads are stale, spread evenly.
        assert_eq!(old, 1000);
        let names: BTreeSet<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 2000);
    }

    #[test]
    fn the_kind_mix_brings_statefulsets_and_daemonsets_with_their_revisions() {
        let mut world = World::new(SimConfig::default());
        let opts = GenerateOptions {
            namespaces: 2,
            workloads_per_namespace: 50,
            replicas: 3,
            ..GenerateOptions::default()
        };
        generate(&mut world, &opts).unwrap();
        assert_eq!(
            app_pods(&world).len(),
            opts.expected_pods(world.config.node_count)
        );
        // 100 workloads at 90/8/2: 90 Deployments, 8 StatefulSets, 2 DaemonSets.
        assert_eq!(world.store.count(kinds::statefulsets()), 8);
        assert_eq!(world.store.count(kinds::daemonsets()), 2);
        assert_eq!(world.store.count(kinds::controllerrevisions()), 10);
        let db = world
            .store
            .get(kinds::pods(), "bench-002", "db-0041-2")
            .unwrap();
        assert_eq!(
            db["metadata"]["labels"]["controller-revision-hash"],
            world
                .store
                .get(kinds::statefulsets(), "bench-002", "db-0041")
                .unwrap()["status"]["updateRevision"]
        );
    }

    #[test]
    fn stale_deployments_preset_is_two_hundred_stale_three_replica_deployments() {
        let mut world = World::new(SimConfig::default());
        generate(&mut world, &stale_deployments(200, 3)).unwrap();
        let pods = app_pods(&world);
        assert_eq!(pods.len(), 600);
        assert!(
            pods.iter()
                .all(|p| proxy_image(p) == Some("docker.io/istio/proxyv2:1.21.2"))
        );
        let namespaces: BTreeSet<&str> = pods
            .iter()
            .map(|p| p["metadata"]["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(namespaces.len(), 4);
        let ns = world
            .store
            .get(kinds::namespaces(), "", "restart-001")
            .unwrap();
        assert_eq!(ns["metadata"]["labels"]["istio.io/rev"], "1-22-3");
    }

    /// Every object except the control plane's Services (which the
    /// controllers give a ClusterIP and endpoints), without resourceVersion.
    fn workload_objects(
        world: &World,
    ) -> std::collections::BTreeMap<(&'static str, ObjKey), Value> {
        let mut all = std::collections::BTreeMap::new();
        for resource in crate::resources::BUILTIN {
            if matches!(
                resource.kind,
                "Service" | "Endpoints" | "EndpointSlice" | "Event"
            ) {
                continue;
            }
            for object in world.store.list(resource, None) {
                let mut object = (*object).clone();
                crate::world::metadata_mut(&mut object).remove("resourceVersion");
                all.insert((resource.kind, ObjKey::of(&object)), object);
            }
        }
        all
    }

    #[test]
    fn generated_cluster_looks_settled_to_the_controllers() {
        let mut world = World::new(SimConfig::default());
        // 100 workloads in one namespace: the default mix's Deployments,
        // StatefulSets and DaemonSets.
        let opts = GenerateOptions {
            namespaces: 1,
            workloads_per_namespace: 100,
            ..GenerateOptions::default()
        };
        generate(&mut world, &opts).unwrap();
        let before = workload_objects(&world);
        assert!(crate::controllers::settle(&mut world));
        let after = workload_objects(&world);
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
            .collect();
        assert!(
            changed.is_empty(),
            "the controllers rewrote generated objects: {changed:?}"
        );
    }

    #[test]
    fn pods_created_after_generation_are_injected_by_the_new_revision() {
        let mut world = World::new(SimConfig::default());
        generate(
            &mut world,
            &GenerateOptions {
                namespaces: 1,
                workloads_per_namespace: 1,
                ..GenerateOptions::default()
            },
        )
        .unwrap();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe", "namespace": "bench-001"},
            "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
        });
        let created = world
            .create(kinds::pods(), pod, &crate::world::WriteOptions::default())
            .unwrap();
        assert_eq!(
            proxy_image(&created),
            Some("docker.io/istio/proxyv2:1.22.3")
        );
    }
}
