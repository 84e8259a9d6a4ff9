//! The rows of the `fingerprints` table (`super::fingerprint` says what they mean): one
//! at a time, and many at once where a statement is a round trip (`unnest` arrays and COPY,
//! as in `super::bulk`).

use super::backend::{Db, Val, vals};
use super::bulk::{CHUNK, copy_field};
use super::{StateError, sql};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A namespace's fingerprint as stored (see `super::fingerprint::digest`).
pub type Digest = [u8; 16];

pub(crate) fn read_row(conn: &Db, path: &Path, ns: &str) -> Result<Option<Digest>, StateError> {
    let blob = conn
        .query_opt("SELECT digest FROM fingerprints WHERE namespace = ?1", vals![ns], |r| Ok(r.bytes(0)?.to_vec()))
        .map_err(sql(path, "read fingerprint"))?;
    Ok(blob.and_then(|b| b.try_into().ok()))
}

/// Whether a namespace has a live key.
pub(crate) fn is_live(conn: &Db, path: &Path, ns: &str) -> Result<bool, StateError> {
    conn.query_one("SELECT EXISTS (SELECT 1 FROM latest WHERE namespace = ?1 AND deleted = 0)", vals![ns], |r| {
        r.bool(0)
    })
    .map_err(sql(path, "read namespace"))
}

pub(crate) fn put_row(conn: &Db, path: &Path, ns: &str, d: &Digest) -> Result<(), StateError> {
    conn.execute(
        "INSERT INTO fingerprints (namespace, digest) VALUES (?1, ?2)
         ON CONFLICT (namespace) DO UPDATE SET digest = excluded.digest",
        vals![ns, &d[..]],
    )
    .map_err(sql(path, "write fingerprint"))?;
    Ok(())
}

pub(crate) fn delete_row(conn: &Db, path: &Path, ns: &str) -> Result<(), StateError> {
    conn.execute("DELETE FROM fingerprints WHERE namespace = ?1", vals![ns]).map_err(sql(path, "drop fingerprint"))?;
    Ok(())
}

/// Insert fingerprint rows of namespaces that have none (COPY on PostgreSQL).
pub(crate) fn insert_fingerprints(conn: &Db, path: &Path, rows: &[(&str, &Digest)]) -> Result<(), StateError> {
    if !conn.is_remote() || rows.is_empty() {
        return put_fingerprints(conn, path, rows);
    }
    let mut data = Vec::with_capacity(rows.iter().map(|(n, _)| n.len() + 40).sum());
    for (ns, d) in rows {
        copy_field(&mut data, ns);
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        copy_field(&mut data, &format!("\\x{hex}"));
        data.pop();
        data.push(b'\n');
    }
    conn.copy_in("COPY fingerprints (namespace, digest) FROM STDIN", &data).map_err(sql(path, "write fingerprints"))?;
    Ok(())
}

/// Write (insert or replace) fingerprint rows.
pub(crate) fn put_fingerprints(conn: &Db, path: &Path, rows: &[(&str, &Digest)]) -> Result<(), StateError> {
    if !conn.is_remote() {
        for (ns, d) in rows {
            put_row(conn, path, ns, d)?;
        }
        return Ok(());
    }
    for chunk in rows.chunks(CHUNK) {
        let ns: Vec<&str> = chunk.iter().map(|(n, _)| *n).collect();
        let digest: Vec<&[u8]> = chunk.iter().map(|(_, d)| &d[..]).collect();
        conn.execute(
            "INSERT INTO fingerprints (namespace, digest) SELECT * FROM unnest(?1::text[], ?2::bytea[])
             ON CONFLICT (namespace) DO UPDATE SET digest = excluded.digest",
            vals![Val::TA(&ns), Val::BA(&digest)],
        )
        .map_err(sql(path, "write fingerprints"))?;
    }
    Ok(())
}

/// Drop fingerprint rows.
pub(crate) fn delete_fingerprints(conn: &Db, path: &Path, namespaces: &[&str]) -> Result<(), StateError> {
    if !conn.is_remote() {
        for ns in namespaces {
            delete_row(conn, path, ns)?;
        }
        return Ok(());
    }
    for chunk in namespaces.chunks(CHUNK) {
        conn.execute(
            "DELETE FROM fingerprints f USING unnest(?1::text[]) AS u(n) WHERE f.namespace = u.n COLLATE \"C\"",
            vals![Val::TA(chunk)],
        )
        .map_err(sql(path, "drop fingerprints"))?;
    }
    Ok(())
}

/// The fingerprint rows of `namespaces` that exist.
pub(crate) fn read_fingerprints(
    conn: &Db,
    path: &Path,
    namespaces: &[&str],
) -> Result<HashMap<String, Digest>, StateError> {
    let mut out = HashMap::new();
    if !conn.is_remote() {
        for ns in namespaces {
            if let Some(d) = read_row(conn, path, ns)? {
                out.insert(ns.to_string(), d);
            }
        }
        return Ok(out);
    }
    for chunk in namespaces.chunks(CHUNK) {
        conn.query(
            "SELECT f.namespace, f.digest FROM fingerprints f JOIN unnest(?1::text[]) AS u(n)
                ON f.namespace = u.n COLLATE \"C\"",
            vals![Val::TA(chunk)],
            |r| {
                // A row of another length is no fingerprint (as `read_row` reads it).
                if let Ok(d) = r.bytes(1)?.try_into() {
                    out.insert(r.text(0)?, d);
                }
                Ok(())
            },
        )
        .map_err(sql(path, "read fingerprints"))?;
    }
    Ok(out)
}

/// Which of `namespaces` have a live key.
pub(crate) fn live_namespaces(conn: &Db, path: &Path, namespaces: &[&str]) -> Result<HashSet<String>, StateError> {
    let mut out = HashSet::new();
    if !conn.is_remote() {
        for ns in namespaces {
            if is_live(conn, path, ns)? {
                out.insert(ns.to_string());
            }
        }
        return Ok(out);
    }
    for chunk in namespaces.chunks(CHUNK) {
        conn.query(
            "SELECT u.n FROM unnest(?1::text[]) AS u(n)
              WHERE EXISTS (SELECT 1 FROM latest WHERE namespace = u.n COLLATE \"C\" AND deleted = 0)",
            vals![Val::TA(chunk)],
            |r| {
                out.insert(r.text(0)?);
                Ok(())
            },
        )
        .map_err(sql(path, "read namespaces"))?;
    }
    Ok(out)
}
