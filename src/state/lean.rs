//! The two scans behind a plan on a large state (see `crate::kv::current`), in one read
//! transaction so both see the same state ([`read_for_plan`]):
//!
//! 1. [`read_lean_snapshot`]: every latest row without its value (except `maand/bucket`,
//!    whose port numbers the model needs before it can build the desired state).
//! 2. [`compare_values`]: every live value that is not encrypted (`secrets/*`, certificates'
//!    private keys), compared in place (borrowed
//!    from SQLite, never copied) with the desired value of its key; only values that differ,
//!    or whose key is not desired, are copied into the snapshot.

use super::{StateError, read_meta, sql};
use crate::kv::{KvMap, LeanEntry, LeanSnapshot, LeanValue};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;

/// Scan the rows (1), build the desired state from them (`desire`), compare the values (2):
/// returns the lean snapshot and the desired state. `own_txn`: wrap the scans in a read
/// transaction (false when the connection is already inside one, as a `WriteTxn` is).
pub(crate) fn read_for_plan<D, E: From<StateError>>(
    conn: &Connection,
    path: &Path,
    own_txn: bool,
    desire: impl FnOnce(&LeanSnapshot) -> Result<D, E>,
    kv: impl FnOnce(&D) -> &KvMap,
) -> Result<(LeanSnapshot, D), E> {
    if own_txn {
        conn.execute_batch("BEGIN").map_err(sql(path, "begin reading"))?;
    }
    let out = (|| {
        let mut snap = read_lean_snapshot(conn, path)?;
        let desired = desire(&snap)?;
        compare_values(conn, path, &mut snap, kv(&desired))?;
        Ok((snap, desired))
    })();
    if own_txn {
        // Nothing was written: ending the read transaction either way is the same.
        let ended = conn.execute_batch("COMMIT").map_err(sql(path, "end reading"));
        if out.is_ok() {
            ended?;
        }
    }
    out
}

pub(crate) fn read_lean_snapshot(conn: &Connection, path: &Path) -> Result<LeanSnapshot, StateError> {
    let meta = read_meta(conn, path)?;
    let err = || sql(path, "read snapshot");
    let mut entries: BTreeMap<String, BTreeMap<String, LeanEntry>> = BTreeMap::new();
    let mut st = conn
        .prepare_cached(
            "SELECT namespace, key, deleted, ttl, created_at,
                    CASE WHEN namespace = 'maand/bucket' AND deleted = 0 THEN value END
               FROM latest ORDER BY namespace, key",
        )
        .map_err(err())?;
    let mut rows = st.query([]).map_err(err())?;
    // Rows arrive sorted by (namespace, key): fill one namespace's map at a time.
    let mut current: Option<(String, BTreeMap<String, LeanEntry>)> = None;
    while let Some(r) = rows.next().map_err(err())? {
        let ns = r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(err())?;
        if current.as_ref().is_none_or(|(cur, _)| cur != ns)
            && let Some((done, map)) = current.replace((ns.to_string(), BTreeMap::new()))
        {
            entries.insert(done, map);
        }
        let key: String = r.get(1).map_err(err())?;
        let value = match r.get::<_, Option<String>>(5).map_err(err())? {
            Some(v) => LeanValue::Stored(v.trim().to_string()),
            None => LeanValue::NotRead,
        };
        let entry = LeanEntry {
            deleted: r.get(2).map_err(err())?,
            ttl: r.get::<_, i64>(3).map_err(err())? as u64,
            created_at: r.get(4).map_err(err())?,
            value,
        };
        if let Some((_, map)) = current.as_mut() {
            map.insert(key, entry);
        }
    }
    if let Some((done, map)) = current {
        entries.insert(done, map);
    }
    Ok(LeanSnapshot { bucket_id: meta.bucket_id, lineage: meta.lineage, serial: meta.serial, entries })
}

fn compare_values(conn: &Connection, path: &Path, snap: &mut LeanSnapshot, desired: &KvMap) -> Result<(), StateError> {
    let err = || sql(path, "compare values");
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT namespace, key, value FROM latest WHERE deleted = 0 AND NOT {} ORDER BY namespace, key",
            super::SECRET_ROWS
        ))
        .map_err(err())?;
    let mut rows = st.query([]).map_err(err())?;
    let no_values = BTreeMap::new();
    // The maps of the namespace the rows are in (rows arrive sorted by namespace).
    let mut ns_now = String::new();
    let mut lean: Option<&mut BTreeMap<String, LeanEntry>> = None;
    let mut want = &no_values;
    while let Some(r) = rows.next().map_err(err())? {
        let ns = r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(err())?;
        if ns != ns_now {
            ns_now.clear();
            ns_now.push_str(ns);
            lean = snap.entries.get_mut(ns);
            want = desired.get(ns).unwrap_or(&no_values);
        }
        let key = r.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(err())?;
        let value = r.get_ref(2).and_then(|v| Ok(v.as_str()?)).map_err(err())?;
        // Both scans run in one transaction, so every row here was in the first scan.
        let Some(entry) = lean.as_deref_mut().and_then(|m| m.get_mut(key)) else { continue };
        entry.value = match want.get(key) {
            Some(w) if w.eq_trimmed(value) => LeanValue::SameAsDesired,
            _ => LeanValue::Stored(value.trim().to_string()),
        };
    }
    Ok(())
}
