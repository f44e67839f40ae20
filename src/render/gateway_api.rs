//! The `status` sections for Gateway API gateways and waypoints.
//!
//! One row per Gateway: the revision that serves it and where that came from
//! (its own `istio.io/rev`, its namespace's, or the default), the Deployment
//! istiod rendered and its readiness, the proxy versions its pods run against
//! the one the revision renders, `Programmed`, the state, and the problems
//! (free text, the only column that wraps). Waypoints get their own table with
//! who uses each instead of the class.

use super::Layout;
use super::table::{Cell, Color, Fit, Table};
use crate::mesh::gateway_api::{
    GatewayApiState, GatewayApiStatus, GatewayKind, ProxyVersionCount, RevisionSource,
    WaypointStatus,
};

/// The non-waypoint Gateways (ingress and east-west), or `None` when there
/// are none. `-o wide` adds the rendered Deployment and the image.
pub fn gateways_section(
    gateways: &[GatewayApiStatus],
    wide: bool,
    layout: &Layout,
) -> Option<String> {
    let shown: Vec<&GatewayApiStatus> = gateways
        .iter()
        .filter(|g| g.kind != GatewayKind::Waypoint)
        .collect();
    if shown.is_empty() {
        return None;
    }
    let mut columns = vec![
        ("NAMESPACE", Fit::Whole),
        ("GATEWAY", Fit::Whole),
        ("CLASS", Fit::Whole),
        ("REVISION", Fit::Whole),
    ];
    if wide {
        columns.push(("DEPLOYMENT", Fit::Whole));
    }
    columns.extend([
        ("READY", Fit::Whole),
        ("PROXIES", Fit::Whole),
        ("RENDERS", Fit::Whole),
        ("PROGRAMMED", Fit::Whole),
        ("STATE", Fit::Whole),
        ("PROBLEMS", Fit::Words),
    ]);
    let mut table = Table::new(*layout, &columns);
    for g in shown {
        let mut row = vec![
            Cell::new(&g.namespace),
            Cell::new(&g.name),
            Cell::new(&g.class),
            Cell::new(revision(g)),
        ];
        if wide {
            row.push(Cell::new(
                g.deployment
                    .as_ref()
                    .map_or("-".to_string(), |d| d.name.clone()),
            ));
        }
        row.extend([
            Cell::new(ready(g)),
            Cell::new(proxies(&g.proxies)),
            Cell::new(renders(g, wide)),
            programmed(g),
            state(g.state),
            Cell::new(problems(g)),
        ]);
        table.row(row);
    }
    Some(table.render())
}

/// The waypoints, or `None` when there are none. Their problems are in the
/// summary (and under `-o wide`).
pub fn waypoints_section(
    waypoints: &[WaypointStatus],
    wide: bool,
    layout: &Layout,
) -> Option<String> {
    if waypoints.is_empty() {
        return None;
    }
    let mut columns = vec![
        ("NAMESPACE", Fit::Whole),
        ("WAYPOINT", Fit::Whole),
        ("REVISION", Fit::Whole),
        ("READY", Fit::Whole),
        ("PROXIES", Fit::Whole),
        ("RENDERS", Fit::Whole),
        ("PROGRAMMED", Fit::Whole),
        ("STATE", Fit::Whole),
        ("USED BY", Fit::Words),
    ];
    if wide {
        columns.push(("PROBLEMS", Fit::Words));
    }
    let mut table = Table::new(*layout, &columns);
    for w in waypoints {
        let g = &w.gateway;
        let mut row = vec![
            Cell::new(&g.namespace),
            Cell::new(&g.name),
            Cell::new(revision(g)),
            Cell::new(ready(g)),
            Cell::new(proxies(&g.proxies)),
            Cell::new(renders(g, wide)),
            programmed(g),
            state(g.state),
            Cell::new(used_by(w)),
        ];
        if wide {
            row.push(Cell::new(problems(g)));
        }
        table.row(row);
    }
    Some(table.render())
}

/// The version the revision renders (`-o wide`: the image).
fn renders(g: &GatewayApiStatus, wide: bool) -> String {
    let shown = if wide {
        g.expected_image
            .as_deref()
            .or(g.expected_version.as_deref())
    } else {
        g.expected_version.as_deref()
    };
    shown.unwrap_or("-").to_string()
}

/// `1-21-2 (ns prod-stable)`, `1-22-3`, `1-21-2 (default)`, `none (1-22-4)`.
fn revision(g: &GatewayApiStatus) -> String {
    let resolved = g.revision.as_deref().unwrap_or("none");
    match (g.revision_from, g.revision_label.as_deref()) {
        (RevisionSource::Gateway, Some(label)) if label == resolved => resolved.to_string(),
        (RevisionSource::Gateway, Some(label)) => format!("{resolved} ({label})"),
        (RevisionSource::Namespace, Some(label)) => format!("{resolved} (ns {label})"),
        _ => format!("{resolved} (default)"),
    }
}

fn ready(g: &GatewayApiStatus) -> String {
    match &g.deployment {
        Some(d) => format!("{}/{}", d.ready_replicas, d.replicas),
        None => "-".to_string(),
    }
}

/// `1.21.2 ×1, 1.22.3 ×1`.
fn proxies(groups: &[ProxyVersionCount]) -> String {
    if groups.is_empty() {
        return "-".to_string();
    }
    groups
        .iter()
        .map(|g| format!("{} ×{}", g.version.as_deref().unwrap_or("digest"), g.pods))
        .collect::<Vec<_>>()
        .join(", ")
}

fn programmed(g: &GatewayApiStatus) -> Cell {
    match &g.programmed {
        Some(p) if p.status == "True" && p.current => Cell::colored("True", Color::Green),
        Some(p) if p.status == "True" => Cell::colored("True (old)", Color::Yellow),
        Some(p) => Cell::colored(p.status.clone(), Color::Red),
        None => Cell::new("-"),
    }
}

fn state(state: GatewayApiState) -> Cell {
    let color = match state {
        GatewayApiState::UpToDate => Color::Green,
        GatewayApiState::Unmanaged => Color::Grey,
        GatewayApiState::NotProgrammed => Color::Yellow,
        GatewayApiState::Stale | GatewayApiState::NotRendered | GatewayApiState::NoRevision => {
            Color::Red
        }
    };
    Cell::colored(state.as_str(), color)
}

fn problems(g: &GatewayApiStatus) -> String {
    if g.problems.is_empty() {
        "-".to_string()
    } else {
        g.problems.join("; ")
    }
}

/// `namespace ambient-apps; 2 services (ambient-apps/reviews, ...)`.
fn used_by(w: &WaypointStatus) -> String {
    let mut parts = Vec::new();
    if !w.used_by.namespaces.is_empty() {
        parts.push(format!(
            "{} {}",
            if w.used_by.namespaces.len() == 1 {
                "namespace"
            } else {
                "namespaces"
            },
            w.used_by.namespaces.join(", ")
        ));
    }
    if !w.used_by.services.is_empty() {
        const SHOWN: usize = 3;
        let mut names: Vec<&str> = w
            .used_by
            .services
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        let more = w.used_by.services.len().saturating_sub(SHOWN);
        let more_text = format!("and {more} more");
        if more > 0 {
            names.push(&more_text);
        }
        parts.push(format!(
            "{} {}: {}",
            w.used_by.services.len(),
            if w.used_by.services.len() == 1 {
                "service"
            } else {
                "services"
            },
            names.join(", ")
        ));
    }
    if parts.is_empty() {
        "nobody".to_string()
    } else {
        parts.join("; ")
    }
}
