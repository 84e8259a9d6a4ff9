//! `plan::diff` and the rollout, on Desired/Snapshot fixtures built in Rust.

mod plan_fixture;

use kvform::model::types::AllocState::{Active, Disabled, Removed};
use kvform::plan::{Action, BatchKind, Summary};
use kvform::workspace::types::Event;
use plan_fixture::{Fx, NOW, brief};

fn row(
    ns: &str,
    key: &str,
    action: &str,
    reason: Option<&str>,
    purge: bool,
) -> (String, String, String, Option<String>, bool) {
    (ns.into(), key.into(), action.into(), reason.map(str::to_string), purge)
}

#[test]
fn creates_updates_and_tombstones_synced_keys_sorted() {
    let plan = Fx::new()
        .want("vars/bucket", "log_level", "debug")
        .want("vars/bucket", "region", "eu")
        .want("maand/job/api", "workers", "10.0.0.1,10.0.0.2")
        .live("vars/bucket", "log_level", "info")
        .live("vars/bucket", "old", "x")
        .live("maand/worker/10.0.0.1/tags", "rack", "r1")
        .plan();
    assert_eq!(
        brief(&plan),
        vec![
            row("maand/job/api", "workers", "create", None, false),
            row("maand/worker/10.0.0.1/tags", "rack", "tombstone", Some("tag no longer in workers.json"), false),
            row("vars/bucket", "log_level", "update", None, false),
            row("vars/bucket", "old", "tombstone", Some("no longer in bucket.conf"), false),
            row("vars/bucket", "region", "create", None, false),
        ]
    );
    let upd = &plan.changes[2];
    assert_eq!(
        (upd.before.as_deref(), upd.after.as_ref().map(ToString::to_string).as_deref()),
        (Some("info"), Some("debug"))
    );
    assert_eq!(plan.changes[3].before.as_deref(), Some("x"));
    assert_eq!(plan.summary, Summary { add: 2, change: 1, destroy: 2 });
    assert_eq!(plan.meta.base_serial, 7);
    assert_eq!(plan.meta.lineage, plan_fixture::lineage());
}

#[test]
fn identical_value_after_trimming_is_no_change() {
    let plan = Fx::new().want("vars/bucket", "a", "  same \n").live("vars/bucket", "a", "same").plan();
    assert!(plan.is_empty(), "{:?}", plan.changes);
    assert_eq!(plan.summary, Summary::default());
    assert!(plan.rollout.is_empty());
}

#[test]
fn desired_value_is_written_trimmed() {
    let plan = Fx::new().want("vars/bucket", "a", "  v  ").plan();
    assert_eq!(plan.changes[0].after.as_ref().map(ToString::to_string).as_deref(), Some("v"));
}

#[test]
fn revival_of_a_tombstoned_key_is_a_create() {
    let plan = Fx::new().want("vars/bucket", "a", "v").tombstoned("vars/bucket", "a", "old").plan();
    assert_eq!(plan.changes.len(), 1);
    let c = &plan.changes[0];
    assert_eq!(c.action, Action::Create);
    assert_eq!(c.before, None);
    assert_eq!(c.reason.as_deref(), Some("revives a tombstoned key"));
    // A tombstoned key that is not desired stays as it is.
    assert!(Fx::new().tombstoned("vars/bucket", "b", "x").plan().is_empty());
}

#[test]
fn merged_namespace_keeps_hook_keys_and_hook_only_is_never_written() {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, false)])
        .want("vars/job/api", "from_vars_hcl", "1")
        .live("vars/job/api", "written_by_hook", "h")
        .want("secrets/job/api", "ignored", "x")
        .live("secrets/job/api", "token", "CIPHERTEXT")
        .plan();
    assert_eq!(brief(&plan), vec![row("vars/job/api", "from_vars_hcl", "create", None, false)]);
}

