//! `kvform state info|check|backup FILE|restore FILE|force-unlock ID`, plus the helpers the
//! state-touching commands (`kv`, `cat kv`, `gc`, `secrets`) share: where the state is,
//! opening it, durations, the writer name.

use super::Context;
use crate::bucket::Bucket;
use crate::kv::{NAMESPACE_RULES, NamespaceKind, is_secret_key};
use crate::secrets::Keyring;
use crate::state::{self, StateStore, lock};
use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long a writing command waits for another kvform holding the write lock.
pub(super) const DEFAULT_LOCK_TIMEOUT: &str = "30s";

/// The bucket of this invocation (`-C DIR` or the current directory).
pub(super) fn bucket(ctx: &Context) -> anyhow::Result<Bucket> {
    Ok(Bucket::find(&ctx.dir)?)
}

/// The state file of `bucket` (kvform.hcl `state { path }`, see [`state::state_path`]).
pub(super) fn state_file(bucket: &Bucket) -> anyhow::Result<PathBuf> {
    Ok(state::state_path(bucket)?)
}

/// `max_versions` for writes (kvform.hcl, default 10).
pub(super) fn max_versions(bucket: &Bucket) -> anyhow::Result<u32> {
    Ok(state::bucket_settings(bucket)?.max_versions)
}

/// Open the bucket's state (no keyring).
pub(super) fn open(ctx: &Context) -> anyhow::Result<(Bucket, StateStore)> {
    let b = bucket(ctx)?;
    let store = StateStore::open(&state_file(&b)?)?;
    Ok((b, store))
}

/// Open the bucket's state with its keyring (needed to write or reveal secrets).
pub(super) fn open_with_keyring(ctx: &Context) -> anyhow::Result<(Bucket, StateStore)> {
    let (b, store) = open(ctx)?;
    let ring = Keyring::load(&b)?;
    Ok((b, store.with_keyring(ring)))
}

pub(super) fn now() -> anyhow::Result<i64> {
    Ok(crate::clock::now()?)
}

/// `cli:<user>@<host>`.
pub(super) fn cli_writer() -> String {
    format!("cli:{}", state::actor())
}

/// Seconds from `3600`, `1h`, `90m`, `1h30m`, `P30D`, `PT1H` (days are 24 hours).
pub(super) fn parse_duration(flag: &str, s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "invalid {flag} {s:?}\n  help: use seconds (3600), a duration (30s, 1h, 1h30m, 7d) or ISO 8601 (PT1H, P30D)"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map_err(|_| bad());
    }
    let span: jiff::Span = s.parse().map_err(|_| bad())?;
    let total = span.total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours()).map_err(|_| bad())?;
    if total < 0.0 || total.fract() != 0.0 || !total.is_finite() {
        return Err(bad());
    }
    Ok(total as u64)
}

pub(super) fn lock_timeout(s: &str) -> anyhow::Result<Duration> {
    Ok(Duration::from_secs(parse_duration("--lock-timeout", s)?))
}

