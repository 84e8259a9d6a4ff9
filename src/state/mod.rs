//! The state store: the versioned key-value state of one bucket in SQLite or PostgreSQL
//! (SPEC §4 "The state", §10 "State backends").
//!
//! Backends: the code above `state/` opens a [`Location`] ([`location`], the only place
//! that tells the backends apart) and never learns which backend it got. Below, the
//! version/serial/fingerprint logic is written once against [`backend::Db`], a
//! [`backend::Connection`] of [`sqlite`] or [`postgres`]; what differs is behind that trait
//! and the write transaction's [`backend::RowSink`] (PostgreSQL's holds rows back and sends
//! them in bulk). [`postgres`] also holds the PostgreSQL layout (a registry schema, one
//! schema per bucket), its advisory lock and its restore; [`copy`] does `state migrate` and
//! the portable backup of a PostgreSQL state. CONTRIBUTING.md draws the layers.
//!
//! - [`StateStore`] (`store.rs`) opens or creates the state and serves reads (`read.rs`): [`StateStore::snapshot`]
//!   (latest row of every key, one ordered scan), [`StateStore::get`], [`StateStore::history`].
//! - [`WriteTxn`] (from [`StateStore::begin_write`]) is the only way to change it: it holds
//!   the write lock ([`lock`]) and one write transaction (`BEGIN IMMEDIATE` on SQLite); every write appends a
//!   version row; [`WriteTxn::commit`] bumps the serial, writes the audit record and commits
//!   with `synchronous=FULL`.
//! - `secrets/*` values are sealed with the bucket's [`Keyring`] inside [`WriteTxn::put`]; the state only
//!   ever holds ciphertext.
//! - [`gc`], [`check`] and [`backup`] are the maintenance operations behind `kvform gc` and
//!   `kvform state check|backup|restore`.
//!
//! Decisions (where the spec is silent):
//! - The serial is bumped only when a change set wrote or removed a row; a no-op apply
//!   commits nothing and leaves the serial alone (like Terraform).
//! - History trimming to `max_versions` happens as each version is appended (so a key never
//!   holds more than `max_versions` rows, even inside a transaction).
//! - Files: the state's directory is 0700 and the state file 0600 (SQLite gives its `-wal`
//!   and `-shm` files the state file's mode).

pub(crate) mod backend;
pub mod backup;
mod bulk;
pub mod check;
pub mod copy;
pub mod fingerprint;
mod fingerprint_rows;
pub mod gc;
pub mod interrupt;
mod lean;
pub mod listing;
pub mod location;
pub mod lock;
mod migrate;
pub mod observe;
pub mod postgres;
mod read;
pub mod render;
pub mod schema;
pub(crate) mod sqlite;
mod store;
pub mod tokens;
mod txn;
pub mod watch;

pub use fingerprint::{PlanBasis, PlanRead, UnitBasis};
pub use lean::{ReadMode, Skip};
pub use location::{Location, StateConfig};
pub use lock::{LockHolder, actor};
pub use postgres::PgLocation;
pub(crate) use read::{
    check_name, entry_from_row, live_keys, read_entry, read_history, read_key, read_key_meta, read_meta,
    read_purged_jobs, read_snapshot,
};
pub use store::StateStore;
pub use txn::{ApplyRecord, ApplyStatus, Write, WriteOutcome, WriteTxn};

use crate::kv::{Entry, KvMap, LeanSnapshot, Snapshot};
use crate::secrets::{Keyring, SecretsError};
use backend::{Db, DbError, vals};
pub use bulk::LiveValues;

