//! `kvform cat workers`, `cat jobs`, `cat allocations`: the fleet as the state holds it
//! (what the last apply wrote), one row per worker, job or allocation.
//!
//! Read from the live `maand/*` keys rather than from the workspace, so they answer "what
//! is deployed", not "what will be". A removed allocation has no namespace and so no row;
//! an allocation whose host is not in its job's `workers` list is disabled.

use super::Context;
use super::output::{Format, table};
use super::session::Session;
use crate::kv::{NamespaceKind, Snapshot};
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Which listing.
#[derive(Debug, Clone, Copy)]
pub(super) enum Listing {
    Workers,
    Jobs,
    Allocations,
}

/// Flags of the three listings.
#[derive(clap::Args, Debug)]
pub(super) struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Live keys of one namespace, by key.
fn keys<'a>(snap: &'a Snapshot, ns: &str) -> BTreeMap<&'a str, &'a str> {
    snap.live(ns).map(|(k, e)| (k.as_str(), e.value.as_str())).collect()
}

/// One row per listed thing: column name -> value, in column order.
type Row = Vec<(&'static str, String)>;

fn rows(snap: &Snapshot, listing: Listing) -> Vec<Row> {
    let mut out: Vec<((i64, Vec<String>), Row)> = Vec::new();
    for ns in snap.live_namespaces() {
        let Some(kind) = NamespaceKind::parse(ns) else { continue };
        let kv = keys(snap, ns);
        let get = |k: &str| kv.get(k).copied().unwrap_or("").to_string();
        match (listing, &kind) {
            (Listing::Workers, NamespaceKind::Worker(host)) => {
                let position = get("position");
                let sort = (position.parse().unwrap_or(i64::MAX), vec![host.clone()]);
                out.push((
                    sort,
                    vec![
                        ("host", host.clone()),
                        ("position", position),
                        ("labels", get("labels")),
                        ("memory_mb", get("worker_memory_mb")),
                        ("cpu_mhz", get("worker_cpu_mhz")),
                        ("jobs", get("jobs")),
                    ],
                ));
            }
            (Listing::Jobs, NamespaceKind::Job(job)) => out.push((
                (0, vec![job.clone()]),
                vec![
                    ("job", job.clone()),
                    ("version", get("version")),
                    ("wave", get("deployment_seq")),
                    ("workers", get("workers_length")),
                    ("memory", get("memory")),
                    ("cpu", get("cpu")),
                    ("selectors", get("selectors")),
                ],
            )),
            (Listing::Allocations, NamespaceKind::Allocation { job, host }) => {
                let active = snap
                    .get(&NamespaceKind::Job(job.clone()).path(), "workers")
                    .filter(|e| e.is_live())
                    .is_some_and(|e| e.value.split(',').any(|h| h == host));
                out.push((
                    (0, vec![job.clone(), host.clone()]),
                    vec![
                        ("job", job.clone()),
                        ("host", host.clone()),
                        ("state", if active { "active" } else { "disabled" }.to_string()),
                        ("version", get("version")),
                        ("index", get(&format!("{job}_allocation_index"))),
                    ],
                ));
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, r)| r).collect()
}

pub(super) fn run(ctx: &Context, listing: Listing, a: ListArgs) -> anyhow::Result<ExitCode> {
    let store = Session::new(ctx)?.open_state()?;
    let rows = rows(&store.snapshot()?, listing);
    match a.format {
        Format::Json => {
            let objs: Vec<serde_json::Map<String, serde_json::Value>> = rows
                .iter()
                .map(|r| r.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect())
                .collect();
            ctx.printer.out(&(serde_json::to_string_pretty(&objs)? + "\n"));
        }
        Format::Table => {
            let Some(first) = rows.first() else {
                ctx.printer.info("nothing in the state yet (run `kvform apply`)");
                return Ok(ExitCode::SUCCESS);
            };
            let header: Vec<String> = first.iter().map(|(k, _)| k.to_uppercase()).collect();
            let mut cells: Vec<Vec<String>> = vec![header];
            cells.extend(rows.iter().map(|r| r.iter().map(|(_, v)| v.clone()).collect()));
            ctx.printer.out(&table_dyn(&cells));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// [`table`] for rows whose width is known only at run time (all left-aligned).
fn table_dyn(cells: &[Vec<String>]) -> String {
    const N: usize = 7;
    let fixed: Vec<[String; N]> =
        cells.iter().map(|r| std::array::from_fn(|i| r.get(i).cloned().unwrap_or_default())).collect();
    table(&fixed, &[false; N])
}