#[test]
fn job_removed_from_workspace_purges_every_namespace_of_the_job() {
    let r = Some("job removed from workspace");
    let plan = Fx::new()
        .removed_job("old")
        .live("maand/job/old", "name", "old")
        .live("maand/job/old/worker/10.0.0.3", "version", "1")
        .live("vars/bucket/job/old", "x", "1")
        .live("vars/job/old", "feature_x", "on")
        .live("secrets/job/old", "token", "CIPHERTEXT")
        .live("maand/job/older", "name", "older-is-another-job")
        .plan();
    assert_eq!(
        brief(&plan),
        vec![
            row("maand/job/old", "name", "tombstone", r, true),
            row("maand/job/old/worker/10.0.0.3", "version", "tombstone", r, true),
            row("maand/job/older", "name", "tombstone", Some("no longer derived from the job's manifest.json"), false),
            row("secrets/job/old", "token", "tombstone", r, true),
            row("vars/bucket/job/old", "x", "tombstone", r, true),
            row("vars/job/old", "feature_x", "tombstone", r, true),
        ]
    );
    let secret = &plan.changes[3];
    assert!(secret.before_sensitive && secret.before.is_none());
    // Removed jobs are in no wave: their purges go to the bucket-level step.
    assert!(plan.rollout.is_empty());
    assert_eq!(plan.bucket_step_namespaces().len(), 6);
}

#[test]
fn worker_removed_purges_worker_tags_and_its_allocations() {
    let r = Some("worker removed");
    let plan = Fx::new()
        .removed_worker("10.0.0.9")
        .job("api", 0, &[("10.0.0.1", Active, false)])
        .live("maand/worker/10.0.0.9", "worker_ip", "10.0.0.9")
        .live("maand/worker/10.0.0.9/tags", "rack", "r9")
        .live("maand/job/api/worker/10.0.0.9", "version", "1")
        .live("maand/job/api/worker/10.0.0.9", "api_allocation_index", "1")
        .live("maand/worker/10.0.0.1", "worker_ip", "10.0.0.1")
        .want("maand/worker/10.0.0.1", "worker_ip", "10.0.0.1")
        .plan();
    assert_eq!(
        brief(&plan),
        vec![
            row("maand/job/api/worker/10.0.0.9", "api_allocation_index", "tombstone", r, true),
            row("maand/job/api/worker/10.0.0.9", "version", "tombstone", r, true),
            row("maand/worker/10.0.0.9", "worker_ip", "tombstone", r, true),
            row("maand/worker/10.0.0.9/tags", "rack", "tombstone", r, true),
        ]
    );
}

#[test]
fn allocation_removed_purges_its_namespace_and_rolls_out_without_hooks() {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, false), ("10.0.0.2", Removed, false)])
        .command("api", "command_deploy", &[Event::PostDeploy])
        .live("maand/job/api/worker/10.0.0.2", "version", "1")
        .live("maand/job/api/worker/10.0.0.2", "api_allocation_index", "1")
        .plan();
    let r = Some("allocation removed");
    assert_eq!(
        brief(&plan),
        vec![
            row("maand/job/api/worker/10.0.0.2", "api_allocation_index", "tombstone", r, true),
            row("maand/job/api/worker/10.0.0.2", "version", "tombstone", r, true),
        ]
    );
    let job = &plan.rollout[0].jobs[0];
    assert!(job.namespaces.is_empty());
    assert_eq!(job.stopped, ["10.0.0.2"], "tombstoned after its stop hooks");
    assert!(job.batches.is_empty());
    assert!(job.hooks.is_empty(), "the job has no commands");
    assert!(plan.bucket_step_namespaces().is_empty());
}

#[test]
fn a_stopping_job_runs_its_stop_hook_and_gate_and_a_deploying_one_every_rollout_hook() {
    use kvform::workspace::types::Event::*;
    let every = [PreDeploy, JobControl, AfterAllocationStarted, PostDeploy, HealthCheck, AfterAllocationStopped];
    let fx = || {
        Fx::new()
            .job("api", 0, &[("10.0.0.1", Active, false), ("10.0.0.2", Removed, false)])
            .command("api", "command_x", &every)
            .live("maand/job/api/worker/10.0.0.2", "version", "1")
    };
    // maand's reconcile: the stop hook, then the health gate over the remaining allocation;
    // no job_control (maand runs it only in a deploy).
    let only_stop = fx().plan();
    let h = &only_stop.rollout[0].jobs[0].hooks;
    assert_eq!((h.after_allocation_stopped.len(), h.health_check.len()), (1, 1));
    assert!(h.pre_deploy.is_empty() && h.job_control.is_empty() && h.after_allocation_started.is_empty());
    assert!(h.post_deploy.is_empty());
    let both = fx().want("maand/job/api/worker/10.0.0.1", "version", "2").plan();
    let job = &both.rollout[0].jobs[0];
    assert_eq!((job.batches.len(), job.stopped.len()), (1, 1));
    // A job with job_control has no batch hooks (maand skips its own restarts for it).
    let skipped = ["post_build", "after_allocation_started"];
    assert!(job.hooks.by_event().iter().filter(|(e, _)| !skipped.contains(e)).all(|(_, c)| c.len() == 1));
    assert!(job.hooks.after_allocation_started.is_empty());
}

