//! One [`Session`] per command: the bucket, its `kvform.hcl` settings parsed once, the
//! state file they name, and the command's one `now` — read here, once, and passed down as
//! a value to everything below (the plan, the write transaction and its lock record, the
//! apply record, hooks). `crate::clock::now` is called nowhere else.
//!
//! Also the small helpers every state-touching command shares (the lock timeout flag, the
//! writer name), so no command file imports another.

use super::Context;
use crate::bucket::Bucket;
use crate::diag::{Diagnostics, SourceMap};
use crate::secrets::Keyring;
use crate::state::{self, StateStore, WriteTxn};
use crate::workspace::types::Settings;
use anyhow::bail;
use std::path::PathBuf;
use std::time::Duration;

/// How long a writing command waits for another kvform holding the write lock.
pub(super) const DEFAULT_LOCK_TIMEOUT: &str = "30s";

/// Where the state of `bucket` is, by its settings (see [`Session::state_location`]).
pub(super) fn location_of(bucket: &Bucket, settings: &Settings) -> state::Location {
    settings.state.locate(&bucket.root)
}

/// What one command works with. Build it once, at the top of the command.
pub struct Session {
    pub bucket: Bucket,
    /// `kvform.hcl` (defaults when missing), parsed once.
    pub settings: Settings,
    /// The command's time, unix seconds (`KVFORM_NOW` honoured; a bad one is an error).
    pub now: i64,
}

impl Session {
    /// Find the bucket (`-C DIR` or the current directory), parse its `kvform.hcl` and read
    /// the clock. An invalid `kvform.hcl` is an error: guessing the default state path could
    /// open (or, for `init`, create) the wrong state.
    pub fn new(ctx: &Context) -> anyhow::Result<Session> {
        Self::for_bucket(Bucket::find(&ctx.dir)?)
    }

    /// [`Session::new`] for a bucket already found (or just created, by `init`).
    pub fn for_bucket(bucket: Bucket) -> anyhow::Result<Session> {
        let (mut sources, mut diags) = (SourceMap::new(), Diagnostics::new());
        let settings = crate::workspace::hcl_files::settings(&bucket.root, &mut sources, &mut diags);
        if diags.has_errors() {
            diags.sort(&sources);
            bail!(
                "kvform.hcl is invalid, so kvform cannot tell where the state is:\n{}  help: fix kvform.hcl (`kvform validate` lists every problem)",
                diags.render(&sources, false)
            );
        }
        Ok(Session { bucket, settings, now: Self::clock()? })
    }

    /// The one clock read of a command (also for `init`, before there is a bucket).
    pub fn clock() -> anyhow::Result<i64> {
        Ok(crate::clock::now()?)
    }

    /// The state file: `kvform.hcl` `state { path }` (relative to the bucket root unless
    /// absolute), default `data/kvform.db`. Every command finds an SQLite state here.
    pub fn state_file(&self) -> PathBuf {
        self.bucket.state_file_for(self.settings.state.sqlite_path())
    }

    /// Where the state is: the file above, or a PostgreSQL bucket (`state { backend =
    /// "postgres" }`).
    pub fn state_location(&self) -> state::Location {
        location_of(&self.bucket, &self.settings)
    }

    /// The bucket's state (no keyring); an error when it has none.
    pub fn open_state(&self) -> anyhow::Result<StateStore> {
        Ok(self.state_location().open()?)
    }

    /// The bucket's state, or `None` when it has none yet (`apply` then creates it). A
    /// PostgreSQL state whose bucket kvform.hcl does not name is an error, not "none yet":
    /// only `kvform init` creates a PostgreSQL bucket, because it also writes the bucket's
    /// id into kvform.hcl — one made here would be unreachable by the next command, and
    /// every apply would make another (issue 22 item 5).
    pub fn open_state_if_any(&self) -> anyhow::Result<Option<StateStore>> {
        let location = self.state_location();
        if location.lacks_bucket_id() {
            bail!(
                "kvform.hcl puts the state on PostgreSQL (`state {{ backend = \"postgres\" }}`) but names no bucket (`bucket_id`); nothing was created\n  help: run `kvform init`: it creates the bucket and writes its id into kvform.hcl"
            );
        }
        Ok(location.open_if_any()?)
    }

    /// The bucket's state with its keyring (needed to write or reveal secrets).
    pub fn open_state_with_keyring(&self) -> anyhow::Result<StateStore> {
        Ok(self.open_state()?.with_keyring(self.keyring()?))
    }

    /// The bucket's keyring (`secrets/kv.key`); fails with "run `kvform init`" when missing.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        Ok(Keyring::load(&self.bucket)?)
    }

    /// Take the write lock (`operation` names the holder in lock errors) at this session's
    /// `now`, with `max_versions` from `kvform.hcl`.
    pub fn begin_write(&self, store: StateStore, operation: &str, lock_timeout: Duration) -> anyhow::Result<WriteTxn> {
        let mut txn = store.begin_write(operation, lock_timeout, self.now)?;
        txn.set_max_versions(self.settings.max_versions);
        Ok(txn)
    }
}

