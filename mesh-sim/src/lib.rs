//! `mesh-sim`: a simulated Kubernetes API server with Istio's sidecar injector.
//!
//! It serves the Kubernetes REST API over HTTPS on 127.0.0.1 so the real
//! `kubectl` and the plugin can run against it, and simulates the controllers
//! (Deployments, StatefulSets, DaemonSets, Jobs, EndpointSlices, PDBs) and the
//! admission behaviour a mesh upgrade depends on.

pub mod auth;
pub mod clock;
pub mod controllers;
pub mod error;
pub mod eviction;
pub mod faults;
pub mod generate;
pub mod handle;
pub mod inject;
pub mod kubeconfig;
pub mod patch;
pub mod resources;
pub mod scenario;
pub mod selectors;
pub mod server;
pub mod store;
pub mod tls;
pub mod world;

pub use auth::Role;
pub use faults::{FaultRule, Faults};
pub use handle::{Sim, SimOptions};
pub use server::RequestRecord;
