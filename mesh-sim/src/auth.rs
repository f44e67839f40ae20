//! Bearer tokens and what their users may do.
//!
//! The admin token (written into the main kubeconfig) may do everything.
//! Restricted users carry a [`Role`]: cluster-wide (verb, resource) rules in
//! the shape of an RBAC ClusterRole, so tests can drive the 403 paths of the
//! plugin and kubectl. Requests outside the role get the API server's
//! Forbidden wording. Discovery, `/version` and OpenAPI are open to every
//! authenticated user, as `system:discovery` makes them on a real cluster.

use std::collections::HashMap;

use crate::error::ApiError;

/// The verbs a rule can name (`*` matches all of them).
pub const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// What a restricted user may do: a set of (verb, resource) rules, cluster-wide.
///
/// A resource is a plural (`deployments`) or a plural with a subresource
/// (`deployments/scale`); as in RBAC, `deployments` does not grant its
/// subresources, `deployments/*` grants them all and `*/scale` grants
/// `scale` of every kind. `*` as verb or resource matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    rules: Vec<(String, String)>,
}

impl Role {
    /// A role that allows nothing; add rules with [`Role::allow`].
    pub fn new() -> Self {
        Role::default()
    }

    /// Allows every verb in `verbs` on every resource in `resources`.
    pub fn allow(mut self, verbs: &[&str], resources: &[&str]) -> Self {
        for verb in verbs {
            for resource in resources {
                self.rules.push((verb.to_string(), resource.to_string()));
            }
        }
        self
    }

    /// `get`, `list` and `watch` on everything: what a `view`-like role reads.
    pub fn read_only() -> Self {
        Role::new().allow(&["get", "list", "watch"], &["*"])
    }

    /// Everything, as the admin token.
    pub fn admin() -> Self {
        Role::new().allow(&["*"], &["*"])
    }

    /// Whether `verb` on `resource` (`plural` or `plural/subresource`) is allowed.
    pub fn allows(&self, verb: &str, resource: &str) -> bool {
        self.rules
            .iter()
            .any(|(v, r)| (v == "*" || v == verb) && resource_matches(r, resource))
    }
}