/// The operator of this CLI process: `user@host` ([`crate::ops::Actor::cli`]), the writer of
/// its key writes and the actor of their audit records.
pub(super) fn cli_actor() -> crate::ops::Actor {
    crate::ops::Actor::cli()
}

/// Seconds of a duration flag, in the one syntax ([`crate::clock::parse_duration`]).
pub(super) fn parse_duration(flag: &str, s: &str) -> anyhow::Result<u64> {
    crate::clock::parse_duration(s).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid {flag} {:?}\n  help: use seconds (3600), a duration (30s, 1h, 1h30m, 7d) or ISO 8601 (PT1H, P30D)",
            s.trim()
        )
    })
}

pub(super) fn lock_timeout(s: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(parse_duration("--lock-timeout", s)?))
}

/// How long a hook's process group has between SIGTERM and SIGKILL when a command is
/// interrupted.
pub(super) const HOOK_STOP_GRACE: Duration = Duration::from_secs(5);

/// How long an interrupted command has, once its hooks are stopped, to roll back and
/// release the lock itself. After that it exits anyway: the database discards a
/// transaction that was never committed, and the lock goes with the process.
const UNWIND_WAIT: Duration = Duration::from_secs(3);

/// SIGINT/SIGTERM for a command that runs hooks inside a write transaction (`apply`): a
/// thread of its own waits for the signal, then
/// 1. stops every commit from now on ([`state::interrupt`]; a commit under way finishes),
/// 2. stops the running hooks (SIGTERM to their process groups, SIGKILL after
///    [`HOOK_STOP_GRACE`]) — no new hook starts,
/// 3. waits for the command to drop its transaction (rollback) and lock, up to
///    [`UNWIND_WAIT`],
/// 4. says what it did and exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports them.
///
/// The command itself calls [`wait_if_interrupted`] before returning, so it never exits
/// first with the error the refused commit gave it. Handlers are tokio's (signal-hook's
/// registry under it: the handler only writes to a pipe), on a current-thread runtime.
pub(super) fn handle_interrupts(printer: super::printer::Printer) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("kvform-signals".into()).spawn(move || {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else {
            let _ = ready_tx.send(false);
            return;
        };
        let signal = rt.block_on(async {
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                let _ = ready_tx.send(false);
                return None;
            };
            let _ = ready_tx.send(true);
            tokio::select! {
                _ = int.recv() => Some(libc::SIGINT),
                _ = term.recv() => Some(libc::SIGTERM),
            }
        });
        if let Some(signal) = signal {
            interrupted(&printer, signal);
        }
    });
    let ready = spawned.is_ok() && ready_rx.recv_timeout(Duration::from_secs(5)).unwrap_or(false);
    if !ready {
        // Rare (no threads, no signal pipe): the default disposition stays, as before.
        super::printer::Printer::new(false, false, false)
            .warn("cannot handle SIGINT/SIGTERM: an interrupted apply would leave its hooks running");
    }
}

fn interrupted(printer: &super::printer::Printer, signal: i32) -> ! {
    let name = if signal == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
    state::interrupt::interrupt(signal);
    printer.error(&format!("interrupted ({name}): stopping the running hooks and rolling back"));
    let stopped = crate::hooks::runner::stop_running_hooks(HOOK_STOP_GRACE);
    if !stopped.hooks.is_empty() {
        let killed = match stopped.killed {
            0 => String::new(),
            n => format!(", {n} of them killed (SIGKILL) after {} s", HOOK_STOP_GRACE.as_secs()),
        };
        printer.info(&format!(
            "stopped {} hook(s) (SIGTERM to each process group{killed}): {}",
            stopped.hooks.len(),
            stopped.hooks.join(", ")
        ));
    }
    let until = std::time::Instant::now() + UNWIND_WAIT;
    while state::interrupt::open_transactions() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let state_note = match state::interrupt::committed_serial() {
        Some(serial) => {
            format!("what was committed before the signal stays (serial {serial}); nothing after it was committed")
        }
        None => "nothing of this apply was committed".to_string(),
    };
    if state::interrupt::open_transactions() > 0 {
        printer.info(&format!(
            "{state_note}: the open transaction is discarded and the state lock released as kvform exits"
        ));
    } else {
        printer.info(&format!("{state_note}: rolled back the open transaction and released the state lock"));
    }
    std::process::exit(128 + signal)
}

/// When the command was interrupted, wait for [`handle_interrupts`]'s thread to exit the
/// process (with 130/143 and its report) instead of returning the error a refused commit
/// gave.
pub(super) fn wait_if_interrupted() {
    if state::interrupt::interrupted().is_some() {
        loop {
            std::thread::park();
        }
    }
}
