//! `kvform gc [--retain-days N] [--dry-run]`.

use super::Context;
use super::session::{DEFAULT_LOCK_TIMEOUT, Session, lock_timeout};
use crate::state::ApplyRecord;
use std::process::ExitCode;

/// Remove state rows nobody needs: history beyond max_versions or older than the retention
/// window, keys tombstoned longer ago than the window, and the rows of removed allocations.
/// The latest live version of a key is never removed.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform gc --dry-run\n  kvform gc --retain-days 90")]
pub struct Args {
    /// The retention window in days.
    #[arg(long, default_value_t = 30, value_name = "N")]
    retain_days: u64,
    /// Print what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Wait this long for a running kvform to finish (0 = fail at once).
    #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    lock_timeout: String,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let now = session.now;
    let mut txn = session.begin_write(session.open_state()?, "gc", lock_timeout(&args.lock_timeout)?)?;
    let report = txn.gc(args.retain_days, now)?;
    let mut out = String::new();
    for i in &report.items {
        out += &format!("- {} {}: {} row(s), {}\n", i.namespace, i.key, i.rows, i.reason.as_str());
    }
    let verb = if args.dry_run { "would remove" } else { "removed" };
    out += &format!("{verb} {} row(s) of {} key(s)\n", report.rows(), report.items.len());
    if args.dry_run {
        txn.rollback()?;
    } else {
        txn.commit(ApplyRecord::new("gc", now))?;
    }
    ctx.printer.out(&out);
    Ok(ExitCode::SUCCESS)
}
