//! `kvform apply [FILE]`: plan (or read a saved plan), confirm, execute, report.
//!
//! - The write lock is taken before the state is read and held for the whole run, so the
//!   plan shown is exactly what is applied; `--lock-timeout` (default 0: fail at once,
//!   naming the holder) waits for another writer instead.
//! - Without FILE: plan against the locked state, show it, ask for `yes` (refused without a
//!   terminal on stdin unless `--auto-approve`). With FILE: no prompt; the plan is refused
//!   when its lineage, base serial, kvform version or workspace digest no longer match;
//!   the desired state is derived again from the workspace (the digest guarantees it is the
//!   one the plan was made from).
//! - A bucket without state gets one (and its key, if missing) before planning.
//! - After the commit, `post_build` hooks run in a follow-up transaction; their failure
//!   fails the command, not the committed apply.

use super::Context;
use super::pipeline::{self, LoadedBucket};
use super::plan_files;
use super::progress::Lines;
use super::session::lock_timeout;
use crate::apply::{self, ApplyOptions, ApplyReport, HookSteps};
use crate::hooks::runner::HookOutcome;
use crate::hooks::steps_impl::{HookTargets, RuntimeHooks};
use crate::model::types::Desired;
use crate::plan::{PlanOptions, TextOptions, check_applicable, render_text};
use crate::state::WriteTxn;
use anyhow::bail;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Apply the workspace to the state (or apply a saved plan).
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  kvform apply\n  kvform apply --auto-approve\n  \
kvform plan --out plan.json && kvform apply plan.json\n  kvform apply --atomic --lock-timeout 5m")]
pub struct Args {
    /// A plan saved by `kvform plan --out FILE` (applied without a prompt); relative to -C DIR.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    auto_approve: bool,
    /// Roll back everything on the first failing job instead of committing what succeeded.
    #[arg(long)]
    atomic: bool,
    /// Wait this long for another kvform holding the state's write lock (0 = fail at once).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    lock_timeout: String,
    /// Also purge secrets/job/<job> and hook-written vars of jobs with no active allocation
    /// (ignored with FILE: the saved plan's options apply).
    #[arg(long)]
    purge_secrets_kv: bool,
    /// Apply only this job's namespaces (and the bucket-level changes they depend on);
    /// repeatable. Not for routine use (with FILE: the saved plan's targets apply).
    #[arg(long = "target", value_name = "JOB", value_delimiter = ',', conflicts_with = "file")]
    targets: Vec<String>,
    /// Read and compare every key of the state, not only the namespaces that may have
    /// changed since the last apply.
    #[arg(long)]
    refresh: bool,
}

const NO_TTY: &str = "apply needs confirmation, but stdin is not a terminal\n  help: pass --auto-approve, or apply a reviewed plan: `kvform plan --out plan.json && kvform apply plan.json`";

const PROMPT: &str = "Do you want to perform these actions? Only 'yes' will be accepted:";

/// The hook runtime the apply uses: the loopback API plus hook processes. Allocation versions
/// are read here, before the executor writes them, so hooks see CURRENT_VERSION -> NEW_VERSION.
fn hook_steps(
    lines: Lines,
    verbose: bool,
    loaded: &LoadedBucket,
    plan: &crate::plan::Plan,
    desired: &Desired,
    txn: &mut WriteTxn,
    now: i64,
) -> anyhow::Result<Box<dyn HookSteps>> {
    let settings = loaded.settings();
    let timeout = std::time::Duration::from_secs(settings.hook_timeout_secs);
    // Hooks run for the jobs the plan rolls out (post_build too: it follows the applied ones)
    // that have commands at all: a target costs a point read of the allocation's version.
    let rolled: std::collections::BTreeSet<&str> =
        plan.rollout.iter().flat_map(|w| &w.jobs).map(|j| j.job.as_str()).collect();
    let bucket_root = &loaded.session.bucket.root;
    let targets = HookTargets::for_jobs(
        bucket_root,
        desired,
        timeout,
        now,
        |job| rolled.contains(job) && desired.jobs.get(job).is_some_and(|j| !j.commands.is_empty()),
        |keys| txn.live_values(keys),
    )?;
    let hooks = RuntimeHooks::with_targets(targets, desired, settings.api_port, now)?.with_reporter(Box::new(
        move |o: &HookOutcome| {
            lines.line(&format!("  {} hook {} ({:.1}s)", o.event, o.summary(), o.duration.as_secs_f64()));
            if verbose {
                o.output.iter().for_each(|l| lines.line(&format!("    {l}")));
            }
        },
    ));
    Ok(Box::new(hooks))
}

