//! Faults from a YAML file, for `mesh-sim serve --faults FILE`: the same
//! rules the Rust tests build with [`FaultRule`], written by a script.
//!
//! ```yaml
//! seed: 7                        # the generator behind `rate`
//! rules:
//!   - verb: patch                # get list watch create update patch delete deletecollection *
//!     resource: deployments      # a plural, plural/subresource, or *
//!     namespace: shop            # optional
//!     name: web                  # optional
//!     status: 429                # one action: status | latencyMs | cutWatchAfter | conflict
//!     retryAfter: 2              #   429/503: the Retry-After header, seconds
//!     rate: 0.1                  # at most one trigger: rate | next | everyNth | firstPerObject
//!   - verb: patch
//!     resource: "*"
//!     status: 500
//!     afterStore: true           # serve (store) the write, then answer 500
//!     next: 1
//! conflictFirstWrites:           # the first N updates/patches of every object: 409
//!   deployments: 1
//! ```
//!
//! The file is checked whole before anything changes: a field that is not
//! one of these, a verb or trigger value out of range, two actions in one
//! rule, or an option without its action is an error naming the rule and
//! the field. A resource the server does not serve is caught by
//! [`FaultFile::unknown_resource`], which the server calls with what it
//! serves (the YAML alone cannot know the kinds a manifest registers).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{FaultRule, Faults};

/// A parsed and checked fault file.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultFile {
    pub faults: Faults,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default)]
    conflict_first_writes: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleDoc {
    verb: Verb,
    resource: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    // Actions.
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    cut_watch_after: Option<usize>,
    #[serde(default)]
    conflict: Option<bool>,
    // Options of `status`.
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    after_store: Option<bool>,
    // Triggers.
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    next: Option<u32>,
    #[serde(default)]
    every_nth: Option<u32>,
    #[serde(default)]
    first_per_object: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Deletecollection,
    #[serde(rename = "*")]
    Any,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::Deletecollection => "deletecollection",
            Verb::Any => "*",
        }
    }
}

impl FaultFile {
    /// Parses and checks the text of a fault file.
    pub fn parse(text: &str) -> Result<FaultFile, String> {
        // An empty file (or one holding only comments) means no faults.
        let doc: Doc = if text.trim().lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            Doc {
                seed: 0,
                rules: Vec::new(),
                conflict_first_writes: BTreeMap::new(),
            }
        } else {
            serde_yaml::from_str(text).map_err(|e| e.to_string())?
        };
        let mut faults = Faults::new().seed(doc.seed);
        for (index, rule) in doc.rules.into_iter().enumerate() {
            faults = faults.rule(rule_from(rule).map_err(|e| format!("rules[{index}]: {e}"))?);
        }
        for (resource, n) in doc.conflict_first_writes {
            check_resource_shape(&resource)
                .map_err(|e| format!("conflictFirstWrites.{resource}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "conflictFirstWrites.{resource}: must be at least 1"
                ));
            }
            faults = faults.conflict_first_writes(&resource, n);
        }
        Ok(FaultFile { faults })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<FaultFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the fault file {}: {e}", path.display()))?;
        FaultFile::parse(&text)
            .map_err(|e| anyhow::anyhow!("the fault file {}: {e}", path.display()))
    }

    /// The first rule resource that `served` (given `plural` or
    /// `plural/subresource`) does not know, as `rules[i].resource: ...`.
    pub fn unknown_resource(&self, served: impl Fn(&str) -> bool) -> Option<String> {
        self.faults.rules.iter().find_map(|rule| {
            (rule.resource != "*" && !served(&rule.resource)).then(|| {
                format!(
                    "resource {:?} is not served here (a plural such as deployments, deployments/scale, or *)",
                    rule.resource
                )
            })
        })
    }
}

fn check_resource_shape(resource: &str) -> Result<(), String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    let parts: Vec<&str> = resource.split('/').collect();
    if resource == "*" || (parts.len() <= 2 && parts.iter().all(|p| ok_part(p))) {
        Ok(())
    } else {
        Err(format!(
            "{resource:?} is not a resource (a lowercase plural such as deployments, deployments/scale, or *)"
        ))
    }
}

