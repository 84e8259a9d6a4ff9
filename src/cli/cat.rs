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
use super::state::{open, open_with_keyring};
use crate::bucket::Bucket;
use crate::diag::suggest::hint_or_list;
use crate::hooks::access::readable;
use crate::kv::{Entry, NamespaceKind, Snapshot, is_secret_key};
use crate::model::graph;
use crate::secrets::Keyring;
use crate::workspace;
use anyhow::bail;
use serde::Serialize;
use std::collections::BTreeSet;
use std::process::ExitCode;

/// Shown instead of a secret's value.
pub(super) const SENSITIVE: &str = "(sensitive)";
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
    Get(super::kv::GetArgs),
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Table,
    Json,
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

#[derive(Serialize)]
struct JsonRow<'a> {
    namespace: &'a str,
    key: &'a str,
    value: String,
    version: u64,
    deleted: bool,
    ttl: u64,
    created_at: i64,
    serial: u64,
    writer: &'a str,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        CatWhat::Kv(KvArgs { get: Some(KvGet::Get(g)), .. }) => super::kv::get(ctx, g),
        CatWhat::Kv(a) => cat_kv(ctx, a),
        CatWhat::Workers(a) => super::cat_fleet::run(ctx, Listing::Workers, a),
        CatWhat::Jobs(a) => super::cat_fleet::run(ctx, Listing::Jobs, a),
        CatWhat::Allocations(a) => super::cat_fleet::run(ctx, Listing::Allocations, a),
    }
}

fn cat_kv(ctx: &Context, a: KvArgs) -> anyhow::Result<ExitCode> {
    let (b, store) = if a.reveal { open_with_keyring(ctx)? } else { open(ctx)? };
    let snap = store.snapshot()?;
    let now = super::state::now()?;
    let hosts: BTreeSet<String> = a.workers.iter().map(|h| h.trim().to_string()).collect();
    for h in &hosts {
        if snap.live(&NamespaceKind::Worker(h.clone()).path()).next().is_none() {
            ctx.printer.warn(&format!("no worker `{h}` in the state (see `kvform cat workers`)"));
        }
    }
    let mut filter = NamespaceFilter::default();
    if !a.jobs.is_empty() {
        let allocations = job_allocations(ctx, &b, &snap, &a.jobs, &hosts)?;
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
                    created_at: e.created_at,
                    serial: e.serial,
                    writer: &e.writer,
                });
            }
            ctx.printer.out(&serde_json::to_string_pretty(&out)?);
        }
        Format::Table => {
            if rows.is_empty() {
                ctx.printer.info("no keys");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = vec![["NAMESPACE", "KEY", "VALUE", "VERSION", "SERIAL", "STATUS"].map(String::from)];
            for (ns, key, e) in &rows {
                let status = if e.deleted {
                    "deleted".to_string()
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
                    e.version.to_string(),
                    e.serial.to_string(),
                    status,
                ]);
            }
            ctx.printer.out(&table(&t, &[false, false, false, true, true, false]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// (job, host, the jobs it demands) for every live allocation namespace of `jobs` in the
/// state, on `hosts` when given. Fails with the workspace's diagnostics when it is invalid
/// (the demands would be unknown) and on a job the workspace does not have.
fn job_allocations(
    ctx: &Context,
    bucket: &Bucket,
    snap: &Snapshot,
    jobs: &[String],
    hosts: &BTreeSet<String>,
) -> anyhow::Result<Vec<(String, String, Vec<String>)>> {
    let loaded = workspace::load(&bucket.root);
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

/// The value as listings show it: tombstones empty, secrets masked unless a keyring is given.
pub(super) fn shown_value(ns: &str, key: &str, e: &Entry, reveal: Option<&Keyring>) -> anyhow::Result<String> {
    if e.deleted {
        return Ok(String::new());
    }
    if !is_secret_key(ns, key) {
        return Ok(e.value.clone());
    }
    match reveal {
        Some(ring) => Ok(ring.open(ns, key, e.version, &e.value)?.to_string()),
        None => Ok(SENSITIVE.to_string()),
    }
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

/// Columns padded to their widest cell (by characters); `right[i]` right-aligns column i.
pub(super) fn table<const N: usize>(rows: &[[String; N]], right: &[bool; N]) -> String {
    let mut width = [0usize; N];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = " ".repeat(width[i] - c.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right[i] {
                line.push_str(&pad);
                line.push_str(c);
            } else {
                line.push_str(c);
                if i + 1 < N {
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
