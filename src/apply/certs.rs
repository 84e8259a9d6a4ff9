//! Certificate material for the changes the plan left `(known after apply)` (SPEC §8).
//!
//! [`materialise`] runs inside the apply's write transaction (after the lock is taken and the
//! plan re-made against it): it loads the CA with its key, issues one certificate per
//! allocation — one per job and name for `one = true`, so every allocation gets the same
//! PEM — and returns the plan with those values filled in. The filled plan only lives in
//! memory for the executor; the state seals the private keys (`crate::kv::is_secret_key`).
//! Plans, plan files and output never see the material.

use crate::certs::issue::{CaSigner, Issued, issue};
use crate::certs::{CertsError, ca};
use crate::kv::Value;
use crate::model::types::Desired;
use crate::plan::Plan;
use std::collections::BTreeMap;

/// `plan` with every `after_unknown` change given its value, issued at `now`.
pub fn materialise(
    mut plan: Plan,
    desired: &Desired,
    bucket: &crate::bucket::Bucket,
    now: i64,
) -> Result<Plan, CertsError> {
    if !plan.changes.iter().any(|c| c.after_unknown) {
        return Ok(plan);
    }
    let signer = ca::load_signer(bucket)?;
    let values = issue_all(&plan, desired, &signer, now)?;
    for c in plan.changes.iter_mut().filter(|c| c.after_unknown) {
        if let Some(v) = values.get(&(c.namespace.clone(), c.key.clone())) {
            c.after = Some(Value::from(v.as_str()));
        }
    }
    Ok(plan)
}

/// (namespace, key) -> PEM for every certificate and key the plan issues.
fn issue_all(
    plan: &Plan,
    desired: &Desired,
    signer: &CaSigner,
    now: i64,
) -> Result<BTreeMap<(String, String), zeroize::Zeroizing<String>>, CertsError> {
    let mut shared: BTreeMap<(&str, &str), Issued> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for c in &desired.certs.certs {
        let crt_key = c.crt_key();
        let planned = plan.changes_in(&c.namespace).iter().any(|ch| ch.after_unknown && ch.key == crt_key);
        if !planned {
            continue;
        }
        let fresh;
        let issued = if c.one {
            match shared.entry((c.job.as_str(), c.request.name.as_str())) {
                std::collections::btree_map::Entry::Occupied(e) => &*e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => &*e.insert(issue(signer, &c.request, now)?),
            }
        } else {
            fresh = issue(signer, &c.request, now)?;
            &fresh
        };
        out.insert((c.namespace.clone(), crt_key), zeroize::Zeroizing::new(issued.cert_pem.clone()));
        out.insert((c.namespace.clone(), c.key_key()), issued.key_pem.clone());
    }
    Ok(out)
}
