//! Read queries behind `kvform serve`: namespaces with counts, a namespace's keys with their
//! metadata, the rows an apply wrote, apply counts by status. Reads only; they never take
//! the write lock (WAL readers see the last commit).

use super::db::vals;
use super::{StateError, StateStore, sql};
use crate::kv::{Entry, KeyMeta, KvType};
use serde::Serialize;

/// One key of a namespace listing: its latest row and metadata, and how many versions it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    pub key: String,
    pub entry: Entry,
    pub meta: KeyMeta,
    pub versions: u64,
}

/// One version row an apply (a serial) wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialChange {
    pub namespace: String,
    pub key: String,
    pub version: u64,
    pub deleted: bool,
    pub writer: String,
}

impl StateStore {
    /// Live key count per namespace, sorted by namespace.
    pub fn namespace_counts(&self) -> Result<Vec<(String, u64)>, StateError> {
        self.conn()
            .query_map(
                "SELECT namespace, count(*) FROM latest WHERE deleted = 0 GROUP BY namespace ORDER BY namespace",
                &[],
                |r| Ok((r.text(0)?, r.u64(1)?)),
            )
            .map_err(sql(self.path(), "count keys"))
    }

    /// Live keys of `ns` starting with `prefix`, sorted, with metadata.
    pub fn list_keys(&self, ns: &str, prefix: &str) -> Result<Vec<KeyListing>, StateError> {
        self.conn()
            .query_map(
                "SELECT l.value, l.version, l.deleted, l.ttl, l.created_at, l.serial, l.writer, l.key,
                        l.type, l.description, l.key_created_at,
                        1 + (SELECT count(*) FROM history h WHERE h.namespace = l.namespace AND h.key = l.key)
                   FROM latest l WHERE l.namespace = ?1 AND l.deleted = 0 AND substr(l.key, 1, length(CAST(?2 AS TEXT))) = ?2
                  ORDER BY l.key",
                vals![ns, prefix],
                |r| {
                    Ok(KeyListing {
                        key: r.text(7)?,
                        entry: super::entry_from_row(r)?,
                        meta: KeyMeta {
                            kv_type: KvType::parse(r.str(8)?).unwrap_or_default(),
                            description: r.text(9)?,
                            key_created_at: r.i64(10)?,
                        },
                        versions: r.u64(11)?,
                    })
                },
            )
            .map_err(sql(self.path(), "list keys"))
    }

    /// The version rows written at `serial` (still kept), sorted.
    pub fn changes_at(&self, serial: u64) -> Result<Vec<SerialChange>, StateError> {
        self.conn()
            .query_map(
                "SELECT namespace, key, version, deleted, writer FROM latest WHERE serial = ?1
                 UNION ALL SELECT namespace, key, version, deleted, writer FROM history WHERE serial = ?1
                 ORDER BY 1, 2, 3",
                vals![serial as i64],
                |r| {
                    Ok(SerialChange {
                        namespace: r.text(0)?,
                        key: r.text(1)?,
                        version: r.u64(2)?,
                        deleted: r.bool(3)?,
                        writer: r.text(4)?,
                    })
                },
            )
            .map_err(sql(self.path(), "read changes"))
    }

    /// Recorded applies per status, sorted by status.
    pub fn apply_counts(&self) -> Result<Vec<(String, u64)>, StateError> {
        self.conn()
            .query_map("SELECT status, count(*) FROM applies GROUP BY status ORDER BY status", &[], |r| {
                Ok((r.text(0)?, r.u64(1)?))
            })
            .map_err(sql(self.path(), "count applies"))
    }
}
