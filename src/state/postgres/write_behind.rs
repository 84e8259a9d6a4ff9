//! PostgreSQL's [`RowSink`]: the write-behind of a write transaction. Every statement is a
//! round trip there, so first versions of keys (`Write::expect_new`), fingerprint rows and
//! savepoints are held back here and handed to the transaction to send in bulk
//! ([`RowSink::drain`]) when anything after them has to reach the server: a job that only
//! creates keys costs no round trip of its own, and its rows travel in the same COPY as
//! the jobs' around it.
//!
//! What is held back, and what the transaction sends meanwhile, never disagree: every
//! read or write of the transaction other than a held-back first version flushes first.

use crate::state::backend::{Db, DbError, Held, NewRow, NextVersion, RowSink, vals};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Held-back first versions are sent when this many have gathered (or this many bytes of
/// values), so a first apply's memory does not grow with the whole state.
const PENDING_ROWS: usize = 10_000;
const PENDING_BYTES: usize = 16 << 20;

type Digest = [u8; 16];

#[derive(Default)]
pub(crate) struct WriteBehind {
    /// First versions (`Write::expect_new`), in order …
    pending: Vec<NewRow>,
    /// Where each held-back key is in `pending`.
    pending_keys: HashMap<(String, String), usize>,
    pending_bytes: usize,
    /// … and fingerprint rows, the last one per namespace.
    fp_pending: BTreeMap<String, Digest>,
    /// After a full plan emptied the fingerprints table: the rows this transaction may
    /// have written since (a rollback can undo some; they stay listed). Every other row is
    /// known absent and goes in by COPY, not by upsert.
    fp_may_exist: Option<HashSet<String>>,
    /// Namespaces with a key written (or sent) in this transaction: a first version there
    /// is written at once, so its outcome is exact where a key may already exist.
    touched_ns: HashSet<String>,
    /// The held-back savepoints, oldest first (always the newest savepoints of the
    /// transaction: a flush sends them all).
    savepoints: Vec<HeldSavepoint>,
}

/// What came before a held-back savepoint and is held back too.
struct HeldSavepoint {
    /// `pending[..mark]` was written before the savepoint.
    mark: usize,
    /// The fingerprint rows held back before it (`fp_pending` then holds only later ones).
    fp_before: BTreeMap<String, Digest>,
}

impl RowSink for WriteBehind {
    /// One round trip instead of three: the statements of one WITH see the same snapshot,
    /// so the history row is the latest as it was, and the trim cannot see that row (with
    /// max_versions = 1 it is not moved at all).
    fn append(&mut self, c: &Db, v: &NextVersion<'_>) -> Result<(), DbError> {
        let move_old = if v.max_versions > 1 {
            "moved AS (INSERT INTO history (namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                                           type, description, key_created_at)
                       SELECT namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                              type, description, key_created_at FROM latest
                        WHERE namespace = ?1 AND key = ?2),"
        } else {
            ""
        };
        let keep_from = v.version - v.max_versions as i64 + 1;
        c.execute(
            &format!(
                "WITH {move_old}
                      trimmed AS (DELETE FROM history WHERE namespace = ?1 AND key = ?2 AND version < ?12)
                 UPDATE latest SET version = ?3, value = ?4, deleted = ?5, ttl = ?6, created_at = ?7, serial = ?8,
                                   writer = ?9, type = ?10, description = ?11
                  WHERE namespace = ?1 AND key = ?2"
            ),
            vals![
                v.ns,
                v.key,
                v.version,
                v.stored,
                v.deleted,
                v.ttl,
                v.now,
                v.serial,
                v.writer,
                v.kv_type,
                v.description,
                keep_from
            ],
        )?;
        Ok(())
    }

    fn reads_ahead(&self) -> bool {
        true
    }

    /// In a namespace this transaction has not written yet, the caller's "no row" holds
    /// unless the key existed before the transaction: then the flush writes it as `put`
    /// does and the audit counts say so.
    fn would_hold(&self, ns: &str, key: &str) -> bool {
        !self.touched_ns.contains(ns) && self.held_row(ns, key).is_none()
    }

    fn hold(&mut self, row: NewRow) {
        self.pending_bytes += row.namespace.len() + row.key.len() + row.value.len();
        self.pending_keys.insert((row.namespace.clone(), row.key.clone()), self.pending.len());
        self.pending.push(row);
    }

    fn held_row(&self, ns: &str, key: &str) -> Option<&NewRow> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending_keys.get(&(ns.to_string(), key.to_string())).map(|&i| &self.pending[i])
    }

    fn touch(&mut self, ns: &str) {
        if !self.touched_ns.contains(ns) {
            self.touched_ns.insert(ns.to_string());
        }
    }

    fn full(&self) -> bool {
        self.pending.len() >= PENDING_ROWS || self.pending_bytes >= PENDING_BYTES
    }

    fn hold_fingerprint(&mut self, ns: &str, digest: &Digest) -> bool {
        self.fp_pending.insert(ns.to_string(), *digest);
        true
    }

    fn fingerprint_may_exist(&mut self, ns: &str) -> bool {
        match self.fp_may_exist.as_mut() {
            None => true,
            Some(sent) if sent.contains(ns) => true,
            Some(sent) => {
                sent.insert(ns.to_string());
                false
            }
        }
    }

    fn fingerprints_emptied(&mut self) {
        self.fp_may_exist = Some(HashSet::new());
    }

    fn bulk_fingerprints(&self) -> bool {
        true
    }

    fn hold_savepoint(&mut self) -> bool {
        let fp_before = std::mem::take(&mut self.fp_pending);
        self.savepoints.push(HeldSavepoint { mark: self.pending.len(), fp_before });
        true
    }

    fn release_held(&mut self, n: usize) {
        let released = self.savepoints.split_off(self.savepoints.len() - n);
        let mut fps = BTreeMap::new();
        for held in released {
            fps.extend(held.fp_before);
        }
        fps.extend(std::mem::take(&mut self.fp_pending));
        self.fp_pending = fps;
    }

    fn rollback_held(&mut self, n: usize) {
        let mut undone = self.savepoints.split_off(self.savepoints.len() - n);
        let held = undone.swap_remove(0);
        self.pending.truncate(held.mark);
        self.pending_keys =
            self.pending.iter().enumerate().map(|(i, r)| ((r.namespace.clone(), r.key.clone()), i)).collect();
        self.pending_bytes = self.pending.iter().map(|r| r.namespace.len() + r.key.len() + r.value.len()).sum();
        self.fp_pending = held.fp_before;
    }

    fn discard(&mut self) {
        self.pending.clear();
        self.pending_keys.clear();
        self.pending_bytes = 0;
        self.fp_pending.clear();
        self.savepoints.clear();
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.fp_pending.is_empty() && self.savepoints.is_empty()
    }

    fn drain(&mut self) -> Vec<Held> {
        let rows = std::mem::take(&mut self.pending);
        self.pending_keys.clear();
        self.pending_bytes = 0;
        let mut out = Vec::with_capacity(3 * self.savepoints.len() + 2);
        let (mut rows, mut from) = (rows.into_iter(), 0);
        for held in std::mem::take(&mut self.savepoints) {
            out.push(Held::Rows(rows.by_ref().take(held.mark - from).collect()));
            from = held.mark;
            out.push(Held::Fingerprints(held.fp_before));
            out.push(Held::Savepoint);
        }
        out.push(Held::Rows(rows.collect()));
        out.push(Held::Fingerprints(std::mem::take(&mut self.fp_pending)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ns: &str, key: &str) -> NewRow {
        NewRow {
            namespace: ns.into(),
            key: key.into(),
            value: "v".into(),
            ttl: 0,
            writer: "w".into(),
            now: 0,
            kv_type: crate::kv::KvType::String,
        }
    }

    /// What a drain sends, as text: `r:KEYS`, `f:NAMESPACES`, `sp`.
    fn sent(w: &mut WriteBehind) -> Vec<String> {
        w.drain()
            .into_iter()
            .filter_map(|h| match h {
                Held::Rows(rows) if rows.is_empty() => None,
                Held::Rows(rows) => Some(format!("r:{}", rows.iter().map(|r| r.key.as_str()).collect::<String>())),
                Held::Fingerprints(f) if f.is_empty() => None,
                Held::Fingerprints(f) => Some(format!("f:{}", f.keys().cloned().collect::<String>())),
                Held::Savepoint => Some("sp".into()),
            })
            .collect()
    }

    #[test]
    fn held_writes_and_savepoints_are_sent_in_the_order_they_were_made() {
        let mut w = WriteBehind::default();
        assert!(w.would_hold("a", "1"));
        w.hold(row("a", "1"));
        assert!(!w.would_hold("a", "1"), "a held key is written as put writes it");
        assert!(w.hold_fingerprint("a", &[1; 16]));
        assert!(w.hold_savepoint());
        w.hold(row("b", "2"));
        assert!(w.hold_fingerprint("b", &[2; 16]));
        assert!(w.hold_savepoint());
        w.hold(row("c", "3"));
        assert_eq!(w.held_row("b", "2").map(|r| r.key.as_str()), Some("2"));
        assert_eq!(sent(&mut w), ["r:1", "f:a", "sp", "r:2", "f:b", "sp", "r:3"]);
        assert!(w.is_empty() && w.held_row("a", "1").is_none());
    }

    #[test]
    fn a_rollback_drops_what_was_held_since_its_savepoint_and_a_release_keeps_it() {
        let mut w = WriteBehind::default();
        w.hold(row("a", "1"));
        w.hold_fingerprint("a", &[1; 16]);
        w.hold_savepoint();
        w.hold(row("b", "2"));
        w.hold_fingerprint("b", &[2; 16]);
        w.hold_savepoint();
        w.hold(row("c", "3"));
        w.rollback_held(2);
        assert!(w.held_row("b", "2").is_none() && w.held_row("c", "3").is_none());
        assert_eq!(sent(&mut w), ["r:1", "f:a"]);

        w.hold(row("a", "1"));
        w.hold_savepoint();
        w.hold(row("b", "2"));
        w.hold_fingerprint("b", &[2; 16]);
        w.release_held(1);
        assert_eq!(sent(&mut w), ["r:12", "f:b"]);
    }

    #[test]
    fn a_namespace_written_at_once_is_not_held_back_and_fingerprints_after_a_reset_are_new() {
        let mut w = WriteBehind::default();
        w.touch("a");
        assert!(!w.would_hold("a", "1") && w.would_hold("b", "1"));
        assert!(w.fingerprint_may_exist("a"), "without a reset every row may exist");
        w.fingerprints_emptied();
        assert!(!w.fingerprint_may_exist("a"), "emptied: absent");
        assert!(w.fingerprint_may_exist("a"), "written since");
    }
}
