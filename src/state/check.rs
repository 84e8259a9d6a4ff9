//! `kvform state check`: SQLite's own integrity check plus the state's invariants.
//!
//! Invariants (each violation is reported with the namespace/key it concerns):
//! - exactly one meta record with valid ids; no row has a serial above the state's serial;
//! - per key, versions are consecutive (no gaps) and the `latest` row holds the highest;
//! - per key, serials never decrease as versions grow;
//! - tombstones hold no value and no ttl;
//! - every live value in a `secrets/*` namespace is sealed (no plaintext at rest);
//! - foreign keys hold (no history without a latest row).

use super::backend::{Db, vals};
use super::{StateError, StateStore, read_meta, sql};
use crate::secrets::Keyring;
use std::path::Path;

/// What `state check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub keys: u64,
    pub rows: u64,
    /// Empty when the state is healthy.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `kvform state check`: the state's own integrity check plus the invariants of its rows.
pub fn check(store: &StateStore) -> Result<CheckReport, StateError> {
    check_connection(store.conn(), store.path())
}

/// Problems are collected at most this many per query, so a badly broken file still gives a
/// readable report.
const LIMIT: i64 = 20;

pub(crate) fn check_connection(conn: &Db, path: &Path) -> Result<CheckReport, StateError> {
    let mut report = CheckReport::default();
    let q = |sql_text: &str| -> Result<Vec<String>, StateError> {
        conn.query_map(sql_text, vals![LIMIT], |r| r.text(0)).map_err(sql(path, "check the state"))
    };
    // SQLite's page-level check; PostgreSQL checks its own pages (data checksums, WAL)
    // and keeps no file a flipped byte could reach unnoticed here.
    if let Some(lite) = conn.lite() {
        let integrity: Vec<String> = lite
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(sql(path, "integrity check"))?;
        if integrity != ["ok"] {
            report.problems.extend(integrity.into_iter().map(|p| format!("sqlite integrity: {p}")));
            return Ok(report);
        }
    }
    let meta_rows = conn.query_one("SELECT count(*) FROM meta", &[], |r| r.i64(0)).map_err(sql(path, "check meta"))?;
    if meta_rows != 1 {
        report.problems.push(format!("expected one meta record, found {meta_rows}"));
        return Ok(report);
    }
    let meta = read_meta(conn, path)?;
    (report.keys, report.rows) = conn
        .query_one(
            "SELECT (SELECT count(*) FROM latest), (SELECT count(*) FROM latest) + (SELECT count(*) FROM history)",
            &[],
            |r| Ok((r.u64(0)?, r.u64(1)?)),
        )
        .map_err(sql(path, "count rows"))?;

    report.problems.extend(q(&format!(
        "SELECT namespace || ' ' || key || ' version ' || version || ': serial ' || serial || ' is above the state serial {s}'
           FROM (SELECT namespace, key, version, serial FROM latest UNION ALL SELECT namespace, key, version, serial FROM history) v
          WHERE serial > {s} LIMIT ?1",
        s = meta.serial
    ))?);
    report.problems.extend(q(
        "SELECT l.namespace || ' ' || l.key || ': versions ' || min(h.version) || '..' || l.version || ' have gaps or the latest is not the highest'
           FROM latest l JOIN history h USING (namespace, key)
          GROUP BY l.namespace, l.key, l.version
         HAVING max(h.version) >= l.version OR count(*) != l.version - min(h.version)
          LIMIT ?1",
    )?);
    report.problems.extend(q(
        "SELECT namespace || ' ' || key || ' version ' || version || ': serial ' || serial || ' is below the previous version''s ' || prev
           FROM (SELECT namespace, key, version, serial,
                        lag(serial) OVER (PARTITION BY namespace, key ORDER BY version) AS prev
                   FROM (SELECT namespace, key, version, serial FROM latest
                         UNION ALL SELECT namespace, key, version, serial FROM history) v) w
          WHERE prev > serial LIMIT ?1",
    )?);
    report.problems.extend(q(
        "SELECT namespace || ' ' || key || ' version ' || version || ': a tombstone holds a value or ttl'
           FROM (SELECT namespace, key, version, value, deleted, ttl FROM latest
                 UNION ALL SELECT namespace, key, version, value, deleted, ttl FROM history) v
          WHERE deleted = 1 AND (value != '' OR ttl != 0) LIMIT ?1",
    )?);
    report.problems.extend(q(
        "SELECT 'history row ' || namespace || ' ' || key || ' version ' || version || ' has no latest row'
           FROM history h WHERE NOT EXISTS (SELECT 1 FROM latest l WHERE l.namespace = h.namespace AND l.key = h.key)
          LIMIT ?1",
    )?);
    // Secrets: prove nothing unsealed sits at rest (checked in Rust: the format check is ours).
    conn.query(
        &format!(
            "SELECT namespace, key, version, value FROM latest WHERE {rows} AND deleted = 0
             UNION ALL
             SELECT namespace, key, version, value FROM history WHERE {rows} AND deleted = 0",
            rows = conn.secret_rows()
        ),
        &[],
        |r| {
            if !Keyring::is_sealed(r.str(3)?) {
                let (ns, key, v) = (r.str(0)?, r.str(1)?, r.i64(2)?);
                report.problems.push(format!("{ns} {key} version {v}: a secret is stored unsealed"));
            }
            Ok(())
        },
    )
    .map_err(sql(path, "check secrets"))?;
    Ok(report)
}

/// Key counts of one namespace (`kvform state info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceStats {
    pub namespace: String,
    pub live: u64,
    pub tombstoned: u64,
    /// Rows in history (older versions).
    pub history: u64,
}

/// Per-namespace counts, sorted by namespace.
pub fn namespace_stats(store: &StateStore) -> Result<Vec<NamespaceStats>, StateError> {
    let path = store.path();
    // `count(*) - sum(deleted)`, not `sum(deleted = 0)`: PostgreSQL cannot sum booleans,
    // and its sum of bigints is NUMERIC (hence the casts).
    store
        .conn()
        .query_map(
            "SELECT l.namespace, CAST(count(*) - sum(l.deleted) AS BIGINT), CAST(sum(l.deleted) AS BIGINT),
                    coalesce((SELECT count(*) FROM history h WHERE h.namespace = l.namespace), 0)
               FROM latest l GROUP BY l.namespace ORDER BY l.namespace",
            &[],
            |r| {
                Ok(NamespaceStats { namespace: r.text(0)?, live: r.u64(1)?, tombstoned: r.u64(2)?, history: r.u64(3)? })
            },
        )
        .map_err(sql(path, "count keys"))
}
