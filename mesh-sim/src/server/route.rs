//! URL routing: which endpoint a path names, and the query parameters the
//! handlers read.
//!
//! Kept free of I/O and of the world so the mapping from a URL to a resource
//! request is unit-tested on its own. Resource paths follow the API server's
//! layout:
//!
//! ```text
//! /api/v1/<plural>[/<name>[/<sub>]]                              cluster-scoped, or all namespaces
//! /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]]              namespaced
//! /apis/<group>/<version>/...                                    same shapes for named groups
//! /api/v1/namespaces/<name>/status                               a namespace's own subresource
//! /api/v1/watch/...                                              the old watch prefix (watch=true)
//! ```

use std::collections::HashMap;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    ResourceList {
        group: String,
        version: String,
    },
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3` or `/openapi/v3/<group-version path>`
    OpenApiV3(Option<String>),
    Resource(ResourcePath),
    NotFound,
}

/// A request on objects of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    /// The namespace in the path; `None` for cluster-scoped kinds and for
    /// lists across all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The path used the old `/watch/` prefix.
    pub watch_prefix: bool,
}

impl ResourcePath {
    /// `plural` or `plural/subresource`, as RBAC and faults name it.
    pub fn resource_name(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{}", self.plural, sub),
            None => self.plural.clone(),
        }
    }
}

/// Maps a request path (without query) to a route.
pub fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::ResourceList {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3(None),
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(Some(rest.join("/"))),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mk = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            watch_prefix,
        })
    };
    let core = group.is_empty();
    match rest {
        // A namespace's own subresources (`namespaces/x/status`, `/finalize`).
        ["namespaces", name, sub @ ("status" | "finalize")] if core => {
            mk(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => mk(Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        [plural] => mk(None, plural, None, None),
        [plural, name] => mk(None, plural, Some(name), None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

/// Query parameters, percent-decoded; the last value of a repeated key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: &str) -> Self {
        Query(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean flag as the API server reads one (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | "TRUE"))
    }

    /// A non-empty value.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match route(path) {
            Route::Resource(r) => r,
            other => panic!("{path} routed to {other:?}"),
        }
    }

    #[test]
    fn discovery_and_health_paths_route_to_their_endpoints() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(route("/readyz"), Route::Health);
        assert_eq!(route("/api"), Route::CoreVersions);
        assert_eq!(route("/apis/"), Route::Groups);
        assert_eq!(route("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(
            route("/api/v1"),
            Route::ResourceList {
                group: "".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            route("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            route("/openapi/v3/apis/apps/v1"),
            Route::OpenApiV3(Some("apis/apps/v1".into()))
        );
        assert_eq!(route("/nope"), Route::NotFound);
    }

    #[test]
    fn namespaced_paths_carry_namespace_name_and_subresource() {
        let r = res("/apis/apps/v1/namespaces/shop/deployments/web/scale");
        assert_eq!(
            (r.group.as_str(), r.plural.as_str()),
            ("apps", "deployments")
        );
        assert_eq!(r.namespace.as_deref(), Some("shop"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.resource_name(), "deployments/scale");
        let list = res("/api/v1/namespaces/shop/pods");
        assert_eq!((list.namespace.as_deref(), list.name), (Some("shop"), None));
    }

    #[test]
    fn namespaces_themselves_are_cluster_scoped_objects() {
        let all = res("/api/v1/namespaces");
        assert_eq!(
            (all.plural.as_str(), all.namespace.clone(), all.name.clone()),
            ("namespaces", None, None)
        );
        let one = res("/api/v1/namespaces/shop");
        assert_eq!(
            (one.plural.as_str(), one.name.as_deref()),
            ("namespaces", Some("shop"))
        );
        let status = res("/api/v1/namespaces/shop/status");
        assert_eq!(
            (status.name.as_deref(), status.subresource.as_deref()),
            (Some("shop"), Some("status"))
        );
        let pods = res("/api/v1/namespaces/shop/pods");
        assert_eq!(pods.plural, "pods");
    }

    #[test]
    fn cluster_wide_lists_and_the_watch_prefix_route_too() {
        let pods = res("/api/v1/pods");
        assert_eq!((pods.namespace, pods.name), (None, None));
        let node = res("/api/v1/nodes/n1/status");
        assert_eq!(
            (node.name.as_deref(), node.subresource.as_deref()),
            (Some("n1"), Some("status"))
        );
        let w = res("/apis/apps/v1/watch/namespaces/a/deployments/x");
        assert!(w.watch_prefix);
        assert_eq!(w.name.as_deref(), Some("x"));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Cistio.io%2Frev+in+(a)&watch=1&limit=");
        assert_eq!(q.get("labelSelector"), Some("app=web,istio.io/rev in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.non_empty("limit"), None);
    }
}
