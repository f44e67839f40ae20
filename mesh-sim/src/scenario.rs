//! Loading manifests into the simulated cluster, and the built-in scenarios.
//!
//! A scenario is an ordered list of multi-document YAML files. Each file is
//! applied object by object through [`World::create`]/[`World::update`] (so
//! pods go through admission and Istio's injector exactly as API requests
//! would), then the controllers run until the cluster settles before the next
//! file. Order therefore carries meaning: a control plane created in one file
//! is Ready before the workloads of the next file are injected, and a
//! namespace relabelled in a later file leaves the pods created earlier with
//! the proxies they already have, which is how a scenario says "these sidecars
//! are stale".
//!
//! The built-in scenarios live in `mesh-sim/scenarios/<name>/NN-*.yaml`
//! (shared ones in `common/`), embedded at build time. Their control-plane
//! files are the output of [`crate::inject::charts`]'s builders, checked by a
//! test, so the webhook configurations they install are the ones Istio's
//! charts produce.
//!
//! Writing a scenario:
//! - Put the control plane (istiod Deployment, Service, injector ConfigMap,
//!   webhook configurations: `istio_revision_manifests`,
//!   `revision_tag_manifest`) in a file before the workloads, so istiod is
//!   Ready when their pods are created; otherwise `failurePolicy: Fail`
//!   refuses them.
//! - To make proxies stale, create the workloads, then in a later file
//!   change what they select (relabel the namespace, move a tag, upgrade
//!   istiod in place). Pods are never re-injected by a later file.
//! - A pod written with `sidecar.istio.io/status` already set keeps the proxy
//!   it carries (the injector leaves injected pods alone).
//! - Only kinds mesh-sim serves can be loaded; anything else (an Istio
//!   `networking.istio.io` `Gateway`, another CRD's object) is an error
//!   naming it. The Gateway API's kinds load while its CRDs are installed
//!   (the default).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::resources::lookup_kind;
use crate::world::{World, WriteOptions};

/// Applies every object of a multi-document YAML text, in order, then lets the
/// controllers settle.
///
/// Empty documents are skipped and `List` kinds (`v1/List`, `PodList`…)
/// contribute their items. An object that exists already is replaced, as
/// `kubectl replace` would. A kind mesh-sim does not serve is an error naming
/// its `apiVersion` and `kind`: it is not stored generically.
pub fn load_yaml(world: &mut World, yaml: &str) -> anyhow::Result<()> {
    apply_yaml(world, yaml)?;
    settle(world);
    Ok(())
}

/// Loads files and directories in order (a directory's files sorted by name,
/// `.yaml`, `.yml` and `.json` only), settling after each file.
pub fn load_files(world: &mut World, paths: &[PathBuf]) -> anyhow::Result<()> {
    for path in paths {
        for file in manifest_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            load_yaml(world, &text).with_context(|| format!("loading {}", file.display()))?;
        }
    }
    Ok(())
}

