//! `kvform cat kv` (every key's latest row, as a table or JSON) and `kvform cat kv get`;
//! `cat workers|jobs|allocations` live in [`super::cat_fleet`].
//!
//! Secrets show as `(sensitive)` unless `--reveal`. Filters are predicates over namespaces
//! ([`NamespaceFilter`]). `--active` hides tombstoned keys.
//!
//! `--jobs a,b` shows what those jobs' hooks can read (SPEC §6): the namespaces some
//! allocation of theirs may read by [`crate::hooks::access::readable`], the same rule the
//! hook API enforces. The allocations are the jobs' live `maand/job/<job>/worker/<host>`
//! namespaces in the state (removed allocations have none), narrowed by `--workers`; the
//! demanded jobs come from the workspace, which must therefore be valid.

use super::Context;
use super::cat_fleet::Listing;
use super::output::{Format, shown_value, table};
use super::session::Session;
use crate::clock::format_time;
use crate::diag::suggest::hint_or_list;
use crate::hooks::access::readable;
use crate::kv::{Entry, NamespaceKind, Snapshot};
use crate::model::graph;
use crate::workspace;
use anyhow::bail;
use serde::Serialize;
use std::collections::BTreeSet;
use std::process::ExitCode;

/// Longest value a table cell shows before truncating with `…`.
const MAX_CELL: usize = 48;

/// Print what the state holds.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: CatWhat,
}

#[derive(clap::Subcommand, Debug)]
enum CatWhat {
    /// Every key's latest row (tombstones included unless --active), sorted by namespace and key.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  kvform cat kv\n  kvform cat kv --workers 10.0.0.1,10.0.0.2 --active\n  \
kvform cat kv --jobs api                what the hooks of api can read\n  \
kvform cat kv --jobs api --workers 10.0.0.2   … on that worker only\n  \
kvform cat kv --format json | jq '.[] | select(.namespace == \"vars/job/api\")'\n  kvform cat kv get vars/job/api db_host"
    )]
    Kv(KvArgs),
    /// Workers as the state holds them: position, labels, capacity, active jobs.
    #[command(after_help = "Examples:\n  kvform cat workers\n  kvform cat workers --format json")]
    Workers(super::cat_fleet::ListArgs),
    /// Jobs as the state holds them: version, wave, number of active workers, reservations.
    #[command(after_help = "Example:\n  kvform cat jobs")]
    Jobs(super::cat_fleet::ListArgs),
    /// Allocations (job on worker) as the state holds them: active or disabled, target version.
    #[command(after_help = "Example:\n  kvform cat allocations --format json")]
    Allocations(super::cat_fleet::ListArgs),
}

#[derive(clap::Args, Debug)]
struct KvArgs {
    #[command(subcommand)]
    get: Option<KvGet>,
    /// Only what these jobs' hooks can read (comma-separated job names): the namespaces an
    /// allocation of the job may read, for each of its allocations in the state (needs a
    /// valid workspace, for the jobs' demands).
    #[arg(long, value_delimiter = ',', value_name = "JOBS")]
    jobs: Vec<String>,
    /// Only namespaces of these workers (comma-separated hosts): maand/worker/<host>, its
    /// tags and its allocations. With --jobs: only the jobs' allocations on these workers.
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    workers: Vec<String>,
    /// Only live keys (hide tombstones).
    #[arg(long)]
    active: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print secret values in clear text instead of (sensitive).
    #[arg(long)]
    reveal: bool,
}

#[derive(clap::Subcommand, Debug)]
enum KvGet {
    /// Print one key's value (like `kvform kv get`).
    #[command(after_help = "Example:\n  kvform cat kv get secrets/job/api token --reveal")]
    Get(super::keys::GetArgs),
}

/// A test on a namespace path.
pub type NamespacePredicate = Box<dyn Fn(&str) -> bool>;

/// All predicates must hold for a namespace to be listed.
#[derive(Default)]
pub struct NamespaceFilter {
    predicates: Vec<NamespacePredicate>,
}

