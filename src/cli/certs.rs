//! `kvform certs list` and `kvform certs rotate-ca` (SPEC §8).
//!
//! `list` reads the state (never the private keys): every live `certs/<name>.crt` of an
//! allocation namespace with its subject, SANs, not-after and days left at `now`
//! (`KVFORM_NOW` honoured). `rotate-ca` writes a new CA (CN = the bucket id; the previous
//! files are kept as `ca.crt.old` / `ca.key.old`); the next plan re-issues every certificate
//! ("signed by another CA").

use super::Context;
use super::output::{Format, table};
use super::session::Session;
use crate::certs::inspect::{date, read};
use crate::kv::{CERTS_PREFIX, NamespaceKind};
use serde::Serialize;
use std::process::ExitCode;

/// The bucket CA and the certificates it issued to allocations.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CertsCommand {
    /// Every allocation's certificates as the state holds them: subject, SANs, not-after, days left.
    #[command(after_help = "Examples:\n  kvform certs list\n  kvform certs list --format json")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Make a new bucket CA (secrets/ca.crt, secrets/ca.key); the next plan re-issues every
    /// certificate. The previous CA is kept as secrets/ca.crt.old and secrets/ca.key.old.
    #[command(after_help = "Example:\n  kvform certs rotate-ca && kvform plan")]
    RotateCa,
}

#[derive(Serialize)]
struct Listed {
    namespace: String,
    job: String,
    host: String,
    name: String,
    subject: String,
    sans: Vec<String>,
    /// RFC 3339.
    not_after: String,
    days_left: i64,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        CertsCommand::List { format } => list(ctx, format),
        CertsCommand::RotateCa => rotate(ctx),
    }
}

fn list(ctx: &Context, format: Format) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let store = session.open_state()?;
    let snap = store.snapshot()?;
    let now = session.now;
    let mut rows = Vec::new();
    for (ns, keys) in &snap.entries {
        let Some(NamespaceKind::Allocation { job, host }) = NamespaceKind::parse(ns) else { continue };
        for (key, e) in keys.iter().filter(|(_, e)| e.is_live()) {
            let Some(name) = key.strip_prefix(CERTS_PREFIX).and_then(|k| k.strip_suffix(".crt")) else { continue };
            let (subject, sans, not_after, days_left) = match read(&e.value) {
                Ok(i) => (
                    i.common_name,
                    i.sans,
                    crate::clock::format_time(i.not_after),
                    (i.not_after - now).div_euclid(86_400),
                ),
                Err(reason) => (format!("(unreadable: {reason})"), Vec::new(), String::new(), 0),
            };
            rows.push(Listed {
                namespace: ns.to_string(),
                job: job.clone(),
                host: host.clone(),
                name: name.to_string(),
                subject,
                sans,
                not_after,
                days_left,
            });
        }
    }
    match format {
        Format::Json => ctx.printer.out(&serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            if rows.is_empty() {
                ctx.printer.info("no certificates (declare `certs` in a job's manifest.json and run `kvform apply`)");
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = vec![["JOB", "HOST", "NAME", "SUBJECT", "SANS", "NOT AFTER", "DAYS LEFT"].map(String::from)];
            for r in &rows {
                let day = if r.not_after.is_empty() { String::new() } else { r.not_after[..10].to_string() };
                t.push([
                    r.job.clone(),
                    r.host.clone(),
                    r.name.clone(),
                    r.subject.clone(),
                    r.sans.join(","),
                    day,
                    r.days_left.to_string(),
                ]);
            }
            ctx.printer.out(&table(&t, &[false, false, false, false, false, false, true]));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate(ctx: &Context) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let store = session.open_state()?;
    let bucket_id = store.meta()?.bucket_id.to_string();
    let now = session.now;
    crate::certs::ca::rotate(&session.bucket, &bucket_id, now)?;
    ctx.printer.out(&format!(
        "made a new bucket CA (CN {bucket_id}, valid until {}); the previous one is kept as secrets/ca.crt.old and secrets/ca.key.old",
        date(now + crate::certs::ca::CA_DAYS * 86_400)
    ));
    ctx.printer.info(
        "Next: `kvform plan` shows every certificate re-issued (signed by another CA); `kvform apply` issues them.",
    );
    Ok(ExitCode::SUCCESS)
}
