//! The executor with a recording fake `HookSteps` on a real state: SPEC §5 order, a failing
//! job rolled back with its dependents skipped and independent jobs committed, `--atomic`,
//! and the one-apply `rollout_order` override.

mod plan_fixture;

use kvform::apply::{ApplyOptions, HookSteps, NoProgress, StepContext, StepFailure, execute};
use kvform::model::types::AllocState::Active;
use kvform::plan::Plan;
use kvform::state::Write;
use kvform::state::{ApplyStatus, StateStore, WriteTxn};
use kvform::workspace::types::Event;
use plan_fixture::{Fx, NOW};
use std::time::Duration;

/// Records every call as `event job hosts`; fails `fail_at`; on `pre_deploy` writes a hook
/// key and optionally overrides `rollout_order`.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    fail_at: Option<(Event, String)>,
    rollout_override: Option<(String, String)>,
    /// Whether `maand/bucket` was written before the first hook ran.
    bucket_first: Option<bool>,
}

impl Fake {
    fn step(&mut self, cx: &StepContext, event: Event, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        if self.bucket_first.is_none() {
            let mut txn = cx.txn.lock().unwrap();
            self.bucket_first = Some(txn.get("maand/bucket", "jobs").unwrap().is_some());
        }
        self.calls.push(format!("{} {job} {}", event.as_str(), hosts.join(",")));
        if event == Event::PreDeploy {
            let mut txn = cx.txn.lock().unwrap();
            // The job's new catalog is written before pre_deploy runs.
            let ns = format!("maand/job/{job}");
            if cx.desired.kv.get(&ns).is_some_and(|m| m.contains_key("workers")) {
                let workers = txn.get(&ns, "workers").unwrap().filter(|e| e.is_live());
                self.calls.push(format!("  sees workers={}", workers.map_or("(missing)".into(), |e| e.value)));
            }
            // So is every allocation namespace of the job (maand's build writes them all).
            let own = hosts
                .iter()
                .filter(|h| {
                    txn.get(&format!("maand/job/{job}/worker/{h}"), "version").unwrap().is_some_and(|e| e.is_live())
                })
                .count();
            self.calls.push(format!("  sees {own}/{} allocation namespaces", hosts.len()));
            txn.put(Write::new(&format!("vars/job/{job}"), "hook_key", "from-hook", "hook:test", NOW)).unwrap();
            if let Some((j, order)) = &self.rollout_override
                && j == job
            {
                txn.put(Write::new(&format!("maand/job/{job}"), "rollout_order", order, "hook:test", NOW)).unwrap();
            }
        }
        match &self.fail_at {
            Some((e, j)) if *e == event && j == job => Err(StepFailure {
                job: job.into(),
                event,
                message: format!("command_x on {} exited with 3", hosts[0]),
                output: vec!["boom".into()],
            }),
            _ => Ok(()),
        }
    }
}

impl HookSteps for Fake {
    fn pre_deploy(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, Event::PreDeploy, job, hosts)
    }
    fn post_deploy(&mut self, cx: &StepContext, job: &str, batch: &[String]) -> Result<(), StepFailure> {
        self.step(cx, Event::PostDeploy, job, batch)
    }
    fn health_check(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, Event::HealthCheck, job, hosts)
    }
    fn post_build(&mut self, cx: &StepContext, job: &str, hosts: &[String]) -> Result<(), StepFailure> {
        self.step(cx, Event::PostBuild, job, hosts)
    }
    fn rollout_event(
        &mut self,
        cx: &StepContext,
        job: &str,
        event: Event,
        hosts: &[String],
        env: &[(String, String)],
    ) -> Result<(), StepFailure> {
        let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // A stopped allocation's hooks still read its namespace.
        let own = {
            let mut txn = cx.txn.lock().unwrap();
            txn.get(&format!("maand/job/{job}/worker/{}", hosts[0]), "version").unwrap().filter(|e| e.is_live())
        };
        self.calls.push(format!(
            "{} {job} {} [{}] own={}",
            event.as_str(),
            hosts.join(","),
            env.join(" "),
            own.is_some()
        ));
        self.step(cx, event, job, hosts).map(|_| {
            self.calls.pop();
        })
    }
}