fn manifest_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("reading directory {}", path.display()))?
    {
        let file = entry
            .with_context(|| format!("reading directory {}", path.display()))?
            .path();
        let is_manifest = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if file.is_file() && is_manifest {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Applies the objects of a YAML text without settling; returns how many.
fn apply_yaml(world: &mut World, yaml: &str) -> anyhow::Result<usize> {
    let mut applied = 0;
    for (index, document) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = Value::deserialize(document)
            .with_context(|| format!("parsing YAML document {}", index + 1))?;
        for object in expand_lists(value) {
            apply_object(world, object)
                .with_context(|| format!("in YAML document {}", index + 1))?;
            applied += 1;
        }
    }
    Ok(applied)
}

/// A document's objects: none for an empty document, the items of a `List`.
fn expand_lists(value: Value) -> Vec<Value> {
    if value.is_null() {
        return Vec::new();
    }
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        return vec![value];
    }
    match value {
        Value::Object(mut map) => match map.remove("items") {
            Some(Value::Array(items)) => items.into_iter().flat_map(expand_lists).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Creates `object`, or replaces it when it exists.
fn apply_object(world: &mut World, mut object: Value) -> anyhow::Result<()> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if api_version.is_empty() || kind.is_empty() {
        bail!("an object has no apiVersion or kind");
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(resource) = lookup_kind(&api_version, &kind).filter(|r| world.serves(r)) else {
        bail!("{api_version} {kind} \"{name}\" is not a kind mesh-sim serves");
    };
    let mut namespace = String::new();
    if resource.namespaced {
        namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
            .to_string();
        crate::world::metadata_mut(&mut object)
            .insert("namespace".into(), Value::String(namespace.clone()));
    }
    let what = if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    };
    let opts = WriteOptions::default();
    if !name.is_empty() && world.store.get(resource, &namespace, &name).is_some() {
        world
            .update(resource, object, &opts)
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("replacing {what}"))?;
    } else {
        world
            .create(resource, object, &opts)
            .map_err(|e| anyhow::anyhow!(e))
            .with_context(|| format!("creating {what}"))?;
    }
    Ok(())
}

/// Lets the controllers run until nothing is left to do.
fn settle(world: &mut World) {
    if !crate::controllers::settle(world) {
        // A scenario may hold a workload that never becomes Ready on
        // purpose; loading goes on with the cluster as it is.
        tracing::warn!("the controllers did not settle after loading manifests");
    }
}

/// One built-in scenario: its files, relative to `mesh-sim/scenarios/`, and
/// their embedded text.
struct Builtin {
    name: &'static str,
    files: &'static [&'static str],
    documents: &'static [&'static str],
}

macro_rules! builtin {
    ($name:literal => [$($path:literal),* $(,)?]) => {
        Builtin {
            name: $name,
            files: &[$($path),*],
            documents: &[$(include_str!(concat!("../scenarios/", $path))),*],
        }
    };
}

static BUILTINS: &[Builtin] = &[
    builtin!("canary" => [
        "common/00-cluster.yaml",
        "canary/00-namespaces.yaml",
        "canary/01-istiod-1-21-2.yaml",
        "canary/02-istiod-1-22-3.yaml",
        "canary/03-revision-tags.yaml",
        "canary/10-workloads.yaml",
        "canary/20-gateways.yaml",
        "canary/30-move-pay.yaml",
        "canary/40-gateway-api.yaml",
    ]),
    builtin!("ambient" => [
        "common/00-cluster.yaml",
        "ambient/00-namespaces.yaml",
        "ambient/01-istiod-1-22-3.yaml",
        "ambient/02-cni-ztunnel-1-22-3.yaml",
        "ambient/10-workloads.yaml",
        "ambient/20-istiod-1-23-1.yaml",
        "ambient/30-upgrade-ztunnel-1-23-1.yaml",
    ]),
    builtin!("empty" => ["common/00-cluster.yaml"]),
    builtin!("owners" => [
        "common/00-cluster.yaml",
        "owners/00-namespaces.yaml",
        "canary/01-istiod-1-21-2.yaml",
        "canary/02-istiod-1-22-3.yaml",
        "canary/03-revision-tags.yaml",
        "owners/10-workloads.yaml",
        "owners/30-move.yaml",
    ]),
    builtin!("revision-tags" => [
        "common/00-cluster.yaml",
        "revision-tags/00-namespaces.yaml",
        "revision-tags/01-istiod-1-26-2.yaml",
        "revision-tags/02-istiod-1-27-1.yaml",
        "revision-tags/03-revision-tags.yaml",
        "revision-tags/10-workloads.yaml",
    ]),
    builtin!("tags" => [
        "common/00-cluster.yaml",
        "tags/00-namespaces.yaml",
        "tags/01-istiod-1-27-3.yaml",
        "tags/02-istiod-1-28-1.yaml",
        "tags/03-revision-tags.yaml",
        "tags/10-workloads.yaml",
    ]),
    builtin!("in-place" => [
        "common/00-cluster.yaml",
        "in-place/00-namespaces.yaml",
        "in-place/01-istiod-1-21-2.yaml",
        "in-place/10-workloads.yaml",
        "in-place/20-upgrade-istiod-1-22-3.yaml",
    ]),
];

