//! Drawing the `status` report as text, for a person at a terminal.
//!
//! Pure: the report in, a `String` out, so the output is pinned by tests
//! with colour off at a fixed width. Each section is a [`Table`]: names,
//! images and versions never wrap, free text (PROBLEMS, RISKS, NOTES, the
//! gateway takeover problems) wraps at a terminal's width, and in a pipe
//! nothing wraps. `-o wide` adds columns (notes, reasons, full risk lists)
//! and lists the workloads and namespaces outside the sidecar mesh that the
//! default view folds into a one-line count. Problems sort first so the
//! screen's top says what to do.

use std::fmt::Write as _;

use super::table::{Cell, Color, Fit, Table};
use super::{Layout, commands_whole};
use crate::mesh::status::{
    GatewayServiceStatus, NamespaceStatus, StatusReport, UnreachablePodStatus, WorkloadStatus,
};
use crate::mesh::workloads::{ProxyGroup, Risk, WorkloadState};
use crate::wrap::together;

/// The whole `status` screen.
pub fn status_table(report: &StatusReport, wide: bool, layout: &Layout) -> String {
    let style = Style {
        wide,
        layout: *layout,
    };
    let mut out = String::new();
    section(
        &mut out,
        &style,
        "CONTROL PLANE",
        control_plane(report, &style),
    );
    if !report.revisions.is_empty() {
        section(
            &mut out,
            &style,
            "REVISION USAGE",
            super::revision_usage::usage_table(report, style.wide, &style.layout),
        );
    }
    section(&mut out, &style, "NAMESPACES", namespaces(report, &style));
    section(&mut out, &style, "WORKLOADS", workloads(report, &style));
    if !report.unreachable_pods.is_empty() {
        section(
            &mut out,
            &style,
            "PODS NO RESTART CAN REACH",
            unreachable(&report.unreachable_pods, &style),
        );
    }
    if !report.gateways.is_empty() || !report.gateway_services.is_empty() {
        section(&mut out, &style, "GATEWAYS", gateways(report, &style));
    }
    if let Some(body) =
        super::gateway_api::gateways_section(&report.gateway_api, style.wide, &style.layout)
    {
        section(&mut out, &style, "GATEWAY API GATEWAYS", body);
    }
    if let Some(body) =
        super::gateway_api::waypoints_section(&report.waypoints, style.wide, &style.layout)
    {
        section(&mut out, &style, "WAYPOINTS", body);
    }
    for (title, body) in super::ambient::sections(
        &report.ztunnel,
        &report.istio_cni,
        &report.ambient,
        style.wide,
        &style.layout,
    ) {
        section(&mut out, &style, &title, body);
    }
    if report.workloads.iter().any(|w| w.verification.is_some()) {
        section(
            &mut out,
            &style,
            "INJECTION CHECK (SERVER-SIDE DRY RUN)",
            verification(report, &style),
        );
    }
    section(&mut out, &style, "SUMMARY", summary(report, &style));
    out
}

/// `--verify-injection`: per workload, what the dry run injected, the
/// verdict, and why (a contradiction's problem, a stale pod's differences).
fn verification(report: &StatusReport, style: &Style) -> String {
    let mut table = style.table(&[
        ("NAMESPACE", Fit::Whole),
        ("WORKLOAD", Fit::Whole),
        ("VERDICT", Fit::Whole),
        ("DRY-RUN PROXY", Fit::Whole),
        ("WHY", Fit::Words),
    ]);
    for w in &report.workloads {
        let Some(v) = &w.verification else {
            continue;
        };
        let verdict = match v.verdict {
            "confirmed" => Cell::colored(v.verdict, Color::Green),
            _ => Cell::colored(v.verdict, Color::Red),
        };
        let mut why: Vec<String> = v.problem.iter().cloned().collect();
        why.extend(w.reasons.iter().flatten().cloned());
        table.row(vec![
            Cell::new(&w.namespace),
            Cell::new(format!("{}/{}", w.kind.to_lowercase(), w.name)),
            verdict,
            Cell::new(v.dry_run_image.clone().unwrap_or_else(|| "none".into())),
            Cell::new(if why.is_empty() {
                "-".to_string()
            } else {
                why.join("; ")
            }),
        ]);
    }
    table.render()
}

pub(super) struct Style {
    pub(super) wide: bool,
    pub(super) layout: Layout,
}

impl Style {
    fn table(&self, columns: &[(&str, Fit)]) -> Table {
        Table::new(self.layout, columns)
    }

