//! The mesh model: pure functions from a [`crate::snapshot::ClusterSnapshot`]
//! to what the upgrade verbs need to know.
//!
//! ```text
//! snapshot ─► control_plane (revisions, tags, webhooks in call order)
//!          ─► injection     (what a new pod of a template would get)
//!          ─► proxy         (what a pod runs now)
//!          ─► workloads     (pods grouped to workloads: state, risks, unreachable pods)
//!          ─► gateways      (gateway Deployments, the Services in front of them)
//!          ─► revision_usage (what still uses each revision; when it can go)
//!          ─► gateway_api   (Gateway API gateways and waypoints: revision, rendering, state)
//!          ─► ambient       (ztunnel and istio-cni per node, skew, captured pods)
//!          ─► ztunnel_roll  (the node-by-node ztunnel upgrade: plan and conditions)
//!          ─► status        (the `status` report, serialisable)
//!          ─► status_changes (what changed between two reports: `status --watch`)
//!          ─► tags          (`tag list`, and the plans of `tag set`/`--undo`/`remove`)
//!          ─► injection_check (the cluster's dry-run answer judged against the model)
//!          ─► pacing        (restarts held or paced by PodDisruptionBudgets)
//! ```
//!
//! Nothing here performs I/O or reads the clock, so every rule is unit-tested
//! on snapshots built with [`fixtures`].

/// The `apiVersion` of every document the plugin prints or accepts
/// (`-o json|yaml` of each verb): one version for all of them.
pub const API_VERSION: &str = "mesh-upgrade/v1";

pub mod ambient;
pub mod control_plane;
pub mod gateway_api;
pub mod gateway_move;
pub mod gateway_switch;
pub mod gateways;
pub mod injection;
pub mod injection_check;
pub mod pacing;
pub mod proxy;
pub mod relabel;
pub mod restart;
pub mod revision_usage;
pub mod rollout;
pub mod status;
pub mod status_changes;
pub mod tags;
pub mod workloads;
pub mod ztunnel_roll;

#[cfg(test)]
pub mod fixtures;

#[cfg(test)]
mod owners_tests;