fn resource_matches(rule: &str, resource: &str) -> bool {
    if rule == "*" || rule == resource {
        return true;
    }
    match (rule.split_once('/'), resource.split_once('/')) {
        (Some(("*", rule_sub)), Some((_, sub))) => rule_sub == sub,
        (Some((rule_plural, "*")), Some((plural, _))) => rule_plural == plural,
        _ => false,
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `None` for the admin, who may do everything.
    pub role: Option<Role>,
}

impl User {
    pub fn may(&self, verb: &str, resource: &str) -> bool {
        self.role
            .as_ref()
            .is_none_or(|role| role.allows(verb, resource))
    }
}

/// The name the admin token authenticates as.
pub const ADMIN_USER: &str = "mesh-sim-admin";

/// Tokens known to one server.
#[derive(Debug, Clone)]
pub struct Users {
    by_token: HashMap<String, User>,
    admin_token: String,
}

impl Default for Users {
    fn default() -> Self {
        Users::new()
    }
}

impl Users {
    /// A registry holding only a fresh admin token.
    pub fn new() -> Self {
        let admin_token = new_token();
        let mut by_token = HashMap::new();
        by_token.insert(
            admin_token.clone(),
            User {
                name: ADMIN_USER.to_string(),
                role: None,
            },
        );
        Users {
            by_token,
            admin_token,
        }
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Registers a restricted user and returns its new token.
    pub fn add(&mut self, name: &str, role: Role) -> String {
        let token = new_token();
        self.by_token.insert(
            token.clone(),
            User {
                name: name.to_string(),
                role: Some(role),
            },
        );
        token
    }

    /// The user an `Authorization` header value authenticates, if any.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&User> {
        let value = authorization?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.by_token.get(token.trim())
    }

    /// The user a request acts as when it carries `Impersonate-User`, as the
    /// API server decides it: only a user allowed to impersonate (here, the
    /// admin) may, and the impersonated user then has exactly the rights a
    /// user of that name has (a registered user's role; nothing for a name
    /// the server does not know, as with RBAC that binds nothing to it).
    pub fn impersonate(&self, actor: &User, as_user: &str) -> Result<User, ApiError> {
        if actor.role.is_some() {
            return Err(ApiError::forbidden(
                &actor.name,
                "impersonate",
                "users",
                "",
                None,
            ));
        }
        let role = self
            .by_token
            .values()
            .find(|user| user.name == as_user)
            .map(|user| user.role.clone().unwrap_or_else(Role::admin))
            .unwrap_or_default();
        Ok(User {
            name: as_user.to_string(),
            role: Some(role),
        })
    }
}

/// The 403 the API server answers, in its words:
/// `deployments.apps "web" is forbidden: User "viewer" cannot patch resource
/// "deployments" in API group "apps" in the namespace "shop"`.
pub fn forbidden(
    user: &str,
    verb: &str,
    resource: &str,
    group: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> ApiError {
    let plural = resource.split('/').next().unwrap_or(resource);
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let subject = match name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut error = ApiError::forbidden(user, verb, plural, group, namespace);
    error.message = format!(
        "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}"
    );
    error.details = Some((plural.to_string(), name.unwrap_or("").to_string()));
    error
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_rules_match_verbs_resources_and_subresources_like_rbac() {
        let role = Role::new()
            .allow(&["get", "list"], &["pods"])
            .allow(&["patch"], &["deployments/*"])
            .allow(&["update"], &["*/scale"]);
        assert!(role.allows("get", "pods"));
        assert!(!role.allows("delete", "pods"));
        assert!(!role.allows("get", "pods/status"));
        assert!(role.allows("patch", "deployments/status"));
        assert!(!role.allows("patch", "deployments"));
        assert!(role.allows("update", "statefulsets/scale"));
        assert!(Role::read_only().allows("watch", "anything"));
        assert!(!Role::read_only().allows("create", "pods"));
    }

    #[test]
    fn only_known_bearer_tokens_authenticate() {
        let mut users = Users::new();
        let admin = format!("Bearer {}", users.admin_token());
        assert_eq!(
            users.authenticate(Some(&admin)).map(|u| u.name.as_str()),
            Some(ADMIN_USER)
        );
        let token = users.add("viewer", Role::read_only());
        let viewer = users
            .authenticate(Some(&format!("bearer {token}")))
            .unwrap();
        assert_eq!(viewer.name, "viewer");
        assert!(!viewer.may("patch", "deployments"));
        assert!(users.authenticate(Some("Bearer nope")).is_none());
        assert!(users.authenticate(Some(users.admin_token())).is_none());
        assert!(users.authenticate(None).is_none());
    }

    #[test]
    fn the_admin_may_impersonate_and_gets_the_impersonated_users_rights() {
        let mut users = Users::new();
        users.add("viewer", Role::read_only());
        let admin = users
            .authenticate(Some(&format!("Bearer {}", users.admin_token())))
            .cloned()
            .unwrap();
        let viewer = users.impersonate(&admin, "viewer").unwrap();
        assert_eq!(viewer.name, "viewer");
        assert!(viewer.may("list", "pods"));
        assert!(!viewer.may("patch", "pods"));
        let stranger = users.impersonate(&admin, "nobody").unwrap();
        assert!(!stranger.may("list", "pods"));
        let err = users.impersonate(&viewer, "admin").unwrap_err();
        assert_eq!(err.code, 403);
    }

    #[test]
    fn forbidden_uses_the_api_servers_wording() {
        let e = forbidden(
            "viewer",
            "patch",
            "deployments/scale",
            "apps",
            Some("shop"),
            Some("web"),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "deployments.apps \"web\" is forbidden: User \"viewer\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"shop\""
        );
        let list = forbidden("viewer", "list", "pods", "", None, None);
        assert_eq!(
            list.message,
            "pods is forbidden: User \"viewer\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        );
    }
}