const ALL: &[Event] = &[Event::PreDeploy, Event::PostDeploy, Event::HealthCheck];
const EVERY: &[Event] = &[
    Event::PreDeploy,
    Event::JobControl,
    Event::AfterAllocationStarted,
    Event::PostDeploy,
    Event::HealthCheck,
    Event::AfterAllocationStopped,
];

/// Jobs `a` (wave 0, three new allocations, starts of 2), `b` (wave 0, independent),
/// `c` (wave 1, demands `a`), each with pre_deploy/post_deploy/health_check commands.
fn fixture() -> Fx {
    let mut fx = Fx::new()
        .job("a", 0, &[("h1", Active, true), ("h2", Active, true), ("h3", Active, true)])
        .job("b", 0, &[("h1", Active, true)])
        .job("c", 1, &[("h2", Active, true)])
        .command("a", "command_x", ALL)
        .command("b", "command_x", ALL)
        .command("c", "command_x", ALL)
        .want("maand/bucket", "jobs", "a,b,c")
        .want("maand/job/a", "rollout_order", "h1,h2,h3")
        .want("maand/job/b", "rollout_order", "h1")
        .want("maand/job/c", "rollout_order", "h2");
    fx.job_mut("a").max_concurrent_starts = 2;
    fx.job_mut("c").upstreams = vec!["a".into()];
    for (job, host) in [("a", "h1"), ("a", "h2"), ("a", "h3"), ("b", "h1"), ("c", "h2")] {
        fx = fx.want(&format!("maand/job/{job}/worker/{host}"), "version", "1.0.0");
    }
    fx
}

fn store(dir: &tempfile::TempDir) -> StateStore {
    StateStore::init(&dir.path().join("data/kvform.db"), 1767323045).unwrap().0
}

fn begin(dir: &tempfile::TempDir) -> WriteTxn {
    StateStore::open(&dir.path().join("data/kvform.db"))
        .unwrap()
        .begin_write("apply", Duration::ZERO, 1767323045)
        .unwrap()
}

fn plan_for(fx: &Fx, dir: &tempfile::TempDir) -> Plan {
    let mut fx_snap = fx.snap.clone();
    let real = store(dir).snapshot().unwrap();
    fx_snap.lineage = real.lineage;
    fx_snap.serial = real.serial;
    kvform::plan::diff(&fx.desired, &fx_snap, &fx.opts, NOW)
}

#[test]
fn order_is_bucket_then_waves_then_jobs_by_name_then_batches() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let plan = plan_for(&fx, &dir);
    let mut hooks = Fake::default();
    let report =
        execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(hooks.bucket_first, Some(true), "bucket-level namespaces are written before any hook");
    assert_eq!(
        hooks.calls,
        [
            "pre_deploy a h1,h2,h3",
            "  sees 3/3 allocation namespaces",
            // maand: the gate once after every new allocation started, post_deploy last.
            "health_check a h1,h2,h3",
            "post_deploy a h1,h2,h3",
            "pre_deploy b h1",
            "  sees 1/1 allocation namespaces",
            "health_check b h1",
            "post_deploy b h1",
            "pre_deploy c h2",
            "  sees 1/1 allocation namespaces",
            "health_check c h2",
            "post_deploy c h2",
        ]
    );
    assert_eq!(report.status, ApplyStatus::Success);
    assert_eq!(report.applied, ["a", "b", "c"]);
    assert_eq!((report.added, report.changed, report.destroyed), (9, 0, 0));
    assert_eq!(report.serial, 1);
    let snap = StateStore::open(&dir.path().join("data/kvform.db")).unwrap().snapshot().unwrap();
    assert_eq!(snap.get("maand/job/a/worker/h3", "version").unwrap().writer, "apply");
    assert_eq!(snap.get("vars/job/c", "hook_key").unwrap().value, "from-hook");
}

