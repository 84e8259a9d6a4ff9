//! `kvform gc`: remove rows nobody needs any more, never the latest live version.
//!
//! What goes (SPEC §4, decisions in brackets):
//! - history rows beyond `max_versions` per key (normally already trimmed on write; a lower
//!   `max_versions` in kvform.hcl takes effect here) [and history rows — never a latest row —
//!   older than the retention window];
//! - keys whose latest row is a tombstone older than `retain_days` (all their rows);
//! - the rows of removed allocations: `maand/job/<job>/worker/<host>` namespaces with no
//!   live key [regardless of age: the plan purged them and re-adding an allocation starts a
//!   fresh key history].
//!
//! GC runs inside a [`WriteTxn`]; `--dry-run` is the same work rolled back, so what it
//! prints is exactly what a real run removes.

use super::backend::vals;
use super::{StateError, WriteTxn, sql};
use crate::kv::NamespaceKind;

/// Why rows were removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GcReason {
    /// History beyond `max_versions` or older than the retention window.
    History,
    /// A key tombstoned longer ago than the retention window.
    OldTombstone,
    /// A namespace of an allocation that no longer exists.
    RemovedAllocation,
}

impl GcReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            GcReason::History => "old history",
            GcReason::OldTombstone => "tombstone older than the retention window",
            GcReason::RemovedAllocation => "removed allocation",
        }
    }
}

/// Rows removed from one key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GcItem {
    pub namespace: String,
    pub key: String,
    pub reason: GcReason,
    pub rows: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Sorted by namespace, key.
    pub items: Vec<GcItem>,
}

impl GcReport {
    pub fn rows(&self) -> u64 {
        self.items.iter().map(|i| i.rows).sum()
    }
}

impl WriteTxn {
    /// Remove what GC removes (see the module docs). `retain_days` is the retention window.
    pub fn gc(&mut self, retain_days: u64, now: i64) -> Result<GcReport, StateError> {
        let cutoff = now.saturating_sub((retain_days as i64).saturating_mul(86_400));
        let max = self.max_versions() as i64;
        let path = self.path().to_path_buf();
        let conn = self.conn();
        let mut items = Vec::new();

        // Removed allocations first, so their rows are not also counted as history.
        let dead_allocs: Vec<String> = conn
            .query_map(
                "SELECT namespace FROM latest WHERE namespace LIKE 'maand/job/%/worker/%'
                  GROUP BY namespace HAVING max(1 - deleted) = 0 ORDER BY namespace",
                &[],
                |r| r.text(0),
            )
            .map_err(sql(&path, "find removed allocations"))?;
        for ns in
            dead_allocs.iter().filter(|ns| matches!(NamespaceKind::parse(ns), Some(NamespaceKind::Allocation { .. })))
        {
            let rows = conn
                .query_map(
                    "SELECT l.key, 1 + (SELECT count(*) FROM history h WHERE h.namespace = l.namespace AND h.key = l.key)
                       FROM latest l WHERE l.namespace = ?1 ORDER BY l.key",
                    vals![ns],
                    |r| Ok((r.text(0)?, r.u64(1)?)),
                )
                .map_err(sql(&path, "list removed allocation"))?;
            for (key, n) in rows {
                items.push(GcItem { namespace: ns.clone(), key, reason: GcReason::RemovedAllocation, rows: n });
            }
            // ON DELETE CASCADE removes the history rows.
            conn.execute("DELETE FROM latest WHERE namespace = ?1", vals![ns])
                .map_err(sql(&path, "remove allocation"))?;
        }

        // Keys tombstoned before the cutoff.
        let old = conn
            .query_map(
                "SELECT l.namespace, l.key, 1 + (SELECT count(*) FROM history h WHERE h.namespace = l.namespace AND h.key = l.key)
                   FROM latest l WHERE l.deleted = 1 AND l.created_at < ?1 ORDER BY l.namespace, l.key",
                vals![cutoff],
                |r| Ok((r.text(0)?, r.text(1)?, r.u64(2)?)),
            )
            .map_err(sql(&path, "find old tombstones"))?;
        for (ns, key, n) in old {
            conn.execute("DELETE FROM latest WHERE namespace = ?1 AND key = ?2", vals![&ns, &key])
                .map_err(sql(&path, "remove tombstoned key"))?;
            items.push(GcItem { namespace: ns, key, reason: GcReason::OldTombstone, rows: n });
        }

        // History beyond max_versions or older than the cutoff (never a latest row: those
        // live in `latest`).
        let hist = conn
            .query_map(
                "SELECT h.namespace, h.key, count(*) FROM history h JOIN latest l USING (namespace, key)
                  WHERE h.version <= l.version - ?1 OR h.created_at < ?2
                  GROUP BY h.namespace, h.key ORDER BY h.namespace, h.key",
                vals![max, cutoff],
                |r| Ok((r.text(0)?, r.text(1)?, r.u64(2)?)),
            )
            .map_err(sql(&path, "find old history"))?;
        conn.execute(
            "DELETE FROM history WHERE created_at < ?2 OR version <= (SELECT l.version FROM latest l
               WHERE l.namespace = history.namespace AND l.key = history.key) - ?1",
            vals![max, cutoff],
        )
        .map_err(sql(&path, "remove old history"))?;
        for (ns, key, n) in hist {
            items.push(GcItem { namespace: ns, key, reason: GcReason::History, rows: n });
        }

        items.sort();
        let report = GcReport { items };
        self.counts.removed += report.rows();
        Ok(report)
    }
}
