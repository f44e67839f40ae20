//! The `status` sections of ambient mode: ztunnel and istio-cni node by
//! node, and the pods ambient mode captures.
//!
//! ```text
//! ZTUNNEL istio-system/ztunnel  OnDelete, template 1.23.1 -> istiod-1-23-1 (1.23.1, Ready)
//! NODE        POD            VERSION  CONTROL PLANE    READY  STATE  CORDON
//! sim-node-1  ztunnel-8qz4l  1.22.3   1-22-3 (1.22.3)  yes    stale  -
//! ```
//!
//! Pure like the other renderers: the report in, text out. The AMBIENT
//! table counts pods per namespace; pods not carried by a ztunnel
//! (`pending`, `missing`) are listed one by one, and `-o wide` lists every
//! captured pod with its node.

use super::Layout;
use super::table::{Cell, Color, Fit, Table};
use crate::mesh::ambient::{AmbientStatus, Capture, ComponentNode, ComponentStatus, Cordon};

/// The sections to draw, as (title, body); none without ambient mode.
pub fn sections(
    ztunnel: &[ComponentStatus],
    istio_cni: &[ComponentStatus],
    ambient: &AmbientStatus,
    wide: bool,
    layout: &Layout,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for component in ztunnel.iter().chain(istio_cni) {
        out.push((heading(component), nodes(component, layout)));
    }
    if !ambient.namespaces.is_empty() {
        out.push(("AMBIENT".to_string(), captured(ambient, wide, layout)));
    }
    out
}

/// `ZTUNNEL istio-system/ztunnel  OnDelete, template 1.23.1 -> istiod-1-23-1 (1.23.1, Ready)`.
fn heading(c: &ComponentStatus) -> String {
    let control_plane = match &c.control_plane {
        Some(cp) => format!(
            "{} ({}, {})",
            cp.istiod,
            cp.version.as_deref().unwrap_or("?"),
            if cp.ready { "Ready" } else { "not Ready" }
        ),
        None => "no istiod".to_string(),
    };
    format!(
        "{} {}/{}  {}, template {} -> {control_plane}",
        c.component.to_uppercase(),
        c.namespace,
        c.name,
        c.update_strategy,
        c.version.as_deref().unwrap_or(&c.image),
    )
}

fn cordon_text(cordon: &Cordon) -> String {
    match cordon {
        Cordon::None => "-".to_string(),
        Cordon::Plugin { verb, .. } => format!("by {verb}"),
        Cordon::Other => "yes".to_string(),
    }
}

fn state_cell(node: &ComponentNode) -> Cell {
    let state = node.state();
    let skewed = node
        .pods
        .iter()
        .any(|p| p.skew.is_some_and(|s| !s.is_supported()));
    let text = if skewed {
        format!("{state}, skew")
    } else {
        state.to_string()
    };
    let color = match state {
        "up-to-date" if !skewed => Color::Green,
        "stale" if !skewed => Color::Yellow,
        _ => Color::Red,
    };
    Cell::colored(text, color)
}

fn nodes(c: &ComponentStatus, layout: &Layout) -> String {
    let mut text = String::new();
    if c.nodes.is_empty() {
        text.push_str("no nodes\n");
    } else {
        let mut table = Table::new(
            *layout,
            &[
                ("NODE", Fit::Whole),
                ("POD", Fit::Whole),
                ("VERSION", Fit::Whole),
                ("CONTROL PLANE", Fit::Whole),
                ("READY", Fit::Whole),
                ("STATE", Fit::Whole),
                ("CORDONED", Fit::Whole),
            ],
        );
        for node in &c.nodes {
            let pods: Vec<String> = node.pods.iter().map(|p| p.name.clone()).collect();
            let versions: Vec<String> = node
                .pods
                .iter()
                .map(|p| p.version.clone().unwrap_or_else(|| p.image.clone()))
                .collect();
            let control_planes: Vec<String> = node
                .pods
                .iter()
                .map(|p| match &p.control_plane {
                    Some(cp) => {
                        format!("{} ({})", cp.revision, cp.version.as_deref().unwrap_or("?"))
                    }
                    None => "?".to_string(),
                })
                .collect();
            let ready = if node.pods.is_empty() {
                Cell::colored("no", Color::Red)
            } else if node.is_ready() {
                Cell::new("yes")
            } else {
                Cell::colored("no", Color::Red)
            };
            let or_dash = |v: Vec<String>| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.join(",")
                }
            };
            table.row([
                Cell::new(&node.node),
                Cell::new(or_dash(pods)),
                Cell::new(or_dash(versions)),
                Cell::new(or_dash(control_planes)),
                ready,
                state_cell(node),
                Cell::new(cordon_text(&node.cordon)),
            ]);
        }
        text.push_str(&table.render());
    }
    for problem in &c.problems {
        layout
            .wrap()
            .push(&mut text, &format!("problem: {problem}"), "  ");
    }
    text
}