    fn state(&self, state: WorkloadState) -> Cell {
        let color = match state {
            WorkloadState::Stale | WorkloadState::NoInjector => Color::Red,
            WorkloadState::NotInjected => Color::Red,
            WorkloadState::Rolling => Color::Cyan,
            WorkloadState::UpToDate => Color::Green,
            WorkloadState::CustomImage | WorkloadState::OptedOut => Color::Yellow,
            WorkloadState::Ambient | WorkloadState::NoMesh => Color::Grey,
        };
        Cell::colored(state.to_string(), color)
    }

    fn paint(&self, text: &str, ansi: &str) -> String {
        self.layout.paint(text, ansi)
    }
}

pub(super) fn section(out: &mut String, style: &Style, title: &str, body: String) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&style.paint(title, "1"));
    out.push('\n');
    out.push_str(&body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
}

/// Risks in a few words for the 100-column table (`-o wide` and JSON use the codes).
fn risk_short(risk: &Risk) -> &'static str {
    match risk {
        Risk::SingleReplica => "1 replica",
        Risk::NoPdb => "no PDB",
        Risk::PdbAllowsZero => "PDB allows 0",
        Risk::PdbUnknown => "PDB unknown",
        Risk::OnDelete => "OnDelete",
        Risk::Paused => "paused",
        Risk::ZeroReplicas => "0 replicas",
        Risk::TargetNotReady => "target not ready",
        Risk::RolloutStuck => "stuck",
        Risk::VersionSkew => "skew",
    }
}

