//! Controllers of the simulated cluster. (Stub: replaced by the controllers work.)

use crate::world::World;

/// Runs every controller once; returns whether anything changed.
pub fn reconcile(_world: &mut World) -> bool {
    false
}
