//! A hook's `rollout_order` override (SPEC §4: `pre_deploy`/`cli` hooks may override
//! `maand/job/<job>` `rollout_order` for one apply).
//!
//! After `pre_deploy`, the executor reads the key from the apply's transaction. It is an
//! override when a hook wrote it (writer other than the executor's) and its value differs
//! from the desired one. The writer test tells an override apart from the previous apply's
//! value that the plan is about to update (e.g. a worker was added): that one was written
//! by `apply`.
//!
//! Reordering: hosts listed in the override that are active allocations of the job come
//! first, in listed order; the other active hosts follow in fleet order; listed hosts that
//! are not active allocations are reported as warnings and ignored. Batches keep their kinds
//! and sizes: the new hosts are re-chunked by `max_concurrent_starts` (0 = all), the changed
//! ones by `max_concurrent_upgrades`, new batches first.

use crate::plan::{Batch, BatchKind};

/// The hosts of `order` (a comma-separated override) first, then `fleet` order; plus the
/// listed hosts that are not in `fleet`.
pub fn order_hosts(order: &str, fleet: &[String]) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for h in order.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        if fleet.iter().any(|f| f == h) {
            if !out.iter().any(|o| o == h) {
                out.push(h.to_string());
            }
        } else if !unknown.iter().any(|u: &String| u == h) {
            unknown.push(h.to_string());
        }
    }
    for h in fleet {
        if !out.contains(h) {
            out.push(h.clone());
        }
    }
    (out, unknown)
}

/// `batches` re-chunked in `order` with the same kinds; `starts`/`upgrades` are the job's
/// `max_concurrent_starts` / `max_concurrent_upgrades` (0 = all at once).
pub fn rechunk(batches: &[Batch], order: &[String], starts: u32, upgrades: u32) -> Vec<Batch> {
    let of_kind = |kind: BatchKind| -> Vec<String> {
        order.iter().filter(|h| batches.iter().any(|b| b.kind == kind && b.hosts.contains(h))).cloned().collect()
    };
    let mut out = chunk(BatchKind::New, of_kind(BatchKind::New), starts);
    out.extend(chunk(BatchKind::Changed, of_kind(BatchKind::Changed), upgrades));
    out
}

fn chunk(kind: BatchKind, hosts: Vec<String>, size: u32) -> Vec<Batch> {
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
    fn listed_first_then_fleet_order_unknown_reported() {
        let (order, unknown) = order_hosts("c, x ,a,c", &s(&["a", "b", "c", "d"]));
        assert_eq!(order, s(&["c", "a", "b", "d"]));
        assert_eq!(unknown, s(&["x"]));
    }

    #[test]
    fn rechunk_keeps_kinds_and_sizes() {
        let batches = vec![
            Batch { kind: BatchKind::New, hosts: s(&["a", "b"]) },
            Batch { kind: BatchKind::Changed, hosts: s(&["c"]) },
            Batch { kind: BatchKind::Changed, hosts: s(&["d"]) },
        ];
        let out = rechunk(&batches, &s(&["d", "b", "c", "a"]), 0, 1);
        assert_eq!(
            out,
            vec![
                Batch { kind: BatchKind::New, hosts: s(&["b", "a"]) },
                Batch { kind: BatchKind::Changed, hosts: s(&["d"]) },
                Batch { kind: BatchKind::Changed, hosts: s(&["c"]) },
            ]
        );
    }
}
