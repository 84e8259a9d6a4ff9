//! Projection units: the pieces of the desired state a plan can skip projecting when their
//! inputs did not change (SPEC §11, `crate::state::fingerprint`).
//!
//! A unit is one job (`job/<job>`: `maand/job/<job>`, its allocation namespaces,
//! `vars/bucket/job/<job>`, `vars/job/<job>`, `secrets/job/<job>`) or one worker
//! (`worker/<host>`: `maand/worker/<host>` and its tags). Every other namespace
//! (`maand/bucket`, `maand/worker`, `vars/bucket`, `maand/prometheus`, anything outside the
//! layout) belongs to no unit and is projected on every plan.
//!
//! The model projects a unit from one value holding everything the projection reads (and
//! nothing else: the projection function gets only that value), and [`digest`] hashes that
//! value through its `Hash` impl, so a field added to the inputs is in the digest without
//! anyone remembering to add it.

use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

/// The digest of a unit's inputs: 16 bytes of sha256.
pub type InputDigest = [u8; 16];

/// Which units a plan may leave unprojected: `skip(unit, digest of its inputs)` is true
/// when the state holds exactly what those inputs project to (`crate::state::fingerprint`).
/// The projection of the desired state takes it (`crate::model::project`), the state
/// decides it (`crate::state::lean`).
pub type Skip<'a> = &'a dyn Fn(&str, &InputDigest) -> bool;

/// The unit a namespace is projected in, or `None` for the namespaces projected on every
/// plan (see the module docs).
pub fn unit_of(ns: &str) -> Option<String> {
    // Rows of `NAMESPACE_RULES` with a host and no job are the worker's; a job segment
    // makes the namespace its job's (allocations too).
    match super::NamespaceKind::match_rule(ns)? {
        (_, Some(job), _) => Some(job_unit(job)),
        (_, None, Some(host)) => Some(worker_unit(host)),
        _ => None,
    }
}

pub fn job_unit(job: &str) -> String {
    format!("job/{job}")
}

pub fn worker_unit(host: &str) -> String {
    format!("worker/{host}")
}

/// What a plan's model did with each unit of the workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Units {
    /// Every unit of the workspace with the digest of its inputs; `None` for a unit that
    /// must be projected on every plan (a job holding certificates: renewal depends on the
    /// clock, not on the workspace).
    pub inputs: BTreeMap<String, Option<InputDigest>>,
    /// The units whose namespaces were projected into the desired keys; the others were
    /// skipped (their inputs are the ones the last apply recorded).
    pub projected: BTreeSet<String>,
}

impl Units {
    /// Whether the namespace's keys are in the desired state's KV (projected, or in no
    /// unit).
    pub fn projects(&self, ns: &str) -> bool {
        unit_of(ns).is_none_or(|u| self.projected.contains(&u) || !self.inputs.contains_key(&u))
    }
}

/// The digest of a unit's inputs (see the module docs). Integers are hashed little-endian
/// at a fixed width, so the digest does not depend on the machine.
pub fn digest(inputs: &impl Hash) -> InputDigest {
    let mut h = Sha(Sha256::new());
    inputs.hash(&mut h);
    let full = h.0.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

struct Sha(Sha256);

impl Hasher for Sha {
    fn finish(&self) -> u64 {
        unreachable!("only the sha256 of the bytes is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn write_usize(&mut self, n: usize) {
        self.0.update((n as u64).to_le_bytes());
    }
    fn write_isize(&mut self, n: isize) {
        self.0.update((n as i64).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_map_to_their_unit() {
        assert_eq!(unit_of("maand/job/api").as_deref(), Some("job/api"));
        assert_eq!(unit_of("maand/job/api/worker/10.0.0.1").as_deref(), Some("job/api"));
        assert_eq!(unit_of("vars/bucket/job/api").as_deref(), Some("job/api"));
        assert_eq!(unit_of("vars/job/api").as_deref(), Some("job/api"));
        assert_eq!(unit_of("secrets/job/api").as_deref(), Some("job/api"));
        assert_eq!(unit_of("maand/worker/10.0.0.1").as_deref(), Some("worker/10.0.0.1"));
        assert_eq!(unit_of("maand/worker/10.0.0.1/tags").as_deref(), Some("worker/10.0.0.1"));
        for ns in ["maand/bucket", "maand/worker", "vars/bucket", "maand/prometheus", "other/x"] {
            assert_eq!(unit_of(ns), None, "{ns}");
        }
    }

    #[test]
    fn digests_separate_fields() {
        assert_ne!(digest(&("ab", "c")), digest(&("a", "bc")));
        assert_ne!(digest(&(vec!["a"], vec!["b"])), digest(&(vec!["a", "b"], Vec::<&str>::new())));
        assert_eq!(digest(&("a", 1u32)), digest(&("a", 1u32)));
    }
}
