//! Copying a whole state between backends (`state migrate`, `state backup` of a PostgreSQL
//! state): every table row for row, then a row count and a digest over each table on both
//! sides, so a copy that lost or changed anything is refused before it is used.

use super::backend::{Db, DbError, Val};
use super::{StateError, StateStore, sql};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Column kinds: `i` integer, `t` text, `b` bytes; upper case: nullable.
struct Table {
    name: &'static str,
    columns: &'static str,
    kinds: &'static str,
    /// A total order of the rows (for the digest).
    order: &'static str,
}

/// Every table of schema 5 but `meta` (copied as one record) and PostgreSQL's `live_lock`
/// (the lock being held now, not state).
const TABLES: &[Table] = &[
    Table {
        name: "latest",
        columns: "namespace, key, version, deleted, ttl, created_at, serial, writer, type, description, key_created_at, value",
        kinds: "ttiiiiitttit",
        order: "namespace, key",
    },
    Table {
        name: "history",
        columns: "namespace, key, version, deleted, ttl, created_at, serial, writer, type, description, key_created_at, value",
        kinds: "ttiiiiitttit",
        order: "namespace, key, version",
    },
    Table {
        name: "applies",
        columns: "id, serial, operation, actor, tool_version, started_at, finished_at, duration_ms, added, changed, destroyed, removed, resealed, status",
        kinds: "iitttiiiiiiiit",
        order: "id",
    },
    Table { name: "lock", columns: "id, lock_id, actor, pid, operation, since", kinds: "ittiti", order: "id" },
    Table { name: "fingerprints", columns: "namespace, digest", kinds: "tb", order: "namespace" },
    Table {
        name: "plan_base",
        columns: "id, serial, tool_version, workspace_digest, verified",
        kinds: "iitTi",
        order: "id",
    },
    Table { name: "purged_jobs", columns: "job, serial", kinds: "ti", order: "job" },
    Table {
        name: "api_tokens",
        columns: "name, hash, role, namespaces, reveal, created_at, expires_at, revoked_at",
        kinds: "ttttiiII",
        order: "name",
    },
    Table { name: "render_files", columns: "host, job, file, text, serial", kinds: "tttti", order: "host, job, file" },
];

#[derive(Debug, Clone, PartialEq)]
enum Owned {
    I(Option<i64>),
    T(Option<String>),
    B(Vec<u8>),
}

impl Owned {
    fn val(&self) -> Val<'_> {
        match self {
            Owned::I(i) => Val::OptI(*i),
            Owned::T(t) => Val::OptT(t.as_deref()),
            Owned::B(b) => Val::B(b),
        }
    }
}

fn read_rows(db: &Db, t: &Table) -> Result<Vec<Vec<Owned>>, DbError> {
    db.query_map(&format!("SELECT {} FROM {} ORDER BY {}", t.columns, t.name, t.order), &[], |r| {
        t.kinds
            .chars()
            .enumerate()
            .map(|(i, k)| {
                Ok(match k {
                    'i' | 'I' => Owned::I(r.opt_i64(i)?),
                    't' | 'T' => Owned::T(r.opt_text(i)?),
                    _ => Owned::B(r.bytes(i)?.to_vec()),
                })
            })
            .collect()
    })
}

/// Rows per COPY into PostgreSQL: bounds the text buffer next to the rows already read.
const COPY_ROWS: usize = 20_000;

/// Rows in COPY's text format: `\N` for NULL, bytes as `\x` hex (escaped once for COPY).
fn copy_text(rows: &[Vec<Owned>]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = Vec::new();
    for row in rows {
        for v in row {
            match v {
                Owned::I(Some(i)) => super::bulk::copy_field(&mut out, &i.to_string()),
                Owned::T(Some(t)) => super::bulk::copy_field(&mut out, t),
                Owned::I(None) | Owned::T(None) => out.extend_from_slice(b"\\N\t"),
                Owned::B(b) => {
                    let mut hex = String::with_capacity(2 + 2 * b.len());
                    hex.push_str("\\x");
                    for byte in b {
                        let _ = write!(hex, "{byte:02x}");
                    }
                    super::bulk::copy_field(&mut out, &hex);
                }
            }
        }
        if let Some(last) = out.last_mut() {
            *last = b'\n';
        }
    }
    out
}

