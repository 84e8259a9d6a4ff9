//! Statements over many rows at once, for what an apply does once per namespace or per key.
//!
//! Why: on SQLite a statement is a function call, on PostgreSQL it is a round trip. A first
//! apply of 5,000 allocations made ~60,000 of them (an insert per key, and a fingerprint
//! write, a liveness check and a fingerprint read per namespace), which was 5x the SQLite
//! apply. Here each such set is one statement on PostgreSQL (arrays through `unnest`), and
//! the same per-row loop as before on SQLite, where a loop is the cheapest form.

use super::backend::{Db, NewRow, vals};
use super::{StateError, sql};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Rows per PostgreSQL statement: large enough that round trips vanish, small enough that
/// one statement's arrays stay a few MiB.
pub(crate) const CHUNK: usize = 5_000;

/// Insert version 1 of each row (`created_at`, `key_created_at` = its `now`, serial
/// `serial`, its type, no description) unless the key has a row; returns the indices of
/// `rows` that were not inserted because the key exists. PostgreSQL only.
pub(crate) fn insert_first(conn: &Db, path: &Path, rows: &[NewRow], serial: i64) -> Result<Vec<usize>, StateError> {
    // The common case, no key exists: COPY, the fastest way in (about half the server time
    // of the INSERT below). A key that exists fails the whole COPY; its savepoint undoes it
    // and the INSERT sorts out which rows were refused.
    let mut data = Vec::with_capacity(rows.iter().map(|r| r.namespace.len() + r.key.len() + r.value.len() + 64).sum());
    for r in rows {
        for field in [r.namespace.as_str(), r.key.as_str(), "1", r.value.as_str(), "0"] {
            copy_field(&mut data, field);
        }
        let numbers = [r.ttl.to_string(), r.now.to_string(), serial.to_string()];
        for field in
            [numbers[0].as_str(), numbers[1].as_str(), numbers[2].as_str(), r.writer.as_str(), r.kv_type.as_str(), ""]
        {
            copy_field(&mut data, field);
        }
        data.extend_from_slice(numbers[1].as_bytes());
        data.push(b'\n');
    }
    conn.batch("SAVEPOINT kvform_bulk_insert").map_err(sql(path, "savepoint"))?;
    match conn.copy_in(
        "COPY latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer, type, description,
                      key_created_at) FROM STDIN",
        &data,
    ) {
        Ok(_) => {
            conn.batch("RELEASE kvform_bulk_insert").map_err(sql(path, "release savepoint"))?;
            return Ok(Vec::new());
        }
        Err(e) if e.is_unique_violation() => {
            conn.batch("ROLLBACK TO kvform_bulk_insert; RELEASE kvform_bulk_insert")
                .map_err(sql(path, "roll back to savepoint"))?;
        }
        Err(e) => return Err(sql(path, "write keys")(e)),
    }
    let mut conflicts = Vec::new();
    for (c, chunk) in rows.chunks(CHUNK).enumerate() {
        let ns: Vec<&str> = chunk.iter().map(|r| r.namespace.as_str()).collect();
        let key: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
        let value: Vec<&str> = chunk.iter().map(|r| r.value.as_str()).collect();
        let ttl: Vec<i64> = chunk.iter().map(|r| r.ttl).collect();
        let writer: Vec<&str> = chunk.iter().map(|r| r.writer.as_str()).collect();
        let now: Vec<i64> = chunk.iter().map(|r| r.now).collect();
        let kv_type: Vec<&str> = chunk.iter().map(|r| r.kv_type.as_str()).collect();
        let mut inserted: HashSet<(String, String)> = HashSet::new();
        let mut n = 0usize;
        conn.query(
            "INSERT INTO latest (namespace, key, version, value, deleted, ttl, created_at, serial, writer,
                                 type, description, key_created_at)
             SELECT r.n, r.k, 1, r.v, 0, r.t, r.c, ?7, r.w, r.y, '', r.c
               FROM unnest(?1::text[], ?2::text[], ?3::text[], ?4::bigint[], ?5::text[], ?6::bigint[], ?8::text[])
                    AS r(n, k, v, t, w, c, y)
             ON CONFLICT (namespace, key) DO NOTHING RETURNING namespace, key",
            vals![
                super::backend::Val::TA(&ns),
                super::backend::Val::TA(&key),
                super::backend::Val::TA(&value),
                super::backend::Val::IA(&ttl),
                super::backend::Val::TA(&writer),
                super::backend::Val::IA(&now),
                serial,
                super::backend::Val::TA(&kv_type)
            ],
            |r| {
                n += 1;
                // Only needed when some row was refused; cheap next to the insert itself.
                inserted.insert((r.text(0)?, r.text(1)?));
                Ok(())
            },
        )
        .map_err(sql(path, "write keys"))?;
        if n < chunk.len() {
            let base = c * CHUNK;
            conflicts.extend(
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !inserted.contains(&(r.namespace.clone(), r.key.clone())))
                    .map(|(i, _)| base + i),
            );
        }
    }
    Ok(conflicts)
}

