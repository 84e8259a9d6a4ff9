//! The rollout order of one phase, as maand resolves it (maand-sh/maand @3f8043e,
//! `deploy/ordering.go` `ResolveRolloutOrder`, lines 124-166).
//!
//! The candidates are the active allocations a phase rolls (the new ones, or the changed
//! ones). `maand/job/<job>` `rollout_order` — the workspace's value, or a `pre_deploy`/`cli`
//! hook's override for this apply — orders them when it lists **exactly** the candidates
//! (no duplicate, none unknown, none missing): `ROLLOUT_ORDER_SOURCE=kv`, `ROLLOUT_ORDER` the
//! key's value. Otherwise the default catalog order (fleet order restricted to the
//! candidates) is used: `ROLLOUT_ORDER_SOURCE=default`, `ROLLOUT_ORDER` the candidates in that
//! order. The workspace writes `rollout_order = workers`, so a first deploy (every allocation
//! new) resolves to `kv`; an update of some allocations only resolves to `default`.
//!
//! Batches: new allocations by `max_concurrent_starts` (0 = all at once), changed ones by
//! `max_concurrent_upgrades` (0 = all at once, the plan's rule).

use crate::plan::{Batch, BatchKind};

/// `ROLLOUT_ORDER_SOURCE` when `rollout_order` listed exactly the allocations rolled (maand's
/// `orderSourceKV`).
pub const ORDER_FROM_KV: &str = "kv";
/// `ROLLOUT_ORDER_SOURCE` otherwise: the catalog (fleet) order (maand's `orderSourceDefault`).
pub const ORDER_DEFAULT: &str = "default";

/// One phase's resolved order (maand's `ResolvedRolloutOrder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The candidates in rollout order.
    pub ordered: Vec<String>,
    /// `ROLLOUT_ORDER`: the key's value (source `kv`) or the ordered candidates joined.
    pub full_order: String,
    /// `ROLLOUT_ORDER_SOURCE`: [`ORDER_FROM_KV`] or [`ORDER_DEFAULT`].
    pub source: &'static str,
    /// Why a non-empty `rollout_order` was not used (maand logs it); `None` when it was used
    /// or was empty.
    pub rejected: Option<String>,
}

/// maand's `ResolveRolloutOrder`: `raw` is the job's `rollout_order` value, `candidates` the
/// allocations of the phase, `catalog` the job's non-removed allocations in fleet order.
pub fn resolve(raw: Option<&str>, candidates: &[String], catalog: &[String]) -> Resolved {
    let mut default_ordered: Vec<String> = catalog.iter().filter(|h| candidates.contains(h)).cloned().collect();
    for c in candidates {
        if !default_ordered.contains(c) {
            default_ordered.push(c.clone());
        }
    }
    let default = |rejected: Option<String>| Resolved {
        full_order: default_ordered.join(","),
        ordered: default_ordered.clone(),
        source: ORDER_DEFAULT,
        rejected,
    };
    let raw = raw.map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return default(None);
    }
    let list: Vec<&str> = raw.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if let Some(reason) = invalid(&list, candidates) {
        return default(Some(reason));
    }
    Resolved {
        ordered: list.iter().map(|h| h.to_string()).collect(),
        full_order: raw.to_string(),
        source: ORDER_FROM_KV,
        rejected: None,
    }
}

/// maand's `validateRolloutOrderList`: the reason the list does not name exactly `candidates`.
fn invalid(list: &[&str], candidates: &[String]) -> Option<String> {
    if list.is_empty() && !candidates.is_empty() {
        return Some("`rollout_order` is empty".into());
    }
    let mut seen: Vec<&str> = Vec::new();
    for h in list {
        if seen.contains(h) {
            return Some(format!("`rollout_order` names {h} twice"));
        }
        seen.push(h);
        if !candidates.iter().any(|c| c == h) {
            return Some(format!("`rollout_order` names {h}, which this phase does not roll"));
        }
    }
    candidates
        .iter()
        .find(|c| !seen.contains(&c.as_str()))
        .map(|c| format!("`rollout_order` does not name {c}, which this phase rolls"))
}

/// `hosts` in batches of `size` (0 = all at once).
pub fn chunk(kind: BatchKind, hosts: &[String], size: u32) -> Vec<Batch> {
    if hosts.is_empty() {
        return Vec::new();
    }
    let size = if size == 0 { hosts.len() } else { size as usize };
    hosts.chunks(size).map(|c| Batch { kind, hosts: c.to_vec() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_list_of_exactly_the_candidates_is_kv() {
        let r = resolve(Some(" c,a, b "), &s(&["a", "b", "c"]), &s(&["a", "b", "c"]));
        assert_eq!(r.ordered, s(&["c", "a", "b"]));
        assert_eq!(r.full_order, "c,a, b");
        assert_eq!(r.source, ORDER_FROM_KV);
        assert_eq!(r.rejected, None);
    }

    #[test]
    fn a_list_of_more_than_the_candidates_is_default_in_catalog_order() {
        // An update of two of three allocations: the workspace's full list is not theirs.
        let r = resolve(Some("c,b,a"), &s(&["c", "a"]), &s(&["a", "b", "c"]));
        assert_eq!(r.ordered, s(&["a", "c"]));
        assert_eq!(r.full_order, "a,c");
        assert_eq!(r.source, ORDER_DEFAULT);
        assert!(r.rejected.unwrap().contains("names b"));
    }

    #[test]
    fn missing_duplicate_and_empty_lists_are_default() {
        let cands = s(&["a", "b"]);
        let missing = resolve(Some("b"), &cands, &cands);
        assert_eq!((missing.source, missing.rejected.unwrap().contains("does not name a")), (ORDER_DEFAULT, true));
        let twice = resolve(Some("a,a,b"), &cands, &cands);
        assert_eq!((twice.source, twice.rejected.unwrap().contains("twice")), (ORDER_DEFAULT, true));
        let empty = resolve(Some(" , "), &cands, &cands);
        assert_eq!((empty.source, empty.rejected.is_some()), (ORDER_DEFAULT, true));
        let absent = resolve(None, &cands, &cands);
        assert_eq!((absent.source, absent.rejected, absent.full_order.as_str()), (ORDER_DEFAULT, None, "a,b"));
    }

    #[test]
    fn chunk_by_size_zero_is_all() {
        let hosts = s(&["a", "b", "c"]);
        assert_eq!(chunk(BatchKind::New, &hosts, 0), vec![Batch { kind: BatchKind::New, hosts: hosts.clone() }]);
        assert_eq!(chunk(BatchKind::Changed, &hosts, 2).len(), 2);
    }
}
