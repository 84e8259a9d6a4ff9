//! Failing hooks during an apply: a StepFailure names command@host and how it ended and
//! carries the hook's output; a hook running past `hooks { timeout }` is killed. Each test
//! runs on both backends (the failed job's checkpoint is a savepoint of the state's write
//! transaction, which is the backend's).

mod hooks_apply_support;

use hooks_apply_support::*;
use serde_json::json;
use std::time::{Duration, Instant};

const H: [&str; 2] = ["10.0.0.1", "10.0.0.2"];
const WORKERS: &[(&str, &[&str])] = &[(H[0], &["app"]), (H[1], &["app"])];

/// Job `app` on both workers, `script` its hook on `event`.
fn with_app(tb: TestBucket, event: &str, script: &str) -> TestBucket {
    tb.job(
        "app",
        json!({"version": "1.0", "max_concurrent_starts": 2, "commands": {
            "command_a": {"executed_on": [event]}}}),
        &[("command_a.sh", script)],
    );
    tb
}

on_both_backends!(
    a_failing_post_deploy_fails_the_job_with_its_output,
    a_failing_post_deploy_fails_the_job_with_its_output_on_postgres,
    WORKERS,
    failing_post_deploy
);

fn failing_post_deploy(tb: TestBucket) {
    // Fails on the second host only, after printing to both streams.
    let tb = with_app(
        tb,
        "post_deploy",
        "#!/bin/bash\necho \"out from $ALLOCATION_IP\"\necho \"err from $ALLOCATION_IP\" >&2\n\
         [ \"$ALLOCATION_IP\" = 10.0.0.2 ] && exit 7\nexit 0\n",
    );
    let applied = mini_apply(&tb, |_| {});
    assert_eq!(applied.failures.len(), 1);
    let f = &applied.failures[0];
    assert_eq!((f.job.as_str(), f.event.as_str()), ("app", "post_deploy"));
    assert_eq!(f.message, "post_deploy hook failed: app/command_a@10.0.0.2 exited with status 7");
    let mut out = f.output.clone();
    out.sort();
    assert_eq!(out, ["[app/command_a@10.0.0.2] err from 10.0.0.2", "[app/command_a@10.0.0.2] out from 10.0.0.2"]);
    // The job's checkpoint was rolled back: none of its namespaces were written.
    assert_eq!(tb.value("maand/job/app", "version"), None);
    assert_eq!(tb.value("maand/job/app/worker/10.0.0.1", "version"), None);
    // The full output is in the log of the apply's serial.
    let log = tb.read(&format!("logs/{}/app/command_a@10.0.0.2.log", tb.serial()));
    assert!(log.contains("err from 10.0.0.2"), "{log}");
}

on_both_backends!(
    a_hook_past_its_timeout_is_killed,
    a_hook_past_its_timeout_is_killed_on_postgres,
    WORKERS,
    hook_past_its_timeout
);

fn hook_past_its_timeout(tb: TestBucket) {
    // A batch of two runs its hooks in parallel: both are killed.
    let tb = with_app(tb, "after_allocation_started", "#!/bin/bash\necho started\nsleep 30\necho finished\n");
    let t = Instant::now();
    let applied = mini_apply(&tb, |s| s.hook_timeout_secs = 1);
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    assert_eq!(applied.failures.len(), 1);
    let f = &applied.failures[0];
    for h in H {
        assert!(f.message.contains(&format!("app/command_a@{h} timed out after 1 s and was killed")), "{}", f.message);
    }
    assert!(f.output.iter().any(|l| l.ends_with("] started")), "{:?}", f.output);
    assert!(!f.output.iter().any(|l| l.ends_with("] finished")), "{:?}", f.output);
}
