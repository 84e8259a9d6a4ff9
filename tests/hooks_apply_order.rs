//! The order hooks run in during an apply (SPEC §5, maand's deploy): pre_deploy host by host
//! in rollout order, the health_check gate on every active allocation (once after the new
//! allocations, after each batch of changed ones), then post_deploy host by host, last;
//! waves and job names order the jobs. Also the hook environment
//! (ALLOCATION_INDEX, DISABLED, CURRENT_VERSION -> NEW_VERSION) and that disabled
//! allocations get no hooks. Each test runs on both backends.

mod hooks_apply_support;

use hooks_apply_support::*;
use serde_json::json;
use std::collections::BTreeSet;

const H: [&str; 5] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];

const APP_HOOK: &str = r#"#!/bin/bash
set -e
if [ "$EVENT" = post_deploy ]; then
  echo "start post_deploy $JOB $ALLOCATION_IP" >> order.log
  sleep 0.4
  echo "end post_deploy $JOB $ALLOCATION_IP" >> order.log
else
  echo "$EVENT $JOB $ALLOCATION_IP $ALLOCATION_INDEX $DISABLED $CURRENT_VERSION>$NEW_VERSION" >> order.log
fi
"#;

/// The five workers of `app`.
const APP_WORKERS: &[(&str, &[&str])] =
    &[(H[0], &["app"]), (H[1], &["app"]), (H[2], &["app"]), (H[3], &["app"]), (H[4], &["app"])];

/// Job `app` at `version` on every worker, its allocation on 10.0.0.5 disabled.
fn with_app(tb: TestBucket, version: &str) -> TestBucket {
    tb.write("workspace/disabled.json", r#"{"jobs": {"app": {"allocations": ["10.0.0.5"]}}}"#);
    set_app(&tb, version);
    tb
}

fn set_app(tb: &TestBucket, version: &str) {
    tb.job(
        "app",
        json!({
            "version": version,
            "max_concurrent_starts": 2,
            "commands": {"command_a": {"executed_on": ["pre_deploy", "post_deploy", "health_check"]}}
        }),
        &[("command_a.sh", APP_HOOK)],
    );
}

/// post_deploy on `hosts`, one after the other (maand's `JobCommand` with concurrency 1).
fn post_deploy_in_turn(hosts: &[&str]) -> Vec<String> {
    hosts.iter().flat_map(|h| [format!("start post_deploy app {h}"), format!("end post_deploy app {h}")]).collect()
}

on_both_backends!(
    pre_deploy_then_health_gate_then_post_deploy_last,
    pre_deploy_then_health_gate_then_post_deploy_last_on_postgres,
    APP_WORKERS,
    batches_and_health_gate
);

fn batches_and_health_gate(tb: TestBucket) {
    let tb = with_app(tb, "1.0");
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    let lines: Vec<String> = tb.read("order.log").lines().map(String::from).collect();
    // pre_deploy: rollout (fleet) order, the disabled 10.0.0.5 left out; new allocations.
    let pre: Vec<String> = (0..4).map(|i| format!("pre_deploy app {} {i} 0 0.0.0>1.0", H[i])).collect();
    // New allocations (two batches of max_concurrent_starts = 2): the gate once, after all
    // of them started (maand's `rolloutStartBatches`), then post_deploy.
    let gate: Vec<String> = (0..4).map(|i| format!("health_check app {} {i} 0 0.0.0>1.0", H[i])).collect();
    let mut want = pre;
    want.extend(gate);
    want.extend(post_deploy_in_turn(&H[..4]));
    assert_eq!(lines, want);

    // An upgrade: CURRENT_VERSION is what the state held before this apply; changed
    // allocations go one at a time (max_concurrent_upgrades defaults to 1), the gate on
    // every active allocation after each (maand's `rolloutRestartBatches`).
    std::fs::remove_file(tb.path("order.log")).unwrap();
    set_app(&tb, "2.0");
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    let lines: Vec<String> = tb.read("order.log").lines().map(String::from).collect();
    let mut want: Vec<String> = (0..4).map(|i| format!("pre_deploy app {} {i} 0 1.0>2.0", H[i])).collect();
    for _batch in 0..4 {
        want.extend((0..4).map(|j| format!("health_check app {} {j} 0 1.0>2.0", H[j])));
    }
    want.extend(post_deploy_in_turn(&H[..4]));
    assert_eq!(lines, want);
}

on_both_backends!(
    waves_then_job_names_order_the_jobs,
    waves_then_job_names_order_the_jobs_on_postgres,
    &[(H[0], &["db", "web", "aaa"]), (H[1], &["db", "web", "aaa"])],
    waves_then_job_names
);

fn waves_then_job_names(tb: TestBucket) {
    let hook = logging_hook("order.log", "");
    let pre = |demands: Option<(&str, &str)>| {
        let mut c = json!({"executed_on": ["pre_deploy", "post_deploy"]});
        if let Some((job, command)) = demands {
            c["demands"] = json!({"job": job, "command": command});
        }
        c
    };
    tb.job(
        "web",
        json!({"version": "1.0", "commands": {"command_w": pre(Some(("db", "command_d")))}}),
        &[("command_w.sh", &hook)],
    );
    tb.job("db", json!({"version": "1.0", "commands": {"command_d": pre(None)}}), &[("command_d.sh", &hook)]);
    tb.job(
        "aaa",
        json!({"version": "1.0", "commands": {"command_z": pre(None), "command_y": pre(None)}}),
        &[("command_z.sh", &hook), ("command_y.sh", &hook)],
    );
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    let lines: Vec<String> = tb.read("order.log").lines().map(String::from).collect();
    // Per job: pre_deploy on both hosts, then post_deploy on both.
    let job_part = |lines: &[String], job: &str, commands: usize| {
        let (pre, post) = lines.split_at(2 * commands);
        let want: Vec<String> = (0..commands)
            .flat_map(|_| [format!("pre_deploy {job} {}", H[0]), format!("pre_deploy {job} {}", H[1])])
            .collect();
        assert_eq!(pre, want, "{lines:#?}");
        let got: BTreeSet<&String> = post[..2 * commands].iter().collect();
        let want: BTreeSet<String> = [H[0], H[1]].iter().map(|h| format!("post_deploy {job} {h}")).collect();
        assert_eq!(got, want.iter().collect(), "{lines:#?}");
        lines[4 * commands..].to_vec()
    };
    // Wave 0: aaa (two commands, by name: command_y then command_z), db; wave 1: web.
    let rest = job_part(&lines, "aaa", 2);
    let rest = job_part(&rest, "db", 1);
    let rest = job_part(&rest, "web", 1);
    assert!(rest.is_empty(), "{rest:#?}");
}
