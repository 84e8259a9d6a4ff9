//! An interrupted writer (SIGINT/SIGTERM during `apply`, issue 22 item 4): once
//! [`interrupt`] has returned, no [`super::WriteTxn`] of this process commits, so whatever
//! the interrupted command had not committed is rolled back when its transaction is
//! dropped (and the lock released with it).
//!
//! The gate is a mutex a commit holds from its first statement to `COMMIT`: [`interrupt`]
//! takes it too, so it either waits for a commit already under way (which then stands, and
//! [`committed_serial`] says so) or makes every later commit refuse. Readers of the flag
//! (the hook runner, before it starts a hook) use the atomic and never wait.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

static GATE: Mutex<()> = Mutex::new(());
/// The signal that interrupted this process; 0 = none.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The serial of the last commit of this process; 0 = none.
static COMMITTED: AtomicU64 = AtomicU64::new(0);
/// Write transactions (with their locks) open in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Counts one open write transaction while it lives (a field of [`super::WriteTxn`]).
#[derive(Debug)]
pub(super) struct Open(());

impl Open {
    pub(super) fn new() -> Open {
        OPEN.fetch_add(1, Ordering::SeqCst);
        Open(())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Write transactions open in this process: 0 once an interrupted command has rolled back
/// and released the lock.
pub fn open_transactions() -> usize {
    OPEN.load(Ordering::SeqCst)
}

/// From now on no transaction of this process commits. Waits for a commit under way.
pub fn interrupt(signal: i32) {
    let _gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    SIGNAL.store(signal, Ordering::SeqCst);
}

/// The signal that interrupted this process, if any.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The serial the last commit of this process left the state at, if it committed.
pub fn committed_serial() -> Option<u64> {
    match COMMITTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Held by a commit; `Err(signal)` when the process was interrupted (nothing may commit).
pub(super) fn commit_gate() -> Result<std::sync::MutexGuard<'static, ()>, i32> {
    let gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    match interrupted() {
        Some(signal) => Err(signal),
        None => Ok(gate),
    }
}

/// Record a commit (under the gate).
pub(super) fn note_commit(serial: u64) {
    COMMITTED.store(serial.max(1), Ordering::SeqCst);
}
