//! Controllers of the simulated cluster. (Being replaced by the controllers work.)

pub mod defaults;

use crate::world::World;

/// What the controllers remember between passes.
#[derive(Debug, Default)]
pub struct ControllerState {}

/// Runs every controller once; returns whether anything changed.
pub fn reconcile(_world: &mut World) -> bool {
    false
}

/// Whether no controller has anything left to do.
pub fn is_settled(_world: &World) -> bool {
    true
}

/// Runs the controllers until the cluster is settled.
pub fn settle(world: &mut World) -> bool {
    reconcile(world);
    is_settled(world)
}