/// `apply`, with SIGINT/SIGTERM handled: hooks stopped, the transaction rolled back, the
/// lock released, exit 130/143 ([`super::session::handle_interrupts`]).
pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let p = &ctx.printer;
    super::session::handle_interrupts(super::printer::Printer::new(p.color_stderr(), p.verbose, p.quiet));
    let result = apply(ctx, args);
    // Everything of the apply (its transaction, its lock) is dropped by now.
    super::session::wait_if_interrupted();
    result
}

fn apply(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let timeout = lock_timeout(&args.lock_timeout)?;
    let mut loaded = pipeline::load(ctx)?;
    let saved = args.file.as_ref().map(|f| plan_files::read(&ctx.dir.join(f))).transpose()?;
    loaded.targets = saved.as_ref().map_or_else(|| args.targets.clone(), |s| s.targets.clone());
    // Refused before anything is created; with a state, only once the plan has changes.
    let cannot_prompt = saved.is_none() && !args.auto_approve && !std::io::stdin().is_terminal();
    let state = loaded.open_state()?;
    if cannot_prompt && state.is_none() {
        bail!(NO_TTY);
    }
    let mut created = None;
    let store = match state {
        Some(s) => s,
        None if saved.is_some() => bail!(
            "no state at {}: the saved plan was made for another state\n  help: run `kvform plan --out FILE` for this bucket",
            loaded.state_file().display()
        ),
        None => {
            let (store, files) = loaded.create_state(ctx)?;
            created = Some(files);
            store
        }
    };
    let mut txn = loaded.begin_write(store, "apply", timeout)?;

    let (plan, desired, basis) = match saved {
        Some(saved) => {
            let snap = txn.lean_snapshot()?;
            check_applicable(&saved, snap.lineage, snap.serial, &loaded.digest()?)?;
            // Same lineage, serial and workspace must give the same plan. If it does not, the
            // file was edited (a plan file is data, not authority) or a TTL expired since.
            let again = loaded.plan_in(ctx, &mut txn, &saved.options, pipeline::read_mode(args.refresh))?;
            if again.plan.changes != saved.plan.changes || again.plan.rollout != saved.plan.rollout {
                bail!(
                    "Saved plan does not match what this workspace and state produce now: the file was edited, or a key's TTL expired since it was made\n  help: run `kvform plan --out FILE` again and apply that"
                );
            }
            (saved.plan, again.desired, again.basis)
        }
        None => {
            let opts = PlanOptions { purge_secrets_kv: args.purge_secrets_kv };
            let planned = loaded.plan_in(ctx, &mut txn, &opts, pipeline::read_mode(args.refresh))?;
            loaded.warn_if_targeted(ctx);
            let text = render_text(&planned.plan, TextOptions { color: ctx.printer.color_stdout(), detail: false });
            ctx.printer.out(&text);
            if !planned.plan.is_empty() && cannot_prompt {
                bail!(NO_TTY);
            }
            if !planned.plan.is_empty() && !args.auto_approve && !confirm()? {
                drop(txn);
                if let Some(files) = created {
                    files.discard();
                    ctx.printer.info("Removed the state and key this run had created.");
                }
                ctx.printer.out("Apply cancelled.");
                return Ok(ExitCode::from(1));
            }
            (planned.plan, planned.desired, planned.basis)
        }
    };
    let mut txn = txn;
    // A targeted apply leaves other jobs' changes pending: it records no workspace digest,
    // so the next plan cannot take the workspace as applied and skip projecting it.
    let digest = if loaded.targets.is_empty() { loaded.digest().ok() } else { None };
    txn.stage_fingerprints(&basis, plan.changed_namespaces(), crate::apply::APPLY_WRITER, digest.as_deref())?;
    if plan.is_empty() {
        // Nothing to write, but what this plan verified is recorded, so the next plan
        // need not read it again (no serial change, no audit record).
        if !basis.read.is_empty() {
            txn.commit(crate::state::ApplyRecord::new("apply", loaded.session.now))?;
        }
        ctx.printer.out("Apply complete! Resources: 0 added, 0 changed, 0 destroyed.");
        return Ok(ExitCode::SUCCESS);
    }
    let desired = desired.expect("a plan with changes was made from a desired state");

    let now = loaded.session.now;
    // Certificates the plan shows as `(known after apply)` are made now, in the transaction.
    let plan = apply::certs::materialise(plan, &desired, &loaded.session.bucket, now)?;
    let opts = ApplyOptions { atomic: args.atomic, ..ApplyOptions::new(now) };
    let (mut progress, lines) = super::progress::for_printer(&ctx.printer);
    let mut hooks = hook_steps(lines, ctx.printer.verbose, &loaded, &plan, &desired, &mut txn, now)?;
    let report = apply::execute(txn, &plan, &desired, hooks.as_mut(), progress.as_mut(), &opts)?;

    let mut ok = report_failures(ctx, &report);
    if !report.rolled_back && apply::has_post_build(&plan, &report.applied) {
        let store = loaded.open_state()?.expect("the state exists after a commit");
        let txn = loaded.begin_write(store, "apply post_build", timeout)?;
        let pb = apply::post_build(txn, &plan, &desired, &report.applied, hooks.as_mut(), progress.as_mut(), &opts)?;
        for f in &pb.failed {
            ok = false;
            ctx.printer.error(&format!("post_build of {} failed (the apply stays committed): {}", f.job, f.message));
            print_output(ctx, &f.output);
        }
    }
    let counts =
        format!("Resources: {} added, {} changed, {} destroyed.", report.added, report.changed, report.destroyed);
    if report.rolled_back {
        ctx.printer.out("Apply failed: --atomic rolled back every change; nothing was committed.");
        return Ok(ExitCode::from(1));
    }
    if !loaded.targets.is_empty() {
        ctx.printer.warn(
            "applied changes may be incomplete: the plan was made with --target, so changes the workspace asks for outside the targeted jobs were not applied\n  help: run `kvform plan` to see what is still pending",
        );
    }
    if report.failed.is_empty() && report.skipped.is_empty() {
        ctx.printer.out(&format!("Apply complete! {counts}"));
    } else {
        ctx.printer.out(&partial_summary(&plan, &report));
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The last line of an apply that committed only part of the plan: which jobs were rolled
/// back (failed, or skipped because they demand a failed job), what was kept, and the counts
/// of what was kept next to the plan's — "0 changed" alone read as if nothing happened.
fn partial_summary(plan: &crate::plan::Plan, report: &ApplyReport) -> String {
    let mut rolled_back: Vec<String> =
        report.failed.iter().map(|f| format!("{} (failed in {})", f.job, f.event.as_str())).collect();
    rolled_back.extend(report.skipped.iter().map(|s| format!("{} (skipped: it demands {})", s.job, s.because)));
    let bucket_level =
        plan.changes.iter().any(|c| crate::kv::NamespaceKind::parse(&c.namespace).is_none_or(|k| k.job().is_none()));
    let mut kept: Vec<String> = report.applied.clone();
    if bucket_level {
        kept.push("the bucket-level changes".to_string());
    }
    let kept = if kept.is_empty() { "nothing".to_string() } else { kept.join(", ") };
    let s = &plan.summary;
    format!(
        "Apply partially complete! Rolled back: {}. Kept: {kept}. Resources: {} added, {} changed, {} destroyed (of the plan's {} to add, {} to change, {} to destroy).",
        rolled_back.join(", "),
        report.added,
        report.changed,
        report.destroyed,
        s.add,
        s.change,
        s.destroy
    )
}

/// Print failed and skipped jobs to stderr; `true` when there were none.
fn report_failures(ctx: &Context, report: &ApplyReport) -> bool {
    for f in &report.failed {
        ctx.printer.error(&format!("job {} failed in {}: {}", f.job, f.event.as_str(), f.message));
        print_output(ctx, &f.output);
    }
    for s in &report.skipped {
        ctx.printer.error(&format!("job {} skipped: it demands {}, which did not apply", s.job, s.because));
    }
    for w in &report.warnings {
        ctx.printer.warn(w);
    }
    report.failed.is_empty() && report.skipped.is_empty()
}

fn print_output(ctx: &Context, lines: &[String]) {
    for l in lines {
        ctx.printer.raw_stderr(&format!("    | {l}\n"));
    }
}

/// Ask on stdin; only `yes` confirms.
fn confirm() -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    write!(out, "\n{PROMPT} ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
