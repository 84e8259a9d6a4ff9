//! `kvform health [--jobs a,b]`: run the `health_check` hooks of the listed (or all) jobs on
//! their active allocations and print one row per hook.
//!
//! Read-only by construction: the hook API serves a [`ReadOnlyStore`] over the committed
//! state (no write lock, so it also works while an apply runs) and the access table refuses
//! every write from a `health_check` hook (403). Every hook runs, even after a failure, so
//! the table is complete; exit 1 when any failed. Logs go to
//! `logs/<serial>/<job>/<command>@<host>.log` (the current serial).

use super::Context;
use super::output::table;
use super::pipeline::{Loaded, check_job, load_for_hooks, print_failures, seconds};
use crate::hooks::api::{ApiConfig, ApiServer, SharedStore, Topology};
use crate::hooks::runner::{self, HookOutcome, HookStatus};
use crate::hooks::steps_impl::{HookTargets, Order, run_step};
use crate::hooks::txn_store::ReadOnlyStore;
use crate::workspace::types::Event;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Run the health_check hooks of every job (or the listed ones) on their active
/// allocations and print JOB HOST COMMAND STATUS DURATION, sorted. Exit 1 if any fails.
///
/// Health checks only read the store; a write attempt is refused (HTTP 403).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform health\n  kvform health --jobs api,frontend\n  \
kvform -C ./bucket health --jobs database || echo unhealthy")]
pub struct Args {
    /// Only these jobs (comma-separated). Default: every job with a health_check command.
    #[arg(long, value_delimiter = ',', value_name = "JOBS")]
    jobs: Vec<String>,
}

/// How a hook ended, in a table cell.
fn status(o: &HookOutcome) -> String {
    match &o.status {
        HookStatus::Exited(0) => "ok".into(),
        HookStatus::Exited(c) => format!("failed (exit {c})"),
        HookStatus::Signaled(s) => format!("failed (signal {s})"),
        HookStatus::TimedOut(t) => format!("timed out ({}s)", t.as_secs()),
        HookStatus::FailedToStart(_) => "could not start".into(),
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let Loaded { session, desired, store } = load_for_hooks(ctx)?;
    let (bucket, settings, now) = (&session.bucket, &session.settings, session.now);
    let mut jobs: Vec<String> = args.jobs.iter().map(|j| j.trim().to_string()).filter(|j| !j.is_empty()).collect();
    for j in &jobs {
        check_job(&desired, j)?;
    }
    jobs.sort();
    jobs.dedup();
    let listed = !jobs.is_empty();
    if !listed {
        jobs = desired.jobs.keys().cloned().collect();
    }
    let timeout = Duration::from_secs(settings.hook_timeout_secs);
    let targets = HookTargets::new(&bucket.root, &desired, timeout, now, |keys| store.live_values(keys))?;
    let serial = store.meta()?.serial;
    let log_dir = runner::log_dir(&bucket.root, serial);

    let mut work: Vec<(String, Vec<String>)> = Vec::new();
    for job in &jobs {
        let commands: Vec<String> = targets.commands(job, Event::HealthCheck).into_iter().map(String::from).collect();
        if commands.is_empty() {
            if listed {
                ctx.printer.warn(&format!("job {job} has no health_check command; nothing to check"));
            }
            continue;
        }
        if targets.active_hosts(job).is_empty() {
            ctx.printer.warn(&format!("job {job} has no active allocation; its health check did not run"));
            continue;
        }
        work.push((job.clone(), commands));
    }
    if work.is_empty() {
        ctx.printer.info("No health checks to run (no job has a command with \"health_check\" in executed_on).");
        return Ok(ExitCode::SUCCESS);
    }

    let read_only: SharedStore = Arc::new(Mutex::new(ReadOnlyStore::new(store, now)));
    let server =
        ApiServer::start(ApiConfig::for_port(settings.api_port), read_only, Topology::from_jobs(&desired.jobs))?;
    let api = server.handle();
    let mut outcomes = Vec::new();
    for (job, commands) in &work {
        let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
        let hosts = targets.active_hosts(job);
        outcomes.extend(run_step(
            &targets,
            &api,
            &log_dir,
            job,
            &commands,
            Event::HealthCheck,
            hosts,
            Order::Sequential,
            false,
        ));
    }
    server.shutdown();

    let mut rows: Vec<[String; 5]> = outcomes
        .iter()
        .map(|o| [o.job.clone(), o.host.clone(), o.command.clone(), status(o), seconds(o.duration)])
        .collect();
    rows.sort();
    rows.insert(0, ["JOB", "HOST", "COMMAND", "STATUS", "DURATION"].map(String::from));
    ctx.printer.out(&table(&rows, &[false, false, false, false, true]));
    let failed = outcomes.iter().filter(|o| !o.success()).count();
    if failed == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    print_failures(ctx, &outcomes);
    ctx.printer.error(&format!("{failed} of {} health checks failed", outcomes.len()));
    Ok(ExitCode::from(1))
}