#[test]
fn all_allocations_removed_purges_allocations_but_job_level_follows_desired() {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Removed, false)])
        .want("maand/job/api", "workers", "")
        .live("maand/job/api", "workers", "10.0.0.1")
        .live("maand/job/api/worker/10.0.0.1", "version", "1")
        .live("vars/job/api", "hook_key", "kept")
        .live("secrets/job/api", "token", "kept")
        .plan();
    assert_eq!(
        brief(&plan),
        vec![
            row("maand/job/api", "workers", "update", None, false),
            row("maand/job/api/worker/10.0.0.1", "version", "tombstone", Some("allocation removed"), true),
        ]
    );
}

#[test]
fn purge_secrets_kv_only_for_jobs_without_an_active_allocation() {
    let base = |fx: Fx| {
        fx.want("vars/job/api", "from_vars_hcl", "1")
            .live("vars/job/api", "from_vars_hcl", "1")
            .live("vars/job/api", "hook_key", "h")
            .live("secrets/job/api", "token", "CIPHERTEXT")
            .live("secrets/job/api", "other", "CIPHERTEXT2")
    };
    // Without an active allocation: secrets purged, non-workspace vars tombstoned, the
    // vars.hcl key stays.
    let idle = base(Fx::new().job("api", 0, &[("10.0.0.1", Disabled, false)])).purge_secrets_kv();
    let plan = idle.plan();
    let r = Some("--purge-secrets-kv: job has no active allocation");
    assert_eq!(
        brief(&plan),
        vec![
            row("secrets/job/api", "other", "tombstone", r, true),
            row("secrets/job/api", "token", "tombstone", r, true),
            row("vars/job/api", "hook_key", "tombstone", r, true),
        ]
    );
    assert!(plan.meta.options.purge_secrets_kv);
    // The same workspace without the flag: nothing.
    let mut idle = idle;
    idle.opts.purge_secrets_kv = false;
    assert!(idle.plan().is_empty());
    // With an active allocation the flag changes nothing.
    let active = base(Fx::new().job("api", 0, &[("10.0.0.1", Active, false)])).purge_secrets_kv();
    assert!(active.plan().is_empty(), "{:?}", active.plan().changes);
}

#[test]
fn purge_secrets_kv_converges() {
    // After applying the purge, the state holds only the vars.hcl key: the next plan is empty.
    let plan = Fx::new()
        .job("api", 0, &[])
        .purge_secrets_kv()
        .want("vars/job/api", "from_vars_hcl", "1")
        .live("vars/job/api", "from_vars_hcl", "1")
        .tombstoned("vars/job/api", "hook_key", "h")
        .tombstoned("secrets/job/api", "token", "CIPHERTEXT")
        .plan();
    assert!(plan.is_empty(), "{:?}", plan.changes);
}

#[test]
fn ttl_expiry_tombstones_expired_keys_except_those_the_plan_writes() {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, false)])
        .live_ttl("vars/job/api", "lease", "a", NOW - 60, 60) // expires exactly now
        .live_ttl("vars/job/api", "fresh", "b", NOW - 59, 60) // one second left
        .live_ttl("secrets/job/api", "session", "CIPHERTEXT", 0, 10)
        .want("vars/job/api", "rewritten", "new")
        .live_ttl("vars/job/api", "rewritten", "old", 0, 10)
        .want("vars/job/api", "same", "v")
        .live_ttl("vars/job/api", "same", "v", 0, 10)
        .plan();
    assert_eq!(
        brief(&plan),
        vec![
            row("secrets/job/api", "session", "tombstone", Some("expired at 1970-01-01T00:00:10Z"), false),
            row("vars/job/api", "lease", "tombstone", Some("expired at 2026-01-02T03:04:05Z"), false),
            row("vars/job/api", "rewritten", "update", None, false),
            row("vars/job/api", "same", "update", Some("ttl reset: workspace keys never expire"), false),
        ]
    );
}