/// The names `builtin` knows, sorted.
pub fn builtin_names() -> &'static [&'static str] {
    &[
        "ambient",
        "canary",
        "empty",
        "in-place",
        "owners",
        "revision-tags",
        "tags",
    ]
}

/// A built-in scenario's YAML files, in the order to load them (settling
/// after each).
pub fn builtin(name: &str) -> Option<&'static [&'static str]> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.documents)
}

/// The paths (relative to `mesh-sim/scenarios/`) of a built-in scenario's
/// files, parallel to [`builtin`]'s documents.
pub fn builtin_files(name: &str) -> Option<&'static [&'static str]> {
    BUILTINS.iter().find(|b| b.name == name).map(|b| b.files)
}

/// Loads a built-in scenario into `world`.
pub fn load_builtin(world: &mut World, name: &str) -> anyhow::Result<()> {
    let Some(builtin) = BUILTINS.iter().find(|b| b.name == name) else {
        bail!(
            "no built-in scenario named {name:?} (known: {})",
            builtin_names().join(", ")
        );
    };
    for (file, text) in builtin.files.iter().zip(builtin.documents) {
        load_yaml(world, text).with_context(|| format!("loading scenario {name}: {file}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::{
        AmbientChartOptions, RevisionOptions, STATUS_ANNOTATION, istio_cni_daemonset,
        istio_revision_objects, revision_tag_objects, revision_tag_service, ztunnel_daemonset,
    };
    use crate::resources::kinds;
    use crate::world::SimConfig;

    /// The scenario files written by the chart builders: path, the comment
    /// heading a freshly written file, and the objects it must hold.
    fn control_plane_files() -> Vec<(&'static str, &'static str, Vec<Value>)> {
        let opts = RevisionOptions::default();
        vec![
            (
                "ambient/01-istiod-1-22-3.yaml",
                "# Scenario `ambient`: revision 1-22-3 (Istio 1.22.3), the control plane the\n# ambient data plane was installed with. Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-22-3"), "1.22.3", &opts),
            ),
            (
                "ambient/02-cni-ztunnel-1-22-3.yaml",
                "# Scenario `ambient`: the istio-cni and ztunnel charts at 1.22.3 on revision\n# 1-22-3, ztunnel with `updateStrategy.type=OnDelete`. Generated by\n# `mesh_sim::inject::istio_cni_daemonset` and `ztunnel_daemonset`; a test\n# checks it still matches.\n",
                vec![
                    istio_cni_daemonset(&AmbientChartOptions::new("1.22.3").revision("1-22-3")),
                    ztunnel_daemonset(
                        &AmbientChartOptions::new("1.22.3")
                            .revision("1-22-3")
                            .on_delete(),
                    ),
                ],
            ),
            (
                "ambient/20-istiod-1-23-1.yaml",
                "# Scenario `ambient`: revision 1-23-1 (Istio 1.23.1) installed beside 1-22-3.\n# Generated by `mesh_sim::inject::istio_revision_manifests`; a test checks it.\n",
                istio_revision_objects(Some("1-23-1"), "1.23.1", &opts),
            ),
            (
                "ambient/30-upgrade-ztunnel-1-23-1.yaml",
                "# Scenario `ambient`: `helm upgrade ztunnel --set revision=1-23-1 --set tag=1.23.1`\n# with `updateStrategy.type=OnDelete`: the template now runs 1.23.1 against\n# istiod-1-23-1, and no running ztunnel pod is replaced. Generated by\n# `mesh_sim::inject::ztunnel_daemonset`; a test checks it still matches.\n",
                vec![ztunnel_daemonset(
                    &AmbientChartOptions::new("1.23.1")
                        .revision("1-23-1")
                        .on_delete(),
                )],
            ),
            (
                "canary/01-istiod-1-21-2.yaml",
                "# Scenario `canary`: revision 1-21-2 (Istio 1.21.2), as Istio's istio-discovery\n# chart installs it with `revision: 1-21-2`. Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-21-2"), "1.21.2", &opts),
            ),
            (
                "canary/02-istiod-1-22-3.yaml",
                "# Scenario `canary`: the canary revision 1-22-3 (Istio 1.22.3). Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-22-3"), "1.22.3", &opts),
            ),
            (
                "canary/03-revision-tags.yaml",
                "# Scenario `canary`: revision tags, as `istioctl tag set` writes them.\n# `default` -> 1-21-2 (also serves `istio-injection=enabled` and opted-in pods),\n# `prod-stable` -> 1-21-2, `prod-canary` -> 1-22-3. Generated by\n# `mesh_sim::inject::revision_tag_manifest`; a test checks it still matches.\n",
                [
                    revision_tag_objects("default", Some("1-21-2")),
                    revision_tag_objects("prod-stable", Some("1-21-2")),
                    revision_tag_objects("prod-canary", Some("1-22-3")),
                ]
                .concat(),
            ),
            (
                "revision-tags/01-istiod-1-26-2.yaml",
                "# Scenario `revision-tags`: revision 1-26-2 (Istio 1.26.2). Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-26-2"), "1.26.2", &opts),
            ),
            (
                "revision-tags/02-istiod-1-27-1.yaml",
                "# Scenario `revision-tags`: revision 1-27-1 (Istio 1.27.1). Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-27-1"), "1.27.1", &opts),
            ),
            (
                "revision-tags/03-revision-tags.yaml",
                "# Scenario `revision-tags`: `prod-legacy` -> 1-26-2 as a webhook configuration only\n# (istioctl before 1.28), `prod-stable` -> 1-26-2 as webhook configuration and\n# Service (the 1.28 chart's `revisionTags`), `prod-canary` -> 1-27-1 as a Service\n# only. Generated by `mesh_sim::inject::revision_tag_objects` and\n# `revision_tag_service`; a test checks it still matches.\n",
                [
                    revision_tag_objects("prod-legacy", Some("1-26-2")),
                    revision_tag_objects("prod-stable", Some("1-26-2")),
                    vec![
                        revision_tag_service("prod-stable", Some("1-26-2")),
                        revision_tag_service("prod-canary", Some("1-27-1")),
                    ],
                ]
                .concat(),
            ),
            (
                "tags/01-istiod-1-27-3.yaml",
                "# Scenario `tags`: the stable revision 1-27-3 (Istio 1.27.3). Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-27-3"), "1.27.3", &opts),
            ),
            (
                "tags/02-istiod-1-28-1.yaml",
                "# Scenario `tags`: the canary revision 1-28-1 (Istio 1.28.1). Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(Some("1-28-1"), "1.28.1", &opts),
            ),
            (
                "tags/03-revision-tags.yaml",
                "# Scenario `tags`: `prod-stable` -> 1-27-3 as a webhook configuration (what\n# istioctl 1.27 writes), `prod-canary` -> 1-28-1 as webhook configuration and\n# Service (what istioctl 1.28 writes). Generated by\n# `mesh_sim::inject::revision_tag_objects` and `revision_tag_service`; a test\n# checks it still matches.\n",
                [
                    revision_tag_objects("prod-stable", Some("1-27-3")),
                    revision_tag_objects("prod-canary", Some("1-28-1")),
                    vec![revision_tag_service("prod-canary", Some("1-28-1"))],
                ]
                .concat(),
            ),
            (
                "in-place/01-istiod-1-21-2.yaml",
                "# Scenario `in-place`: the default istiod (no revision) at 1.21.2, with the\n# four webhooks of the default install. Generated by\n# `mesh_sim::inject::istio_revision_manifests`; a test checks it still matches.\n",
                istio_revision_objects(None, "1.21.2", &opts),
            ),
            (
                "in-place/20-upgrade-istiod-1-22-3.yaml",
                "# Scenario `in-place`: `helm upgrade` of the same default istiod to 1.22.3.\n# The Deployment's image and the injector ConfigMap change; the webhooks do\n# not. Pods injected before this keep their 1.21.2 proxies: all stale.\n# Generated by `mesh_sim::inject::istio_revision_manifests`; a test checks it.\n",
                istio_revision_objects(None, "1.22.3", &opts),
            ),
        ]
    }

    fn parse_documents(yaml: &str) -> Vec<Value> {
        serde_yaml::Deserializer::from_str(yaml)
            .map(|d| Value::deserialize(d).expect("valid YAML"))
            .filter(|v| !v.is_null())
            .collect()
    }

    /// Run with `MESH_SIM_BLESS=1` to rewrite the files from the builders
    /// (keeping each file's leading comments).
    #[test]
    fn control_plane_files_are_what_the_chart_builders_produce() {
        let bless = std::env::var_os("MESH_SIM_BLESS").is_some();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        for (path, default_header, objects) in control_plane_files() {
            let file = dir.join(path);
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if parse_documents(&text) == objects {
                continue;
            }
            assert!(
                bless,
                "{path} differs from what the chart builders produce; rerun with MESH_SIM_BLESS=1 to rewrite it"
            );
            let header: String = text
                .lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect();
            let header = if header.is_empty() {
                default_header.to_string()
            } else {
                header
            };
            let yaml = crate::inject::charts::to_yaml_documents(&objects);
            std::fs::write(&file, format!("{header}{yaml}")).expect("writing a scenario file");
        }
    }

    #[test]
    fn every_builtin_name_has_files_and_every_file_parses() {
        for name in builtin_names() {
            let documents = builtin(name).expect("a listed scenario exists");
            assert!(!documents.is_empty());
            for (file, text) in builtin_files(name).unwrap().iter().zip(documents) {
                assert!(!parse_documents(text).is_empty(), "{file} holds objects");
            }
        }
        assert!(builtin("no-such-scenario").is_none());
    }

    #[test]
    fn list_kinds_are_expanded_and_empty_documents_skipped() {
        let mut world = World::new(SimConfig::default());
        let yaml = "---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\ndata: {k: v}\n";
        assert_eq!(apply_yaml(&mut world, yaml).unwrap(), 3);
        assert!(world.store.get(kinds::namespaces(), "", "b").is_some());
        // Applying again replaces rather than failing with AlreadyExists.
        let changed = yaml.replace("{k: v}", "{k: w}");
        load_yaml(&mut world, &changed).unwrap();
        assert_eq!(
            world.store.get(kinds::configmaps(), "a", "c").unwrap()["data"]["k"],
            "w"
        );
    }

    #[test]
    fn an_unknown_kind_is_an_error_naming_it() {
        let mut world = World::new(SimConfig::default());
        let err = load_yaml(&mut world, "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n")
            .unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("networking.istio.io/v1 Gateway \"gw\" is not a kind mesh-sim serves"),
            "{err:#}"
        );
    }

    #[test]
    fn load_files_reads_a_directory_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("20-cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: x}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-ns.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let mut world = World::new(SimConfig::default());
        load_files(&mut world, &[dir.path().to_path_buf()]).unwrap();
        assert!(world.store.get(kinds::configmaps(), "x", "c").is_some());
    }

    fn proxy_image(pod: &Value) -> Option<String> {
        ["containers", "initContainers"].iter().find_map(|list| {
            pod["spec"][list]
                .as_array()?
                .iter()
                .find(|c| c["name"] == "istio-proxy")
                .and_then(|c| c["image"].as_str())
                .map(str::to_string)
        })
    }

    fn injected_revision(pod: &Value) -> Option<String> {
        let status: Value =
            serde_json::from_str(pod["metadata"]["annotations"][STATUS_ANNOTATION].as_str()?)
                .ok()?;
        status["revision"].as_str().map(str::to_string)
    }

    /// (proxy image, injected revision) of every pod of a namespace whose
    /// name starts with `prefix`.
    fn proxies(
        world: &World,
        namespace: &str,
        prefix: &str,
    ) -> Vec<(Option<String>, Option<String>)> {
        world
            .store
            .list(kinds::pods(), Some(namespace))
            .filter(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .map(|p| (proxy_image(&p), injected_revision(&p)))
            .collect()
    }

    fn all_on(
        world: &World,
        namespace: &str,
        prefix: &str,
        count: usize,
        image: Option<&str>,
        revision: Option<&str>,
    ) {
        let found = proxies(world, namespace, prefix);
        assert_eq!(found.len(), count, "{namespace}/{prefix}*: {found:?}");
        for (i, r) in &found {
            assert_eq!(
                (i.as_deref(), r.as_deref()),
                (image, revision),
                "{namespace}/{prefix}*"
            );
        }
    }

    #[test]
    fn canary_scenario_puts_every_pod_where_its_comments_say() {
        let mut world = World::new(SimConfig::default());
        let started = std::time::Instant::now();
        load_builtin(&mut world, "canary").unwrap();
        eprintln!("canary loaded in {:?}", started.elapsed());
        let old = Some("docker.io/istio/proxyv2:1.21.2");
        let new = Some("docker.io/istio/proxyv2:1.22.3");
        all_on(&world, "shop", "frontend-", 2, old, Some("1-21-2"));
        all_on(&world, "shop", "recommendations-", 1, old, Some("1-21-2"));
        all_on(&world, "shop", "metrics-exporter-", 1, None, None);
        // pay selects 1-22-3 now, but its pods were injected by 1-21-2.
        let pay = world.store.get(kinds::namespaces(), "", "pay").unwrap();
        assert_eq!(
            pay["metadata"]["labels"],
            serde_json::json!({"istio.io/rev": "1-22-3"})
        );
        all_on(&world, "pay", "payments-", 2, old, Some("1-21-2"));
        all_on(&world, "pay", "ledger-", 2, old, Some("1-21-2"));
        all_on(&world, "cart", "cart-", 2, old, Some("1-21-2"));
        all_on(
            &world,
            "cart",
            "pricing-",
            2,
            Some("registry.example.com/istio/proxyv2:1.21.2-debug"),
            Some("1-21-2"),
        );
        all_on(&world, "search", "search-api-", 2, new, Some("1-22-3"));
        all_on(&world, "search", "indexer-", 2, new, Some("1-22-3"));
        for indexer in world.store.list(kinds::pods(), Some("search")).filter(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("indexer-")
        }) {
            assert!(
                indexer["spec"]["initContainers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["name"] == "istio-proxy" && c["restartPolicy"] == "Always")
            );
        }
        all_on(&world, "legacy", "inventory-", 2, old, Some("1-21-2"));
        all_on(&world, "batch", "debug-shell", 1, new, Some("1-22-3"));
        let job_pods = proxies(&world, "batch", "nightly-report-");
        assert!(!job_pods.is_empty());
        assert!(
            job_pods
                .iter()
                .all(|(i, r)| (i.as_deref(), r.as_deref()) == (new, Some("1-22-3")))
        );
        all_on(
            &world,
            "shop",
            "log-agent-",
            world.config.node_count,
            old,
            Some("1-21-2"),
        );
        all_on(&world, "ambient-apps", "reviews-", 2, None, None);
        all_on(&world, "no-mesh", "static-site-", 2, None, None);
        all_on(&world, "typo", "notifications-", 2, None, None);
        all_on(
            &world,
            "istio-gateways",
            "istio-ingressgateway-1-21-2-",
            2,
            old,
            Some("1-21-2"),
        );
        all_on(
            &world,
            "istio-gateways",
            "istio-ingressgateway-1-22-3-",
            2,
            new,
            Some("1-22-3"),
        );
        let allowed = |ns: &str, name: &str| {
            world.store.get(kinds::pdbs(), ns, name).unwrap()["status"]["disruptionsAllowed"]
                .clone()
        };
        assert_eq!(allowed("shop", "frontend"), 1);
        assert_eq!(allowed("legacy", "inventory"), 0);
        let lb = world
            .store
            .get(kinds::services(), "istio-gateways", "istio-ingressgateway")
            .unwrap();
        assert_eq!(lb["spec"]["selector"]["version"], "1-21-2");
        assert_eq!(lb["spec"]["type"], "LoadBalancer");
    }

    #[test]
    fn revision_tags_scenario_injects_through_tag_webhooks_and_not_through_a_tag_service_alone() {
        let mut world = World::new(SimConfig::default());
        load_builtin(&mut world, "revision-tags").unwrap();
        let old = Some("docker.io/istio/proxyv2:1.26.2");
        all_on(&world, "legacy", "web-", 2, old, Some("1-26-2"));
        all_on(&world, "stable", "web-", 2, old, Some("1-26-2"));
        all_on(&world, "canary", "web-", 2, None, None);
        let services: Vec<String> = world
            .store
            .list(kinds::services(), Some("istio-system"))
            .filter(|s| s.pointer("/metadata/labels/istio.io~1tag").is_some())
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            services,
            [
                "istiod-revision-tag-prod-canary",
                "istiod-revision-tag-prod-stable"
            ]
        );
    }

    #[test]
    fn a_dry_run_pod_create_is_injected_as_a_real_one_and_not_stored_and_fails_alike() {
        let mut world = World::new(SimConfig::default());
        load_builtin(&mut world, "canary").unwrap();
        let probe = || {
            serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "probe", "namespace": "pay"},
                "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
            })
        };
        let dry = WriteOptions::dry_run(true);
        let answered = world.create(kinds::pods(), probe(), &dry).unwrap();
        assert_eq!(
            proxy_image(&answered).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3")
        );
        assert_eq!(injected_revision(&answered).as_deref(), Some("1-22-3"));
        assert!(world.store.get(kinds::pods(), "pay", "probe").is_none());

        // istiod 1-22-3 scaled to zero: the webhook fails closed, dry run or not.
        let mut istiod = (*world
            .store
            .get(kinds::deployments(), "istio-system", "istiod-1-22-3")
            .unwrap())
        .clone();
        istiod["spec"]["replicas"] = serde_json::json!(0);
        world
            .update(kinds::deployments(), istiod, &WriteOptions::default())
            .unwrap();
        settle(&mut world);
        let dry_err = world.create(kinds::pods(), probe(), &dry).unwrap_err();
        let real_err = world
            .create(kinds::pods(), probe(), &WriteOptions::default())
            .unwrap_err();
        assert_eq!(dry_err.code, 500);
        assert_eq!(dry_err.message, real_err.message);
        assert!(
            dry_err
                .message
                .contains("no endpoints available for service \"istiod-1-22-3\""),
            "{}",
            dry_err.message
        );
        assert!(world.store.get(kinds::pods(), "pay", "probe").is_none());
    }

    #[test]
    fn in_place_scenario_leaves_every_sidecar_stale_behind_the_upgraded_istiod() {
        let mut world = World::new(SimConfig::default());
        load_builtin(&mut world, "in-place").unwrap();
        let old = Some("docker.io/istio/proxyv2:1.21.2");
        all_on(&world, "shop", "frontend-", 2, old, Some("default"));
        all_on(&world, "pay", "ledger-", 3, old, Some("default"));
        all_on(
            &world,
            "shop",
            "log-agent-",
            world.config.node_count,
            old,
            Some("default"),
        );
        assert_eq!(
            world.store.list(kinds::pods(), Some("shop")).count(),
            3 * 2 + world.config.node_count
        );
        let istiod = world
            .store
            .get(kinds::deployments(), "istio-system", "istiod")
            .unwrap();
        assert_eq!(
            istiod["spec"]["template"]["spec"]["containers"][0]["image"],
            "docker.io/istio/pilot:1.22.3"
        );
        // A pod created now gets the new proxy.
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "probe", "namespace": "shop"},
            "spec": {"containers": [{"name": "probe", "image": "busybox"}]},
        });
        let created = world
            .create(kinds::pods(), pod, &WriteOptions::default())
            .unwrap();
        assert_eq!(
            proxy_image(&created).as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3")
        );
    }

    #[test]
    fn empty_scenario_holds_only_the_default_namespaces() {
        let mut world = World::new(SimConfig::default());
        load_builtin(&mut world, "empty").unwrap();
        let names: Vec<String> = world
            .store
            .list(kinds::namespaces(), None)
            .map(|n| n["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"]
        );
        assert_eq!(world.store.count(kinds::pods()), 0);
        assert!(load_builtin(&mut world, "nope").is_err());
    }
}
