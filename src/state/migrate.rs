//! Migrations that need code as well as SQL (see [`super::schema::MIGRATIONS`]).

use crate::kv::NamespaceKind;
use crate::kv::derived::is_derived;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::BTreeMap;

/// Schema 1 -> 2: peer keys become derived (`crate::kv::derived`).
///
/// 1. Every job with allocations gets `maand/job/<job> placed_workers` (the list
///    `peer_workers` is now cut from), rebuilt from its live allocation namespaces in
///    `<job>_allocation_index` order — the order the stored `peer_workers` lists had — so
///    readers see the same peer lists right after the migration, before any apply.
/// 2. Every stored `<label>_peers` / `peer_workers` row (latest and history) is deleted.
///
/// Both are one change set: serial + 1 and an audit record, like any other change.
pub(super) fn derive_peer_keys(tx: &Transaction) -> rusqlite::Result<()> {
    let now = crate::clock::now().unwrap_or_default();
    // A state being created runs every migration before its meta record exists: no data.
    let Some(serial) = tx.query_row("SELECT serial FROM meta WHERE id = 1", [], |r| r.get::<_, i64>(0)).optional()?
    else {
        return Ok(());
    };
    let next = serial + 1;
    let writer = "kvform init (schema 2)";

    let mut placed: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    {
        let mut st = tx.prepare(
            "SELECT namespace, key, value FROM latest
              WHERE deleted = 0 AND namespace >= 'maand/job/' AND namespace < 'maand/job0'
                AND key LIKE '%\\_allocation\\_index' ESCAPE '\\'",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (ns, key, value): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if let Some(NamespaceKind::Allocation { job, host }) = NamespaceKind::parse(&ns)
                && key == format!("{job}_allocation_index")
                && let Ok(i) = value.trim().parse::<u64>()
            {
                placed.entry(job).or_default().push((i, host));
            }
        }
    }
    let mut written = 0;
    for (job, mut hosts) in placed {
        hosts.sort();
        let list = hosts.into_iter().map(|(_, h)| h).collect::<Vec<_>>().join(",");
        let ns = NamespaceKind::Job(job).path();
        let job_live: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM latest WHERE namespace = ?1 AND deleted = 0)", [&ns], |r| {
                r.get(0)
            })?;
        if job_live {
            written += tx.execute(
                "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer)
                 VALUES (?1, 'placed_workers', 1, ?2, 0, 0, ?3, ?4, ?5) ON CONFLICT (namespace, key) DO NOTHING",
                params![ns, list, now, next, writer],
            )?;
        }
    }

    let derived: Vec<(String, String)> = {
        let mut st = tx.prepare(
            "SELECT namespace, key FROM latest
              WHERE (namespace >= 'maand/worker/' AND namespace < 'maand/worker0' AND key LIKE '%\\_peers' ESCAPE '\\')
                 OR (namespace >= 'maand/job/' AND namespace < 'maand/job0' AND key = 'peer_workers')",
        )?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .filter(|row| row.as_ref().map_or(true, |(ns, key): &(String, String)| is_derived(ns, key)))
            .collect::<rusqlite::Result<_>>()?
    };
    for (ns, key) in &derived {
        tx.execute("DELETE FROM history WHERE namespace = ?1 AND key = ?2", params![ns, key])?;
        tx.execute("DELETE FROM latest WHERE namespace = ?1 AND key = ?2", params![ns, key])?;
    }

    let removed = derived.len();
    if written > 0 || removed > 0 {
        tx.execute("UPDATE meta SET serial = ?1 WHERE id = 1", [next])?;
        tx.execute(
            "INSERT INTO applies (serial, operation, actor, tool_version, started_at, finished_at, duration_ms,
                                  added, changed, destroyed, removed, resealed, status)
             VALUES (?1, 'init: migrate schema 1 -> 2', ?2, ?3, ?4, ?4, 0, ?5, 0, 0, ?6, 0, 'success')",
            params![next, super::actor(), env!("CARGO_PKG_VERSION"), now, written as i64, removed as i64],
        )?;
    }
    Ok(())
}
