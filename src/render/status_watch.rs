//! Drawing `status --watch`: the whole screen again at a terminal, and only
//! the changed rows in a pipe.
//!
//! ```text
//!  terminal:  watch_screen   = status_table + one line (as of when, how many updates),
//!                              last, where a screen taller than the terminal still shows it
//!  pipe:      changed_rows   = each section's changed rows under its title and
//!                              header, rows that are gone, the summary if it changed
//! ```
//!
//! In a pipe nothing is redrawn (that needs escape codes, which never reach
//! a pipe): like `kubectl get -w`, which prints a changed object's row as a
//! new line, each update prints the rows that changed, laid out by the same
//! tables as the first screen, so `grep payments` follows one workload.
//! Pure, like the rest of `render`.

use chrono::{DateTime, Utc};

use super::Layout;
use super::status::{
    Style, control_plane, gateways, namespace_shown, namespaces, section, status_table, summary,
    unreachable, workloads,
};
use crate::mesh::status::StatusReport;
use crate::mesh::status_changes::{Section, StatusChanges};

/// How far a watch has come: when it started and how many updates it drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchProgress {
    /// When the first screen was read.
    pub since: DateTime<Utc>,
    /// Screens drawn after the first.
    pub updates: usize,
}

/// The whole screen a terminal redraws: the `status` screen, then a line
/// saying when it was read and how to stop (last, so that a screen taller
/// than the terminal, whose top scrolls away, still shows it with the
/// summary).
pub fn watch_screen(
    report: &StatusReport,
    progress: WatchProgress,
    wide: bool,
    layout: &Layout,
) -> String {
    let at = |t: DateTime<Utc>| t.format("%H:%M:%S UTC").to_string();
    let line = if progress.updates == 0 {
        format!(
            "As of {}, watching for changes. Ctrl-C to stop.",
            at(report.generated_at)
        )
    } else {
        format!(
            "As of {} ({} since {}). Ctrl-C to stop.",
            at(report.generated_at),
            match progress.updates {
                1 => "1 update".to_string(),
                n => format!("{n} updates"),
            },
            at(progress.since)
        )
    };
    let mut text = status_table(report, wide, layout);
    text.push('\n');
    layout.wrap().push(&mut text, &line, "");
    text
}

/// What a pipe gets for one update: an empty line (as between the first
/// screen's sections), then the changed rows of each section under its
/// title and column header, a line per row that is gone, and the summary
/// when it changed. Empty when nothing shown changed.
pub fn changed_rows(changes: &StatusChanges, wide: bool, layout: &Layout) -> String {
    let style = Style {
        wide,
        layout: *layout,
    };
    // Only rows the full screen would show, so no "not shown" line follows.
    let mut changed = changes.changed.clone();
    changed.namespaces.retain(|n| namespace_shown(n, wide));
    changed.workloads.retain(|w| wide || w.state.is_meshed());

    let mut out = String::new();
    if !changed.revisions.is_empty() {
        section(
            &mut out,
            &style,
            "CONTROL PLANE",
            control_plane(&changed, &style),
        );
    }
    if !changed.namespaces.is_empty() {
        section(&mut out, &style, "NAMESPACES", namespaces(&changed, &style));
    }
    if !changed.workloads.is_empty() {
        section(&mut out, &style, "WORKLOADS", workloads(&changed, &style));
    }
    if !changed.unreachable_pods.is_empty() {
        section(
            &mut out,
            &style,
            "PODS NO RESTART CAN REACH",
            unreachable(&changed.unreachable_pods, &style),
        );
    }
    if !changed.gateways.is_empty() || !changed.gateway_services.is_empty() {
        section(&mut out, &style, "GATEWAYS", gateways(&changed, &style));
    }
    if !changes.removed.is_empty() && !out.is_empty() {
        out.push('\n');
    }
    for row in &changes.removed {
        out.push_str(&format!(
            "{}: {} is gone\n",
            title_of(row.section),
            row.name
        ));
    }
    if changes.summary_changed {
        section(&mut out, &style, "SUMMARY", summary(&changed, &style));
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

fn title_of(section: Section) -> &'static str {
    match section {
        Section::Revisions => "CONTROL PLANE",
        Section::Namespaces => "NAMESPACES",
        Section::Workloads => "WORKLOADS",
        Section::UnreachablePods => "PODS NO RESTART CAN REACH",
        Section::Gateways | Section::GatewayServices => "GATEWAYS",
        Section::VersionSkew => "VERSION SKEW",
    }
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

    /// The canary with payments rolling onto 1.22.3.
    fn payments_rolling() -> StatusReport {
        let mut report = canary();
        let payments = report
            .workloads
            .iter_mut()
            .find(|w| w.name == "payments")
            .unwrap();
        payments.state = WorkloadState::Rolling;
        payments.proxies[0].pods = 1;
        let mut new = payments.proxies[0].clone();
        new.revision = Some("1-22-3".into());
        new.version = Some("1.22.3".into());
        payments.proxies.push(new);
        report.summary.workloads.stale -= 1;
        report.summary.workloads.rolling += 1;
        report
    }

    #[test]
    fn in_a_pipe_an_update_prints_the_changed_row_under_its_header_and_the_summary() {
        let changes = StatusChanges::between(&canary(), &payments_rolling());
        let text = changed_rows(&changes, false, &Layout::unlimited());
        assert_eq!(
            text.lines().take(4).collect::<Vec<_>>(),
            [
                "",
                "WORKLOADS",
                "NAMESPACE  WORKLOAD         STATE    PROXIES               EXPECTED  READY  RISKS",
                "pay        deploy/payments  rolling  1.21.2 ×1, 1.22.3 ×1  1-22-3    2/2",
            ],
            "{text}"
        );
        assert!(
            text.contains(
                "\nSUMMARY\n9 workloads: 6 up-to-date, 1 stale, 1 rolling, 1 not-injected;"
            ),
            "{text}"
        );
        assert!(!text.contains("NAMESPACES") && !text.contains("CONTROL PLANE"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn in_a_pipe_nothing_is_printed_when_nothing_changed_and_a_row_that_is_gone_is_named() {
        let unchanged = StatusChanges::between(&canary(), &canary());
        assert_eq!(changed_rows(&unchanged, false, &Layout::unlimited()), "");

        let mut after = canary();
        after.workloads.retain(|w| w.name != "orders");
        let changes = StatusChanges::between(&canary(), &after);
        let text = changed_rows(&changes, false, &Layout::unlimited());
        assert!(
            text.starts_with("\nWORKLOADS: typo/Deployment/orders is gone\n"),
            "{text}"
        );
    }

    #[test]
    fn the_terminal_screen_says_when_it_was_read_and_how_to_stop_below_the_status_screen() {
        let report = payments_rolling();
        let first = watch_screen(
            &report,
            WatchProgress {
                since: report.generated_at,
                updates: 0,
            },
            false,
            &Layout::at(100),
        );
        let at = report.generated_at.format("%H:%M:%S UTC").to_string();
        assert_eq!(
            first,
            format!(
                "{}\nAs of {at}, watching for changes. Ctrl-C to stop.\n",
                status_table(&report, false, &Layout::at(100))
            )
        );
        let later = watch_screen(
            &report,
            WatchProgress {
                since: report.generated_at - chrono::Duration::seconds(90),
                updates: 3,
            },
            false,
            &Layout::at(100),
        );
        assert_eq!(
            later.lines().last().unwrap(),
            format!("As of {at} (3 updates since 11:58:30 UTC). Ctrl-C to stop.")
        );
    }
}
