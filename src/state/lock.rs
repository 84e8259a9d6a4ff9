//! The write lock: one writer at a time, released by the OS when its holder dies.
//!
//! The lock is an `flock` on `<state>.lock` (std's `File::try_lock`, no extra crate). The
//! kernel drops it when the holding process exits for any reason, so a killed `apply` never
//! needs manual cleanup. While holding it, the writer records who it is (user@host, pid,
//! operation, since, lock id) in the same file as one JSON line, so a loser can name the
//! holder in its error. The record of the last lock taken is also committed to the state's
//! `lock` table for the audit trail.
//!
//! On PostgreSQL (`super::postgres::lock`) the lock is a session-level `pg_try_advisory_lock` (keyed on
//! the registry schema and the bucket id) on a connection of its own, held by the [`LockGuard`]: the server releases it when that
//! connection closes for any reason (the process died, the runner vanished, the network
//! dropped), so a dead holder never leaves a stale lock there either. The holder record is
//! the bucket's `live_lock` row, written in autocommit right after the lock is taken; a row
//! whose advisory lock is free is stale and the next holder replaces it. Before committing,
//! a write transaction checks that its lock connection is still alive (else another writer
//! may hold the lock now) and rolls back if not.
//!
//! `kvform state force-unlock ID` exists for the record: a lock of a dead process is already
//! free, so it only clears the stale holder line; a lock held by a live process cannot be
//! broken from outside (the kernel owns it) and the command says which process to stop.

use super::StateError;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Who holds (or last held) the write lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub lock_id: String,
    /// `user@host`.
    pub actor: String,
    pub pid: u32,
    pub operation: String,
    /// Unix seconds.
    pub since: i64,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {}, `{}`, since {}, lock id {})",
            self.actor,
            self.pid,
            self.operation,
            crate::clock::format_time(self.since),
            self.lock_id
        )
    }
}

impl LockHolder {
    /// This process taking the lock for `operation` at `now`, under a fresh lock id.
    pub(crate) fn new(operation: &str, now: i64) -> LockHolder {
        LockHolder {
            lock_id: uuid::Uuid::new_v4().to_string(),
            actor: actor(),
            pid: std::process::id(),
            operation: operation.to_string(),
            since: now,
        }
    }
}

/// Poll `try_lock` every `poll` until it succeeds or `timeout` has passed; then fail naming
/// the holder. A holder that has the lock but has not written its record yet is given
/// [`RECORD_GRACE`] to do so, so the error can say who it is. Both backends wait this way.
pub(crate) fn wait_for_lock(
    timeout: Duration,
    poll: Duration,
    mut try_lock: impl FnMut() -> Result<bool, StateError>,
    mut holder: impl FnMut() -> Option<LockHolder>,
) -> Result<(), StateError> {
    let deadline = Instant::now() + timeout;
    let mut unnamed_since: Option<Instant> = None;
    while !try_lock()? {
        if Instant::now() >= deadline {
            let holder = holder();
            let grace = unnamed_since.get_or_insert_with(Instant::now);
            if holder.is_some() || grace.elapsed() >= RECORD_GRACE {
                return Err(StateError::Locked { holder: holder.map(Box::new), waited: timeout });
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        std::thread::sleep(poll);
    }
    Ok(())
}

/// A held lock. Dropping it clears the holder record and releases the lock.
pub struct LockGuard {
    held: Box<dyn Held>,
    pub holder: LockHolder,
}

/// What holds a lock: the flock's file here, the advisory lock's connection in
/// `super::postgres::lock`.
pub(crate) trait Held: Send {
    /// Clear the holder record `lock_id` and release the lock (on drop; errors are moot:
    /// the lock goes with the file or connection anyway).
    fn release(&mut self, lock_id: &str);
    /// Whether the lock is still ours.
    fn still_held(&mut self) -> bool;
}

impl Held for File {
    fn release(&mut self, _lock_id: &str) {
        let _ = self.set_len(0);
        let _ = self.unlock();
    }

    fn still_held(&mut self) -> bool {
        true
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard").field("holder", &self.holder).finish()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.held.release(&self.holder.lock_id);
    }
}

impl LockGuard {
    /// Whether the lock is still ours: always for a flock; on PostgreSQL, whether the lock
    /// connection is alive (the server dropped the advisory lock with a dead one).
    pub(crate) fn still_held(&mut self) -> bool {
        self.held.still_held()
    }

    pub(crate) fn new(held: Box<dyn Held>, holder: LockHolder) -> LockGuard {
        LockGuard { held, holder }
    }
}

/// `<state>.lock` beside the state file.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn open_lock_file(path: &Path) -> Result<File, StateError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| super::io_error(path, "the write lock file cannot be opened", source))
}

/// Read the holder line (empty or garbled -> `None`: the holder is between taking the lock
/// and writing its line, or the lock is free).
pub fn read_holder(state: &Path) -> Option<LockHolder> {
    let mut s = String::new();
    File::open(lock_path(state)).ok()?.read_to_string(&mut s).ok()?;
    serde_json::from_str(s.trim()).ok()
}

/// How long a loser waits for the holder's record when the lock is held but the record is
/// empty or half-written: the holder is between taking the flock and writing its line, or
/// between clearing its line and releasing. Either lasts microseconds; this bounds it.
const RECORD_GRACE: Duration = Duration::from_secs(2);

/// Take the lock; fail at once (`timeout` zero) or poll until `timeout` passes.
///
/// A refusal always names the holder when it has one: with the lock held but no readable
/// record, the loser polls (up to [`RECORD_GRACE`]) until the record appears or the lock is
/// released (then it takes it). Before, 18 of 77 `--lock-timeout 0` refusals in a stress
/// run said only "another kvform process".
pub fn acquire(state: &Path, operation: &str, timeout: Duration, now: i64) -> Result<LockGuard, StateError> {
    let path = lock_path(state);
    let mut file = open_lock_file(&path)?;
    let try_lock = || match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(source)) => Err(StateError::Io { path: path.clone(), source }),
    };
    wait_for_lock(timeout, Duration::from_millis(20), try_lock, || read_holder(state))?;
    let holder = LockHolder::new(operation, now);
    let mut line = serde_json::to_string(&holder).expect("holder serialises");
    line.push('\n');
    // One write of the whole line: a reader sees none or all of it (or retries, above).
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(line.as_bytes())
    };
    write(&mut file).map_err(|source| StateError::Io { path, source })?;
    Ok(LockGuard::new(Box::new(file), holder))
}