/// Inspect and maintain the state file.
///
/// Examples:
///   kvform state info
///   kvform state check
///   kvform state backup /backups/kvform-$(date +%F).db
///   kvform state restore /backups/kvform-2026-01-02.db
///   kvform state force-unlock 6f1c…
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(clap::Subcommand, Debug)]
enum StateCommand {
    /// Show ids, serial, schema, key counts per namespace class, file size, lock and the
    /// last change sets.
    #[command(after_help = "Example:\n  kvform state info")]
    Info,
    /// Verify the state: SQLite integrity, version chains, serials, secrets sealed. Exit 1 on
    /// any problem.
    #[command(after_help = "Example:\n  kvform state check && echo healthy")]
    Check,
    /// Write a consistent copy of the state to FILE (mode 0600), safe while kvform runs.
    #[command(after_help = "Example:\n  kvform state backup /backups/kvform-$(date +%F).db")]
    Backup {
        /// Where to write the copy (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Replace the state with a backup. FILE is checked first; the current state is kept
    /// beside it as `<state>.before-restore.<serial>`.
    #[command(after_help = "Example:\n  kvform state restore /backups/kvform-2026-01-02.db")]
    Restore {
        /// A file written by `kvform state backup`.
        file: PathBuf,
        /// Wait this long for a running kvform to finish (0 = fail at once).
        #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
        lock_timeout: String,
    },
    /// Clear the record of a lock whose holder died. The OS already released the lock
    /// itself; a lock of a running process cannot be broken and the command says which
    /// process holds it.
    #[command(after_help = "Example:\n  kvform state force-unlock 6f1c2a4e-…  (the id from the lock error)")]
    ForceUnlock {
        /// The lock id printed in the "state is locked" error or by `kvform state info`.
        id: String,
    },
}

/// Live secrets the bucket's key files cannot open (a backup from another bucket, or from
/// before a rotation whose old key is gone): readable on disk, lost to hooks.
fn unreadable_secrets(b: &Bucket, store: &StateStore) -> anyhow::Result<Vec<String>> {
    let snap = store.snapshot()?;
    let mut secrets = snap
        .entries
        .iter()
        .flat_map(|(ns, keys)| keys.iter().map(move |(k, e)| (ns, k, e)))
        .filter(|(ns, k, e)| e.is_live() && is_secret_key(ns, k))
        .peekable();
    if secrets.peek().is_none() {
        return Ok(Vec::new());
    }
    let ring = match Keyring::load(b) {
        Ok(r) => r,
        Err(e) => return Ok(vec![format!("secrets cannot be checked: {e}")]),
    };
    let mut out = Vec::new();
    for (ns, key, e) in secrets {
        if let Err(err) = ring.open(ns, key, e.version, &e.value) {
            out.push(err.to_string());
        }
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        StateCommand::Info => info(ctx),
        StateCommand::Check => {
            let (b, store) = open(ctx)?;
            let meta = store.meta()?;
            let mut report = store.check()?;
            report.problems.extend(unreadable_secrets(&b, &store)?);
            if !report.ok() {
                bail!(state::StateError::Corrupt { path: store.path().to_path_buf(), problems: report.problems });
            }
            ctx.printer.out(&format!(
                "ok: {} keys, {} version rows, serial {} ({})",
                report.keys,
                report.rows,
                meta.serial,
                store.path().display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Backup { file } => {
            let (_, store) = open(ctx)?;
            let meta = store.meta()?;
            store.backup(&file)?;
            ctx.printer.out(&format!("backed up serial {} to {}", meta.serial, file.display()));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Restore { file, lock_timeout: t } => {
            let b = bucket(ctx)?;
            let path = state_file(&b)?;
            let out = state::backup::restore(&path, &file, lock_timeout(&t)?, now()?)
                .with_context(|| format!("cannot restore {}; the state was not changed", file.display()))?;
            if let Some(prev) = &out.previous
                && prev.lineage != out.restored.lineage
            {
                ctx.printer.warn(&format!(
                    "the backup has lineage {}, the replaced state had {}: it came from another bucket",
                    out.restored.lineage, prev.lineage
                ));
            }
            if let Some(kept) = &out.kept_as {
                ctx.printer.info(&format!("kept the previous state as {}", kept.display()));
            }
            ctx.printer.out(&format!("restored serial {} from {}", out.restored.serial, file.display()));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::ForceUnlock { id } => {
            let b = bucket(ctx)?;
            match lock::force_unlock(&state_file(&b)?, &id)? {
                lock::ForceUnlock::ClearedStale(h) => ctx.printer.out(&format!(
                    "lock {id} was already released by the operating system (its holder {} pid {} is gone); cleared its record",
                    h.actor, h.pid
                )),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn info(ctx: &Context) -> anyhow::Result<ExitCode> {
    let (_, store) = open(ctx)?;
    let meta = store.meta()?;
    let path = store.path().to_path_buf();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let mut out = String::new();
    out += &format!("state:          {}\n", path.display());
    out += &format!("size:           {} bytes (+ {} bytes WAL)\n", file_size(&path), file_size(Path::new(&wal)));
    out += &format!("schema version: {}\n", meta.schema_version);
    out += &format!("bucket_id:      {}\n", meta.bucket_id);
    out += &format!("lineage:        {}\n", meta.lineage);
    out += &format!("serial:         {}\n", meta.serial);
    let lock_line = match lock::status(&path)? {
        (Some(h), _) => format!("held by {h}"),
        (None, Some(stale)) => format!("free (a dead holder left its record: {stale})"),
        (None, None) => "free".to_string(),
    };
    out += &format!("lock:           {lock_line}\n\n");

    // Counts per namespace class, in the ownership table's order.
    let mut classes: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for s in store.namespace_stats()? {
        let class = NamespaceKind::parse(&s.namespace).map_or("(outside the layout)", |k| k.rule().pattern);
        let c = classes.entry(class).or_default();
        c[0] += s.live;
        c[1] += s.tombstoned;
        c[2] += s.history;
    }
    let mut rows = vec![["NAMESPACE CLASS".to_string(), "LIVE".into(), "TOMBSTONED".into(), "HISTORY".into()]];
    let patterns = NAMESPACE_RULES.iter().map(|r| r.pattern).chain(std::iter::once("(outside the layout)"));
    for p in patterns {
        if let Some(c) = classes.get(p) {
            rows.push([p.to_string(), c[0].to_string(), c[1].to_string(), c[2].to_string()]);
        }
    }
    if rows.len() == 1 {
        out += "no keys yet\n";
    } else {
        out += &super::cat::table(&rows, &[false, true, true, true]);
    }
    let audit = store.audit(5)?;
    if !audit.is_empty() {
        out += "\nlast change sets:\n";
        for a in audit {
            out += &format!(
                "  serial {:<5} {}  {:<20} {}  +{} ~{} -{}{}{}  {}\n",
                a.serial,
                crate::clock::format_time(a.finished_at),
                a.operation,
                a.actor,
                a.added,
                a.changed,
                a.destroyed,
                if a.removed > 0 { format!(" gc:{}", a.removed) } else { String::new() },
                if a.resealed > 0 { format!(" resealed:{}", a.resealed) } else { String::new() },
                a.status
            );
        }
    }
    ctx.printer.out(&out);
    Ok(ExitCode::SUCCESS)
}