#[test]
fn secrets_never_carry_values() {
    let plan = Fx::new().removed_job("old").live("secrets/job/old", "token", "CIPHERTEXT-SHOULD-NOT-LEAK").plan();
    let c = &plan.changes[0];
    assert_eq!((c.before.as_ref(), c.after.as_ref(), c.before_sensitive), (None, None, true));
}

fn rollout_fx(starts: u32, upgrades: u32) -> Fx {
    let hosts = [
        ("10.0.0.1", Active, false),
        ("10.0.0.2", Active, false),
        ("10.0.0.3", Active, false),
        ("10.0.0.4", Active, true),
        ("10.0.0.5", Active, true),
        ("10.0.0.6", Active, true),
        ("10.0.0.7", Disabled, false),
    ];
    let mut fx = Fx::new()
        .job("api", 0, &hosts)
        .command("api", "command_pre", &[Event::PreDeploy])
        .command("api", "command_post", &[Event::PostDeploy, Event::PostBuild])
        .command("api", "command_health", &[Event::HealthCheck])
        .command("api", "command_cli", &[Event::Cli]);
    fx.job_mut("api").max_concurrent_starts = starts;
    fx.job_mut("api").max_concurrent_upgrades = upgrades;
    for (h, _, _) in &hosts {
        let ns = format!("maand/job/api/worker/{h}");
        fx = fx.want(&ns, "version", "2.0.0");
    }
    // Existing allocations are at 1.0.0 except .2, which is already current.
    fx.live("maand/job/api/worker/10.0.0.1", "version", "1.0.0")
        .live("maand/job/api/worker/10.0.0.2", "version", "2.0.0")
        .live("maand/job/api/worker/10.0.0.3", "version", "1.0.0")
        .live("maand/job/api/worker/10.0.0.7", "version", "1.0.0")
}

fn batches(fx: &Fx) -> Vec<(BatchKind, Vec<String>)> {
    let plan = fx.plan();
    plan.rollout[0].jobs[0].batches.iter().map(|b| (b.kind, b.hosts.clone())).collect()
}

fn hosts(hs: &[&str]) -> Vec<String> {
    hs.iter().map(|h| format!("10.0.0.{h}")).collect()
}

#[test]
fn rollout_batches_all_new_at_once_and_changed_one_by_one() {
    let fx = rollout_fx(0, 1);
    assert_eq!(
        batches(&fx),
        vec![
            (BatchKind::New, hosts(&["4", "5", "6"])),
            (BatchKind::Changed, hosts(&["1"])),
            (BatchKind::Changed, hosts(&["3"])),
        ]
    );
    let plan = fx.plan();
    let job = &plan.rollout[0].jobs[0];
    // The disabled allocation's change is applied without hooks.
    assert_eq!(job.namespaces, vec!["maand/job/api/worker/10.0.0.7"]);
    assert_eq!(job.hooks.pre_deploy, vec!["command_pre"]);
    assert_eq!(job.hooks.post_deploy, vec!["command_post"]);
    assert_eq!(job.hooks.health_check, vec!["command_health"]);
    assert_eq!(job.hooks.post_build, vec!["command_post"]);
}

#[test]
fn rollout_batches_new_by_two_and_changed_by_three_when_the_job_rolls() {
    // A job-level change rolls every existing active allocation, even .2 (unchanged itself).
    let fx = rollout_fx(2, 3).want("maand/job/api", "version", "2.0.0").live("maand/job/api", "version", "1.0.0");
    assert_eq!(
        batches(&fx),
        vec![
            (BatchKind::New, hosts(&["4", "5"])),
            (BatchKind::New, hosts(&["6"])),
            (BatchKind::Changed, hosts(&["1", "2", "3"])),
        ]
    );
    assert_eq!(fx.plan().rollout[0].jobs[0].namespaces[0], "maand/job/api");
}

#[test]
fn rollout_orders_waves_then_jobs_and_omits_unchanged_jobs() {
    let plan = Fx::new()
        .job("zeta", 0, &[("10.0.0.1", Active, false)])
        .job("alpha", 0, &[("10.0.0.1", Active, false)])
        .job("quiet", 0, &[("10.0.0.1", Active, false)])
        .job("db", 1, &[("10.0.0.1", Active, false)])
        .want("maand/job/zeta", "version", "2")
        .want("maand/job/alpha", "version", "2")
        .want("maand/job/quiet", "version", "1")
        .live("maand/job/quiet", "version", "1")
        .want("vars/bucket/job/db", "x", "1")
        .plan();
    let order: Vec<(u32, &str)> = plan.jobs().map(|(seq, j)| (seq, j.job.as_str())).collect();
    assert_eq!(order, vec![(0, "alpha"), (0, "zeta"), (1, "db")]);
}