/// The lock's current status: `Ok(None)` free, `Ok(Some(holder))` held by a live process.
/// Also returns the stale line a dead holder left, if any.
pub fn status(state: &Path) -> Result<(Option<LockHolder>, Option<LockHolder>), StateError> {
    let path = lock_path(state);
    // Read-only: `state info` works on a read-only filesystem (flock needs no write access).
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let stale = read_holder(state);
            let _ = file.unlock();
            Ok((None, stale))
        }
        Err(TryLockError::WouldBlock) => Ok((read_holder(state), None)),
        Err(TryLockError::Error(source)) => Err(StateError::Io { path, source }),
    }
}

/// What `force-unlock ID` did.
#[derive(Debug, PartialEq, Eq)]
pub enum ForceUnlock {
    /// The holder was gone; its stale record was cleared.
    ClearedStale(LockHolder),
}

/// `kvform state force-unlock ID`.
pub fn force_unlock(state: &Path, id: &str) -> Result<ForceUnlock, StateError> {
    let path = lock_path(state);
    let file = open_lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => {
            let stale = read_holder(state);
            match stale {
                Some(h) if h.lock_id == id => {
                    file.set_len(0).map_err(|source| StateError::Io { path: path.clone(), source })?;
                    let _ = file.unlock();
                    Ok(ForceUnlock::ClearedStale(h))
                }
                other => {
                    let _ = file.unlock();
                    Err(StateError::NoSuchLock { id: id.to_string(), current: other.map(Box::new) })
                }
            }
        }
        Err(TryLockError::WouldBlock) => match read_holder(state) {
            Some(h) if h.lock_id == id => Err(StateError::LockHeldByLiveProcess { holder: Box::new(h) }),
            other => Err(StateError::NoSuchLock { id: id.to_string(), current: other.map(Box::new) }),
        },
        Err(TryLockError::Error(source)) => Err(StateError::Io { path, source }),
    }
}

/// `user@host` of this process: `$USER` (or `$LOGNAME`), else the login name of this
/// process's uid (`whoami`, through getpwuid: cron jobs and containers often run without
/// USER/LOGNAME), and the kernel's hostname (gethostname).
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| whoami::username().ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid{}", uid_of_this_process()));
    let host = whoami::hostname()
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// The uid, for a process whose uid has no passwd entry (`uid<N>` names it then).
fn uid_of_this_process() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}
