//! What changed between two `status` reports: the rows `status --watch`
//! prints again in a pipe, as `kubectl get -w` prints a changed object's row.
//!
//! ```text
//!  before, after ─► StatusChanges { changed: the report with only the new or
//!                                   different rows, removed, summary_changed }
//! ```
//!
//! Rows are matched by what names them (a workload by namespace, kind and
//! name; a namespace by name; ...), so a row that moved in the sort order
//! but did not change is not printed again. Pure, like the rest of `mesh`.

use std::collections::BTreeMap;

use super::status::StatusReport;

/// Which section a row is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Revisions,
    Namespaces,
    Workloads,
    UnreachablePods,
    Gateways,
    GatewayServices,
    VersionSkew,
}

/// A row of `before` that `after` no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedRow {
    pub section: Section,
    /// What named it: `shop/Deployment/web`, `istiod-1-21-2`, `shop`.
    pub name: String,
}

/// The difference between two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChanges {
    /// `after` with only its rows that are new or differ from `before`
    /// (its summary and other fields are `after`'s).
    pub changed: StatusReport,
    /// Rows that are gone, in section order.
    pub removed: Vec<RemovedRow>,
    /// The counts, what needs attention or the next steps changed.
    pub summary_changed: bool,
}

impl StatusChanges {
    /// What `after` changed of `before`.
    pub fn between(before: &StatusReport, after: &StatusReport) -> Self {
        let mut removed = Vec::new();
        let mut changed = after.clone();
        changed.revisions = rows(
            &before.revisions,
            &after.revisions,
            |r| r.name.clone(),
            Section::Revisions,
            &mut removed,
        );
        changed.namespaces = rows(
            &before.namespaces,
            &after.namespaces,
            |n| n.name.clone(),
            Section::Namespaces,
            &mut removed,
        );
        changed.workloads = rows(
            &before.workloads,
            &after.workloads,
            |w| format!("{}/{}/{}", w.namespace, w.kind, w.name),
            Section::Workloads,
            &mut removed,
        );
        changed.unreachable_pods = rows(
            &before.unreachable_pods,
            &after.unreachable_pods,
            |p| format!("{}/{}", p.namespace, p.name),
            Section::UnreachablePods,
            &mut removed,
        );
        changed.gateways = rows(
            &before.gateways,
            &after.gateways,
            |g| format!("{}/{}", g.namespace, g.name),
            Section::Gateways,
            &mut removed,
        );
        changed.gateway_services = rows(
            &before.gateway_services,
            &after.gateway_services,
            |s| format!("{}/{}", s.namespace, s.name),
            Section::GatewayServices,
            &mut removed,
        );
        changed.version_skew = rows(
            &before.version_skew,
            &after.version_skew,
            |s| format!("{}/{}/{}", s.namespace, s.kind, s.name),
            Section::VersionSkew,
            &mut removed,
        );
        StatusChanges {
            changed,
            removed,
            summary_changed: before.summary != after.summary,
        }
    }

    /// Nothing a row or the summary shows changed.
    pub fn is_empty(&self) -> bool {
        let c = &self.changed;
        self.removed.is_empty()
            && !self.summary_changed
            && c.revisions.is_empty()
            && c.namespaces.is_empty()
            && c.workloads.is_empty()
            && c.unreachable_pods.is_empty()
            && c.gateways.is_empty()
            && c.gateway_services.is_empty()
            && c.version_skew.is_empty()
    }
}

/// Whether two reports are the same document apart from when they were
/// built: `status --watch -o json` prints a document only when this is false.
pub fn same_apart_from_time(before: &StatusReport, after: &StatusReport) -> bool {
    let mut after = after.clone();
    after.generated_at = before.generated_at;
    *before == after
}

