//! Self-reviews: `SelfSubjectAccessReview` ("may I do this?", which
//! `kubectl auth can-i` and a careful plugin ask before writing) and
//! `SelfSubjectReview` (`kubectl auth whoami`), answered from the caller's
//! [`crate::auth::Role`]. They are created, never stored, so they live here
//! rather than in the resource table the store keys its objects by.

use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;

use super::route::ResourcePath;
use super::{ApiRequest, Body, json_response};

macro_rules! review {
    ($group:expr, $plural:expr, $singular:expr, $kind:expr) => {
        Resource {
            group: $group,
            version: "v1",
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: false,
            short_names: &[],
            subresources: &[],
        }
    };
}

/// The review kinds, for discovery (their only verb is `create`).
pub static REVIEWS: &[Resource] = &[
    review!(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview"
    ),
    review!(
        "authentication.k8s.io",
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview"
    ),
];

pub fn is_review(r: &Resource) -> bool {
    REVIEWS
        .iter()
        .any(|x| x.group == r.group && x.plural == r.plural)
}

/// Answers `path` if it names a review; `None` otherwise.
pub fn handle(
    user: &User,
    request: &ApiRequest,
    path: &ResourcePath,
) -> Option<ApiResult<Response<Body>>> {
    let review = REVIEWS
        .iter()
        .find(|r| r.group == path.group && r.version == path.version && r.plural == path.plural)?;
    if request.method != Method::POST || path.name.is_some() || path.namespace.is_some() {
        return Some(Err(ApiError::method_not_allowed(format!(
            "{} only supports creating (POST {}/{}/{})",
            review.plural, review.group, review.version, review.plural
        ))));
    }
    Some(answer(review, user, request))
}

/// The review's spec from a protobuf body (kubectl's typed clients send one).
fn spec_from_protobuf(body: &[u8]) -> ApiResult<Value> {
    let review = super::proto::object_from_body(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the protobuf body of the request could not be decoded: {e:?}"
        ))
    })?;
    Ok(review.get("spec").cloned().unwrap_or_else(|| json!({})))
}

fn answer(review: &Resource, user: &User, request: &ApiRequest) -> ApiResult<Response<Body>> {
    let body = &request.body[..];
    let spec: Value = if request
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        spec_from_protobuf(body)?
    } else if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| {
                ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
            })?
            .get("spec")
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    let status = match review.kind {
        "SelfSubjectAccessReview" => access_status(user, &spec),
        _ => json!({"userInfo": {"username": user.name, "groups": ["system:authenticated"]}}),
    };
    let mut doc = json!({
        "kind": review.kind,
        "apiVersion": review.api_version(),
        "metadata": {"creationTimestamp": null},
        "status": status,
    });
    if review.kind == "SelfSubjectAccessReview" {
        doc["spec"] = spec;
    }
    Ok(json_response(StatusCode::CREATED, &doc))
}

fn access_status(user: &User, spec: &Value) -> Value {
    let Some(attrs) = spec.get("resourceAttributes") else {
        // Non-resource URLs (discovery, /version) are open to every user.
        return json!({"allowed": true});
    };
    let field = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    let resource = match field("subresource") {
        "" => field("resource").to_string(),
        sub => format!("{}/{sub}", field("resource")),
    };
    if user.may(field("verb"), &resource) {
        json!({"allowed": true, "reason": "allowed by the mesh-sim role of this token"})
    } else {
        json!({"allowed": false})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn viewer() -> User {
        User {
            name: "viewer".into(),
            role: Some(Role::read_only()),
        }
    }

    #[test]
    fn access_reviews_answer_from_the_role() {
        let ask = |verb: &str, resource: &str, sub: &str| {
            access_status(&viewer(), &json!({"resourceAttributes": {"verb": verb, "resource": resource, "subresource": sub}}))
                ["allowed"]
                .clone()
        };
        assert_eq!(ask("list", "pods", ""), json!(true));
        assert_eq!(ask("patch", "deployments", ""), json!(false));
        assert_eq!(ask("get", "deployments", "scale"), json!(true));
        assert_eq!(
            access_status(
                &viewer(),
                &json!({"nonResourceAttributes": {"path": "/version"}})
            )["allowed"],
            json!(true)
        );
    }
}
