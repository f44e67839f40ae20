//! Each verb's settings as plain, validated values.
//!
//! ```text
//! cli (clap structs) ─► commands/<verb>.rs ─► RestartConfig, ... ─► mesh, run
//! ```
//!
//! The clap structs stop at `commands/`: what lies below sees these types
//! only, so `relabel --restart` and `restart-sidecars` hand the engine the
//! same [`RestartConfig`], built from the same flags.

use std::time::Duration;

use crate::mesh::restart::RestartOptions;
use crate::mesh::ztunnel_roll::RollOptions;

/// How `restart-sidecars` (and `relabel --restart`) restart.
#[derive(Clone, Debug, PartialEq)]
pub struct RestartConfig {
    /// What the plan selects (kinds, targets, --all, ...).
    pub options: RestartOptions,
    /// Bound of each rollout.
    pub timeout: Duration,
    /// Restarts at once (at least 1).
    pub concurrency: usize,
    /// Wait for each rollout (`--no-wait` turns it off).
    pub wait: bool,
    /// `--fail-on-blocked`: a workload held by a PodDisruptionBudget refuses
    /// the run instead of being left out of it.
    pub fail_on_blocked: bool,
}

/// How `ztunnel-roll` rolls.
#[derive(Clone, Debug, PartialEq)]
pub struct ZtunnelRollConfig {
    /// Which nodes, drained or not (see [`RollOptions`]).
    pub options: RollOptions,
    /// Bound of each node, cordon to uncordon.
    pub timeout: Duration,
}