/// The rows of `after` that are new or differ from `before`'s row of the
/// same name, in `after`'s order; the names of `before`'s rows that are
/// gone are added to `removed`.
fn rows<T: Clone + PartialEq>(
    before: &[T],
    after: &[T],
    name: impl Fn(&T) -> String,
    section: Section,
    removed: &mut Vec<RemovedRow>,
) -> Vec<T> {
    let old: BTreeMap<String, &T> = before.iter().map(|row| (name(row), row)).collect();
    let mut still = std::collections::BTreeSet::new();
    let changed = after
        .iter()
        .filter(|row| {
            let key = name(row);
            let same = old.get(&key).is_some_and(|old| *old == *row);
            still.insert(key);
            !same
        })
        .cloned()
        .collect();
    removed.extend(
        old.keys()
            .filter(|key| !still.contains(*key))
            .map(|key| RemovedRow {
                section,
                name: key.clone(),
            }),
    );
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{canary_fixture, fixed_now};
    use crate::mesh::status::build_status;
    use crate::mesh::workloads::WorkloadState;

    fn canary() -> StatusReport {
        build_status(&canary_fixture().build(), fixed_now())
    }

    fn workload_names(report: &StatusReport) -> Vec<String> {
        report
            .workloads
            .iter()
            .map(|w| format!("{}/{}", w.namespace, w.name))
            .collect()
    }

    #[test]
    fn the_same_cluster_a_moment_later_changes_nothing() {
        let before = canary();
        let mut after = canary();
        after.generated_at = before.generated_at + chrono::Duration::seconds(5);
        let changes = StatusChanges::between(&before, &after);
        assert!(changes.is_empty(), "{changes:#?}");
        assert!(same_apart_from_time(&before, &after));
    }

    #[test]
    fn a_workload_that_starts_rolling_is_the_one_changed_row_and_the_summary_changes() {
        let before = canary();
        let mut after = canary();
        let payments = after
            .workloads
            .iter_mut()
            .find(|w| w.name == "payments")
            .unwrap();
        payments.state = WorkloadState::Rolling;
        after.summary.workloads.stale -= 1;
        after.summary.workloads.rolling += 1;
        let changes = StatusChanges::between(&before, &after);
        assert_eq!(workload_names(&changes.changed), ["pay/payments"]);
        assert_eq!(changes.changed.workloads[0].state, WorkloadState::Rolling);
        assert!(changes.summary_changed);
        assert!(changes.removed.is_empty());
        assert!(changes.changed.namespaces.is_empty() && changes.changed.revisions.is_empty());
        assert!(!same_apart_from_time(&before, &after));
    }

    #[test]
    fn a_row_only_moved_in_the_sort_order_is_not_changed() {
        let before = canary();
        let mut after = canary();
        after.workloads.reverse();
        assert!(StatusChanges::between(&before, &after).is_empty());
    }

    #[test]
    fn new_rows_are_changed_and_rows_that_are_gone_are_named() {
        let mut before = canary();
        let after = canary();
        // `before` lacked cart and had a workload that is gone now.
        let cart = before
            .workloads
            .iter()
            .position(|w| w.name == "cart")
            .unwrap();
        let mut gone = before.workloads.remove(cart);
        gone.name = "old-cart".into();
        before.workloads.push(gone);
        let changes = StatusChanges::between(&before, &after);
        assert_eq!(workload_names(&changes.changed), ["cart/cart"]);
        assert_eq!(
            changes.removed,
            [RemovedRow {
                section: Section::Workloads,
                name: "cart/Deployment/old-cart".into()
            }]
        );
        assert!(!changes.is_empty());
    }

    #[test]
    fn a_revision_whose_istiod_loses_its_ready_pod_is_a_changed_control_plane_row() {
        let before = canary();
        let mut after = canary();
        after.revisions[1].ready_replicas = 0;
        let changes = StatusChanges::between(&before, &after);
        let names: Vec<&str> = changes
            .changed
            .revisions
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, [after.revisions[1].name.as_str()]);
        assert!(!changes.summary_changed);
    }
}