fn rule_from(doc: RuleDoc) -> Result<FaultRule, String> {
    check_resource_shape(&doc.resource).map_err(|e| format!("resource: {e}"))?;
    let mut rule = FaultRule::on(doc.verb.as_str(), &doc.resource);
    if let Some(name) = &doc.name {
        rule = rule.name(name);
    }
    if let Some(namespace) = &doc.namespace {
        rule = rule.namespace(namespace);
    }

    let actions: Vec<&str> = [
        ("status", doc.status.is_some()),
        ("latencyMs", doc.latency_ms.is_some()),
        ("cutWatchAfter", doc.cut_watch_after.is_some()),
        ("conflict", doc.conflict.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    match actions.as_slice() {
        [] => {
            return Err(
                "no action: give one of status, latencyMs, cutWatchAfter, conflict".to_string(),
            );
        }
        [_] => {}
        more => {
            return Err(format!(
                "{} are actions: a rule has exactly one (write two rules)",
                more.join(" and ")
            ));
        }
    }
    if doc.status.is_none() {
        if doc.retry_after.is_some() {
            return Err("retryAfter: only with status".to_string());
        }
        if doc.after_store.is_some() {
            return Err("afterStore: only with status".to_string());
        }
    }
    if let Some(code) = doc.status {
        if !(400..=599).contains(&code) {
            return Err(format!(
                "status: {code} is not an error status (400 to 599)"
            ));
        }
        if code == 409 {
            return Err("status: for a 409 write `conflict: true`".to_string());
        }
        let retry_after = doc.retry_after.unwrap_or(1);
        rule = if doc.after_store == Some(true) {
            if matches!(doc.verb, Verb::Get | Verb::List | Verb::Watch) {
                return Err(format!(
                    "afterStore: only for writes (create, update, patch, delete, deletecollection or *), not {}",
                    doc.verb.as_str()
                ));
            }
            rule.error_after_store(code, retry_after)
        } else {
            rule.error_with_retry_after(code, retry_after)
        };
    }
    if let Some(ms) = doc.latency_ms {
        rule = rule.latency(Duration::from_millis(ms));
    }
    if let Some(n) = doc.cut_watch_after {
        if !matches!(doc.verb, Verb::Watch | Verb::Any) {
            return Err(format!(
                "cutWatchAfter: only for watch (or *), not {}",
                doc.verb.as_str()
            ));
        }
        rule = rule.cut_watch_after(n);
    }
    match doc.conflict {
        Some(true) => rule = rule.conflict(),
        Some(false) => {
            return Err("conflict: only `true` (leave it out for no conflict)".to_string());
        }
        None => {}
    }

    let triggers: Vec<&str> = [
        ("rate", doc.rate.is_some()),
        ("next", doc.next.is_some()),
        ("everyNth", doc.every_nth.is_some()),
        ("firstPerObject", doc.first_per_object.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if triggers.len() > 1 {
        return Err(format!(
            "{} are triggers: a rule has at most one",
            triggers.join(" and ")
        ));
    }
    if let Some(share) = doc.rate {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("rate: {share} is not between 0 and 1"));
        }
        rule = rule.rate(share);
    }
    if let Some(n) = doc.next {
        rule = rule.next(n);
    }
    if let Some(n) = doc.every_nth {
        if n == 0 {
            return Err("everyNth: must be at least 1".to_string());
        }
        rule = rule.every_nth(n);
    }
    if let Some(n) = doc.first_per_object {
        rule = rule.first_per_object(n);
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::super::{FaultEffect, Trigger};
    use super::*;

    fn error_of(text: &str) -> String {
        FaultFile::parse(text).expect_err("the file is refused")
    }

    #[test]
    fn every_action_and_trigger_of_the_file_becomes_a_rule() {
        let file = FaultFile::parse(
            "seed: 7
rules:
  - {verb: patch, resource: deployments, status: 429, retryAfter: 2, next: 3}
  - {verb: list, resource: pods, namespace: shop, status: 503, retryAfter: 0, everyNth: 4}
  - {verb: '*', resource: '*', latencyMs: 200}
  - {verb: watch, resource: pods, cutWatchAfter: 3}
  - {verb: update, resource: deployments/scale, name: web, conflict: true, rate: 0.25}
  - {verb: patch, resource: '*', status: 500, afterStore: true, firstPerObject: 1}
conflictFirstWrites:
  namespaces: 2
",
        )
        .expect("parses");
        let f = &file.faults;
        assert_eq!(f.seed, 7);
        assert_eq!(
            f.rules.len(),
            8,
            "six rules and two for conflictFirstWrites"
        );
        assert_eq!(
            f.rules[0].effect,
            FaultEffect::Error {
                code: 429,
                retry_after_seconds: 2
            }
        );
        assert_eq!(f.rules[0].trigger, Trigger::Next(3));
        assert_eq!(f.rules[1].namespace.as_deref(), Some("shop"));
        assert_eq!(f.rules[1].trigger, Trigger::EveryNth(4));
        assert_eq!(
            f.rules[2].effect,
            FaultEffect::Latency(Duration::from_millis(200))
        );
        assert_eq!(f.rules[2].trigger, Trigger::Always);
        assert_eq!(f.rules[3].effect, FaultEffect::CutWatchAfter(3));
        assert_eq!(f.rules[4].resource, "deployments/scale");
        assert_eq!(f.rules[4].name.as_deref(), Some("web"));
        assert_eq!(f.rules[4].effect, FaultEffect::Conflict);
        assert_eq!(f.rules[4].trigger, Trigger::Rate(0.25));
        assert_eq!(
            f.rules[5].effect,
            FaultEffect::ErrorAfterStore {
                code: 500,
                retry_after_seconds: 1
            }
        );
        assert_eq!(f.rules[5].trigger, Trigger::FirstPerObject(1));
        assert_eq!(
            (f.rules[6].verb.as_str(), f.rules[7].verb.as_str()),
            ("update", "patch")
        );
        assert_eq!(f.rules[7].trigger, Trigger::FirstPerObject(2));
    }

    #[test]
    fn an_empty_file_or_one_of_comments_means_no_faults() {
        for text in ["", "\n", "# nothing yet\n", "rules: []\n"] {
            let file = FaultFile::parse(text).expect("parses");
            assert!(file.faults.rules.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let e = error_of("rules:\n  - {verb: get, resource: pods, statuss: 500}\n");
        assert!(e.contains("unknown field `statuss`"), "{e}");
        assert!(e.contains("rules[0]"), "{e}");
        let e = error_of("seeds: 1\n");
        assert!(e.contains("unknown field `seeds`"), "{e}");
    }

    #[test]
    fn an_unknown_verb_is_refused_with_the_verbs_there_are() {
        let e = error_of("rules:\n  - {verb: fetch, resource: pods, status: 500}\n");
        assert!(e.contains("rules[0].verb"), "{e}");
        assert!(e.contains("unknown variant `fetch`"), "{e}");
        assert!(e.contains("deletecollection"), "{e}");
    }

    #[test]
    fn values_out_of_range_name_the_rule_and_the_field() {
        let cases = [
            (
                "{verb: get, resource: pods, status: 200}",
                "rules[0]: status: 200",
            ),
            (
                "{verb: get, resource: pods, status: 409}",
                "rules[0]: status: for a 409",
            ),
            (
                "{verb: get, resource: pods, status: 500, rate: 1.5}",
                "rules[0]: rate: 1.5",
            ),
            (
                "{verb: get, resource: pods, status: 500, everyNth: 0}",
                "rules[0]: everyNth",
            ),
            (
                "{verb: get, resource: Pods, status: 500}",
                "rules[0]: resource: \"Pods\"",
            ),
            (
                "{verb: get, resource: pods/a/b, status: 500}",
                "rules[0]: resource",
            ),
            (
                "{verb: get, resource: pods, conflict: false}",
                "rules[0]: conflict",
            ),
            (
                "{verb: get, resource: pods, latencyMs: 5, retryAfter: 1}",
                "rules[0]: retryAfter",
            ),
            (
                "{verb: get, resource: pods, status: 500, afterStore: true}",
                "rules[0]: afterStore",
            ),
            (
                "{verb: get, resource: pods, cutWatchAfter: 2}",
                "rules[0]: cutWatchAfter",
            ),
            ("{verb: get, resource: pods}", "rules[0]: no action"),
            (
                "{verb: get, resource: pods, status: 500, latencyMs: 5}",
                "rules[0]: status and latencyMs are actions",
            ),
            (
                "{verb: get, resource: pods, status: 500, next: 1, rate: 0.5}",
                "rules[0]: rate and next are triggers",
            ),
        ];
        for (rule, expected) in cases {
            let e = error_of(&format!("rules:\n  - {rule}\n"));
            assert!(e.starts_with(expected), "{rule}: {e}");
        }
        let e = error_of("conflictFirstWrites: {deployments: 0}\n");
        assert!(e.starts_with("conflictFirstWrites.deployments"), "{e}");
        let e = error_of("rules:\n  - {verb: get, resource: pods, status: 500}\n  - {verb: get}\n");
        assert!(
            e.contains("rules[1]") && e.contains("missing field `resource`"),
            "{e}"
        );
    }

    #[test]
    fn a_resource_the_server_does_not_serve_is_named() {
        let file = FaultFile::parse(
            "rules:\n  - {verb: get, resource: '*', status: 500}\n  - {verb: get, resource: deployment, status: 500}\n",
        )
        .expect("parses");
        let e = file
            .unknown_resource(|r| r == "deployments")
            .expect("deployment is not served");
        assert!(e.contains("\"deployment\""), "{e}");
        assert_eq!(file.unknown_resource(|_| true), None);
    }
}