fn capture_cell(capture: Capture) -> Cell {
    let color = match capture {
        Capture::Enabled => Color::Green,
        Capture::OptedOut => Color::Grey,
        Capture::Pending | Capture::Missing => Color::Red,
    };
    Cell::colored(capture.as_str(), color)
}

fn captured(ambient: &AmbientStatus, wide: bool, layout: &Layout) -> String {
    let mut table = Table::new(
        *layout,
        &[
            ("NAMESPACE", Fit::Whole),
            ("PODS", Fit::Whole),
            ("ENABLED", Fit::Whole),
            ("PENDING", Fit::Whole),
            ("MISSING", Fit::Whole),
            ("OPTED OUT", Fit::Whole),
        ],
    );
    for n in &ambient.namespaces {
        let count = |value: usize, bad: bool| {
            if bad && value > 0 {
                Cell::colored(value.to_string(), Color::Red)
            } else {
                Cell::new(value.to_string())
            }
        };
        let name = if n.labelled {
            n.name.clone()
        } else {
            format!("{} (pod labels)", n.name)
        };
        table.row([
            Cell::new(name),
            Cell::new(n.pods.to_string()),
            count(n.enabled, false),
            count(n.pending, true),
            count(n.missing, true),
            count(n.opted_out, false),
        ]);
    }
    let mut text = table.render();
    let listed: Vec<_> = ambient
        .pods
        .iter()
        .filter(|p| wide || matches!(p.redirection, Capture::Pending | Capture::Missing))
        .collect();
    if !listed.is_empty() {
        text.push('\n');
        let mut pods = Table::new(
            *layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("POD", Fit::Whole),
                ("NODE", Fit::Whole),
                ("REDIRECTION", Fit::Whole),
            ],
        );
        for p in listed {
            pods.row([
                Cell::new(&p.namespace),
                Cell::new(&p.name),
                Cell::new(p.node.clone().unwrap_or_else(|| "-".into())),
                capture_cell(p.redirection),
            ]);
        }
        text.push_str(&pods.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::ambient::{data_plane, tests::ambient_world};
    use crate::mesh::control_plane::ControlPlane;

    #[test]
    fn the_ztunnel_section_shows_each_nodes_version_against_the_template_and_control_plane() {
        let snapshot = ambient_world(|_| {});
        let cp = ControlPlane::from_snapshot(&snapshot);
        let dp = data_plane(&snapshot, &cp);
        let ambient = crate::mesh::ambient::ambient(&snapshot);
        let sections = sections(
            &dp.ztunnel,
            &dp.istio_cni,
            &ambient,
            false,
            &Layout::at(120),
        );
        let titles: Vec<&str> = sections.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            titles,
            [
                "ZTUNNEL istio-system/ztunnel  OnDelete, template 1.23.1 -> istiod-1-23-1 (1.23.1, Ready)",
                "ISTIO-CNI istio-system/istio-cni-node  RollingUpdate, template 1.22.3 -> istiod-1-22-3 (1.22.3, Ready)",
                "AMBIENT",
            ]
        );
        let ztunnel = &sections[0].1;
        let rows: Vec<&str> = ztunnel.lines().collect();
        assert!(rows[0].starts_with("NODE        POD"), "{ztunnel}");
        assert!(rows[1].starts_with("sim-node-1  ztunnel-"), "{ztunnel}");
        assert!(
            rows[1].contains("1.22.3   1-22-3 (1.22.3)  yes    stale"),
            "{ztunnel}"
        );
        let ambient_text = &sections[2].1;
        assert!(
            ambient_text
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["bookinfo", "7", "6", "0", "0", "1"]),
            "{ambient_text}"
        );
        assert!(
            !ambient_text.contains("REDIRECTION"),
            "nothing to list: {ambient_text}"
        );
    }
}
