//! Read queries behind `kvform serve`: namespaces with counts, a namespace's keys with their
//! metadata, the rows an apply wrote, apply counts by status. Reads only; they never take
//! the write lock (WAL readers see the last commit).

use super::backend::vals;
use super::{StateError, StateStore, sql};
use crate::kv::{Entry, KeyMeta, KvType, KvTypes};
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

/// The types of the live keys of the `vars/*` namespaces that are not `string`: what a plan
/// compares with the HCL-typed desired keys (`crate::model::project::types`). Only `vars/*`:
/// no other namespace has typed desired keys, and the plan never writes a key it does not
/// desire. A range over the primary key, so it reads the vars namespaces only.
pub(crate) fn read_var_types(conn: &super::backend::Db, path: &std::path::Path) -> Result<KvTypes, StateError> {
    let mut out = KvTypes::new();
    conn.query(
        "SELECT namespace, key, type FROM latest
          WHERE namespace >= 'vars/' AND namespace < 'vars0' AND deleted = 0 AND type <> 'string'",
        &[],
        |r| {
            let kv_type = KvType::parse(r.str(2)?).unwrap_or_default();
            if !kv_type.is_string() {
                out.entry(r.text(0)?).or_default().insert(r.text(1)?, kv_type);
            }
            Ok(())
        },
    )
    .map_err(sql(path, "read types"))?;
    Ok(out)
}

/// namespace -> key -> (type, description) of the latest rows that are not an undescribed
/// `string` (sparse: most keys are).
pub type MetaMap = std::collections::BTreeMap<String, std::collections::BTreeMap<String, (KvType, String)>>;

/// A derived key as a listing row: a string, created when its source was written, no
/// versions of its own (its history is its source's).
fn derived_listing(key: &str, entry: Entry) -> KeyListing {
    let meta = KeyMeta { kv_type: KvType::String, description: String::new(), key_created_at: entry.created_at };
    KeyListing { key: key.to_string(), entry, meta, versions: 0 }
}

impl StateStore {
    /// Type and description of every latest row that has either (`cat kv`): one scan, where
    /// a `key_meta` per key would be a query per row.
    pub fn key_metadata(&self) -> Result<MetaMap, StateError> {
        let mut out = MetaMap::new();
        self.conn()
            .query(
                "SELECT namespace, key, type, description FROM latest WHERE type <> 'string' OR description <> ''",
                &[],
                |r| {
                    let kv_type = KvType::parse(r.str(2)?).unwrap_or_default();
                    out.entry(r.text(0)?).or_default().insert(r.text(1)?, (kv_type, r.text(3)?));
                    Ok(())
                },
            )
            .map_err(sql(self.path(), "read key metadata"))?;
        Ok(out)
    }

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

    /// The state's serial: one cached statement (a server asks on every answer, for its
    /// `X-Kvform-Index`; `meta()` also parses ids and reads the schema version).
    pub fn serial(&self) -> Result<u64, StateError> {
        self.conn()
            .query_one("SELECT serial FROM meta WHERE id = 1", &[], |r| r.u64(0))
            .map_err(sql(self.path(), "read serial"))
    }

    /// Live keys of `ns` starting with `prefix`, sorted, with metadata; derived keys (peer
    /// lists, never stored) included as readers see them, with no versions of their own.
    /// The version counts come from one grouped scan of the namespace's history, not a
    /// count per key.
    pub fn list_keys(&self, ns: &str, prefix: &str) -> Result<Vec<KeyListing>, StateError> {
        let mut rows = self.listing_rows(
            "SELECT l.value, l.version, l.deleted, l.ttl, l.created_at, l.serial, l.writer, l.key,
                    l.type, l.description, l.key_created_at, 1 + coalesce(h.n, 0)
               FROM latest l
               LEFT JOIN (SELECT key, count(*) AS n FROM history
                           WHERE namespace = ?1 AND substr(key, 1, length(CAST(?2 AS TEXT))) = ?2 GROUP BY key) h
                 ON h.key = l.key
              WHERE l.namespace = ?1 AND l.deleted = 0 AND substr(l.key, 1, length(CAST(?2 AS TEXT))) = ?2
              ORDER BY l.key",
            ns,
            prefix,
        )?;
        // A derived key exists by its anchor key, which a prefix may have filtered out.
        let derived = if prefix.is_empty() {
            self.derived_keys(ns, rows.iter().map(|l| l.key.as_str()))?
        } else {
            let live: Vec<String> = self
                .conn()
                .query_map("SELECT key FROM latest WHERE namespace = ?1 AND deleted = 0", vals![ns], |r| r.text(0))
                .map_err(sql(self.path(), "list keys"))?;
            self.derived_keys(ns, live.iter().map(String::as_str))?
        };
        if derived.iter().any(|l| l.key.starts_with(prefix)) {
            rows.extend(derived.into_iter().filter(|l| l.key.starts_with(prefix)));
            rows.sort_by(|a, b| a.key.cmp(&b.key));
        }
        Ok(rows)
    }

    /// One live key with its metadata (a derived key too), or `None`.
    pub fn key_listing(&self, ns: &str, key: &str) -> Result<Option<KeyListing>, StateError> {
        if crate::kv::derived::derivation(ns, key).is_some() {
            return Ok(self.get(ns, key)?.filter(Entry::is_live).map(|e| derived_listing(key, e)));
        }
        let rows = self.listing_rows(
            "SELECT l.value, l.version, l.deleted, l.ttl, l.created_at, l.serial, l.writer, l.key,
                    l.type, l.description, l.key_created_at,
                    1 + (SELECT count(*) FROM history h WHERE h.namespace = ?1 AND h.key = ?2)
               FROM latest l WHERE l.namespace = ?1 AND l.key = ?2 AND l.deleted = 0",
            ns,
            key,
        )?;
        Ok(rows.into_iter().next())
    }

    /// The derived keys of `ns` given its live keys (the sources are read through the
    /// same connection, so they are consistent with the listing).
    fn derived_keys<'a>(
        &self,
        ns: &str,
        live: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<KeyListing>, StateError> {
        let (conn, path) = (self.conn(), self.path());
        let found = crate::kv::derived::Deriver::new(|n: &str, k: &str| super::read_entry(conn, path, n, k))
            .keys_of(ns, live)?;
        Ok(found.into_iter().map(|(k, e)| derived_listing(&k, e)).collect())
    }

    fn listing_rows(&self, query: &str, ns: &str, arg: &str) -> Result<Vec<KeyListing>, StateError> {
        self.conn()
            .query_map(query, vals![ns, arg], |r| {
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
            })
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