/// SQL condition on a row's `namespace`/`key` for the encrypted values, the same set as
/// `crate::kv::is_secret_key`: every `secrets/*` row and certificates' private keys.
pub(crate) const SECRET_ROWS: &str = "((namespace >= 'secrets/' AND namespace < 'secrets0') \
     OR (namespace GLOB 'maand/job/*/worker/*' AND key GLOB 'certs/*.key'))";
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Rows kept per key when `kvform.hcl` does not say (SPEC §1).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state at {}\n  help: run `kvform init` to create it", .0.display())]
    Missing(PathBuf),
    #[error("the state at {} has schema version {found}; this kvform needs {want}\n  help: run `kvform init` to upgrade it (the old file is backed up first)", .path.display())]
    OldSchema { path: PathBuf, found: u32, want: u32 },
    #[error("the state at {} has schema version {found}, newer than this kvform understands ({want})\n  help: use a newer kvform", .path.display())]
    NewerSchema { path: PathBuf, found: u32, want: u32 },
    #[error("{} is not a kvform state: {reason}\n  help: check the path (kvform.hcl `state {{ path }}`) or restore a backup with `kvform state restore FILE`", .path.display())]
    NotAState { path: PathBuf, reason: String },
    #[error("the state is locked by {}{}\n  help: wait for it to finish, or pass --lock-timeout 5m to wait; a lock held by a process that died is released automatically", .holder.as_ref().map_or("another kvform process".to_string(), |h| h.to_string()), waited_note(.waited))]
    Locked { holder: Option<Box<LockHolder>>, waited: Duration },
    #[error("lock {} is held by a running process: {holder}\n  help: the operating system releases the lock when that process exits; stop it (kill {}) on that host if it is stuck", .holder.lock_id, .holder.pid)]
    LockHeldByLiveProcess { holder: Box<LockHolder> },
    #[error("no lock with id {id}{}\n  help: `kvform state info` shows the lock", .current.as_ref().map_or(String::new(), |h| format!(" (the lock record names {h})")))]
    NoSuchLock { id: String, current: Option<Box<LockHolder>> },
    #[error(
        "{ns} {key}: writing a secret needs the bucket key\n  help: this is a bug in the caller: open the state `with_keyring`"
    )]
    NoKeyring { ns: String, key: String },
    #[error(
        "{ns} {key} is derived from {from} when read; it is never stored and cannot be written\n  help: change the workspace the list comes from and run `kvform apply`"
    )]
    Derived { ns: String, key: String, from: String },
    #[error(
        "{ns} {key}: {error}\n  help: write a value of that type, or pick another with --type ({})",
        crate::kv::KvType::names()
    )]
    WrongType { ns: String, key: String, error: crate::kv::types::TypeError },
    /// A write the one write validation refuses ([`crate::kv::validate`]).
    #[error("{0}")]
    Refused(crate::kv::keys::KeyRuleError),
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: &'static str },
    #[error("the state at {} failed its checks:\n{}\n  help: restore a backup with `kvform state restore FILE`", .path.display(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Corrupt { path: PathBuf, problems: Vec<String> },
    #[error("{} is a backup of lineage {found}, but this state has lineage {want}: it comes from another bucket (or a state created anew)\n  help: restore a backup of this bucket; to replace the state with it anyway, pass --force (its secrets stay sealed under the other bucket's key)", .backup.display())]
    ForeignLineage { backup: PathBuf, found: Uuid, want: Uuid },
    #[error("the state at {} is on a read-only filesystem ({context})\n  help: remount it read-write; read commands (`cat kv`, `kv get`, `state info`, `plan`) work as they are", .path.display())]
    ReadOnly { path: PathBuf, context: &'static str },
    #[error("state {}: {context}: no space left on device\n  help: free space on the filesystem holding the state and run the command again; nothing was committed", .path.display())]
    NoSpace { path: PathBuf, context: &'static str },
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("state {}: {context}: {source}", .path.display())]
    Db { path: PathBuf, context: &'static str, source: DbError },
    #[error("interrupted by signal {signal}: nothing of this command was committed")]
    Interrupted { signal: i32 },
    #[error("{0}")]
    Config(String),
    #[error("cannot access {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn waited_note(waited: &Duration) -> String {
    if waited.is_zero() { String::new() } else { format!(" (waited {}s)", waited.as_secs()) }
}

/// What [`StateStore::init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// A new state with fresh ids.
    Created,
    /// An older schema was migrated; the old file was copied to `backup` first.
    Migrated { from: u32, to: u32, backup: PathBuf },
    /// Already at the current schema; nothing changed.
    UpToDate,
}

/// The state's identity and position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    pub bucket_id: Uuid,
    pub lineage: Uuid,
    pub serial: u64,
    pub schema_version: u32,
}

/// One version row of a key (`kvform kv history`). For `secrets/*` the value is ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    pub namespace: String,
    pub key: String,
    pub version: u64,
    pub value: String,
    pub deleted: bool,
    pub ttl: u64,
    pub created_at: i64,
    pub serial: u64,
    pub writer: String,
    #[serde(rename = "type")]
    pub kv_type: crate::kv::KvType,
    pub description: String,
}

/// One audit record (one committed change set, or a failed apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub serial: u64,
    pub operation: String,
    pub actor: String,
    pub tool_version: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub duration_ms: u64,
    pub added: u64,
    pub changed: u64,
    pub destroyed: u64,
    pub removed: u64,
    pub resealed: u64,
    pub status: String,
}

pub(crate) fn sql<'a, E: Into<DbError>>(path: &'a Path, context: &'static str) -> impl FnOnce(E) -> StateError + 'a {
    move |source| classify(path, context, source.into())
}

