//! The certificate part of the plan (SPEC §8): for every certificate the desired state
//! declares ([`crate::model::types::DesiredCerts`]), compare what the state holds and, when
//! it must be (re)issued, write `certs/<name>.crt` and `certs/<name>.key` as
//! `(known after apply)` with the reason. Pure: the decision reads the stored certificate
//! (x509-parser), the CA certificate and `now`; nothing random is in the plan.
//!
//! `one = true` certificates are decided for the whole job: when any allocation's copy must
//! be re-issued (or the copies differ), every allocation gets the new one, so all keep the
//! same PEM.

use super::types::{Action, Change};
use crate::certs::inspect::{Stored, reissue_reason};
use crate::kv::{Current, CurrentEntry, Value};
use crate::model::types::{Desired, DesiredCert};
use std::collections::{BTreeMap, BTreeSet};

/// The `(namespace, key)` pairs of declared certificates and keys: the rest of the diff
/// neither writes nor tombstones them.
#[derive(Debug, Default)]
pub struct CertKeys(BTreeMap<String, BTreeSet<String>>);

impl CertKeys {
    pub fn contains(&self, ns: &str, key: &str) -> bool {
        self.0.get(ns).is_some_and(|k| k.contains(key))
    }
}

/// The changes that (re)issue certificates, and the keys they own.
pub fn changes<C: Current>(desired: &Desired, current: &C, now: i64) -> (Vec<Change>, CertKeys) {
    let mut owned = CertKeys::default();
    let mut out = Vec::new();
    let live = |ns: &str, key: &str| current.entries().get(ns).and_then(|m| m.get(key)).filter(|e| e.is_live());
    // Without the CA files on this machine, certificates are checked against the CA
    // certificate the state holds (the pipeline stops the plan if one must be issued); a
    // bucket whose CA `apply` will make has no certificate yet, so all are new.
    let workers = crate::kv::NamespaceKind::Workers.path();
    let Some(ca) = desired
        .certs
        .ca_pem
        .as_deref()
        .or_else(|| live(&workers, super::diff::CA_KEY).and_then(|e| e.value()))
        .or(desired.certs.ca_pending.then_some(""))
    else {
        return (out, owned);
    };
    let spec_of = |c: &DesiredCert| desired.kv.get(&c.namespace).and_then(|m| m.get(&c.spec_key())).cloned();

    // The reason of each certificate, on its own.
    let mut reasons: Vec<Option<String>> = Vec::with_capacity(desired.certs.certs.len());
    for c in &desired.certs.certs {
        let keys = owned.0.entry(c.namespace.clone()).or_default();
        keys.insert(c.crt_key());
        keys.insert(c.key_key());
        let spec = spec_of(c);
        let stored = Stored {
            cert: live(&c.namespace, &c.crt_key()).and_then(|e| e.value()),
            key: live(&c.namespace, &c.key_key()).is_some(),
            key_unreadable: desired.certs.unreadable_keys.contains(&(c.namespace.clone(), c.key_key())),
            same_spec: match (live(&c.namespace, &c.spec_key()), &spec) {
                (Some(e), Some(want)) => e.same_value(want),
                _ => false,
            },
        };
        reasons.push(reissue_reason(&stored, ca, &c.request.sans, now, desired.certs.renewal_days));
    }

    // `one`: a job's certificate of that name is issued for all its allocations or none.
    let mut group_reason: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut group_pem: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for (c, r) in desired.certs.certs.iter().zip(&reasons) {
        if !c.one {
            continue;
        }
        let group = (c.job.as_str(), c.request.name.as_str());
        if let Some(r) = r {
            group_reason.entry(group).or_insert_with(|| r.clone());
        }
        if let Some(pem) = live(&c.namespace, &c.crt_key()).and_then(|e| e.value()) {
            group_pem.entry(group).or_default().insert(pem);
        }
    }
    for (group, pems) in &group_pem {
        if pems.len() > 1 {
            group_reason.entry(*group).or_insert_with(|| "reissue: the allocations hold different certificates".into());
        }
    }

    for (c, own) in desired.certs.certs.iter().zip(reasons) {
        let reason = match own {
            Some(r) => r,
            None if c.one => match group_reason.get(&(c.job.as_str(), c.request.name.as_str())) {
                Some(r) => r.clone(),
                None => continue,
            },
            None => continue,
        };
        for (key, sensitive) in [(c.crt_key(), false), (c.key_key(), true)] {
            let action = if live(&c.namespace, &key).is_some() { Action::Update } else { Action::Create };
            out.push(Change {
                kv_type: crate::kv::KvType::String,
                namespace: c.namespace.clone(),
                key,
                action,
                before: None,
                after: None::<Value>,
                before_sensitive: sensitive && action == Action::Update,
                after_sensitive: sensitive,
                after_unknown: true,
                reason: Some(reason.clone()),
                purge: false,
            });
        }
    }
    (out, owned)
}