#[test]
fn ttl_bookkeeping_does_not_roll_the_job() {
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, false)])
        .command("api", "command_pre", &[Event::PreDeploy])
        .live_ttl("vars/job/api", "lease", "a", 0, 1)
        .plan();
    let job = &plan.rollout[0].jobs[0];
    assert_eq!(job.namespaces, vec!["vars/job/api"]);
    assert!(job.batches.is_empty() && job.hooks.is_empty());
}

#[test]
fn every_change_belongs_to_exactly_one_apply_step() {
    let fx = rollout_fx(2, 1)
        .want("vars/bucket", "a", "1")
        .want("maand/job/api", "version", "2.0.0")
        .removed_job("gone")
        .live("vars/job/gone", "k", "v");
    let plan = fx.plan();
    let mut seen: Vec<String> = plan.bucket_step_namespaces().iter().map(|s| s.to_string()).collect();
    for (_, job) in plan.jobs() {
        seen.extend(job.namespaces.iter().cloned());
        for b in &job.batches {
            for h in &b.hosts {
                let ns = format!("maand/job/{}/worker/{h}", job.job);
                if !plan.changes_in(&ns).is_empty() {
                    seen.push(ns);
                }
            }
        }
    }
    seen.sort();
    let all: Vec<String> = plan.changed_namespaces().iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, all, "each changed namespace is applied once");
}

#[test]
fn job_whose_allocations_all_went_purges_its_synced_job_namespaces_as_a_whole() {
    let r = Some("job has no allocations left");
    let plan = Fx::new()
        .job("api", 0, &[("10.0.0.1", Removed, false)])
        .purged("api")
        .live("maand/job/api", "name", "api")
        .live("maand/job/api", "workers", "10.0.0.1")
        .live("vars/bucket/job/api", "replicas", "3")
        .live("vars/job/api", "hook_key", "kept")
        .plan();
    let rows = brief(&plan);
    assert!(rows.contains(&row("maand/job/api", "name", "tombstone", r, true)), "{rows:?}");
    assert!(rows.contains(&row("maand/job/api", "workers", "tombstone", r, true)), "{rows:?}");
    assert!(rows.contains(&row("vars/bucket/job/api", "replicas", "tombstone", r, true)), "{rows:?}");
    assert!(!rows.iter().any(|(ns, ..)| ns == "vars/job/api"), "merged vars/job stays without --purge-secrets-kv");
}

#[test]
fn job_never_placed_keeps_its_namespaces_and_stale_keys_get_their_file_reason() {
    // Not purged (never placed): a key bucket.jobs.conf no longer declares is just stale.
    let plan = Fx::new()
        .job("cache", 0, &[])
        .want("maand/job/cache", "workers", "")
        .live("maand/job/cache", "workers", "")
        .live("vars/bucket/job/cache", "tier", "gold")
        .plan();
    let rows = brief(&plan);
    assert_eq!(rows, [row("vars/bucket/job/cache", "tier", "tombstone", Some("no longer in bucket.jobs.conf"), false)]);
}

#[test]
fn resetting_a_hook_rollout_order_override_does_not_roll_the_job() {
    // A `cli` hook left its order in the state; the plan puts the workspace's order back
    // without re-rolling every allocation (only .1 and .3, whose own namespace changes, roll).
    let fx = rollout_fx(0, 1).want("maand/job/api", "rollout_order", "10.0.0.1,10.0.0.2,10.0.0.3").live(
        "maand/job/api",
        "rollout_order",
        "10.0.0.3,10.0.0.1,10.0.0.2",
    );
    assert_eq!(
        batches(&fx),
        vec![
            (BatchKind::New, hosts(&["4", "5", "6"])),
            (BatchKind::Changed, hosts(&["1"])),
            (BatchKind::Changed, hosts(&["3"])),
        ]
    );
    assert!(fx.plan().changes.iter().any(|c| c.namespace == "maand/job/api" && c.key == "rollout_order"));
}
