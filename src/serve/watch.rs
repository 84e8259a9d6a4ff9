//! What wakes a watch (`?index=N&wait=`, issue 26): a change counter every writer's commit
//! bumps, never a poll of the serial.
//!
//! - the server's own writes (API and UI) bump it after their commit;
//! - PostgreSQL: a thread LISTENs on [`PG_NOTIFY_CHANNEL`] (the trigger
//!   [`PG_NOTIFY_TRIGGER`], installed here when the bucket lacks it, NOTIFYs at every
//!   commit), so `kv set`, `apply` or another server wake it at their commit; it reconnects
//!   when its session ends (and bumps then: a write may have been missed meanwhile);
//! - SQLite: a file watch (inotify) on the state's directory: a commit of any process
//!   writes the WAL (or, without WAL, the file itself).
//!
//! A bump only means "look again": the watch re-reads its scope's index
//! ([`crate::state::watch`]) and goes back to sleep when its scope did not change.

use crate::state::postgres::PgTarget;
use crate::state::schema::{PG_NOTIFY_CHANNEL, PG_NOTIFY_TRIGGER};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The change counter and what feeds it; stopping it (drop) ends the listener.
pub(crate) struct Changes {
    tx: Arc<watch::Sender<u64>>,
    stop: Arc<AtomicBool>,
    listener: Option<std::thread::JoinHandle<()>>,
    _files: Option<notify::RecommendedWatcher>,
}

impl Changes {
    /// Fed by the server's own writes only (tests, or a state nothing else can write).
    pub(crate) fn local() -> Changes {
        Changes { tx: Arc::new(watch::channel(0).0), stop: Arc::default(), listener: None, _files: None }
    }

    /// Fed also by the writes of other processes: PostgreSQL notifications when `pg` is
    /// set, else file events of the SQLite state at `path`. A feed that cannot start is
    /// reported on stderr; the watches then still wake for this server's writes and look
    /// again every [`BACKSTOP`].
    pub(crate) fn start(pg: Option<PgTarget>, path: &Path) -> Changes {
        let mut c = Changes::local();
        match pg {
            Some(target) => {
                let (tx, stop) = (c.tx.clone(), c.stop.clone());
                c.listener = std::thread::Builder::new()
                    .name("kvform-serve-listen".into())
                    .spawn(move || listen(&target, &tx, &stop))
                    .ok();
            }
            None => match watch_files(path, c.tx.clone()) {
                Ok(w) => c._files = Some(w),
                Err(e) => eprintln!(
                    "warning: cannot watch {} for writes of other processes ({e}); watches look again every {}s",
                    path.display(),
                    BACKSTOP.as_secs()
                ),
            },
        }
        c
    }

    /// Something may have changed.
    pub(crate) fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
    }
}

/// How often a watch looks again with no notification at all: only a safety net for a feed
/// that could not start or a notification lost with a dropped session.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(5);

/// The SQLite state's directory, for events on the state file and its `-wal`: writes, and
/// a writer closing it (`kv set` exiting: after its commit, whatever the kernel merged).
fn watch_files(path: &Path, tx: Arc<watch::Sender<u64>>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ours = move |p: &PathBuf| {
        p.file_name().is_some_and(|f| {
            let f = f.to_string_lossy();
            f == name || f.strip_prefix(name.as_str()) == Some("-wal")
        })
    };
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && matches!(
                ev.kind,
                EventKind::Modify(_)
                    | EventKind::Create(_)
                    | EventKind::Access(notify::event::AccessKind::Close(notify::event::AccessMode::Write))
            )
            && ev.paths.iter().any(&ours)
        {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    })?;
    w.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(w)
}

/// LISTEN until stopped, reconnecting after a lost session.
fn listen(target: &PgTarget, tx: &watch::Sender<u64>, stop: &AtomicBool) {
    use postgres::fallible_iterator::FallibleIterator;
    let schema = target.bucket_schema();
    let mut warned = false;
    while !stop.load(Ordering::SeqCst) {
        let mut client = match connect(target) {
            Ok(c) => c,
            Err(_) => {
                pause(stop, Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = install_trigger(&mut client)
            && !warned
        {
            warned = true;
            eprintln!(
                "warning: cannot install the write notification trigger in {schema} ({e}); watches wake for this server's writes, and look again every {}s for others\n  help: run `kvform serve` once as the role that owns the bucket's schema",
                BACKSTOP.as_secs()
            );
        }
        if client.batch_execute(&format!("LISTEN {PG_NOTIFY_CHANNEL}")).is_err() {
            pause(stop, Duration::from_secs(1));
            continue;
        }
        // Writes while no session listened are not notified: look again now.
        tx.send_modify(|n| *n = n.wrapping_add(1));
        'session: while !stop.load(Ordering::SeqCst) && !client.is_closed() {
            let mut notes = client.notifications();
            let mut it = notes.timeout_iter(Duration::from_millis(200));
            loop {
                match it.next() {
                    Ok(Some(n)) => {
                        if n.payload() == schema {
                            tx.send_modify(|c| *c = c.wrapping_add(1));
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'session,
                }
            }
        }
    }
}

/// A session of its own for LISTEN, named `<application_name>-listen` (default
/// `kvform-listen`) so an operator tells it from the server's read session.
fn connect(target: &PgTarget) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = target.url.parse()?;
    let name = format!("{}-listen", config.get_application_name().unwrap_or("kvform"));
    config.application_name(&name);
    let mut client = config.connect(postgres::NoTls)?;
    client.batch_execute(&format!("SET search_path TO {}", crate::state::postgres::ident(&target.bucket_schema())))?;
    Ok(client)
}

/// [`PG_NOTIFY_TRIGGER`] unless the bucket has it (the check takes no lock on `meta`, so a
/// server starting during an apply does not wait for it).
fn install_trigger(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    let present = client.query_opt(
        "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relname = 'meta' AND t.tgname = 'kvform_notify_write'",
        &[],
    )?;
    if present.is_none() {
        client.batch_execute(PG_NOTIFY_TRIGGER)?;
    }
    Ok(())
}

fn pause(stop: &AtomicBool, d: Duration) {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !stop.load(Ordering::SeqCst) && !left.is_zero() {
        std::thread::sleep(step.min(left));
        left = left.saturating_sub(step);
    }
}
