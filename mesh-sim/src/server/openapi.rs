//! The smallest OpenAPI v3 kubectl needs: per group-version documents whose
//! PATCH operations declare the `fieldValidation` query parameter.
//!
//! Why: `kubectl create -f` and `kubectl apply -f` validate manifests by
//! default. kubectl first asks OpenAPI v3 whether the server validates fields
//! itself (a PATCH operation for the kind, found by its
//! `x-kubernetes-group-version-kind`, listing a `fieldValidation` query
//! parameter). If so it sends `fieldValidation=Strict` and skips client-side
//! validation, which would need the full OpenAPI v2 schema. Without these
//! documents `create -f` fails with "failed to download openapi" unless
//! `--validate=false` is given.
//!
//! The PATCH operations carry no request body, so `kubectl apply` does not
//! try to compute strategic merge patches from OpenAPI v3 schemas (there are
//! none here); it falls back to the patch metadata compiled into kubectl for
//! builtin kinds, and to JSON merge patches for other kinds. `/openapi/v2`
//! answers 404, which kubectl tolerates for these commands.

use serde_json::{Value, json};

use crate::resources::Resource;

/// The group-version path of a resource (`api/v1`, `apis/apps/v1`).
fn gv_path(r: &Resource) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

/// A short stable hash of a document, for the `?hash=` kubectl caches by.
fn hash(text: &str) -> String {
    // FNV-1a: deterministic across runs, which std's hasher is not.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `/openapi/v3`: where each group-version's document is.
pub fn root(resources: &[&'static Resource]) -> Value {
    let mut paths = serde_json::Map::new();
    for r in resources {
        let path = gv_path(r);
        if paths.contains_key(&path) {
            continue;
        }
        if let Some(doc) = group_version(resources, &path) {
            let url = format!("/openapi/v3/{path}?hash={}", hash(&doc.to_string()));
            paths.insert(path, json!({"serverRelativeURL": url}));
        }
    }
    json!({"paths": paths})
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/<gv path>`, or `None` when nothing is served there.
pub fn group_version(resources: &[&'static Resource], path: &str) -> Option<Value> {
    let in_gv: Vec<&&'static Resource> = resources.iter().filter(|r| gv_path(r) == path).collect();
    if in_gv.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for r in in_gv {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let base = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("/{path}/{}", r.plural)
        };
        let write_params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation"]
            .iter()
            .map(|p| query_param(p))
            .collect();
        let mut patch_params = write_params.clone();
        patch_params.push(query_param("force"));
        paths.insert(
            base.clone(),
            json!({"post": {
                "operationId": format!("create{}", r.kind),
                "parameters": write_params,
                "responses": {"201": {"description": "Created"}},
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
            }}),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "put": {
                    "operationId": format!("replace{}", r.kind),
                    "parameters": write_params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                },
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": patch_params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (mesh-sim)", "version": super::discovery::GIT_VERSION},
        "paths": paths,
        "components": {},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::discovery::all_resources;

    #[test]
    fn root_points_at_every_group_version_with_a_stable_hash() {
        let all = all_resources([]);
        let a = root(&all);
        let b = root(&all);
        assert_eq!(a, b);
        let url = a["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        assert!(a["paths"]["api/v1"].is_object());
    }

    #[test]
    fn patch_operations_declare_field_validation_for_their_kind() {
        let all = all_resources([]);
        let doc = group_version(&all, "apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let ns = group_version(&all, "api/v1").unwrap();
        assert!(ns["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
        assert!(group_version(&all, "apis/nope/v1").is_none());
    }
}
