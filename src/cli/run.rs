//! `kvform run JOB COMMAND [--workers h1,h2]`: run a job's `cli` hook on its active
//! allocations, by hand. The hooks' writes go into one write transaction (taken with the
//! state's write lock, operation `run`) that commits when every hook succeeded (serial + 1
//! if anything changed, audit record `run`) and is rolled back when one fails.
//!
//! Hosts run one after the other, in fleet order or in the order given with `--workers`;
//! the first failure stops the run. Logs go to `logs/<serial>/<job>/<command>@<host>.log`
//! (the serial this run commits as).

use super::Context;
use super::pipeline::{Loaded, check_job, load_for_hooks, print_failures, seconds};
use super::session::{DEFAULT_LOCK_TIMEOUT, lock_timeout};
use crate::diag::suggest::hint_or_list;
use crate::hooks::steps_impl::{Order, RuntimeHooks};
use crate::model::types::DesiredJob;
use crate::state::ApplyRecord;
use crate::workspace::types::Event;
use anyhow::{anyhow, bail};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Run a job's command (one with "cli" in executed_on) on the job's active allocations.
///
/// The hook can read and write the store through the hook API like any hook; its writes
/// are committed when it succeeds on every worker and discarded when it fails anywhere.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform run database command_backup\n  \
kvform run api command_rotate_token --workers 10.0.0.1,10.0.0.2\n  \
kvform -C ./bucket run api command_reindex --lock-timeout 5m")]
pub struct Args {
    /// The job, as named under workspace/jobs/.
    job: String,
    /// The command, e.g. command_backup (the `command_` prefix may be left out).
    command: String,
    /// Run only on these workers (comma-separated hosts, each with an active allocation of
    /// the job), in this order. Default: every active allocation, in fleet order.
    #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
    workers: Vec<String>,
    /// Wait this long for a running kvform to finish (0 = fail at once).
    #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    lock_timeout: String,
}

/// The full command name, checked to exist and to run on `cli`.
fn cli_command(job: &DesiredJob, command: &str) -> anyhow::Result<String> {
    let names: Vec<&str> = job.commands.keys().map(String::as_str).collect();
    let name = if names.contains(&command) || command.starts_with("command_") {
        command.to_string()
    } else {
        format!("command_{command}")
    };
    let (job, job_commands) = (&job.name, &job.commands);
    let Some(events) = job_commands.get(&name).map(|c| &c.executed_on) else {
        let hint = hint_or_list(&name, names.iter().copied(), "commands of the job");
        bail!("job {job} has no command {command:?}\n  help: {hint}");
    };
    if !events.contains(&Event::Cli) {
        let on: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        bail!(
            "{job}/{name} does not run on `cli` (executed_on: {})\n  help: add \"cli\" to commands.{name}.executed_on \
in workspace/jobs/{job}/manifest.json to allow `kvform run`",
            if on.is_empty() { "nothing".to_string() } else { on.join(", ") }
        );
    }
    Ok(name)
}

/// The hosts to run on: `--workers` (checked, deduplicated) or every active allocation.
fn hosts(job: &DesiredJob, workers: &[String]) -> anyhow::Result<Vec<String>> {
    let active = &job.active_hosts;
    let job = &job.name;
    if active.is_empty() {
        bail!(
            "job {job} has no active allocation to run on\n  help: check its selectors against the worker labels, and disabled.json"
        );
    }
    if workers.is_empty() {
        return Ok(active.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for w in workers.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        if !active.iter().any(|a| a == w) {
            bail!(
                "{w} is not an active allocation of job {job}\n  help: its active allocations: {}",
                active.join(", ")
            );
        }
        if !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    }
    Ok(out)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let Loaded { session, desired, store } = load_for_hooks(ctx)?;
    let (bucket, settings, now) = (&session.bucket, &session.settings, session.now);
    check_job(&desired, &args.job)?;
    let command = cli_command(&desired.jobs[&args.job], &args.command)?;
    let hosts = hosts(&desired.jobs[&args.job], &args.workers)?;
    let timeout = lock_timeout(&args.lock_timeout)?;
    let txn = session.begin_write(store, "run", timeout)?;
    let serial = txn.next_serial();
    let txn = Arc::new(Mutex::new(txn));
    let mut hooks = RuntimeHooks::start(&bucket.root, &desired, txn.clone(), settings, now)?;
    let result =
        hooks.run_commands(&txn, serial, &args.job, &[command.as_str()], Event::Cli, &hosts, Order::Sequential);
    let outcomes = hooks.outcomes().to_vec();
    hooks.shutdown();
    let txn = Arc::try_unwrap(txn)
        .map_err(|_| anyhow!("internal error: the hook API still holds the transaction"))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    for o in &outcomes {
        let status = if o.success() { "ok" } else { "FAILED" };
        ctx.printer.out(&format!("{status}  {}/{}@{}  {}\n", o.job, o.command, o.host, seconds(o.duration)));
        if o.success() {
            for line in &o.output {
                ctx.printer.detail(line);
            }
        }
    }
    match result {
        Ok(()) => {
            let committed = txn.commit(ApplyRecord::new("run", now))?;
            if committed == serial {
                ctx.printer.info(&format!("{}/{command}: committed the hooks' writes (serial {committed})", args.job));
            } else {
                ctx.printer.info(&format!("{}/{command}: the hooks changed nothing", args.job));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            txn.rollback()?;
            print_failures(ctx, &outcomes);
            ctx.printer.error(&format!("{}; the hooks' writes were rolled back", failure.message));
            Ok(ExitCode::from(1))
        }
    }
}