/// Per table: rows and a sha-256 over them in order.
pub(crate) fn digest(db: &Db, path: &Path) -> Result<Vec<(&'static str, u64, String)>, StateError> {
    let mut out = Vec::new();
    let meta = super::read_meta(db, path)?;
    out.push(("meta", 1, format!("{}/{}/{}", meta.bucket_id, meta.lineage, meta.serial)));
    for t in TABLES {
        let rows = read_rows(db, t).map_err(sql(path, "read the state to copy"))?;
        let mut h = Sha256::new();
        for row in &rows {
            for v in row {
                match v {
                    Owned::I(i) => h.update(format!("i{i:?};")),
                    Owned::T(s) => h.update(format!("t{:?};", s.as_deref())),
                    Owned::B(b) => h.update(format!("b{b:?};")),
                }
            }
            h.update("\n");
        }
        out.push((t.name, rows.len() as u64, format!("{:x}", h.finalize())));
    }
    Ok(out)
}

/// Copy every row of `from` into `to` (a state of the same schema, whose rows it replaces),
/// inside one transaction of `to`, and compare counts and digests before that transaction
/// commits: a copy that lost or changed anything never lands. `finish` then runs in the
/// same transaction (a restore's serial bump and audit record), so no reader or crash sees
/// the copy without it.
pub(crate) fn copy(
    from: &Db,
    from_path: &Path,
    to: &Db,
    to_path: &Path,
    finish: impl FnOnce(&Db) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let meta = super::read_meta(from, from_path)?;
    let created_at = from
        .query_one("SELECT created_at FROM meta WHERE id = 1", &[], |r| r.i64(0))
        .map_err(sql(from_path, "read meta"))?;
    to.begin_write().map_err(sql(to_path, "begin the copy"))?;
    let out = (|| {
        let e = |ctx| sql(to_path, ctx);
        to.execute(
            "UPDATE meta SET bucket_id = ?1, lineage = ?2, serial = ?3, created_at = ?4 WHERE id = 1",
            &[
                Val::T(&meta.bucket_id.to_string()),
                Val::T(&meta.lineage.to_string()),
                Val::I(meta.serial as i64),
                Val::I(created_at),
            ],
        )
        .map_err(e("copy meta"))?;
        for t in TABLES {
            to.execute(&format!("DELETE FROM {}", t.name), &[]).map_err(e("empty the target"))?;
            let rows = read_rows(from, t).map_err(sql(from_path, "read the state to copy"))?;
            if to.is_remote() {
                // A statement per row is a round trip per row: COPY sends them in bulk.
                for chunk in rows.chunks(COPY_ROWS) {
                    to.copy_in(&format!("COPY {} ({}) FROM STDIN", t.name, t.columns), &copy_text(chunk))
                        .map_err(e("copy rows"))?;
                }
                continue;
            }
            let marks = (1..=t.kinds.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
            let insert = format!("INSERT INTO {} ({}) VALUES ({marks})", t.name, t.columns);
            for row in &rows {
                let vals: Vec<Val<'_>> = row.iter().map(Owned::val).collect();
                to.execute(&insert, &vals).map_err(e("copy rows"))?;
            }
        }
        if to.is_remote() {
            // Identity values continue after the copied audit records.
            to.batch(
                "SELECT setval(pg_get_serial_sequence('applies', 'id'), coalesce(max(id), 0) + 1, false) FROM applies",
            )
            .map_err(e("continue the audit ids"))?;
        }
        // Inside the transaction, the copy as it would commit.
        let (a, b) = (digest(from, from_path)?, digest(to, to_path)?);
        if a != b {
            let problems = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x != y)
                .map(|(x, y)| format!("{}: {} rows (digest {}) copied as {} rows (digest {})", x.0, x.1, x.2, y.1, y.2))
                .collect();
            return Err(StateError::Corrupt { path: to_path.to_path_buf(), problems });
        }
        finish(to)
    })();
    match out {
        Ok(()) => to.batch("COMMIT").map_err(sql(to_path, "commit the copy")),
        Err(err) => {
            let _ = to.batch("ROLLBACK");
            Err(err)
        }
    }
}

