//! Restarts paced by PodDisruptionBudgets: which budgets each restart
//! spends, which restarts must wait, and which cannot start at all.
//!
//! ```text
//! plan: each action ─► the PDBs selecting its pods (template labels) with status.disruptionsAllowed
//!   a budget allowing 0  ─► held: not restarted, with that reason (or refused: --fail-on-blocked)
//!   otherwise            ─► Pacing: a restart may start while, for every budget it spends,
//!                           the restarts in flight spending it are fewer than it allows
//! engine (run::batch) ─► asks Pacing::may_start before each start; never sleeps on a budget
//! ```
//!
//! A restart replaces pods, which is a voluntary disruption: a budget that
//! allows none now would either be ignored (a Deployment's rollout deletes
//! pods without asking) or stall the restart until `--timeout` (Argo
//! Rollouts and `--delete-pods`-style evictions are refused with 429). So a
//! workload whose budget allows 0 disruptions is held before anything is
//! written, and two restarts that take pods from the same budget never run
//! together beyond what it allows. The decision is made once, from the
//! budgets as planned; it is pure, and the engine only applies it.

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use crate::snapshot::{LabelLookup, PdbInfo};

/// A PodDisruptionBudget a restart spends from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    pub name: String,
    /// `status.disruptionsAllowed` when planned.
    pub disruptions_allowed: i32,
}

/// The cluster's PodDisruptionBudgets by namespace, built once per plan: a
/// budget only selects pods of its own namespace, and looking at every
/// budget of the cluster for each workload was 45,000 × 49,000 namespace
/// comparisons on a cluster of 150,000 pods. Within a namespace, a budget
/// whose selector requires `key=value` (what `matchLabels` is) is found by
/// that label: matching each workload against each of its namespace's
/// budgets was still a tenth of `status`'s model with 100 of each a
/// namespace.
#[derive(Debug, Default)]
pub struct PdbsByNamespace<'a> {
    by_namespace: HashMap<&'a str, NamespaceBudgets<'a>>,
}

/// One namespace's budgets, in the order they were listed.
#[derive(Debug, Default)]
struct NamespaceBudgets<'a> {
    budgets: Vec<&'a PdbInfo>,
    /// The budgets requiring `key=value`, by their first such requirement:
    /// key, then value, then positions in `budgets`. A namespace's budgets
    /// use few keys (most often only `app`), so keys are a short list.
    by_label: Vec<(&'a str, HashMap<&'a str, Vec<usize>>)>,
    /// The budgets selecting by other means (`In`, `Exists`, everything):
    /// tried against every label set.
    others: Vec<usize>,
}

impl<'a> PdbsByNamespace<'a> {
    pub fn new(pdbs: &'a [PdbInfo]) -> Self {
        let mut by_namespace: HashMap<&str, NamespaceBudgets> = HashMap::default();
        for pdb in pdbs {
            // A budget without a selector selects nothing.
            if pdb.selector.selects_nothing() {
                continue;
            }
            let namespace = by_namespace.entry(pdb.namespace.as_str()).or_default();
            let position = namespace.budgets.len();
            namespace.budgets.push(pdb);
            match pdb.selector.required_label() {
                Some((key, value)) => {
                    let values = match namespace.by_label.iter().position(|(k, _)| *k == key) {
                        Some(i) => &mut namespace.by_label[i].1,
                        None => {
                            namespace.by_label.push((key, HashMap::default()));
                            &mut namespace.by_label.last_mut().expect("just pushed").1
                        }
                    };
                    values.entry(value).or_default().push(position);
                }
                None => namespace.others.push(position),
            }
        }
        PdbsByNamespace { by_namespace }
    }

