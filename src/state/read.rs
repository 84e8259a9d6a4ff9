//! The reads of the state, written once over a connection: a [`StateStore`] reads through
//! them, and so does a [`WriteTxn`] (after sending what its sink held back).

use super::*;

pub(crate) fn read_meta(conn: &Db, path: &Path) -> Result<Meta, StateError> {
    let row = conn
        .query_opt("SELECT bucket_id, lineage, serial FROM meta WHERE id = 1", &[], |r| {
            Ok((r.text(0)?, r.text(1)?, r.i64(2)?))
        })
        .map_err(sql(path, "read meta"))?;
    let (b, l, serial) =
        row.ok_or_else(|| StateError::NotAState { path: path.into(), reason: "the meta record is missing".into() })?;
    let uuid = |s: &str| {
        Uuid::parse_str(s).map_err(|_| StateError::NotAState {
            path: path.into(),
            reason: format!("bad id {s:?} in the meta record"),
        })
    };
    let schema_version = conn.schema_version().map_err(sql(path, "read schema version"))?;
    Ok(Meta { bucket_id: uuid(&b)?, lineage: uuid(&l)?, serial: serial as u64, schema_version })
}

/// [`read_entry`], or the derived entry of a derived key.
pub(crate) fn read_key(conn: &Db, path: &Path, ns: &str, key: &str) -> Result<Option<Entry>, StateError> {
    match crate::kv::derived::derivation(ns, key) {
        Some(d) => crate::kv::derived::Deriver::new(|n: &str, k: &str| read_entry(conn, path, n, k)).get(ns, &d),
        None => read_entry(conn, path, ns, key),
    }
}

pub(crate) fn read_entry(conn: &Db, path: &Path, ns: &str, key: &str) -> Result<Option<Entry>, StateError> {
    conn.query_opt(
        "SELECT value, version, deleted, ttl, created_at, serial, writer FROM latest WHERE namespace = ?1 AND key = ?2",
        vals![ns, key],
        entry_from_row,
    )
    .map_err(sql(path, "read key"))
}

pub(crate) fn read_key_meta(
    conn: &Db,
    path: &Path,
    ns: &str,
    key: &str,
) -> Result<Option<crate::kv::KeyMeta>, StateError> {
    conn.query_opt(
        "SELECT type, description, key_created_at FROM latest WHERE namespace = ?1 AND key = ?2",
        vals![ns, key],
        |r| {
            Ok(crate::kv::KeyMeta {
                kv_type: crate::kv::KvType::parse(r.str(0)?).unwrap_or_default(),
                description: r.text(1)?,
                key_created_at: r.i64(2)?,
            })
        },
    )
    .map_err(sql(path, "read key"))
}

/// Columns 0-6: value, version, deleted, ttl, created_at, serial, writer.
pub(crate) fn entry_from_row(r: &backend::Row<'_, '_>) -> Result<Entry, DbError> {
    Ok(Entry {
        value: r.text(0)?,
        version: r.u64(1)?,
        deleted: r.bool(2)?,
        ttl: r.u64(3)?,
        created_at: r.i64(4)?,
        serial: r.u64(5)?,
        writer: r.text(6)?,
    })
}

pub(crate) fn read_snapshot(conn: &Db, path: &Path) -> Result<Snapshot, StateError> {
    let meta = read_meta(conn, path)?;
    let mut entries: BTreeMap<String, BTreeMap<String, Entry>> = BTreeMap::new();
    // Rows arrive sorted by (namespace, key): fill one namespace's map at a time, allocating
    // each namespace string once.
    let mut current: Option<(String, BTreeMap<String, Entry>)> = None;
    conn.query(
        "SELECT value, version, deleted, ttl, created_at, serial, writer, namespace, key FROM latest
          ORDER BY namespace, key",
        &[],
        |r| {
            let ns = r.str(7)?;
            if current.as_ref().is_none_or(|(cur, _)| cur != ns)
                && let Some((done, map)) = current.replace((ns.to_string(), BTreeMap::new()))
            {
                entries.insert(done, map);
            }
            let key = r.text(8)?;
            let entry = entry_from_row(r)?;
            if let Some((_, map)) = current.as_mut() {
                map.insert(key, entry);
            }
            Ok(())
        },
    )
    .map_err(sql(path, "read snapshot"))?;
    if let Some((done, map)) = current {
        entries.insert(done, map);
    }
    let purged_jobs = read_purged_jobs(conn, path)?;
    let types = listing::read_var_types(conn, path)?;
    Ok(Snapshot { bucket_id: meta.bucket_id, lineage: meta.lineage, serial: meta.serial, entries, purged_jobs, types })
}

/// The jobs recorded as purged (table `purged_jobs`, schema 2).
pub(crate) fn read_purged_jobs(conn: &Db, path: &Path) -> Result<BTreeSet<String>, StateError> {
    let mut out = BTreeSet::new();
    conn.query("SELECT job FROM purged_jobs ORDER BY job", &[], |r| {
        out.insert(r.text(0)?);
        Ok(())
    })
    .map_err(sql(path, "read purged jobs"))?;
    Ok(out)
}

/// Live keys of a namespace, derived keys included, sorted (one indexed query, not a
/// snapshot of the whole state).
pub(crate) fn live_keys(conn: &Db, path: &Path, ns: &str) -> Result<Vec<String>, StateError> {
    let mut keys = conn
        .query_map("SELECT key FROM latest WHERE namespace = ?1 AND deleted = 0 ORDER BY key", vals![ns], |r| r.text(0))
        .map_err(sql(path, "list keys"))?;
    let derived = crate::kv::derived::Deriver::new(|n: &str, k: &str| read_entry(conn, path, n, k))
        .keys_of(ns, keys.iter().map(String::as_str))?;
    if !derived.is_empty() {
        keys.extend(derived.into_iter().map(|(k, _)| k));
        keys.sort();
    }
    Ok(keys)
}

/// Checks on namespace and key strings the store itself enforces (cheap, per write): not
/// empty, no surrounding whitespace, no control characters.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), StateError> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.trim() != value {
        "it has leading or trailing whitespace"
    } else if value.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(StateError::Invalid { what, value: value.to_string(), reason })
}

/// Every kept version of a key (history rows, then the latest row), by version.
pub(crate) fn read_history(conn: &Db, path: &Path, ns: &str, key: &str) -> Result<Vec<VersionRow>, StateError> {
    conn.query_map(
        "SELECT version, value, deleted, ttl, created_at, serial, writer, type, description FROM history
                   WHERE namespace = ?1 AND key = ?2
                 UNION ALL
                 SELECT version, value, deleted, ttl, created_at, serial, writer, type, description FROM latest
                   WHERE namespace = ?1 AND key = ?2
                 ORDER BY version",
        vals![ns, key],
        |r| {
            Ok(VersionRow {
                namespace: ns.to_string(),
                key: key.to_string(),
                version: r.u64(0)?,
                value: r.text(1)?,
                deleted: r.bool(2)?,
                ttl: r.u64(3)?,
                created_at: r.i64(4)?,
                serial: r.u64(5)?,
                writer: r.text(6)?,
                kv_type: crate::kv::KvType::parse(r.str(7)?).unwrap_or_default(),
                description: r.text(8)?,
            })
        },
    )
    .map_err(sql(path, "read history"))
}
