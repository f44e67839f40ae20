//! `kubectl mesh-upgrade`: upgrade a service mesh's data plane without downtime.

pub mod snapshot;