impl NamespaceFilter {
    pub fn and(mut self, p: impl Fn(&str) -> bool + 'static) -> Self {
        self.predicates.push(Box::new(p));
        self
    }
    pub fn matches(&self, ns: &str) -> bool {
        self.predicates.iter().all(|p| p(ns))
    }
    /// Namespaces belonging to one of `hosts`.
    pub fn workers(self, hosts: BTreeSet<String>) -> Self {
        self.and(move |ns| NamespaceKind::parse(ns).and_then(|k| k.host().map(|h| hosts.contains(h))).unwrap_or(false))
    }
}

/// One key in `cat kv --format json`. Times are RFC 3339 in UTC (`2026-01-02T03:04:05Z`),
/// like every time kvform prints, not unix seconds.
#[derive(Serialize)]
struct JsonRow<'a> {
    namespace: &'a str,
    key: &'a str,
    value: String,
    version: u64,
    deleted: bool,
    /// Seconds; 0 = never expires.
    ttl: u64,
    /// When this version was written.
    created_at: String,
    /// `created_at + ttl`; `null` without a TTL.
    expires_at: Option<String>,
    serial: u64,
    writer: &'a str,
    #[serde(rename = "type")]
    kv_type: crate::kv::KvType,
    description: &'a str,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        CatWhat::Kv(KvArgs { get: Some(KvGet::Get(g)), .. }) => super::keys::get(ctx, g),
        CatWhat::Kv(a) => cat_kv(ctx, a),
        CatWhat::Workers(a) => super::cat_fleet::run(ctx, Listing::Workers, a),
        CatWhat::Jobs(a) => super::cat_fleet::run(ctx, Listing::Jobs, a),
        CatWhat::Allocations(a) => super::cat_fleet::run(ctx, Listing::Allocations, a),
    }
}

