//! maand's rollout through `kvform apply` with real hook processes (SPEC §5–§6): every rollout
//! event of a two-batch rollout, an update and a stop, each with maand's environment values;
//! `pre_deploy` reading its job's new catalog and its own allocation's keys on the first apply
//! while its `rollout_order` override still orders the batches; `job_control` once per apply
//! on every allocation; semaphore contention between the hooks of one batch; `.py` hooks on the job's
//! virtualenv and `.js` hooks on node. Each test runs on both backends (the CLI finds a
//! PostgreSQL state through kvform.hcl's `state` block).

mod hooks_apply_support;

use hooks_apply_support::*;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kvform(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("KVFORM_NOW", NOW_STR)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn apply(tb: &TestBucket) -> Output {
    let out = kvform(tb.root(), &["apply", "--auto-approve"]);
    assert!(
        out.status.success(),
        "apply failed:\n{}\n{}\nlogs:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tb.all_logs()
    );
    assert!(tb.pg.is_none() || !tb.state_file().exists(), "a PostgreSQL bucket's apply wrote an SQLite file");
    out
}

fn workers(tb: &TestBucket, list: &[(&str, &[&str])]) {
    let list: Vec<serde_json::Value> = list.iter().map(|(h, l)| json!({"host": h, "labels": l})).collect();
    tb.write("workspace/workers.json", &serde_json::to_string_pretty(&list).unwrap());
}

/// Records each event with maand's variables (and kvform's own beside them); `pre_deploy`
/// also reads the job's catalog and its own allocation namespace (written before any hook on
/// a first apply, as maand's build does) and applies the override in `override` (if
/// present); `after_allocation_stopped` reads its own allocation namespace.
const RECORDER: &str = r#"
import os, kvform_hook as kv
e = os.environ
names = ["BATCH_ALLOCATIONS", "BATCH_INDEX", "BATCH_COUNT", "DEPLOY_PHASE", "ROLLOUT_ORDER",
         "ROLLOUT_ORDER_SOURCE", "KVFORM_ROLLOUT_ORDER_OVERRIDDEN", "NEW_ALLOCATIONS",
         "UPDATED_ALLOCATIONS", "TARGET"]
extra = " ".join(n + "=" + e[n] for n in names if n in e)
line = (e["EVENT"] + " " + e["ALLOCATION_IP"] + " " + e["CURRENT_VERSION"] + ">" + e["NEW_VERSION"] + " " + extra).rstrip()
own = "maand/job/app/worker/" + e["ALLOCATION_IP"]
if e["EVENT"] == "pre_deploy":
    line += " | workers=%s version=%s index=%s peers=%s" % (
        kv.get("maand/job/app", "workers"), kv.get("maand/job/app", "version"),
        kv.get(own, "app_allocation_index"), kv.get(own, "peer_workers"))
    if os.path.exists("override"):
        kv.rollout_order(open("override").read().strip().split(","))
if e["EVENT"] == "after_allocation_stopped":
    line += " | own version=%s" % kv.get(own, "version")
with open("events.log", "a") as f:
    f.write(line + "\n")
"#;

const H1: &str = "10.0.0.1";
const H2: &str = "10.0.0.2";
const H3: &str = "10.0.0.3";

/// events.log, with the lines of each run of one event (and batch) on several hosts — which
/// run in parallel — sorted, and emptied for the next apply.
fn events(tb: &TestBucket) -> Vec<String> {
    let text = tb.read("events.log");
    std::fs::remove_file(tb.path("events.log")).unwrap();
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let group = |l: &str| {
        let event = l.split(' ').next().unwrap_or_default();
        let batch = l.split(' ').find(|w| w.starts_with("BATCH_INDEX=")).unwrap_or_default();
        format!("{event} {batch}")
    };
    for line in text.lines() {
        if run.first().is_some_and(|f| group(f) != group(line)) {
            run.sort();
            out.append(&mut run);
        }
        run.push(line.to_string());
    }
    run.sort();
    out.append(&mut run);
    out
}

fn app(tb: &TestBucket, version: &str) {
    let all = ["pre_deploy", "after_allocation_started", "post_deploy", "health_check", "after_allocation_stopped"];
    tb.job(
        "app",
        json!({
            "version": version,
            "max_concurrent_starts": 2,
            "commands": {"command_rec": {"executed_on": all}}
        }),
        &[("command_rec.py", RECORDER)],
    );
}

on_both_backends!(
    two_batch_rollout_and_a_stop_record_every_event_with_its_environment,
    two_batch_rollout_and_a_stop_record_every_event_with_its_environment_on_postgres,
    &[(H1, &["app"]), (H2, &["app"]), (H3, &["app"])],
    two_batches_and_a_stop
);

/// maand's values and order (maand-sh/maand @3f8043e): `DEPLOY_PHASE` `new`/`update`/`stop`
/// (`deploy/batch_hooks.go` 17-21), `ROLLOUT_ORDER_SOURCE` `kv` when `rollout_order` lists
/// exactly the allocations rolled, else `default` (`deploy/ordering.go` 124-166); the health
/// gate once after the new allocations and after each batch of changed ones
/// (`deploy/rollout.go` 80, 138), `post_deploy` last (`deploy/job_deploy.go` 91-97).
fn two_batches_and_a_stop(tb: TestBucket) {
    app(&tb, "1.0");
    // The first apply: pre_deploy sees the new catalog and its own allocation's keys, and
    // puts 10.0.0.3 first.
    tb.write("override", "10.0.0.3,10.0.0.1,10.0.0.2");
    apply(&tb);
    let order = "ROLLOUT_ORDER=10.0.0.3,10.0.0.1,10.0.0.2 ROLLOUT_ORDER_SOURCE=kv KVFORM_ROLLOUT_ORDER_OVERRIDDEN=1";
    let b0 = format!("BATCH_ALLOCATIONS={H3},{H1} BATCH_INDEX=0 BATCH_COUNT=2 DEPLOY_PHASE=new {order}");
    let b1 = format!("BATCH_ALLOCATIONS={H2} BATCH_INDEX=1 BATCH_COUNT=2 DEPLOY_PHASE=new {order}");
    let pre = |h: &str, i: usize, peers: &str| {
        format!("pre_deploy {h} 0.0.0>1.0 | workers={H1},{H2},{H3} version=1.0 index={i} peers={peers}")
    };
    assert_eq!(
        events(&tb),
        [
            pre(H1, 0, &format!("{H2},{H3}")),
            pre(H2, 1, &format!("{H1},{H3}")),
            pre(H3, 2, &format!("{H1},{H2}")),
            format!("after_allocation_started {H1} 0.0.0>1.0 {b0}"),
            format!("after_allocation_started {H3} 0.0.0>1.0 {b0}"),
            format!("after_allocation_started {H2} 0.0.0>1.0 {b1}"),
            // The gate once, after every new allocation started, then post_deploy.
            format!("health_check {H1} 0.0.0>1.0"),
            format!("health_check {H2} 0.0.0>1.0"),
            format!("health_check {H3} 0.0.0>1.0"),
            format!("post_deploy {H1} 0.0.0>1.0"),
            format!("post_deploy {H2} 0.0.0>1.0"),
            format!("post_deploy {H3} 0.0.0>1.0"),
        ]
    );
    // The override lasted one apply.
    assert_eq!(tb.value("maand/job/app", "rollout_order").as_deref(), Some("10.0.0.1,10.0.0.2,10.0.0.3"));

    // The second apply: 10.0.0.3 leaves, and the version changes (upgrades one at a time).
    // The workspace's `rollout_order` lists exactly the two upgraded: `kv`, not overridden.
    std::fs::remove_file(tb.path("override")).unwrap();
    workers(&tb, &[(H1, &["app"]), (H2, &["app"]), (H3, &[])]);
    app(&tb, "2.0");
    let plan = kvform(tb.root(), &["plan"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains(&format!("      stopped  {H3}")), "{text}");
    apply(&tb);
    let stop = format!(
        "BATCH_ALLOCATIONS={H3} BATCH_INDEX=0 BATCH_COUNT=1 DEPLOY_PHASE=stop ROLLOUT_ORDER= ROLLOUT_ORDER_SOURCE="
    );
    let up = |i: usize, h: &str| {
        format!(
            "BATCH_ALLOCATIONS={h} BATCH_INDEX={i} BATCH_COUNT=2 DEPLOY_PHASE=update ROLLOUT_ORDER={H1},{H2} ROLLOUT_ORDER_SOURCE=kv"
        )
    };
    let pre = |h: &str, i: usize, peer: &str| {
        format!("pre_deploy {h} 1.0>2.0 | workers={H1},{H2} version=2.0 index={i} peers={peer}")
    };
    let health = [format!("health_check {H1} 1.0>2.0"), format!("health_check {H2} 1.0>2.0")];
    let mut want = vec![
        format!("after_allocation_stopped {H3} 1.0>2.0 {stop} | own version=1.0"),
        // maand's reconcile: the gate over the allocations that remain.
        health[0].clone(),
        health[1].clone(),
        pre(H1, 0, H2),
        pre(H2, 1, H1),
        format!("after_allocation_started {H1} 1.0>2.0 {}", up(0, H1)),
    ];
    want.extend(health.clone());
    want.push(format!("after_allocation_started {H2} 1.0>2.0 {}", up(1, H2)));
    want.extend(health.clone());
    want.extend([format!("post_deploy {H1} 1.0>2.0"), format!("post_deploy {H2} 1.0>2.0")]);
    assert_eq!(events(&tb), want);
    assert_eq!(tb.value(&format!("maand/job/app/worker/{H3}"), "version"), None, "tombstoned after its stop hooks");
    assert_eq!(kvform(tb.root(), &["plan", "--detailed-exitcode"]).status.code(), Some(0), "converged");

    // The third apply: 10.0.0.3 comes back. `rollout_order` (all three) is not the list of
    // either phase's allocations: `default`, each phase in fleet order.
    workers(&tb, &[(H1, &["app"]), (H2, &["app"]), (H3, &["app"])]);
    apply(&tb);
    let got = events(&tb);
    let aas: Vec<&String> = got.iter().filter(|l| l.starts_with("after_allocation_started")).collect();
    let new = format!(
        "BATCH_ALLOCATIONS={H3} BATCH_INDEX=0 BATCH_COUNT=1 DEPLOY_PHASE=new ROLLOUT_ORDER={H3} ROLLOUT_ORDER_SOURCE=default"
    );
    let upd = |i: usize, h: &str| {
        format!(
            "BATCH_ALLOCATIONS={h} BATCH_INDEX={i} BATCH_COUNT=2 DEPLOY_PHASE=update ROLLOUT_ORDER={H1},{H2} ROLLOUT_ORDER_SOURCE=default"
        )
    };
    assert_eq!(
        aas,
        [
            &format!("after_allocation_started {H3} 0.0.0>2.0 {new}"),
            &format!("after_allocation_started {H1} 2.0>2.0 {}", upd(0, H1)),
            &format!("after_allocation_started {H2} 2.0>2.0 {}", upd(1, H2)),
        ]
    );
    // health: once after the new one, once after each changed batch; post_deploy once each.
    assert_eq!(got.iter().filter(|l| l.starts_with("health_check")).count(), 3 * 3, "{got:#?}");
    assert_eq!(got.iter().filter(|l| l.starts_with("post_deploy")).count(), 3, "{got:#?}");
    assert!(got.last().unwrap().starts_with("post_deploy"), "{got:#?}");
}

/// A maand-style `job_control` hook (bash): the allocation with index 0 leads. maand runs
/// each `job_control` command once per deploy on every active allocation, concurrently, with
/// only `NEW_ALLOCATIONS`/`UPDATED_ALLOCATIONS` (`deploy/job_deploy.go` 47-89), and skips its
/// own batch restarts (no `after_allocation_started`); the health gate, then `post_deploy`.
const CONTROL: &str = r#"#!/bin/bash
set -eu
vars="NEW=${NEW_ALLOCATIONS-unset} UPDATED=${UPDATED_ALLOCATIONS-unset} PHASE=${DEPLOY_PHASE-unset} BATCH=${BATCH_INDEX-unset}"
if [ "$EVENT" = "job_control" ]; then
  if [ "$ALLOCATION_INDEX" = "0" ]; then role=leader; else role=member; fi
  echo "job_control $ALLOCATION_IP $role $vars" >> events.log
else
  echo "$EVENT $ALLOCATION_IP" >> events.log
fi
"#;

on_both_backends!(
    job_control_runs_once_per_apply_on_every_allocation_without_batches,
    job_control_runs_once_per_apply_on_every_allocation_without_batches_on_postgres,
    &[(H1, &["app"]), (H2, &["app"]), (H3, &["app"])],
    job_control_once
);

fn job_control_once(tb: TestBucket) {
    let job = |version: &str| {
        let events = ["pre_deploy", "job_control", "after_allocation_started", "health_check", "post_deploy"];
        tb.job(
            "app",
            json!({"version": version, "max_concurrent_starts": 1, "commands": {"command_ctl": {"executed_on": events}}}),
            &[("command_ctl.sh", CONTROL)],
        );
    };
    job("1.0");
    apply(&tb);
    let each = |event: &str| [H1, H2, H3].map(|h| format!("{event} {h}")).to_vec();
    let unset = "PHASE=unset BATCH=unset";
    let mut want = each("pre_deploy");
    want.extend([
        format!("job_control {H1} leader NEW={H1},{H2},{H3} UPDATED= {unset}"),
        format!("job_control {H2} member NEW={H1},{H2},{H3} UPDATED= {unset}"),
        format!("job_control {H3} member NEW={H1},{H2},{H3} UPDATED= {unset}"),
    ]);
    want.extend(each("health_check"));
    want.extend(each("post_deploy"));
    assert_eq!(events(&tb), want, "three batches of one, yet one job_control per allocation");

    // A version change: every allocation updated, still one call each.
    job("2.0");
    apply(&tb);
    let got = events(&tb);
    let ctl: Vec<&String> = got.iter().filter(|l| l.starts_with("job_control")).collect();
    assert_eq!(
        ctl,
        [H1, H2, H3]
            .iter()
            .zip(["leader", "member", "member"])
            .map(|(h, r)| format!("job_control {h} {r} NEW= UPDATED={H1},{H2},{H3} {unset}"))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 12, "{got:#?}");
}

on_both_backends!(
    a_failing_rollout_event_fails_the_job_like_any_hook,
    a_failing_rollout_event_fails_the_job_like_any_hook_on_postgres,
    &[(H1, &["app"])],
    failing_rollout_event
);

fn failing_rollout_event(tb: TestBucket) {
    tb.job(
        "app",
        json!({"version": "1.0", "commands": {"command_ctl": {"executed_on": ["job_control"]}}}),
        &[("command_ctl.sh", "echo \"starting $NEW_ALLOCATIONS\"\nexit 4\n")],
    );
    let out = kvform(tb.root(), &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("job_control hook failed") && all.contains("exited with status 4"), "{all}");
    assert!(tb.all_logs().contains("starting 10.0.0.1"));
    assert!(tb.pg.is_none() || !tb.state_file().exists(), "a PostgreSQL bucket's apply wrote an SQLite file");
    // The apply committed the rest (the worker's namespace) to this bucket's state.
    assert!(tb.store().snapshot().unwrap().entries.contains_key(&format!("maand/worker/{H1}")));
    assert_eq!(tb.value(&format!("maand/job/app/worker/{H1}"), "version"), None, "the job's checkpoint rolled back");
}

/// Two after_allocation_started commands on a batch of two (in parallel): `command_a` holds the mutex
/// until the other allocation has timed out (408, `timeout_seconds` 1), `command_b` takes it
/// in turn (the second acquires after the first released).
const CONTENDER_A: &str = r#"
import os, time, urllib.error, kvform_hook as kv
me = os.environ["ALLOCATION_IP"]
try:
    r = kv.acquire("mutex", capacity=1, timeout=1)
    assert r["allocation_id"] == os.environ["ALLOCATION_ID"], r
    print("acquired", me)
    deadline = time.time() + 60
    while not os.path.exists("a-timed-out") and time.time() < deadline:
        time.sleep(0.05)
    kv.release("mutex")
except kv.KvformHookError as e:
    print("refused", me, e.status)
    open("a-timed-out", "w").close()
"#;

const CONTENDER_B: &str = r#"
import os, time, kvform_hook as kv
me = os.environ["ALLOCATION_IP"]
kv.acquire("mutex", capacity=1, timeout=60)
start = time.time()
st = kv.status("mutex")
assert st["holders"] == [os.environ["ALLOCATION_ID"]] and st["available"] == 0, st
time.sleep(0.3)
end = time.time()
kv.release("mutex")
with open("b.log", "a") as f:
    f.write("%s %.6f %.6f\n" % (me, start, end))
"#;

on_both_backends!(
    semaphore_contention_between_the_hooks_of_a_batch,
    semaphore_contention_between_the_hooks_of_a_batch_on_postgres,
    &[(H1, &["app"]), (H2, &["app"])],
    semaphore_contention
);

fn semaphore_contention(tb: TestBucket) {
    tb.job(
        "app",
        json!({
            "version": "1.0",
            "max_concurrent_starts": 2,
            "commands": {
                "command_a": {"executed_on": ["after_allocation_started"]},
                "command_b": {"executed_on": ["after_allocation_started"]}
            }
        }),
        &[("command_a.py", CONTENDER_A), ("command_b.py", CONTENDER_B)],
    );
    apply(&tb);
    let logs = tb.all_logs();
    let acquired = logs.lines().filter(|l| l.contains("] acquired ")).count();
    let refused = logs.lines().filter(|l| l.contains("] refused ") && l.ends_with(" 408")).count();
    assert_eq!((acquired, refused), (1, 1), "{logs}");
    // command_b: both held the mutex, one after the other.
    let mut spans: Vec<(f64, f64)> = tb
        .read("b.log")
        .lines()
        .map(|l| {
            let p: Vec<&str> = l.split(' ').collect();
            (p[1].parse().unwrap(), p[2].parse().unwrap())
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(spans.len(), 2, "{}", tb.read("b.log"));
    assert!(spans[1].0 >= spans[0].1, "the second acquired only after the first released: {spans:?}");
}

on_both_backends!(
    py_hooks_use_the_jobs_virtualenv_and_js_hooks_run_on_node,
    py_hooks_use_the_jobs_virtualenv_and_js_hooks_run_on_node_on_postgres,
    &[(H1, &["app"])],
    venv_and_node
);

fn venv_and_node(tb: TestBucket) {
    tb.job(
        "app",
        json!({
            "version": "1.0",
            "commands": {
                "command_py": {"executed_on": ["post_deploy"]},
                "command_js": {"executed_on": ["post_deploy"]}
            }
        }),
        &[
            ("command_py.py", "import sys\nprint('python', sys.argv[0].endswith('command_py.py'))\n"),
            ("command_js.js", "console.log('node says ' + process.env.EVENT + ' ' + process.env.CURRENT_VERSION);\n"),
            // The job's virtualenv: a python that says it was used.
            (".venv/bin/python", "#!/bin/bash\necho \"venv python\"\nexec python3 \"$@\"\n"),
        ],
    );
    apply(&tb);
    let logs = tb.all_logs();
    assert!(logs.contains("] venv python") && logs.contains("] python True"), "{logs}");
    // node: installed by .ci/run when the machine lacks it.
    assert!(logs.contains("] node says post_deploy 0.0.0"), "{logs}");
}

// `tests/fixtures/maand_client.py`: maand's client, header form only, every route.
on_both_backends!(
    a_maand_client_using_only_the_header_form_reaches_every_route,
    a_maand_client_using_only_the_header_form_reaches_every_route_on_postgres,
    &[(H1, &["app"]), (H2, &["app"])],
    maand_client_routes
);

fn maand_client_routes(tb: TestBucket) {
    // A fixed port turns the header form on; a free one, since 8080 may be taken.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Appended: a PostgreSQL bucket's kvform.hcl holds its `state` block.
    tb.write("kvform.hcl", &format!("{}hooks {{\n  api_port = {port}\n}}\n", tb.read("kvform.hcl")));
    tb.job(
        "app",
        json!({"version": "1.0", "commands": {"command_maand": {"executed_on": ["pre_deploy"]}}}),
        &[("command_maand.py", include_str!("fixtures/maand_client.py"))],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(tb.root())
        .args(["apply", "--auto-approve"])
        .env("KVFORM_NOW", NOW_STR)
        .env("MAAND_API_PORT", port.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), tb.all_logs());
    let lines: Vec<String> = tb
        .read("maand_client.out")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{H1} ")))
        .map(|l| l.trim_end().to_string())
        .collect();
    let want = [
        // The new catalog is readable in pre_deploy of the first apply.
        "get_version 200 1.0",
        "get_workers 200 10.0.0.1,10.0.0.2",
        "get_prometheus 200",
        "get_other_job 403",
        "put_var 200 hello",
        "put_bad_key 400",
        "put_rollout_order 200 10.0.0.2,10.0.0.1",
        "put_rollout_order_unknown 400",
        "get_rollout_order 200 10.0.0.2,10.0.0.1",
        "put_secret 200",
        r#"list_keys 200 {"secrets/job/app": ["token"], "vars/job/app": ["greeting"]}"#,
        r#"list_keys_vars 200 {"vars/job/app": ["greeting"]}"#,
        "delete_var 200",
        "delete_secret 200",
        "demands 200 []",
        "acquire 200 True",
        "acquire_again 200",
        "status 200 True",
        "release 200",
        "status_after 200 1/1",
    ];
    assert_eq!(lines, want, "logs:\n{}", tb.all_logs());
    assert!(tb.read("maand_client.out").contains(&format!("{H2} get_version 200 1.0")));
    assert_eq!(tb.value("vars/job/app", "greeting"), None);
    assert_eq!(tb.value("maand/job/app", "rollout_order").as_deref(), Some("10.0.0.1,10.0.0.2"), "one apply only");
}

/// A hook written for maand, branching the way maand's own hooks do: bootstrap on a first
/// deploy ordered by the catalog (`DEPLOY_PHASE=new`, `ROLLOUT_ORDER_SOURCE=kv`), a rolling
/// restart on an update, anything else is unexpected. Each branch taken is counted.
const BRANCHING: &str = r#"#!/bin/bash
set -eu
case "$DEPLOY_PHASE/$ROLLOUT_ORDER_SOURCE" in
  new/kv) branch=bootstrap ;;
  update/kv|update/default) branch=rolling-restart ;;
  *) branch="unexpected($DEPLOY_PHASE/$ROLLOUT_ORDER_SOURCE)" ;;
esac
echo "$branch $ALLOCATION_IP" >> branches.log
"#;

on_both_backends!(
    a_maand_hook_takes_maands_branch_on_deploy_phase_and_order_source,
    a_maand_hook_takes_maands_branch_on_deploy_phase_and_order_source_on_postgres,
    &[(H1, &["app"]), (H2, &["app"])],
    maand_branches
);

fn maand_branches(tb: TestBucket) {
    let job = |version: &str| {
        tb.job(
            "app",
            json!({"version": version, "commands": {"command_branch": {"executed_on": ["after_allocation_started"]}}}),
            &[("command_branch.sh", BRANCHING)],
        );
    };
    job("1.0");
    apply(&tb);
    job("2.0");
    apply(&tb);
    let mut lines: Vec<String> = tb.read("branches.log").lines().map(String::from).collect();
    lines[..2].sort();
    lines[2..].sort();
    assert_eq!(
        lines,
        [
            format!("bootstrap {H1}"),
            format!("bootstrap {H2}"),
            format!("rolling-restart {H1}"),
            format!("rolling-restart {H2}"),
        ]
    );
}