    /// The budgets of `namespace` whose selector matches a pod with
    /// `labels`, in the order they were listed.
    pub fn selecting(
        &self,
        namespace: &str,
        labels: &(impl LabelLookup + ?Sized),
    ) -> impl Iterator<Item = &'a PdbInfo> {
        let Some(namespace) = self.by_namespace.get(namespace) else {
            return Vec::new().into_iter();
        };
        let mut candidates: Vec<usize> = namespace.others.clone();
        for (key, values) in &namespace.by_label {
            if let Some(found) = labels.label(key).and_then(|value| values.get(value)) {
                candidates.extend(found);
            }
        }
        candidates.sort_unstable();
        candidates
            .into_iter()
            .map(|i| namespace.budgets[i])
            .filter(|p| p.selector.matches(labels))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// The budgets of `namespace` whose selector matches a pod with `labels`,
/// in name order.
pub fn covering_budgets(
    pdbs: &PdbsByNamespace<'_>,
    namespace: &str,
    labels: &(impl LabelLookup + ?Sized),
) -> Vec<Budget> {
    let mut budgets: Vec<Budget> = pdbs
        .selecting(namespace, labels)
        .map(|p| Budget {
            name: p.name.clone(),
            disruptions_allowed: p.disruptions_allowed,
        })
        .collect();
    budgets.sort();
    budgets
}

/// The first budget that allows no disruption now, if any: the reason a
/// restart is held.
pub fn blocking_budget(budgets: &[Budget]) -> Option<&Budget> {
    budgets.iter().find(|b| b.disruptions_allowed <= 0)
}

/// Which restarts may run together: one entry per action, in plan order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pacing {
    /// For each action, the (namespace, budget) keys it spends from.
    spends: Vec<Vec<usize>>,
    /// For each key: how many restarts spending it may run at once.
    allowed: Vec<i32>,
}

