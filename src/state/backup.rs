//! `kvform state backup FILE` and `kvform state restore FILE`.
//!
//! Both use SQLite's online backup API, so they are consistent while other kvform
//! processes read (and, for backup, write) the state. Backups are written to a temporary
//! file beside the target (0600) and renamed into place, so a crash never leaves half a
//! backup under the target's name.
//!
//! Restore checks the file first (SQLite integrity, kvform schema, meta record, the state
//! invariants of [`super::check`]), takes the write lock, copies the current state aside
//! (`<state>.before-restore.<serial>`, never overwriting an earlier copy), copies the backup
//! in page by page, and moves the serial past both states (recorded as `state restore` in the
//! audit trail), so serials never repeat and plans saved before the restore are stale.
//! On PostgreSQL (`super::postgres::restore`) the same, with the rows copied through the backend seam and
//! the replaced state kept as an SQLite backup.

use super::backend::Db;
use super::check::check_connection;
use super::lock;
use super::{Meta, StateError, StateStore, private_dir, read_meta, schema, sql};
use rusqlite::{Connection, MAIN_DB, OpenFlags};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The audit record of a restore (serial, actor, tool version, time).
pub(crate) const RESTORE_RECORD: &str =
    "INSERT INTO applies (serial, operation, actor, tool_version, started_at, finished_at,
                                                    duration_ms, added, changed, destroyed, removed, resealed, status)
                               VALUES (?1, 'state restore', ?2, ?3, ?4, ?4, 0, 0, 0, 0, 0, 0, 'success')";

/// Write a consistent copy of the state to `dest` (mode 0600), replacing it atomically.
pub fn backup(store: &StateStore, dest: &Path) -> Result<(), StateError> {
    if is_state_file(store.path(), dest) {
        return Err(StateError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "that is the live state (or its WAL/lock file); back up to another file",
            ),
        });
    }
    match store.conn().lite() {
        Some(c) => backup_connection(c, store.path(), dest),
        // A PostgreSQL state is copied row by row into a new SQLite file: the backup is
        // portable and restores onto either backend.
        None => super::copy::to_sqlite_file(store, dest),
    }
}

/// Whether `dest` names the state file itself or one of its companion files.
fn is_state_file(state: &Path, dest: &Path) -> bool {
    let canon = |p: &Path| {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.canonicalize().ok().map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    let (Some(state), Some(dest)) = (canon(state), canon(dest)) else { return false };
    ["", "-wal", "-shm", ".lock"].iter().any(|suffix| {
        let mut p = state.clone().into_os_string();
        p.push(suffix);
        p == dest.as_os_str()
    })
}

pub(crate) fn backup_connection(conn: &Connection, path: &Path, dest: &Path) -> Result<(), StateError> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StateError::Io { path: p, source }
    };
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
    let result = conn
        .backup(MAIN_DB, &tmp, None::<fn(rusqlite::backup::Progress)>)
        .map_err(sql(path, "back up"))
        .and_then(|()| {
            // The copy keeps WAL mode in its header; make it a single self-contained file.
            let c = Connection::open(&tmp).map_err(sql(&tmp, "open backup"))?;
            c.query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(())).map_err(sql(&tmp, "finish backup"))?;
            drop(c);
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io(&tmp))?;
            std::fs::rename(&tmp, dest).map_err(io(dest))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The restored state's meta.
    pub restored: Meta,
    /// The state that was replaced, and where a copy of it was kept (`None` when there was
    /// no state, or it could not be opened and was copied byte for byte).
    pub previous: Option<Meta>,
    pub kept_as: Option<PathBuf>,
}