impl StateError {
    /// The database could not be reached (a PostgreSQL server down or restarting, the
    /// connection lost): the one kind of error worth retrying as it is.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StateError::Db { source, .. } if source.is_connection_lost())
    }
}

/// [`classify_sqlite`] for SQLite; for PostgreSQL, a missing table or column is a damaged
/// schema and a full disk is named as such, like SQLite's.
pub(crate) fn classify(path: &Path, context: &'static str, source: DbError) -> StateError {
    use ::postgres::error::SqlState;
    match source {
        DbError::Sqlite(e) => classify_sqlite(path, context, e),
        DbError::Decode { .. } => {
            StateError::Corrupt { path: path.to_path_buf(), problems: vec![format!("{context}: {source}")] }
        }
        DbError::Pg(ref e) => match e.code() {
            Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_COLUMN => StateError::Corrupt {
                path: path.to_path_buf(),
                problems: vec![format!("{context}: {source} (the schema is damaged)")],
            },
            Some(c) if *c == SqlState::DISK_FULL => StateError::NoSpace { path: path.to_path_buf(), context },
            _ => StateError::Db { path: path.to_path_buf(), context, source },
        },
    }
}

/// Map SQLite's errors to what the operator can act on:
/// - "file is not a database": a wrong path or a garbage file;
/// - damage SQLite or the row decoding notices (a flipped byte: malformed pages, text that
///   is not UTF-8, a value of the wrong type, a schema that lost a column) is corruption,
///   with the same "restore a backup" hint as `state check`;
/// - a read-only filesystem and a full disk are named as such (SQLite says "attempt to
///   write a readonly database" and "disk I/O error: Error code 4874").
pub(crate) fn classify_sqlite(path: &Path, context: &'static str, source: rusqlite::Error) -> StateError {
    use rusqlite::Error as E;
    let corrupt = |detail: String| StateError::Corrupt { path: path.to_path_buf(), problems: vec![detail] };
    match &source {
        E::Utf8Error(..)
        | E::FromSqlConversionFailure(..)
        | E::InvalidColumnType(..)
        | E::IntegralValueOutOfRange(..) => {
            return corrupt(format!("{context}: {source}"));
        }
        E::SqliteFailure(_, Some(msg)) | E::SqlInputError { msg, .. }
            if msg.starts_with("no such column") || msg.starts_with("no such table") =>
        {
            return corrupt(format!("{context}: {msg} (the schema is damaged)"));
        }
        _ => {}
    }
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            StateError::NotAState { path: path.to_path_buf(), reason: "the file is not an SQLite database".into() }
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => corrupt(source.to_string()),
        Some(rusqlite::ErrorCode::ReadOnly) if fs_status(path).read_only => {
            StateError::ReadOnly { path: path.to_path_buf(), context }
        }
        Some(rusqlite::ErrorCode::DiskFull) => StateError::NoSpace { path: path.to_path_buf(), context },
        Some(rusqlite::ErrorCode::SystemIoFailure) if fs_status(path).full => {
            StateError::NoSpace { path: path.to_path_buf(), context }
        }
        _ => StateError::Db { path: path.to_path_buf(), context, source: DbError::Sqlite(source) },
    }
}

/// SQLite states up to this size get a full `PRAGMA integrity_check` before every write.
/// Measured: about 7 ms per MiB (quick_check 3.5 ms), so at most ~55 ms here, nothing for
/// the few hundred KiB of a small fleet; a 1.7 GB state (10,000 workers) would pay 12 s.
pub const FULL_CHECK_MAX_BYTES: u64 = 8 << 20;

/// The small tables every write reads or rewrites, checked before a write to a larger state.
const SMALL_TABLES: &[&str] = &["meta", "lock", "plan_base", "purged_jobs", "api_tokens"];

