//! `kvform state info|check|backup FILE|restore FILE|force-unlock ID`.

use super::Context;
use super::output::{Format, table};
use super::session::{DEFAULT_LOCK_TIMEOUT, Session, lock_timeout};
use crate::bucket::Bucket;
use crate::kv::{NAMESPACE_RULES, NamespaceKind, is_secret_key};
use crate::secrets::Keyring;
use crate::state::{self, StateStore, lock};
use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    #[command(after_help = "Examples:\n  kvform state info\n  kvform state info --format json | jq .serial")]
    Info {
        /// Output format (JSON times are RFC 3339, UTC).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the namespaces that hold live keys (or, with --keys, every live key), sorted,
    /// one per line; PATTERN is a glob over namespace paths: `*` matches within one segment,
    /// `**` across segments.
    #[command(after_help = "Examples:\n  kvform state list\n  kvform state list 'maand/job/*'\n  \
kvform state list 'maand/job/web/**'   web's allocations\n  kvform state list 'vars/**' --keys")]
    List {
        /// Glob over namespaces (default: every namespace).
        pattern: Option<String>,
        /// Print `NAMESPACE KEY` for every live key of the matching namespaces.
        #[arg(long)]
        keys: bool,
    },
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
    /// Replace the state with a backup. FILE is checked first, then kvform asks for `yes` (like
    /// `apply`; without a terminal it refuses unless --auto-approve); the current state is
    /// kept beside it as `<state>.before-restore.<serial>`.
    #[command(after_help = "Examples:\n  kvform state restore /backups/kvform-2026-01-02.db\n  \
kvform state restore /backups/kvform-2026-01-02.db --auto-approve   in a script")]
    Restore {
        /// A file written by `kvform state backup`.
        file: PathBuf,
        /// Wait this long for a running kvform to finish (0 = fail at once).
        #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
        lock_timeout: String,
        /// Restore a backup of another lineage (another bucket) anyway.
        #[arg(long)]
        force: bool,
        /// Replace the state without asking for `yes`.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Copy the whole state to another backend (every version row, audit records, lineage,
    /// serial, fingerprints, tokens), verify row counts and digests on both sides, then
    /// switch kvform.hcl's `state` block to it. The old state is left as it was.
    #[command(
        after_help = "Examples:\n  KVFORM_PG_URL=postgres://kvform@db/kvform kvform state migrate --to postgres\n  \
kvform state migrate --to sqlite"
    )]
    Migrate {
        /// The backend to move to.
        #[arg(long, value_parser = ["postgres", "sqlite"])]
        to: String,
        /// Replace a state of this bucket the target already holds.
        #[arg(long)]
        force: bool,
        /// With --to postgres: the environment variable holding the connection string.
        #[arg(long, default_value = "KVFORM_PG_URL", value_name = "VAR")]
        url_env: String,
        /// With --to postgres: the registry schema.
        #[arg(long, default_value = "kvform")]
        schema: String,
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

const RESTORE_NO_TTY: &str = "state restore needs confirmation, but stdin is not a terminal\n  help: pass --auto-approve to replace the state without asking";

const RESTORE_PROMPT: &str = "Do you want to replace the state with this backup? Only 'yes' will be accepted:";

/// Like `apply`: say what will be replaced by what, then ask; only `yes` confirms. The
/// backup is checked first, so a file that is not a good state is refused without a
/// question; without a terminal there is no one to ask, so it is an error.
fn confirm_restore(ctx: &Context, session: &Session, file: &Path) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    let backup = state::backup::verify(file)
        .with_context(|| format!("cannot restore {}; the state was not changed", file.display()))?;
    if !std::io::stdin().is_terminal() {
        bail!(RESTORE_NO_TTY);
    }
    let location = session.state_location();
    let target = location.describe(&session.bucket.root);
    // The state being replaced may be the damaged one a restore is for: describe it if it
    // opens, and say so if it does not.
    let current = match location.open().and_then(|s| s.meta()) {
        Ok(m) => format!("serial {}, lineage {}", m.serial, m.lineage),
        Err(_) => "unreadable".to_string(),
    };
    ctx.printer.out(&format!(
        "kvform will replace the state {target} ({current})\n  with the backup {} (serial {}, lineage {});\n  the replaced state is kept beside it.",
        file.display(),
        backup.serial,
        backup.lineage
    ));
    let mut out = std::io::stdout().lock();
    write!(out, "\n{RESTORE_PROMPT} ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        StateCommand::Info { format } => info(ctx, format),
        StateCommand::List { pattern, keys } => list(ctx, pattern.as_deref(), keys),
        StateCommand::Check => {
            let session = Session::new(ctx)?;
            let (b, store) = (&session.bucket, session.open_state()?);
            let meta = store.meta()?;
            let mut report = state::check::check(&store)?;
            report.problems.extend(unreadable_secrets(b, &store)?);
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
            let store = Session::new(ctx)?.open_state()?;
            let meta = store.meta()?;
            state::backup::backup(&store, &file)?;
            ctx.printer.out(&format!("backed up serial {} to {}", meta.serial, file.display()));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Restore { file, lock_timeout: t, force, auto_approve } => {
            let session = Session::new(ctx)?;
            if !auto_approve && !confirm_restore(ctx, &session, &file)? {
                ctx.printer.out("Restore cancelled.");
                return Ok(ExitCode::from(1));
            }
            let aside_dir = session.bucket.root.join("data");
            let out = session
                .state_location()
                .restore(&file, &aside_dir, lock_timeout(&t)?, session.now, force)
                .with_context(|| format!("cannot restore {}; the state was not changed", file.display()))?;
            if let Some(prev) = &out.previous
                && prev.lineage != out.restored.lineage
            {
                ctx.printer.warn(&format!(
                    "restored with --force: the backup has lineage {}, the replaced state had {}: it came from another bucket",
                    out.restored.lineage, prev.lineage
                ));
            }
            if let Some(kept) = &out.kept_as {
                ctx.printer.info(&format!("kept the previous state as {}", kept.display()));
            }
            ctx.printer.out(&format!("restored serial {} from {}", out.restored.serial, file.display()));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Migrate { to, force, url_env, schema, lock_timeout: t } => {
            let session = Session::new(ctx)?;
            let store = session.open_state()?;
            let from = store.backend();
            let target = if to == "postgres" {
                let target = state::PgLocation { url_env: url_env.clone(), schema: schema.clone(), bucket_id: None };
                let path = session.settings.state.sqlite_path().to_path_buf();
                state::StateConfig::Postgres { target, path }.locate(&session.bucket.root)
            } else {
                session.settings.state.sqlite_location(&session.bucket.root)
            };
            let out = state::copy::migrate(store, &target, force, lock_timeout(&t)?, session.now)
                .with_context(|| format!("cannot migrate the state to {to}; the {from} state was not changed"))?;
            let attrs: Vec<(&str, Option<String>)> = if to == "postgres" {
                vec![
                    ("backend", Some("postgres".into())),
                    ("url_env", Some(url_env)),
                    ("schema", Some(schema)),
                    ("bucket_id", Some(out.bucket_id.to_string())),
                ]
            } else {
                vec![("backend", None), ("bucket_id", None)]
            };
            crate::workspace::hcl_files::set_state_attributes(&session.bucket.root, &attrs).with_context(|| {
                format!("the state was copied to {}, but kvform.hcl could not be switched to it", out.target.display())
            })?;
            let rows: u64 = out.rows.iter().map(|(_, n)| n).sum();
            ctx.printer.out(&format!(
                "migrated serial {} ({rows} rows, verified) from {from} to {}; kvform.hcl now points at it",
                out.serial,
                out.target.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::ForceUnlock { id } => {
            match Session::new(ctx)?.state_location().force_unlock(&id)? {
                lock::ForceUnlock::ClearedStale(h) => ctx.printer.out(&format!(
                    "lock {id} was already released by the operating system (its holder {} pid {} is gone); cleared its record",
                    h.actor, h.pid
                )),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(ctx: &Context, pattern: Option<&str>, keys: bool) -> anyhow::Result<ExitCode> {
    let glob = match pattern {
        Some(p) => Some(
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    anyhow::anyhow!("invalid pattern {p:?}: {e}\n  help: a glob such as 'maand/job/*' or 'vars/**'")
                })?
                .compile_matcher(),
        ),
        None => None,
    };
    let store = Session::new(ctx)?.open_state()?;
    let snap = store.snapshot()?;
    let mut out = String::new();
    let mut matched = 0;
    for ns in snap.live_namespaces().filter(|ns| glob.as_ref().is_none_or(|g| g.is_match(ns))) {
        matched += 1;
        if keys {
            for (k, _) in snap.live(ns) {
                out.push_str(&format!("{ns} {k}\n"));
            }
        } else {
            out.push_str(ns);
            out.push('\n');
        }
    }
    if matched == 0 {
        let what = pattern.map_or(String::new(), |p| format!(" matches {p:?}"));
        ctx.printer.info(&format!("no namespace with live keys{what}"));
        return Ok(ExitCode::SUCCESS);
    }
    ctx.printer.out(&out);
    Ok(ExitCode::SUCCESS)
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn info(ctx: &Context, format: Format) -> anyhow::Result<ExitCode> {
    let store = Session::new(ctx)?.open_state()?;
    let meta = store.meta()?;
    let path = store.path().to_path_buf();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    // A PostgreSQL state has no file: the size of its tables instead.
    let (size, wal_size) = match store.storage_bytes()? {
        Some(n) => (n, 0),
        None => (file_size(&path), file_size(Path::new(&wal))),
    };
    let (holder, stale) = store.lock_status()?;
    // Counts per namespace class, in the ownership table's order.
    let mut classes: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for s in state::check::namespace_stats(&store)? {
        let class = NamespaceKind::parse(&s.namespace).map_or("(outside the layout)", |k| k.rule().pattern);
        let c = classes.entry(class).or_default();
        c[0] += s.live;
        c[1] += s.tombstoned;
        c[2] += s.history;
    }
    let patterns = NAMESPACE_RULES.iter().map(|r| r.pattern).chain(std::iter::once("(outside the layout)"));
    let classes: Vec<(&str, [u64; 3])> = patterns.filter_map(|p| classes.get(p).map(|c| (p, *c))).collect();
    let audit = store.audit(5)?;

    if format == Format::Json {
        use crate::clock::format_time;
        let lock_json = |h: &lock::LockHolder| {
            serde_json::json!({
                "lock_id": h.lock_id, "actor": h.actor, "pid": h.pid,
                "operation": h.operation, "since": format_time(h.since),
            })
        };
        let out = serde_json::json!({
            "state": path.display().to_string(),
            "backend": store.backend(),
            "size_bytes": size,
            "wal_bytes": wal_size,
            "schema_version": meta.schema_version,
            "bucket_id": meta.bucket_id,
            "lineage": meta.lineage,
            "serial": meta.serial,
            "lock": {
                "held_by": holder.as_ref().map(lock_json),
                "stale_record": stale.as_ref().map(lock_json),
            },
            "namespace_classes": classes.iter().map(|(p, c)| serde_json::json!({
                "class": p, "live": c[0], "tombstoned": c[1], "history": c[2],
            })).collect::<Vec<_>>(),
            "last_change_sets": audit.iter().map(|a| serde_json::json!({
                "serial": a.serial, "operation": a.operation, "actor": a.actor,
                "tool_version": a.tool_version,
                "started_at": format_time(a.started_at), "finished_at": format_time(a.finished_at),
                "duration_ms": a.duration_ms, "added": a.added, "changed": a.changed,
                "destroyed": a.destroyed, "removed": a.removed, "resealed": a.resealed, "status": a.status,
            })).collect::<Vec<_>>(),
        });
        ctx.printer.out(&serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }

    let mut out = String::new();
    out += &format!("state:          {}\n", path.display());
    out += &match store.storage_bytes()? {
        Some(_) => format!("size:           {size} bytes (PostgreSQL tables and indexes)\n"),
        None => format!("size:           {size} bytes (+ {wal_size} bytes WAL)\n"),
    };
    out += &format!("schema version: {}\n", meta.schema_version);
    out += &format!("bucket_id:      {}\n", meta.bucket_id);
    out += &format!("lineage:        {}\n", meta.lineage);
    out += &format!("serial:         {}\n", meta.serial);
    let lock_line = match (holder, stale) {
        (Some(h), _) => format!("held by {h}"),
        (None, Some(stale)) => format!("free (a dead holder left its record: {stale})"),
        (None, None) => "free".to_string(),
    };
    out += &format!("lock:           {lock_line}\n\n");

    let mut rows = vec![["NAMESPACE CLASS".to_string(), "LIVE".into(), "TOMBSTONED".into(), "HISTORY".into()]];
    for (p, c) in &classes {
        rows.push([p.to_string(), c[0].to_string(), c[1].to_string(), c[2].to_string()]);
    }
    if rows.len() == 1 {
        out += "no keys yet\n";
    } else {
        out += &table(&rows, &[false, true, true, true]);
    }
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
