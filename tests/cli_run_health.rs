//! `kvform run` and `kvform health` through the binary, on a bucket whose state was seeded
//! by an apply: commits on success (serial + 1), rollback on failure, `--workers`, the
//! errors for unknown jobs/commands/workers, the health table and exit codes, read-only
//! health hooks, and that secrets a hook writes never show in logs, `cat kv` or a plan.

mod hooks_apply_support;

use hooks_apply_support::*;
use kvform::plan::{PlanOptions, TextOptions, diff, render_json, render_text};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

const H: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const SECRET: &str = "cli-s3cr3t-PLAINTEXT-77";

const SET: &str = r#"
import os, kvform_hook as kv
host = os.environ["ALLOCATION_IP"]
kv.put("ran_" + host, os.environ["EVENT"])
kv.put_secret("cli_token", "cli-s3cr3t-" + "PLAINTEXT-77")
with open("run.log", "a") as f:
    f.write(host + "\n")
print("set on " + host)
"#;

const FAIL: &str = r#"
import os, sys, kvform_hook as kv
host = os.environ["ALLOCATION_IP"]
kv.put("fail_" + host, "1")
if host == "10.0.0.2":
    print("fail output line from " + host)
    sys.exit(2)
"#;

const HEALTH: &str = r#"
import os, sys, kvform_hook as kv
host = os.environ["ALLOCATION_IP"]
try:
    kv.put("health_wrote", "1")
    status = "200"
except kv.KvformHookError as e:
    status = str(e.status)
with open("health_write_" + host, "w") as f:
    f.write(status)
if os.path.exists("unhealthy_" + host):
    sys.exit("unhealthy: marker file present")
print("healthy: " + (kv.get("vars/job/app", "ran_" + host) or "never ran"))
"#;

fn bucket() -> TestBucket {
    let workers: Vec<(&str, &[&str])> = H.iter().map(|h| (*h, &["app", "other"][..])).collect();
    let tb = TestBucket::new(&workers);
    tb.job(
        "app",
        json!({"version": "1.0", "commands": {
            "command_set": {"executed_on": ["cli"]},
            "command_fail": {"executed_on": ["cli"]},
            "command_health": {"executed_on": ["health_check"]},
            "command_deploy": {"executed_on": ["post_deploy"]},
        }}),
        &[
            ("command_set.py", SET),
            ("command_fail.py", FAIL),
            ("command_health.py", HEALTH),
            ("command_deploy.sh", "#!/bin/bash\nexit 0\n"),
        ],
    );
    tb.job("other", json!({"version": "1.0"}), &[]);
    apply_without_hooks(&tb);
    tb
}