/// kubectl's short names, which `kubectl rollout restart` accepts too.
fn short_kind(kind: &str) -> &str {
    match kind {
        "Deployment" => "deploy",
        "StatefulSet" => "sts",
        "DaemonSet" => "ds",
        "Rollout" => "rollout",
        other => other,
    }
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

fn revision_at_version(revision: Option<&str>, version: Option<&str>) -> String {
    match (revision, version) {
        (Some(r), Some(v)) => format!("{r}/{v}"),
        (Some(r), None) => r.to_string(),
        (None, Some(v)) => format!("?/{v}"),
        (None, None) => "?".to_string(),
    }
}

/// Proxy groups: `revision/version ×n` when wide, `version ×n` otherwise
/// (the revision is in EXPECTED and the state says whether they differ).
fn proxies(groups: &[ProxyGroup], without: usize, wide: bool) -> String {
    let mut parts: Vec<String> = groups
        .iter()
        .map(|g| {
            let label = if wide {
                revision_at_version(g.revision.as_deref(), g.version.as_deref())
            } else {
                g.version.as_deref().unwrap_or("digest").to_string()
            };
            format!("{label} ×{}", g.pods)
        })
        .collect();
    if without > 0 {
        parts.push(format!("none ×{without}"));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

pub(super) fn control_plane(report: &StatusReport, style: &Style) -> String {
    if report.revisions.is_empty() {
        return format!(
            "no istiod Deployment (label app=istiod) in namespace {}\n",
            report.control_plane_namespace
        );
    }
    let mut columns = vec![
        ("REVISION", Fit::Whole),
        ("ISTIOD", Fit::Whole),
        ("VERSION", Fit::Whole),
        ("READY", Fit::Whole),
        ("TAGS", Fit::Whole),
        ("DEFAULT", Fit::Whole),
    ];
    if style.wide {
        columns.push(("PROXY VERSION", Fit::Whole));
    }
    let mut table = style.table(&columns);
    for r in &report.revisions {
        let ready = format!("{}/{}", r.ready_replicas, r.replicas);
        let mut row = vec![
            Cell::new(&r.revision),
            Cell::new(&r.name),
            Cell::new(dash(r.version.as_deref())),
            if r.ready_replicas == 0 {
                Cell::colored(ready, Color::Red)
            } else {
                Cell::new(ready)
            },
            Cell::new(if r.tags.is_empty() {
                "-".to_string()
            } else {
                r.tags.join(",")
            }),
            Cell::new(if r.default { "yes" } else { "" }),
        ];
        if style.wide {
            row.push(Cell::new(dash(r.proxy_version.as_deref())));
        }
        table.row(row);
    }
    table.render()
}

pub(super) fn namespace_shown(n: &NamespaceStatus, wide: bool) -> bool {
    wide || n.injection != "none" || !n.problems.is_empty()
}

pub(super) fn namespaces(report: &StatusReport, style: &Style) -> String {
    let shown: Vec<&NamespaceStatus> = report
        .namespaces
        .iter()
        .filter(|n| namespace_shown(n, style.wide))
        .collect();
    let hidden = report.namespaces.len() - shown.len();
    let mut text = String::new();
    if !shown.is_empty() {
        let mut table = style.table(&[
            ("NAMESPACE", Fit::Whole),
            ("INJECTION", Fit::Whole),
            ("REVISION", Fit::Whole),
            ("WORKLOADS", Fit::Whole),
            ("PROBLEMS", Fit::Words),
        ]);
        for n in shown {
            let revision = match (&n.revision, &n.tag) {
                (Some(r), Some(t)) if t != r => format!("{r} (tag {t})"),
                (Some(r), _) => r.clone(),
                (None, _) => "-".into(),
            };
            let problems = if n.problems.is_empty() {
                // Notes need no action: plain text, after any problems.
                Cell::new(
                    n.notes
                        .iter()
                        .map(|note| format!("note: {note}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            } else {
                Cell::colored(
                    n.problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    Color::Red,
                )
            };
            table.row([
                Cell::new(&n.name),
                Cell::new(&n.injection),
                Cell::new(revision),
                Cell::new(n.workloads.to_string()),
                problems,
            ]);
        }
        text.push_str(&table.render());
    }
    if hidden > 0 {
        let _ = writeln!(
            text,
            "({} without injection labels not shown; -o wide lists them)",
            if hidden == 1 {
                "1 namespace".to_string()
            } else {
                format!("{hidden} namespaces")
            }
        );
    }
    if text.is_empty() {
        text.push_str("no namespaces selected\n");
    }
    text
}

pub(super) fn workloads(report: &StatusReport, style: &Style) -> String {
    let mut shown: Vec<&WorkloadStatus> = report
        .workloads
        .iter()
        .filter(|w| style.wide || w.state.is_meshed())
        .collect();
    shown.sort_by(|a, b| (a.state, &a.namespace, &a.name).cmp(&(b.state, &b.namespace, &b.name)));
    let hidden = report.workloads.len() - shown.len();
    let mut text = String::new();
    if !shown.is_empty() {
        let mut columns = vec![
            ("NAMESPACE", Fit::Whole),
            ("WORKLOAD", Fit::Whole),
            ("STATE", Fit::Whole),
            ("PROXIES", Fit::Whole),
            ("EXPECTED", Fit::Whole),
            ("READY", Fit::Whole),
            ("RISKS", Fit::Words),
        ];
        if style.wide {
            columns.push(("NOTES", Fit::Words));
        }
        let mut table = style.table(&columns);
        for w in shown {
            let mut row = vec![
                Cell::new(&w.namespace),
                Cell::new(format!("{}/{}", short_kind(w.kind), w.name)),
                style.state(w.state),
                Cell::new(proxies(&w.proxies, w.pods_without_proxy, style.wide)),
                Cell::new(match &w.expected_revision {
                    Some(r) if style.wide => {
                        revision_at_version(Some(r), w.expected_version.as_deref())
                    }
                    Some(r) => r.clone(),
                    None => "none".to_string(),
                }),
                Cell::new(format!("{}/{}", w.ready_replicas, w.replicas)),
                if w.risks.is_empty() {
                    Cell::new("")
                } else {
                    Cell::colored(
                        w.risks
                            .iter()
                            .map(|r| together(if style.wide { r.code() } else { risk_short(r) }))
                            .collect::<Vec<_>>()
                            .join(", "),
                        Color::Yellow,
                    )
                },
            ];
            if style.wide {
                row.push(Cell::new(w.notes.join("; ")));
            }
            table.row(row);
        }
        text.push_str(&table.render());
    }
    if hidden > 0 {
        let _ = writeln!(
            text,
            "({} outside the sidecar mesh (ambient, no-mesh) not shown; -o wide lists them)",
            if hidden == 1 {
                "1 workload".to_string()
            } else {
                format!("{hidden} workloads")
            }
        );
    }
    if text.is_empty() {
        text.push_str(
            "no Deployments, StatefulSets, DaemonSets or Rollouts in the selected namespaces\n",
        );
    }
    text
}

pub(super) fn unreachable(pods: &[UnreachablePodStatus], style: &Style) -> String {
    let mut columns = vec![
        ("NAMESPACE", Fit::Whole),
        ("POD", Fit::Whole),
        ("OWNER", Fit::Whole),
        ("STATE", Fit::Whole),
        ("PROXY", Fit::Whole),
        ("REMEDY", Fit::Words),
    ];
    if style.wide {
        columns.push(("REASON", Fit::Words));
    }
    let mut table = style.table(&columns);
    for p in pods {
        let mut row = vec![
            Cell::new(&p.namespace),
            Cell::new(&p.name),
            Cell::new(p.owner.clone().unwrap_or_else(|| "none".into())),
            style.state(p.state),
            Cell::new(if p.revision.is_some() || p.version.is_some() {
                revision_at_version(p.revision.as_deref(), p.version.as_deref())
            } else {
                "none".into()
            }),
            // What becomes of it, then the command: on a line of its own at
            // a terminal, on the row's one line through a pipe.
            Cell::new(format!(
                "{}{}{}",
                p.remedy,
                if style.layout.width.is_some() {
                    "\n"
                } else {
                    "; "
                },
                commands_whole(&p.command)
            )),
        ];
        if style.wide {
            row.push(Cell::new(&p.reason));
        }
        table.row(row);
    }
    table.render()
}

pub(super) fn gateways(report: &StatusReport, style: &Style) -> String {
    let mut text = String::new();
    if !report.gateways.is_empty() {
        let mut table = style.table(&[
            ("NAMESPACE", Fit::Whole),
            ("GATEWAY", Fit::Whole),
            ("PROXY", Fit::Whole),
            ("READY", Fit::Whole),
            ("STATE", Fit::Whole),
            ("SERVICES", Fit::Whole),
        ]);
        for g in &report.gateways {
            table.row([
                Cell::new(&g.namespace),
                Cell::new(&g.name),
                Cell::new(revision_at_version(
                    g.revision.as_deref(),
                    g.version.as_deref(),
                )),
                Cell::new(format!("{}/{}", g.ready_replicas, g.replicas)),
                style.state(g.state),
                Cell::new(if g.services.is_empty() {
                    "-".to_string()
                } else {
                    g.services.join(", ")
                }),
            ]);
        }
        text.push_str(&table.render());
    }
    if !report.gateway_services.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        let mut table = style.table(&[
            ("SERVICE", Fit::Whole),
            ("TYPE", Fit::Whole),
            ("SELECTS", Fit::Words),
            ("ENDPOINTS", Fit::Words),
            ("CAN SWITCH TO", Fit::Words),
        ]);
        for s in &report.gateway_services {
            table.row(service_row(s));
        }
        text.push_str(&table.render());
    }
    text
}

fn service_row(s: &GatewayServiceStatus) -> Vec<Cell> {
    let selects = match (&s.selector_key, s.selects_revisions.is_empty()) {
        (_, true) => Cell::colored("no gateway", Color::Red),
        (Some(key), false) => Cell::new(format!(
            "{} ({key}={})",
            s.selects_revisions.join(","),
            s.selector.get(key).map(String::as_str).unwrap_or("?")
        )),
        (None, false) => Cell::new(s.selects_revisions.join(",")),
    };
    let endpoints = {
        let by_revision: Vec<String> = s
            .endpoints_by_revision
            .iter()
            .map(|e| {
                together(&format!(
                    "{} ×{}",
                    e.revision.as_deref().unwrap_or("?"),
                    e.pods
                ))
            })
            .collect();
        let mut text = format!("{} ready", s.ready_endpoints);
        if !by_revision.is_empty() {
            text = format!("{text}: {}", by_revision.join(", "));
        }
        if s.not_ready_endpoints > 0 {
            text = format!("{text}, {} not ready", s.not_ready_endpoints);
        }
        if s.ready_endpoints == 0 {
            Cell::colored(text, Color::Red)
        } else {
            Cell::new(text)
        }
    };
    let candidates = if s.candidates.is_empty() {
        Cell::new("-")
    } else {
        Cell::new(
            s.candidates
                .iter()
                .map(|c| {
                    if c.ready {
                        together(&format!("{} (ready)", c.selector_value))
                    } else {
                        format!("{} ({})", c.selector_value, c.problems.join("; "))
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    vec![
        Cell::new(format!("{}/{}", s.namespace, s.name)),
        Cell::new(&s.type_),
        selects,
        endpoints,
        candidates,
    ]
}

pub(super) fn summary(report: &StatusReport, style: &Style) -> String {
    let s = &report.summary;
    let c = &s.workloads;
    let mut text = String::new();
    let counts: Vec<String> = [
        (c.up_to_date, "up-to-date"),
        (c.stale, "stale"),
        (c.rolling, "rolling"),
        (c.not_injected, "not-injected"),
        (c.no_injector, "no-injector"),
        (c.custom_image, "custom-image"),
        (c.opted_out, "opted-out"),
        (c.ambient, "ambient"),
        (c.no_mesh, "no-mesh"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, name)| format!("{n} {name}"))
    .collect();
    let counts_line = format!(
        "{} workload{}{}{}",
        c.total,
        if c.total == 1 { "" } else { "s" },
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        },
        if s.unreachable_pods > 0 {
            format!(
                "; {} pod{} no restart can reach",
                s.unreachable_pods,
                if s.unreachable_pods == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    );
    let wrap = style.layout.wrap();
    wrap.push(&mut text, &counts_line, "");
    if !s.needs_attention {
        let _ = writeln!(text, "{}", style.paint("Nothing is stale or broken.", "32"));
    }
    if !s.next_steps.is_empty() {
        let _ = writeln!(text, "Next:");
        for step in &s.next_steps {
            wrap.push(&mut text, &format!("  - {}", step.message), "    ");
            if let Some(command) = &step.command {
                // Commands stay on one line so they can be copied.
                let _ = writeln!(text, "    {}", style.paint(command, "36"));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{canary_fixture, fixed_now};
    use crate::mesh::status::build_status;

    fn canary_report() -> StatusReport {
        build_status(&canary_fixture().build(), fixed_now())
    }

    const AT_100: Layout = Layout::at(100);

    #[test]
    fn every_line_fits_in_a_terminal_wide_enough_for_the_names() {
        let text = status_table(&canary_report(), false, &Layout::at(120));
        for line in text.lines() {
            assert!(
                line.chars().count() <= 120,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }

    #[test]
    fn colour_appears_only_when_asked_for() {
        let report = canary_report();
        assert!(!status_table(&report, false, &AT_100).contains('\x1b'));
        let colour = Layout {
            color: true,
            ..AT_100
        };
        assert!(status_table(&report, false, &colour).contains("\x1b["));
    }

    #[test]
    fn wide_output_adds_notes_and_unmeshed_namespaces() {
        let report = canary_report();
        let narrow = status_table(&report, false, &AT_100);
        let wide = status_table(&report, true, &AT_100);
        assert!(!narrow.contains("NOTES"));
        assert!(wide.contains("NOTES"));
        assert!(wide.contains("PROXY VERSION"));
        assert!(narrow.contains("without injection labels not shown"));
        assert!(!wide.contains("not shown"));
    }

    #[test]
    fn the_canary_fixture_renders_as_pinned_at_a_hundred_columns() {
        let text = status_table(&canary_report(), false, &AT_100);
        assert_eq!(text, CANARY_FIXTURE_TABLE, "rendered:\n{text}");
    }

    #[test]
    fn in_a_pipe_every_row_is_one_line_and_no_name_is_split() {
        let text = status_table(&canary_report(), false, &Layout::unlimited());
        for name in [
            "deploy/istio-ingressgateway-1-21-2",
            "deploy/istio-ingressgateway-1-22-3",
            "istio-gateways/istio-ingressgateway",
        ] {
            assert!(text.contains(name), "{name} is split:\n{text}");
        }
        let workloads: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != "WORKLOADS")
            .skip(2)
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(workloads.len(), 9, "one line per workload:\n{text}");
        assert!(
            text.contains("istio-injection=enabled and istio.io/rev=1-22-3 are both set; istio-injection wins (IST0123), so pods get 1-21-2\n"),
            "problems are not wrapped in a pipe:\n{text}"
        );
    }

    #[test]
    fn at_a_narrow_terminal_names_stay_whole_and_only_free_text_wraps() {
        let text = status_table(&canary_report(), false, &Layout::at(60));
        assert!(
            text.contains("istio-gateways  deploy/istio-ingressgateway-1-21-2  up-to-date"),
            "{text}"
        );
        assert!(
            text.contains("kubectl delete pod debug-shell -n pay,"),
            "the command is whole:\n{text}"
        );
    }

    /// `status` on the canary fixture, colour off, at a 100-column terminal:
    /// free text wraps, names do not, so a row whose names alone need more
    /// than 100 columns (sts/ledger's) runs past the width instead.
    const CANARY_FIXTURE_TABLE: &str = r#"CONTROL PLANE
REVISION  ISTIOD         VERSION  READY  TAGS                 DEFAULT
1-21-2    istiod-1-21-2  1.21.2   1/1    default,prod-stable  yes
1-22-3    istiod-1-22-3  1.22.3   1/1    prod-canary

REVISION USAGE
REVISION  IN USE  USED BY
1-21-2    yes     3 namespaces (cart, legacy, shop), 2 tags (default, prod-stable), 6 workloads,
                  1 gateway, 1 pod
1-22-3    yes     2 namespaces (legacy, pay), 1 tag (prod-canary), 1 gateway

NAMESPACES
NAMESPACE  INJECTION        REVISION                  WORKLOADS  PROBLEMS
cart       rev:prod-stable  1-21-2 (tag prod-stable)  1
legacy     enabled          1-21-2 (tag default)      1          istio-injection=enabled and
                                                                 istio.io/rev=1-22-3 are both set;
                                                                 istio-injection wins (IST0123), so
                                                                 pods get 1-21-2
pay        rev:1-22-3       1-22-3                    2
shop       enabled          1-21-2 (tag default)      2
typo       rev:1-22-4       -                         1          1-22-4 names no revision or tag:
                                                                 new pods start without a proxy
(2 namespaces without injection labels not shown; -o wide lists them)

WORKLOADS
NAMESPACE       WORKLOAD                            STATE         PROXIES    EXPECTED  READY  RISKS
pay             sts/ledger                          stale         1.21.2 ×2  1-22-3    2/2    OnDelete
pay             deploy/payments                     stale         1.21.2 ×2  1-22-3    2/2
typo            deploy/orders                       not-injected  none ×2    none      2/2    no PDB
cart            deploy/cart                         up-to-date    1.21.2 ×2  1-21-2    2/2
istio-gateways  deploy/istio-ingressgateway-1-21-2  up-to-date    1.21.2 ×2  1-21-2    2/2
istio-gateways  deploy/istio-ingressgateway-1-22-3  up-to-date    1.22.3 ×2  1-22-3    2/2
legacy          deploy/inventory                    up-to-date    1.21.2 ×2  1-21-2    2/2
shop            deploy/frontend                     up-to-date    1.21.2 ×2  1-21-2    2/2
shop            deploy/recommendations              up-to-date    1.21.2 ×1  1-21-2    1/1    1
                                                                                              replica,
                                                                                              no PDB

PODS NO RESTART CAN REACH
NAMESPACE  POD          OWNER  STATE  PROXY          REMEDY
pay        debug-shell  none   stale  1-21-2/1.21.2  nothing recreates it
                                                     kubectl delete pod debug-shell -n pay, then
                                                     create it again from its original manifest

GATEWAYS
NAMESPACE       GATEWAY                      PROXY          READY  STATE       SERVICES
istio-gateways  istio-ingressgateway-1-21-2  1-21-2/1.21.2  2/2    up-to-date  istio-ingressgateway
istio-gateways  istio-ingressgateway-1-22-3  1-22-3/1.22.3  2/2    up-to-date  -

SERVICE                              TYPE          SELECTS           ENDPOINTS  CAN SWITCH TO
istio-gateways/istio-ingressgateway  LoadBalancer  1-21-2            2 ready:   1-22-3 (ready)
                                                   (version=1-21-2)  1-21-2 ×2

SUMMARY
9 workloads: 6 up-to-date, 2 stale, 1 not-injected; 1 pod no restart can reach
Next:
  - 2 workloads in 1 namespace run 1.21.2 proxies but select 1-22-3
    kubectl mesh-upgrade restart-sidecars -n pay
  - 1 StatefulSet uses updateStrategy OnDelete (ledger): pods are deleted one at a time
    kubectl mesh-upgrade restart-sidecars -n pay --delete-pods
  - namespace legacy: istio-injection=enabled and istio.io/rev=1-22-3 are both set; istio-injection
    wins (IST0123), so pods get 1-21-2
    kubectl mesh-upgrade relabel -n legacy --to 1-21-2
  - namespace typo: 1-22-4 names no revision or tag: new pods start without a proxy; revisions and
    tags that exist: 1-21-2, 1-22-3, default, prod-canary, prod-stable
    kubectl mesh-upgrade relabel -n typo --to <revision>
  - gateway Service istio-gateways/istio-ingressgateway selects 1-21-2; the 1-22-3 gateway
    (istio-ingressgateway-1-22-3) is ready to take over
    kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --to 1-22-3
  - 1 pod that no restart can reach runs an old proxy (pay/debug-shell): see the unreachable pods
    for the command each needs
"#;
}