/// Check `src` as a kvform state without changing it; its meta on success.
pub fn verify(src: &Path) -> Result<Meta, StateError> {
    if !src.is_file() {
        return Err(StateError::Io {
            path: src.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql(src, "open backup"))?;
    let found = schema::user_version(&conn).map_err(sql(src, "read schema version"))?;
    if found == 0 {
        return Err(StateError::NotAState { path: src.into(), reason: "no kvform schema version".into() });
    }
    if found != schema::SCHEMA_VERSION {
        return Err(StateError::NotAState {
            path: src.into(),
            reason: format!("schema version {found}, this kvform restores {}", schema::SCHEMA_VERSION),
        });
    }
    let conn = Db::new(super::sqlite::Lite(conn));
    let report = check_connection(&conn, src)?;
    if !report.ok() {
        return Err(StateError::Corrupt { path: src.into(), problems: report.problems });
    }
    read_meta(&conn, src)
}

/// Replace the state at `state` with the backup `src` (see the module docs).
///
/// A backup of another lineage (another bucket, or a state re-created since) is refused
/// unless `force`: its secrets are sealed under another bucket's key, so the restored state
/// would fail `state check` and hooks could not read them.
pub fn restore(
    state: &Path,
    src: &Path,
    lock_timeout: Duration,
    now: i64,
    force: bool,
) -> Result<RestoreOutcome, StateError> {
    let restored = verify(src)?;
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    let _guard = lock::acquire(state, "state restore", lock_timeout, now)?;
    if !force
        && state.is_file()
        && let Ok(current) = StateStore::open(state).and_then(|s| s.meta())
        && current.lineage != restored.lineage
    {
        return Err(StateError::ForeignLineage {
            backup: src.to_path_buf(),
            found: restored.lineage,
            want: current.lineage,
        });
    }
    let mut previous = None;
    let mut kept_as = None;
    if state.is_file() {
        let current = StateStore::open(state).and_then(|s| s.meta().map(|m| (s, m)));
        let serial = current.as_ref().map(|(_, m)| m.serial.to_string()).unwrap_or_else(|_| "unreadable".into());
        let aside = unused_name(state, &format!(".before-restore.{serial}"));
        match current {
            Ok((store, meta)) => {
                backup(&store, &aside)?;
                previous = Some(meta);
            }
            // A broken state (the usual reason to restore): keep its bytes as they are.
            Err(_) => {
                std::fs::copy(state, &aside).map_err(|source| StateError::Io { path: aside.clone(), source })?;
                std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600))
                    .map_err(|source| StateError::Io { path: aside.clone(), source })?;
            }
        }
        kept_as = Some(aside);
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(state)
            .map_err(|source| StateError::Io { path: state.to_path_buf(), source })?;
    }
    let mut conn = match Connection::open(state) {
        Ok(c) => c,
        Err(e) => return Err(sql(state, "open state")(e)),
    };
    schema::configure(&conn).map_err(sql(state, "configure"))?;
    // A state too broken for SQLite to open its WAL is replaced byte for byte instead.
    if conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).is_err() {
        drop(conn);
        for suffix in ["-wal", "-shm"] {
            let mut p = state.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        std::fs::copy(src, state).map_err(|source| StateError::Io { path: state.to_path_buf(), source })?;
        conn = Connection::open(state).map_err(sql(state, "open restored state"))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).map_err(sql(state, "enable WAL"))?;
    } else {
        conn.restore(MAIN_DB, src, None::<fn(rusqlite::backup::Progress)>).map_err(sql(state, "restore"))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).map_err(sql(state, "enable WAL"))?;
    }
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| StateError::Io { path: state.to_path_buf(), source })?;
    // Serials never go back: the restored state continues after both the state it replaces
    // and the backup, so a plan saved against either is stale, and the audit trail says so.
    let serial = previous.as_ref().map_or(0, |m| m.serial).max(restored.serial) + 1;
    conn.execute_batch("BEGIN IMMEDIATE").map_err(sql(state, "begin"))?;
    conn.execute("UPDATE meta SET serial = ?1 WHERE id = 1", [serial as i64]).map_err(sql(state, "bump serial"))?;
    conn.execute(RESTORE_RECORD, rusqlite::params![serial as i64, super::actor(), env!("CARGO_PKG_VERSION"), now])
        .map_err(sql(state, "write audit record"))?;
    conn.execute_batch("COMMIT").map_err(sql(state, "commit"))?;
    let conn = Db::new(super::sqlite::Lite(conn));
    let restored = read_meta(&conn, state)?;
    let after = check_connection(&conn, state)?;
    if !after.ok() {
        return Err(StateError::Corrupt { path: state.into(), problems: after.problems });
    }
    Ok(RestoreOutcome { restored, previous, kept_as })
}

/// `<path><suffix>`, or `<path><suffix>.2`, `.3`, … when taken: a safety copy never
/// overwrites an earlier one.
pub(crate) fn unused_name(path: &Path, suffix: &str) -> PathBuf {
    let mut base = path.as_os_str().to_owned();
    base.push(suffix);
    let base = PathBuf::from(base);
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                let mut p = base.clone().into_os_string();
                p.push(format!(".{n}"));
                PathBuf::from(p)
            }
        })
        .find(|p| !p.exists())
        .expect("some name is free")
}