/// One field of a text-format COPY row and its tab (the caller ends the row).
pub(crate) fn copy_field(out: &mut Vec<u8>, field: &str) {
    for b in field.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    out.push(b'\t');
}

/// `(namespace, key)` -> live value.
pub type LiveValues = HashMap<(String, String), String>;

/// The live values of `keys` (derived keys as readers see them); absent and tombstoned
/// keys are missing.
pub(crate) fn live_values(conn: &Db, path: &Path, keys: &[(String, String)]) -> Result<LiveValues, StateError> {
    let mut out = HashMap::new();
    let (derived, stored): (Vec<_>, Vec<_>) =
        keys.iter().partition(|(ns, key)| crate::kv::derived::derivation(ns, key).is_some());
    let one = |out: &mut LiveValues, ns: &str, key: &str| -> Result<(), StateError> {
        if let Some(e) = super::read_key(conn, path, ns, key)?.filter(|e| e.is_live()) {
            out.insert((ns.to_string(), key.to_string()), e.value);
        }
        Ok(())
    };
    for (ns, key) in derived {
        one(&mut out, ns, key)?;
    }
    if !conn.is_remote() {
        for (ns, key) in stored {
            one(&mut out, ns, key)?;
        }
        return Ok(out);
    }
    let stored: Vec<(&str, &str)> = stored.iter().map(|(n, k)| (n.as_str(), k.as_str())).collect();
    latest_rows(conn, path, &stored, "l.value", |r| {
        if !r.bool(2)? {
            out.insert((r.text(0)?, r.text(1)?), r.text(3)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The latest rows of `keys` (those that exist), PostgreSQL only: `f` gets each row as
/// `namespace, key, deleted, ` then `columns` (of `latest l`), one statement per few
/// thousand keys.
pub(crate) fn latest_rows(
    conn: &Db,
    path: &Path,
    keys: &[(&str, &str)],
    columns: &str,
    mut f: impl FnMut(&super::backend::Row<'_, '_>) -> Result<(), super::backend::DbError>,
) -> Result<(), StateError> {
    let sql_text = format!(
        "SELECT l.namespace, l.key, l.deleted, {columns}
           FROM latest l JOIN unnest(?1::text[], ?2::text[]) AS u(n, k)
             ON l.namespace = u.n COLLATE \"C\" AND l.key = u.k COLLATE \"C\""
    );
    for chunk in keys.chunks(CHUNK) {
        let ns: Vec<&str> = chunk.iter().map(|(n, _)| *n).collect();
        let key: Vec<&str> = chunk.iter().map(|(_, k)| *k).collect();
        conn.query(&sql_text, vals![super::backend::Val::TA(&ns), super::backend::Val::TA(&key)], &mut f)
            .map_err(sql(path, "read keys"))?;
    }
    Ok(())
}