fn kvform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("KVFORM_NOW", NOW_STR)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args);
    assert!(o.status.success(), "{args:?} failed:\n{}\n{}", text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

/// Must exit 1; returns (stdout, stderr).
fn fails(dir: &Path, args: &[&str]) -> (String, String) {
    let o = kvform(dir, args);
    assert_eq!(o.status.code(), Some(1), "{args:?} should fail:\n{}\n{}", text(&o.stdout), text(&o.stderr));
    (text(&o.stdout), text(&o.stderr))
}

#[test]
fn run_commits_on_success_and_keeps_secrets_out_of_every_output() {
    let tb = bucket();
    let p = tb.root();
    let before = tb.serial();
    let out = ok(p, &["run", "app", "command_set"]);
    for h in H {
        assert!(out.contains(&format!("ok  app/command_set@{h}")), "{out}");
        assert_eq!(tb.value("vars/job/app", &format!("ran_{h}")).as_deref(), Some("cli"));
    }
    assert_eq!(tb.read("run.log"), "10.0.0.1\n10.0.0.2\n10.0.0.3\n");
    assert_eq!(tb.serial(), before + 1);
    assert_eq!(tb.store().audit(1).unwrap()[0].operation, "run");
    assert_eq!(tb.value("secrets/job/app", "cli_token").as_deref(), Some(SECRET));
    let logs = tb.all_logs();
    assert!(logs.contains("set on 10.0.0.1"), "logs of serial {}: {logs}", before + 1);
    assert!(tb.path(&format!("logs/{}/app/command_set@10.0.0.1.log", before + 1)).is_file());

    // The secret is in no output: logs, cat kv (table and JSON), kv history, the plan.
    assert!(!logs.contains(SECRET));
    let cat = ok(p, &["cat", "kv"]) + &ok(p, &["cat", "kv", "--format", "json"]);
    assert!(cat.contains("cli_token") && cat.contains("(sensitive)"), "{cat}");
    assert!(!cat.contains(SECRET), "{cat}");
    assert!(!ok(p, &["kv", "history", "secrets/job/app", "cli_token"]).contains(SECRET));
    // A plan that purges the job (removed from the workspace) lists the secret masked.
    std::fs::remove_dir_all(tb.path("workspace/jobs/app")).unwrap();
    let (_, desired) = tb.desired();
    let plan = diff(&desired, &tb.store().snapshot().unwrap(), &PlanOptions::default(), NOW);
    assert!(plan.changes.iter().any(|c| c.namespace == "secrets/job/app" && c.key == "cli_token"));
    let rendered = render_text(&plan, TextOptions { color: false, detail: true }) + &render_json(&plan);
    assert!(rendered.contains("secrets/job/app"), "{rendered}");
    assert!(!rendered.contains(SECRET), "{rendered}");
}

#[test]
fn run_rolls_back_on_failure_and_checks_its_arguments() {
    let tb = bucket();
    let p = tb.root();
    let before = tb.serial();
    let (out, err) = fails(p, &["run", "app", "command_fail"]);
    assert!(out.contains("ok  app/command_fail@10.0.0.1"), "{out}");
    assert!(out.contains("FAILED  app/command_fail@10.0.0.2"), "{out}");
    assert!(!out.contains("10.0.0.3"), "the run stops at the first failure: {out}");
    assert!(err.contains("[app/command_fail@10.0.0.2] fail output line from 10.0.0.2"), "{err}");
    assert!(err.contains("cli hook failed: app/command_fail@10.0.0.2 exited with status 2"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(tb.serial(), before);
    assert_eq!(tb.value("vars/job/app", "fail_10.0.0.1"), None, "the first host's write was rolled back");

    // --workers: only those, in the order given; the prefix may be left out.
    ok(p, &["run", "app", "set", "--workers", "10.0.0.3,10.0.0.1"]);
    assert_eq!(tb.read("run.log"), "10.0.0.3\n10.0.0.1\n");
    assert_eq!(tb.value("vars/job/app", "ran_10.0.0.2"), None);
    assert_eq!(tb.serial(), before + 1);

    let (_, err) = fails(p, &["run", "app", "command_set", "--workers", "10.0.0.9"]);
    assert!(err.contains("10.0.0.9 is not an active allocation of job app"), "{err}");
    assert!(err.contains("10.0.0.1, 10.0.0.2, 10.0.0.3"), "{err}");
    let (_, err) = fails(p, &["run", "ap", "command_set"]);
    assert!(err.contains("no job `ap`") && err.contains("did you mean `app`?"), "{err}");
    let (_, err) = fails(p, &["run", "app", "command_sett"]);
    assert!(err.contains("job app has no command \"command_sett\"") && err.contains("command_set"), "{err}");
    let (_, err) = fails(p, &["run", "app", "command_deploy"]);
    assert!(err.contains("app/command_deploy does not run on `cli` (executed_on: post_deploy)"), "{err}");
    assert!(err.contains("add \"cli\""), "{err}");
    assert_eq!(tb.serial(), before + 1, "argument errors change nothing");
}

#[test]
fn health_prints_a_table_refuses_writes_and_fails_on_an_unhealthy_host() {
    let tb = bucket();
    let p = tb.root();
    let before = tb.serial();
    let out = ok(p, &["health"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(cells[0], ["JOB", "HOST", "COMMAND", "STATUS", "DURATION"]);
    for (i, h) in H.iter().enumerate() {
        assert_eq!(cells[i + 1][..4], ["app", *h, "command_health", "ok"], "{out}");
        assert!(cells[i + 1][4].ends_with('s'), "{out}");
        // The hook tried to write: refused by the access table (read-only health checks).
        assert_eq!(tb.read(&format!("health_write_{h}")), "403");
    }
    assert_eq!(tb.value("vars/job/app", "health_wrote"), None);
    assert_eq!(tb.serial(), before);

    std::fs::write(tb.path("unhealthy_10.0.0.2"), "").unwrap();
    let (out, err) = fails(p, &["health", "--jobs", "app"]);
    let row = out.lines().find(|l| l.contains("10.0.0.2")).unwrap();
    assert!(row.contains("failed (exit 1)"), "{out}");
    assert!(out.lines().filter(|l| l.contains(" ok ")).count() == 2, "every hook runs despite a failure: {out}");
    assert!(err.contains("unhealthy: marker file present"), "{err}");
    assert!(err.contains("1 of 3 health checks failed"), "{err}");

    // A job without health checks: nothing to run, success.
    let o = kvform(p, &["health", "--jobs", "other"]);
    assert!(o.status.success());
    assert!(text(&o.stderr).contains("job other has no health_check command"), "{}", text(&o.stderr));
    let (_, err) = fails(p, &["health", "--jobs", "nope"]);
    assert!(err.contains("no job `nope`"), "{err}");
    assert_eq!(tb.serial(), before);
}
