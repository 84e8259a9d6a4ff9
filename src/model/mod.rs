//! The pure domain: placement, ports, resources, dependency waves, KV projection.

pub mod types;

use crate::diag::Diagnostics;
use crate::workspace::types::Workspace;
use types::{Desired, Prior};

/// The desired state of a validated workspace given what the state already holds.
/// Pure: no I/O, no clock, no randomness. All violations are reported together.
pub fn desired(_ws: &Workspace, prior: &Prior) -> Result<Desired, Diagnostics> {
    Ok(Desired {
        bucket_id: prior.bucket_id,
        kv: Default::default(),
        workers: Vec::new(),
        jobs: Default::default(),
        allocations: Vec::new(),
        removed_jobs: Default::default(),
        removed_workers: Default::default(),
        waves: Vec::new(),
    })
}