/// Before a write (under the write lock, so nothing changes meanwhile): refuse to write into
/// a state SQLite reports damaged, with the `state restore` hint (issue 22 item 8: a flipped
/// byte `state check` reported was written over by `plan`/`apply`, which exited 0). A state
/// up to [`FULL_CHECK_MAX_BYTES`] gets `integrity_check` (pages, and indexes against their
/// tables); a larger one `quick_check` of [`SMALL_TABLES`] — the big tables' pages are
/// checked as the write reads them: every SQLITE_CORRUPT on the way is the same error
/// ([`classify_sqlite`]). Damage inside a value (bytes that are no longer UTF-8) is not
/// SQLite's to see: a small state's text columns are read once to find it; in a larger
/// one only `kvform state check` (which reads every value) does.
fn check_before_write(c: &Connection, path: &Path) -> Result<(), StateError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let pragmas: Vec<String> = if size <= FULL_CHECK_MAX_BYTES {
        vec!["PRAGMA integrity_check(20)".into()]
    } else {
        SMALL_TABLES.iter().map(|t| format!("PRAGMA quick_check({t})")).collect()
    };
    let mut problems = Vec::new();
    for pragma in &pragmas {
        let found: Vec<String> = c
            .prepare(pragma)
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(sql(path, "check the state before writing"))?;
        if found != ["ok"] {
            problems.extend(found.into_iter().map(|p| format!("sqlite integrity: {p}")));
        }
    }
    if problems.is_empty() && size <= FULL_CHECK_MAX_BYTES {
        // Damage inside a value (bytes no longer UTF-8) is not SQLite's to see: a small
        // state's text is read once, as `state check` reads it (the error names the row).
        for table in ["latest", "history"] {
            let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
                for i in 0..5 {
                    r.get_ref(i)?.as_str_or_null().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
                    })?;
                }
                Ok(())
            };
            c.prepare(&format!("SELECT namespace, key, value, writer, description FROM {table}"))
                .and_then(|mut st| st.query_map([], read)?.collect::<rusqlite::Result<Vec<()>>>())
                .map_err(sql(path, "read the state's values before writing"))?;
        }
        return Ok(());
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.push("nothing was written".into());
    Err(StateError::Corrupt { path: path.to_path_buf(), problems })
}

/// What `statvfs` says about the filesystem holding `path` (its directory if the file is
/// not there); both false when it cannot tell.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FsStatus {
    pub read_only: bool,
    pub full: bool,
}

pub(crate) fn fs_status(path: &Path) -> FsStatus {
    use std::os::unix::ffi::OsStrExt;
    let probe = if path.exists() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let probe = if probe.as_os_str().is_empty() { Path::new(".") } else { probe };
    let Ok(c) = std::ffi::CString::new(probe.as_os_str().as_bytes()) else { return FsStatus::default() };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return FsStatus::default();
    }
    FsStatus { read_only: st.f_flag & libc::ST_RDONLY != 0, full: st.f_bavail == 0 }
}

/// `file:<path>?immutable=1`, the path percent-encoded where URI syntax needs it.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => uri.push_str(&format!("%{:02X}", c as u32)),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// An io error writing next to the state, with the read-only and full-disk cases named.
pub(crate) fn io_error(path: &Path, context: &'static str, source: std::io::Error) -> StateError {
    match source.raw_os_error() {
        Some(libc::EROFS) => StateError::ReadOnly { path: path.to_path_buf(), context },
        Some(libc::ENOSPC) => StateError::NoSpace { path: path.to_path_buf(), context },
        _ => StateError::Io { path: path.to_path_buf(), source },
    }
}

/// Create `dir` (and parents) 0700.
fn private_dir(dir: &Path) -> Result<(), StateError> {
    crate::secrets::ensure_private_dir(dir).map_err(|e| match e {
        SecretsError::Io { path, source } => StateError::Io { path, source },
        other => StateError::Secrets(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_full_disk_and_a_read_only_filesystem_are_named() {
        let p = Path::new("/nonexistent/kvform.db");
        assert!(matches!(
            classify_sqlite(p, "commit", failure(rusqlite::ffi::SQLITE_FULL)),
            StateError::NoSpace { .. }
        ));
        let e = io_error(p, "lock", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(e.to_string().contains("no space left on device"), "{e}");
        let e = io_error(p, "lock", std::io::Error::from_raw_os_error(libc::EROFS));
        assert!(e.to_string().contains("is on a read-only filesystem"), "{e}");
        // SQLITE_READONLY on a writable filesystem (a file mode problem) is not called one.
        let tmp = tempfile::tempdir().unwrap();
        let e = classify_sqlite(&tmp.path().join("s.db"), "write", failure(rusqlite::ffi::SQLITE_READONLY));
        assert!(matches!(e, StateError::Db { .. }), "{e}");
    }

    #[test]
    fn undecodable_rows_are_corruption_with_the_restore_hint() {
        let bytes: Vec<u8> = vec![0xff];
        let bad = rusqlite::Error::Utf8Error(0, std::str::from_utf8(&bytes).unwrap_err());
        let e = classify_sqlite(Path::new("s.db"), "read snapshot", bad);
        assert!(e.to_string().contains("failed its checks") && e.to_string().contains("restore a backup"), "{e}");
    }
}