/// `state backup` of a PostgreSQL state: a new SQLite file at `dest` holding the same rows.
pub(crate) fn to_sqlite_file(store: &StateStore, dest: &Path) -> Result<(), StateError> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = tmp.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    let now = super::read_meta(store.conn(), store.path())?.serial as i64;
    let (target, _) = StateStore::init(&tmp, now)?;
    copy(store.conn(), store.path(), target.conn(), &tmp, |_| Ok(()))?;
    if let Some(c) = target.conn().lite() {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(sql(&tmp, "checkpoint"))?;
    }
    drop(target);
    std::fs::rename(&tmp, dest).map_err(|source| super::io_error(dest, "write the backup", source))?;
    for suffix in ["-wal", "-shm", ".lock"] {
        let mut p = tmp.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    Ok(())
}

/// Keys shown by name when a migration is refused; the rest are counted.
const SHOWN_UNSTORABLE: usize = 20;

/// Before a PostgreSQL target is made: refuse, naming the keys, when the SQLite state holds
/// text PostgreSQL cannot store (a NUL byte: written before the one write validation of
/// [`crate::kv::validate`] refused it), instead of failing with an encoding error mid-copy.
fn refuse_unstorable(src: &Db, path: &Path) -> Result<(), StateError> {
    let Some(c) = src.lite() else { return Ok(()) };
    let nul = |col: &str| format!("instr(CAST({col} AS BLOB), x'00') > 0");
    let cond = ["namespace", "key", "value", "description", "writer"].map(nul).join(" OR ");
    let query = format!(
        "SELECT namespace, key, 'latest version ' || version FROM latest WHERE {cond}
         UNION ALL SELECT namespace, key, 'version ' || version FROM history WHERE {cond}
         ORDER BY 1, 2, 3"
    );
    let read = || -> rusqlite::Result<Vec<(String, String, String)>> {
        let mut st = c.prepare(&query)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    };
    let bad = read().map_err(|source| StateError::Db {
        path: path.to_path_buf(),
        context: "look for values PostgreSQL cannot store",
        source: source.into(),
    })?;
    if bad.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> =
        bad.iter().take(SHOWN_UNSTORABLE).map(|(ns, key, which)| format!("  - {ns:?} {key:?} ({which})")).collect();
    if bad.len() > SHOWN_UNSTORABLE {
        lines.push(format!("  … and {} more", bad.len() - SHOWN_UNSTORABLE));
    }
    Err(StateError::Config(format!(
        "the state holds {} row(s) with a NUL byte (\\0), which PostgreSQL cannot store; nothing was copied:\n{}\n  \
help: overwrite or delete these keys (`kvform kv set`, `kvform kv delete`), drop their old versions with `kvform gc --retain-days 0`, then migrate again",
        bad.len(),
        lines.join("\n")
    )))
}

/// What [`migrate`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub bucket_id: uuid::Uuid,
    pub serial: u64,
    /// Per table: rows copied.
    pub rows: Vec<(&'static str, u64)>,
    /// What the target is called in messages.
    pub target: std::path::PathBuf,
}

/// `kvform state migrate`: copy the state of `from` into `to` (holding `from`'s write lock
/// throughout, so nothing changes meanwhile), verified by counts and digests. The target
/// must hold no state of this bucket unless `force` (which replaces it). A PostgreSQL target
/// is the bucket of the same bucket id.
pub fn migrate(
    from: StateStore,
    to: &super::Location,
    force: bool,
    lock_timeout: std::time::Duration,
    now: i64,
) -> Result<Migrated, StateError> {
    let meta = from.meta()?;
    let txn = from.begin_write("state migrate", lock_timeout, now)?;
    let (src, src_path) = (txn.conn(), txn.path().to_path_buf());
    if to.is_remote() {
        refuse_unstorable(src, &src_path)?;
    }
    let target = to.fresh_copy_target(&src_path, meta.bucket_id, force, now)?;
    copy(src, &src_path, target.conn(), target.path(), |_| Ok(()))?;
    let rows = digest(target.conn(), target.path())?.into_iter().map(|(t, n, _)| (t, n)).collect();
    txn.rollback()?;
    Ok(Migrated { bucket_id: meta.bucket_id, serial: meta.serial, rows, target: target.path().to_path_buf() })
}