impl Pacing {
    /// From each action's namespace and budgets.
    pub fn new<'a>(actions: impl IntoIterator<Item = (&'a str, &'a [Budget])>) -> Pacing {
        // Each (namespace, budget) gets the index of its first sighting; a
        // map, since a large plan has tens of thousands of budgets.
        let mut keys: HashMap<(&str, &str), usize> = HashMap::default();
        let mut allowed = Vec::new();
        let mut spends = Vec::new();
        for (namespace, budgets) in actions {
            let mut mine = Vec::new();
            for budget in budgets {
                let index = *keys
                    .entry((namespace, budget.name.as_str()))
                    .or_insert_with(|| {
                        allowed.push(budget.disruptions_allowed);
                        allowed.len() - 1
                    });
                mine.push(index);
            }
            spends.push(mine);
        }
        Pacing { spends, allowed }
    }

    /// Whether action `index` may start while `in_flight` (indices of the
    /// actions running) run: every budget it spends has room left.
    pub fn may_start(&self, index: usize, in_flight: &[usize]) -> bool {
        let Some(mine) = self.spends.get(index) else {
            return true;
        };
        mine.iter().all(|key| {
            let spending = in_flight
                .iter()
                .filter(|other| {
                    self.spends
                        .get(**other)
                        .is_some_and(|theirs| theirs.contains(key))
                })
                .count();
            (spending as i64) < i64::from(self.allowed[*key])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::LabelMatcher;
    use crate::snapshot::Labels;

    fn pdb(namespace: &str, name: &str, app: &str, allowed: i32) -> PdbInfo {
        PdbInfo {
            namespace: namespace.into(),
            name: name.into(),
            selector: LabelMatcher::from_map(&Labels::from([("app".into(), app.into())])),
            min_available: None,
            max_unavailable: None,
            disruptions_allowed: allowed,
            current_healthy: 0,
            desired_healthy: 0,
            expected_pods: 0,
        }
    }

    fn labels(app: &str) -> Labels {
        Labels::from([("app".to_string(), app.to_string())])
    }

    fn budget(name: &str, allowed: i32) -> Budget {
        Budget {
            name: name.into(),
            disruptions_allowed: allowed,
        }
    }

    #[test]
    fn the_budgets_of_a_workload_are_those_selecting_its_pods_in_its_namespace() {
        let pdbs = [
            pdb("shop", "web", "web", 1),
            pdb("shop", "api", "api", 1),
            pdb("pay", "web", "web", 0),
        ];
        let pdbs = PdbsByNamespace::new(&pdbs);
        assert_eq!(
            covering_budgets(&pdbs, "shop", &labels("web")),
            [budget("web", 1)]
        );
        assert!(covering_budgets(&pdbs, "shop", &labels("cart")).is_empty());
        assert!(covering_budgets(&pdbs, "cart", &labels("web")).is_empty());
    }

    #[test]
    fn budgets_found_by_label_are_exactly_those_whose_selector_matches() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            LabelSelector, LabelSelectorRequirement,
        };
        let selector = |labels: &[(&str, &str)], expressions: &[(&str, &str, &[&str])]| {
            LabelMatcher::from_label_selector(
                Some(&LabelSelector {
                    match_labels: Some(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ),
                    match_expressions: Some(
                        expressions
                            .iter()
                            .map(|(key, operator, values)| LabelSelectorRequirement {
                                key: key.to_string(),
                                operator: operator.to_string(),
                                values: Some(values.iter().map(|v| v.to_string()).collect()),
                            })
                            .collect(),
                    ),
                }),
                LabelMatcher::nothing(),
            )
        };
        let with = |name: &str, selector: LabelMatcher| PdbInfo {
            selector,
            ..pdb("shop", name, "", 1)
        };
        let pdbs = [
            with("web", selector(&[("app", "web")], &[])),
            with(
                "web-v2",
                selector(&[("app", "web"), ("version", "v2")], &[]),
            ),
            with("by-tier", selector(&[("tier", "front")], &[])),
            with("in", selector(&[], &[("app", "In", &["web", "api"])])),
            with(
                "web-not-canary",
                selector(&[("app", "web")], &[("track", "NotIn", &["canary"])]),
            ),
            with("everything", LabelMatcher::everything()),
            with("nothing", LabelMatcher::nothing()),
            with("api", selector(&[("app", "api")], &[])),
            PdbInfo {
                namespace: "pay".into(),
                ..with("pay-web", selector(&[("app", "web")], &[]))
            },
        ];
        let index = PdbsByNamespace::new(&pdbs);
        let label_sets: Vec<Labels> = [
            vec![("app", "web")],
            vec![("app", "web"), ("version", "v2")],
            vec![("app", "web"), ("track", "canary"), ("tier", "front")],
            vec![("app", "api"), ("tier", "front")],
            vec![("app", "cart")],
            vec![("version", "v2")],
            vec![],
        ]
        .into_iter()
        .map(|set| {
            set.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
        for namespace in ["shop", "pay", "other"] {
            for labels in &label_sets {
                let found: Vec<&str> = index
                    .selecting(namespace, labels)
                    .map(|p| p.name.as_str())
                    .collect();
                // Every budget tried against the labels, in the listed order.
                let tried: Vec<&str> = pdbs
                    .iter()
                    .filter(|p| p.namespace == namespace && p.selector.matches(labels))
                    .map(|p| p.name.as_str())
                    .collect();
                assert_eq!(found, tried, "{namespace} {labels:?}");
            }
        }
        let names = |labels: &Labels| -> Vec<String> {
            index
                .selecting("shop", labels)
                .map(|p| p.name.clone())
                .collect()
        };
        assert_eq!(
            names(&label_sets[2]),
            ["web", "by-tier", "in", "everything"]
        );
        assert_eq!(names(&label_sets[4]), ["everything"]);
    }

    #[test]
    fn a_budget_allowing_no_disruption_holds_the_restart() {
        let budgets = [budget("a", 2), budget("web", 0)];
        assert_eq!(blocking_budget(&budgets), Some(&budget("web", 0)));
        assert_eq!(blocking_budget(&[budget("a", 1)]), None);
    }

    #[test]
    fn restarts_sharing_a_budget_run_no_more_at_once_than_it_allows() {
        // Three workloads of shop under one PDB allowing 2, a fourth under
        // its own, and one in pay under a PDB of the same name.
        let shared = [budget("shop-all", 2)];
        let own = [budget("cart", 1)];
        let pay = [budget("shop-all", 1)];
        let none: [Budget; 0] = [];
        let pacing = Pacing::new([
            ("shop", &shared[..]),
            ("shop", &shared[..]),
            ("shop", &shared[..]),
            ("shop", &own[..]),
            ("pay", &pay[..]),
            ("shop", &none[..]),
        ]);
        assert!(pacing.may_start(0, &[]));
        assert!(pacing.may_start(1, &[0]));
        assert!(!pacing.may_start(2, &[0, 1]), "the budget allows two");
        assert!(pacing.may_start(2, &[1]), "one finished: room again");
        assert!(pacing.may_start(3, &[0, 1]), "another budget");
        assert!(!pacing.may_start(3, &[0, 1, 3]));
        assert!(
            pacing.may_start(4, &[0, 1]),
            "pay's budget is another, though named alike"
        );
        assert!(
            pacing.may_start(5, &[0, 1, 2, 3, 4]),
            "no budget: no pacing"
        );
    }

    #[test]
    fn a_restart_spending_two_budgets_needs_room_in_both() {
        let both = [budget("a", 1), budget("b", 2)];
        let a = [budget("a", 1)];
        let b = [budget("b", 2)];
        let pacing = Pacing::new([("shop", &both[..]), ("shop", &a[..]), ("shop", &b[..])]);
        assert!(!pacing.may_start(0, &[1]));
        assert!(pacing.may_start(0, &[2]));
        assert!(!pacing.may_start(1, &[0]));
        assert!(pacing.may_start(2, &[0]));
    }
}
