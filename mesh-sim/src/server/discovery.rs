//! Discovery documents (`/api`, `/apis`, `/apis/<g>/<v>`), `/version` and
//! the OpenAPI endpoints, all derived from [`crate::resources::BUILTIN`] plus
//! the kinds registered at run time.
//!
//! kubectl asks for aggregated discovery first (an `Accept` header naming
//! `apidiscovery.k8s.io/v2`); answering legacy documents with a plain
//! `application/json` content type makes it fall back to the legacy
//! endpoints, which is what this server does. Subresources are separate
//! entries (`deployments/scale` with kind `autoscaling/v1` `Scale`), because
//! kubectl's scale client finds the Scale kind there.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::resources::{BUILTIN, Resource};

/// The Kubernetes version the simulated server reports.
pub const GIT_VERSION: &str = "v1.33.0";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Every served kind: the builtin table, then run-time kinds not in it.
pub fn all_resources(extra: impl IntoIterator<Item = &'static Resource>) -> Vec<&'static Resource> {
    let mut all: Vec<&'static Resource> = BUILTIN.iter().chain(super::review::REVIEWS).collect();
    for r in extra {
        if !all
            .iter()
            .any(|b| b.group == r.group && b.version == r.version && b.plural == r.plural)
        {
            all.push(r);
        }
    }
    all
}

/// `/api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_versions(resources: &[&'static Resource]) -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut groups: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        let versions = groups.entry(r.group).or_default();
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    groups
}

fn group_document(group: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`: every named group.
pub fn groups(resources: &[&'static Resource]) -> Value {
    let groups: Vec<Value> = group_versions(resources)
        .iter()
        .map(|(g, vs)| group_document(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, or `None` for an unknown group.
pub fn group(resources: &[&'static Resource], name: &str) -> Option<Value> {
    let groups = group_versions(resources);
    let versions = groups.get(name)?;
    let mut doc = group_document(name, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Kinds `kubectl get all` shows.
fn categories(r: &Resource) -> Vec<&'static str> {
    match r.kind {
        "Pod" | "Service" | "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            vec!["all"]
        }
        // The Gateway API CRDs' category (`kubectl get gateway-api`).
        "GatewayClass" | "Gateway" | "HTTPRoute" => vec!["gateway-api"],
        _ => vec![],
    }
}

fn subresource_entry(r: &Resource, sub: &str) -> Value {
    let name = format!("{}/{}", r.plural, sub);
    match sub {
        "scale" => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }),
        "eviction" => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced,
            "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
        }),
        "log" => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced, "kind": "Pod", "verbs": ["get"],
        }),
        _ => json!({
            "name": name, "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        }),
    }
}

/// `/api/v1` or `/apis/<group>/<version>`, or `None` when nothing is served there.
pub fn resource_list(resources: &[&'static Resource], group: &str, version: &str) -> Option<Value> {
    let in_gv: Vec<&&'static Resource> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if in_gv.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for r in in_gv {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": if super::review::is_review(r) { &["create"][..] } else { ALL_VERBS },
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        let cats = categories(r);
        if !cats.is_empty() {
            entry["categories"] = json!(cats);
        }
        entries.push(entry);
        for sub in r.subresources {
            entries.push(subresource_entry(r, sub));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_short_names_and_a_scale_subresource() {
        let all = all_resources([]);
        let doc = resource_list(&all, "apps", "v1").unwrap();
        let entries = doc["resources"].as_array().unwrap();
        let deploy = entries.iter().find(|e| e["name"] == "deployments").unwrap();
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        let scale = entries
            .iter()
            .find(|e| e["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(resource_list(&all, "apps", "v2").is_none());
    }

    #[test]
    fn group_list_names_every_named_group_once() {
        let all = all_resources([]);
        let doc = groups(&all);
        let names: Vec<&str> = doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert!(names.contains(&"apps"));
        assert!(names.contains(&"admissionregistration.k8s.io"));
        assert_eq!(names.iter().filter(|n| **n == "apps").count(), 1);
        assert_eq!(
            group(&all, "apps").unwrap()["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert!(group(&all, "nope.io").is_none());
    }
}