#[test]
fn a_failing_job_is_rolled_back_its_dependents_skipped_and_the_rest_committed() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let plan = plan_for(&fx, &dir);
    let mut hooks = Fake { fail_at: Some((Event::PostDeploy, "a".into())), ..Fake::default() };
    let report =
        execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(report.status, ApplyStatus::Partial);
    assert_eq!(report.applied, ["b"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].job, "a");
    assert_eq!(report.failed[0].output, ["boom"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!((report.skipped[0].job.as_str(), report.skipped[0].because.as_str()), ("c", "a"));
    assert!(!hooks.calls.iter().any(|c| c.contains(" c ")), "c never runs: {:?}", hooks.calls);
    // bucket (1) + b's namespaces (2) kept.
    assert_eq!((report.added, report.changed, report.destroyed), (3, 0, 0));

    let store = StateStore::open(&dir.path().join("data/kvform.db")).unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.serial, 1);
    assert!(snap.get("maand/bucket", "jobs").is_some());
    assert!(snap.get("maand/job/b/worker/h1", "version").is_some());
    assert!(snap.get("vars/job/b", "hook_key").is_some());
    for (ns, key) in
        [("maand/job/a", "rollout_order"), ("maand/job/a/worker/h1", "version"), ("vars/job/a", "hook_key")]
    {
        assert!(snap.get(ns, key).is_none(), "{ns} {key} was rolled back");
    }
    assert!(snap.get("maand/job/c/worker/h2", "version").is_none());
    assert_eq!(store.audit(1).unwrap()[0].status, "partial");
}

#[test]
fn atomic_commits_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture();
    let plan = plan_for(&fx, &dir);
    let mut hooks = Fake { fail_at: Some((Event::HealthCheck, "b".into())), ..Fake::default() };
    let opts = ApplyOptions { atomic: true, ..ApplyOptions::new(NOW) };
    let report = execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &opts).unwrap();
    assert_eq!(report.status, ApplyStatus::Failed);
    assert!(report.rolled_back);
    assert!(report.applied.is_empty());
    assert!(!hooks.calls.iter().any(|c| c.contains(" c ")), "nothing runs after the failure");
    let store = StateStore::open(&dir.path().join("data/kvform.db")).unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.serial, 0);
    assert!(snap.entries.is_empty(), "nothing committed: {:?}", snap.entries.keys().collect::<Vec<_>>());
    assert_eq!(store.audit(1).unwrap()[0].status, "failed");
}

/// Records the batches in the order they finished.
#[derive(Default)]
struct Batches(Vec<String>);

impl kvform::apply::Progress for Batches {
    fn event(&mut self, event: kvform::apply::ProgressEvent<'_>) {
        if let kvform::apply::ProgressEvent::BatchDone { job, hosts, .. } = event {
            self.0.push(format!("{job} {}", hosts.join(",")));
        }
    }
}

/// The state after `fixture()` was applied, and the plan of `a`'s version `version` on every
/// allocation (changed batches of 1).
fn upgrade(dir: &tempfile::TempDir, version: &str) -> (Fx, Plan) {
    let mut fx = fixture();
    for h in ["h1", "h2", "h3"] {
        fx = fx.want(&format!("maand/job/a/worker/{h}"), "version", version);
    }
    for a in fx.desired.allocations.iter_mut() {
        a.is_new = false;
    }
    fx.snap = StateStore::open(&dir.path().join("data/kvform.db")).unwrap().snapshot().unwrap();
    let plan = kvform::plan::diff(&fx.desired, &fx.snap, &fx.opts, NOW);
    (fx, plan)
}

