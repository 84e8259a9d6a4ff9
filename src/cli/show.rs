//! `kvform show [FILE]`.
//!
//! With FILE: render a saved plan (text, markdown or JSON) without touching the bucket.
//! What the plan was made from (lineage, base serial, kvform version) goes to stderr so
//! stdout stays the same as `kvform plan` printed.
//!
//! Without FILE (like `terraform show`): the current state, every live key in the plan's
//! notation — namespaces sorted and aligned, `key = "value"` quoted and escaped, secrets
//! `(sensitive)`, a `# expires at …` comment on keys with a TTL — then a summary line.
//! `--json` prints the same as data (`format_version`, `lineage`, `serial`, `values[]`; a
//! secret's `value` is `null` with `sensitive: true`). Read-only: the state is never
//! written and no lock is taken.

use super::Context;
use super::output::{OutputArgs, PlanFormat as Format};
use super::plan_files;
use super::session::Session;
use crate::clock::format_time;
use crate::kv::{Entry, Snapshot, is_secret_key};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a plan saved by `kvform plan --out FILE`, or without FILE the current state.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform show                    the current state, in the plan's notation\n  \
kvform show --json | jq '.values[] | select(.namespace == \"vars/bucket\")'\n  \
kvform show plan.json\n  kvform show plan.json --json | jq .summary")]
pub struct Args {
    /// A saved plan (relative to -C DIR); without it, the current state.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let Some(file) = &args.file else { return show_state(ctx, &args.output) };
    let saved = plan_files::read(&ctx.dir.join(file))?;
    ctx.printer.info(&format!(
        "Saved plan for state lineage {} at serial {}, made by kvform {}{}{}",
        saved.lineage,
        saved.base_serial,
        saved.kvform_version,
        if saved.options.purge_secrets_kv { " with --purge-secrets-kv" } else { "" },
        if saved.targets.is_empty() { String::new() } else { format!(" with --target {}", saved.targets.join(",")) }
    ));
    let source = super::output::PlanSource {
        bucket_id: None,
        dir: Some(ctx.dir.clone()),
        full_plan: Some(format!("`kvform show {}`", file.display())),
    };
    args.output.print(ctx, &saved.plan, &source)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct StateJson<'a> {
    format_version: &'static str,
    lineage: String,
    serial: u64,
    values: Vec<ValueJson<'a>>,
}

#[derive(Serialize)]
struct ValueJson<'a> {
    namespace: &'a str,
    key: &'a str,
    /// `null` for a secret.
    value: Option<&'a str>,
    sensitive: bool,
    version: u64,
    created_at: String,
    expires_at: Option<String>,
}

fn show_state(ctx: &Context, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let store = session.open_state()?;
    let meta = store.meta()?;
    let snap = store.snapshot()?;
    let now = session.now;
    let live: Vec<(&str, &str, &Entry)> = snap
        .entries
        .iter()
        .flat_map(|(ns, keys)| keys.iter().map(move |(k, e)| (ns.as_str(), k.as_str(), e)))
        .filter(|(_, _, e)| e.is_live())
        .collect();
    let text = match output.format() {
        Format::Json => {
            let values = live
                .iter()
                .map(|(ns, key, e)| {
                    let sensitive = is_secret_key(ns, key);
                    ValueJson {
                        namespace: ns,
                        key,
                        value: (!sensitive).then_some(e.value.as_str()),
                        sensitive,
                        version: e.version,
                        created_at: format_time(e.created_at),
                        expires_at: e.expires_at().map(format_time),
                    }
                })
                .collect();
            let doc = StateJson { format_version: "1", lineage: meta.lineage.to_string(), serial: meta.serial, values };
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        Format::Text => state_text(&snap, &live, meta.serial, now),
        Format::Markdown => format!("```\n{}```\n", state_text(&snap, &live, meta.serial, now)),
    };
    ctx.printer.out(&text);
    Ok(ExitCode::SUCCESS)
}

/// The plan's listing without symbols: `namespace  key = "value"`, the namespace column
/// padded to the widest, comments aligned one column after the longest commented row.
fn state_text(snap: &Snapshot, live: &[(&str, &str, &Entry)], serial: u64, now: i64) -> String {
    if live.is_empty() {
        return format!("The state is empty (serial {serial}).\n");
    }
    let ns_width = live.iter().map(|(ns, _, _)| ns.chars().count()).max().unwrap_or(0);
    let rows: Vec<(String, Option<String>)> = live
        .iter()
        .map(|(ns, key, e)| {
            let value = if is_secret_key(ns, key) { "(sensitive)".to_string() } else { format!("{:?}", e.value) };
            let comment = e
                .expires_at()
                .map(|t| format!("# {} at {}", if e.is_expired(now) { "expired" } else { "expires" }, format_time(t)));
            (format!("  {ns:<ns_width$}  {key} = {value}"), comment)
        })
        .collect();
    let col = rows.iter().filter(|(_, c)| c.is_some()).map(|(r, _)| r.chars().count()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (row, comment) in rows {
        match comment {
            Some(c) => {
                let pad = col - row.chars().count();
                out.push_str(&format!("{row}{}{c}\n", " ".repeat(pad)));
            }
            None => {
                out.push_str(row.trim_end());
                out.push('\n');
            }
        }
    }
    let namespaces = snap.live_namespaces().count();
    out.push_str(&format!("\nState: {} keys in {namespaces} namespaces (serial {serial}).\n", live.len()));
    out
}