fn cat_kv(ctx: &Context, a: KvArgs) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let store = if a.reveal { session.open_state_with_keyring()? } else { session.open_state()? };
    // Derived keys (peer lists) read as if stored; their STATUS says `derived`.
    let snap = store.snapshot_with_derived()?;
    let now = session.now;
    let hosts: BTreeSet<String> = a.workers.iter().map(|h| h.trim().to_string()).collect();
    for h in &hosts {
        if snap.live(&NamespaceKind::Worker(h.clone()).path()).next().is_none() {
            ctx.printer.warn(&format!("no worker `{h}` in the state (see `kvform cat workers`)"));
        }
    }
    let mut filter = NamespaceFilter::default();
    if !a.jobs.is_empty() {
        let allocations = job_allocations(ctx, &session, &snap, &a.jobs, &hosts)?;
        filter = filter.and(move |ns| allocations.iter().any(|(j, h, up)| readable(j, h, up, ns).is_ok()));
    } else if !hosts.is_empty() {
        filter = filter.workers(hosts);
    }
    let rows: Vec<(&String, &String, &Entry)> = snap
        .entries
        .iter()
        .filter(|(ns, _)| filter.matches(ns))
        .flat_map(|(ns, keys)| keys.iter().map(move |(k, e)| (ns, k, e)))
        .filter(|(_, _, e)| !a.active || e.is_live())
        .collect();
    let reveal = if a.reveal { store.keyring() } else { None };
    let metadata = store.key_metadata()?;
    let meta = |ns: &str, key: &str| -> (crate::kv::KvType, &str) {
        match metadata.get(ns).and_then(|m| m.get(key)) {
            Some((t, d)) => (*t, d.as_str()),
            // Derived keys have no row: they are comma-joined host lists, strings.
            None => (crate::kv::KvType::String, ""),
        }
    };
    match a.format {
        Format::Json => {
            let mut out = Vec::with_capacity(rows.len());
            for (ns, key, e) in &rows {
                out.push(JsonRow {
                    namespace: ns,
                    key,
                    value: shown_value(ns, key, e, reveal)?,
                    version: e.version,
                    deleted: e.deleted,
                    ttl: e.ttl,
                    created_at: format_time(e.created_at),
                    expires_at: e.expires_at().map(format_time),
                    serial: e.serial,
                    writer: &e.writer,
                    kv_type: meta(ns, key).0,
                    description: meta(ns, key).1,
                });
            }
            ctx.printer.out(&serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            if rows.is_empty() {
                ctx.printer.info("no keys");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = vec![
                ["NAMESPACE", "KEY", "VALUE", "TYPE", "VERSION", "SERIAL", "STATUS", "DESCRIPTION"].map(String::from),
            ];
            for (ns, key, e) in &rows {
                let status = if e.deleted {
                    "deleted".to_string()
                } else if e.writer == crate::kv::derived::DERIVED_WRITER && e.version == 0 {
                    "derived".to_string()
                } else if e.is_expired(now) {
                    format!("expired at {}", crate::clock::format_time(e.expires_at().unwrap_or_default()))
                } else if let Some(t) = e.expires_at() {
                    format!("expires at {}", crate::clock::format_time(t))
                } else {
                    String::new()
                };
                t.push([
                    ns.to_string(),
                    key.to_string(),
                    truncate(&shown_value(ns, key, e, reveal)?),
                    meta(ns, key).0.to_string(),
                    e.version.to_string(),
                    e.serial.to_string(),
                    status,
                    truncate(meta(ns, key).1),
                ]);
            }
            ctx.printer.out(&table(&t, &[false, false, false, false, true, true, false, false]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// (job, host, the jobs it demands) for every live allocation namespace of `jobs` in the
/// state, on `hosts` when given. Fails with the workspace's diagnostics when it is invalid
/// (the demands would be unknown) and on a job the workspace does not have.
fn job_allocations(
    ctx: &Context,
    session: &Session,
    snap: &Snapshot,
    jobs: &[String],
    hosts: &BTreeSet<String>,
) -> anyhow::Result<Vec<(String, String, Vec<String>)>> {
    let loaded = workspace::load_with_settings(&session.bucket.root, &session.settings);
    let mut diags = loaded.diagnostics;
    let waves = loaded.workspace.as_ref().and_then(|ws| graph::waves(ws, &mut diags));
    let (Some(ws), Some(waves)) = (&loaded.workspace, waves) else {
        diags.sort(&loaded.sources);
        ctx.printer.raw_stderr(&diags.render(&loaded.sources, ctx.printer.color_stderr()));
        bail!(
            "the workspace is invalid ({} error(s) above); `cat kv --jobs` needs it to know what the jobs demand\n  \
             help: fix the workspace (`kvform validate`), or list the state without --jobs",
            diags.error_count()
        );
    };
    let wanted: BTreeSet<&str> = jobs.iter().map(|j| j.trim()).collect();
    for job in &wanted {
        if !ws.jobs.contains_key(*job) {
            let help = hint_or_list(job, ws.jobs.keys(), "jobs in the workspace");
            bail!("no job `{job}` in the workspace\n  help: {help}");
        }
    }
    let mut out = Vec::new();
    for ns in snap.live_namespaces() {
        if let Some(NamespaceKind::Allocation { job, host }) = NamespaceKind::parse(ns)
            && wanted.contains(job.as_str())
            && (hosts.is_empty() || hosts.contains(&host))
        {
            let upstreams = waves.upstreams.get(&job).cloned().unwrap_or_default();
            out.push((job, host, upstreams));
        }
    }
    if out.is_empty() {
        let on = if hosts.is_empty() { String::new() } else { " on the given workers".to_string() };
        ctx.printer.info(&format!(
            "no allocation of {}{on} in the state, so nothing to show (run `kvform apply` first?)",
            wanted.iter().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(out)
}

/// One line, at most [`MAX_CELL`] characters.
fn truncate(v: &str) -> String {
    let one_line = v.replace('\n', "\\n").replace('\t', "\\t");
    if one_line.chars().count() <= MAX_CELL {
        one_line
    } else {
        let mut s: String = one_line.chars().take(MAX_CELL - 1).collect();
        s.push('…');
        s
    }
}