#[test]
fn rollout_order_override_reorders_batches_for_one_apply() {
    let dir = tempfile::tempdir().unwrap();
    // First apply: everything exists.
    let fx = fixture();
    let plan = plan_for(&fx, &dir);
    execute(begin(&dir), &plan, &fx.desired, &mut Fake::default(), &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();

    // Second apply: a's version changes on every allocation; a pre_deploy hook lists the
    // three in another order: exactly the allocations rolled, so it orders them (maand's
    // `ResolveRolloutOrder`, source `kv`).
    let (fx2, plan) = upgrade(&dir, "2.0.0");
    let batches: Vec<Vec<String>> = plan.rollout[0].jobs[0].batches.iter().map(|b| b.hosts.clone()).collect();
    assert_eq!(batches, [["h1"], ["h2"], ["h3"]]);
    let mut hooks = Fake { rollout_override: Some(("a".into(), "h3,h1,h2".into())), ..Fake::default() };
    let mut seen = Batches::default();
    let report = execute(begin(&dir), &plan, &fx2.desired, &mut hooks, &mut seen, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(seen.0[..3], ["a h3", "a h1", "a h2"]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // The override lasted one apply: the desired value is back, written by the apply.
    let snap = StateStore::open(&dir.path().join("data/kvform.db")).unwrap().snapshot().unwrap();
    let e = snap.get("maand/job/a", "rollout_order").unwrap();
    assert_eq!((e.value.as_str(), e.writer.as_str()), ("h1,h2,h3", "apply"));

    // Third apply: an override that does not list exactly the allocations rolled (h9 is
    // none, h2 is missing) is not used: the default (fleet) order, and a warning.
    let (fx3, plan) = upgrade(&dir, "3.0.0");
    let mut hooks = Fake { rollout_override: Some(("a".into(), "h3,h9,h1".into())), ..Fake::default() };
    let mut seen = Batches::default();
    let report = execute(begin(&dir), &plan, &fx3.desired, &mut hooks, &mut seen, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(seen.0[..3], ["a h1", "a h2", "a h3"]);
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("h9") && report.warnings[0].contains("default order"), "{:?}", report.warnings);
}

/// Every event but `job_control` (a job with `job_control` has no batches).
const BATCHED: &[Event] = &[
    Event::PreDeploy,
    Event::AfterAllocationStarted,
    Event::PostDeploy,
    Event::HealthCheck,
    Event::AfterAllocationStopped,
];

#[test]
fn rollout_events_run_in_maand_order_with_their_environment() {
    use kvform::model::types::AllocState::Removed;
    let dir = tempfile::tempdir().unwrap();
    // h1 existing (changed), h2, h4 new (two start batches), h3 removed (its namespace is live).
    let mut fx = Fx::new()
        .job("a", 0, &[("h1", Active, false), ("h2", Active, true), ("h4", Active, true), ("h3", Removed, false)])
        .command("a", "command_x", BATCHED)
        .want("maand/job/a", "workers", "h1,h2,h4")
        .want("maand/job/a", "rollout_order", "h1,h2,h4")
        .live("maand/job/a/worker/h3", "version", "0.9.0")
        .live("maand/job/a/worker/h1", "version", "0.9.0");
    fx.job_mut("a").max_concurrent_starts = 1;
    for host in ["h1", "h2", "h4"] {
        fx = fx.want(&format!("maand/job/a/worker/{host}"), "version", "1.0.0");
    }
    {
        drop(store(&dir));
        let mut t = begin(&dir);
        t.put(Write::new("maand/job/a/worker/h3", "version", "0.9.0", "apply", NOW)).unwrap();
        t.put(Write::new("maand/job/a/worker/h1", "version", "0.9.0", "apply", NOW)).unwrap();
        t.commit(kvform::state::ApplyRecord::new("test", NOW)).unwrap();
    }
    let plan = plan_for(&fx, &dir);
    assert_eq!(plan.rollout[0].jobs[0].stopped, ["h3"]);
    let mut hooks = Fake::default();
    let report =
        execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(report.status, ApplyStatus::Success, "{:?}", report.failed);
    // The new ones: `rollout_order` (h1,h2,h4) is not their list, so `default`.
    let b = |i: usize, host: &str| {
        format!(
            "BATCH_ALLOCATIONS={host} BATCH_INDEX={i} BATCH_COUNT=2 DEPLOY_PHASE=new ROLLOUT_ORDER=h2,h4 ROLLOUT_ORDER_SOURCE=default"
        )
    };
    let up = "BATCH_ALLOCATIONS=h1 BATCH_INDEX=0 BATCH_COUNT=1 DEPLOY_PHASE=update ROLLOUT_ORDER=h1 ROLLOUT_ORDER_SOURCE=default";
    let stop =
        "BATCH_ALLOCATIONS=h3 BATCH_INDEX=0 BATCH_COUNT=1 DEPLOY_PHASE=stop ROLLOUT_ORDER= ROLLOUT_ORDER_SOURCE=";
    assert_eq!(
        hooks.calls,
        [
            format!("after_allocation_stopped a h3 [{stop}] own=true"),
            // maand's reconcile gate, over the allocations already running.
            "health_check a h1".into(),
            "pre_deploy a h1,h2,h4".into(),
            "  sees workers=h1,h2,h4".into(),
            "  sees 3/3 allocation namespaces".into(),
            format!("after_allocation_started a h2 [{}] own=true", b(0, "h2")),
            format!("after_allocation_started a h4 [{}] own=true", b(1, "h4")),
            "health_check a h1,h2,h4".into(),
            format!("after_allocation_started a h1 [{up}] own=true"),
            "health_check a h1,h2,h4".into(),
            "post_deploy a h1,h2,h4".into(),
        ]
    );
    let snap = StateStore::open(&dir.path().join("data/kvform.db")).unwrap().snapshot().unwrap();
    assert!(snap.get("maand/job/a/worker/h3", "version").unwrap().deleted, "tombstoned after its stop hooks");
}

#[test]
fn job_control_runs_once_on_every_allocation_and_replaces_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    // h1 existing (changed), h2, h3 new; starts of 1 would make two batches.
    let mut fx = Fx::new()
        .job("a", 0, &[("h1", Active, false), ("h2", Active, true), ("h3", Active, true)])
        .command("a", "command_x", EVERY)
        .want("maand/job/a", "workers", "h1,h2,h3")
        .want("maand/job/a", "rollout_order", "h1,h2,h3")
        .live("maand/job/a/worker/h1", "version", "0.9.0");
    fx.job_mut("a").max_concurrent_starts = 1;
    for host in ["h1", "h2", "h3"] {
        fx = fx.want(&format!("maand/job/a/worker/{host}"), "version", "1.0.0");
    }
    {
        drop(store(&dir));
        let mut t = begin(&dir);
        t.put(Write::new("maand/job/a/worker/h1", "version", "0.9.0", "apply", NOW)).unwrap();
        t.commit(kvform::state::ApplyRecord::new("test", NOW)).unwrap();
    }
    let plan = plan_for(&fx, &dir);
    assert!(plan.rollout[0].jobs[0].hooks.after_allocation_started.is_empty(), "the plan shows no batch hooks");
    let mut hooks = Fake::default();
    let report =
        execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(report.status, ApplyStatus::Success, "{:?}", report.failed);
    assert_eq!(
        hooks.calls,
        [
            "pre_deploy a h1,h2,h3",
            "  sees workers=h1,h2,h3",
            "  sees 3/3 allocation namespaces",
            "job_control a h1,h2,h3 [UPDATED_ALLOCATIONS=h1 NEW_ALLOCATIONS=h2,h3] own=true",
            "health_check a h1,h2,h3",
            "post_deploy a h1,h2,h3",
        ]
    );
}

#[test]
fn a_failing_stop_hook_fails_the_job_and_keeps_the_allocation() {
    use kvform::model::types::AllocState::Removed;
    let dir = tempfile::tempdir().unwrap();
    let fx = Fx::new().job("a", 0, &[("h3", Removed, false)]).command("a", "command_x", EVERY).live(
        "maand/job/a/worker/h3",
        "version",
        "0.9.0",
    );
    {
        drop(store(&dir));
        let mut t = begin(&dir);
        t.put(Write::new("maand/job/a/worker/h3", "version", "0.9.0", "apply", NOW)).unwrap();
        t.commit(kvform::state::ApplyRecord::new("test", NOW)).unwrap();
    }
    let plan = plan_for(&fx, &dir);
    let mut hooks = Fake { fail_at: Some((Event::AfterAllocationStopped, "a".into())), ..Fake::default() };
    let report =
        execute(begin(&dir), &plan, &fx.desired, &mut hooks, &mut NoProgress, &ApplyOptions::new(NOW)).unwrap();
    assert_eq!(report.status, ApplyStatus::Partial);
    assert_eq!(report.failed[0].event, Event::AfterAllocationStopped);
    let snap = StateStore::open(&dir.path().join("data/kvform.db")).unwrap().snapshot().unwrap();
    assert!(!snap.get("maand/job/a/worker/h3", "version").unwrap().deleted, "rolled back with the job");
}
