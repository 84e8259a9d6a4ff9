//! Issue 22 item 4: hooks never outlive their apply. SIGTERM to `kvform apply` stops the
//! running hooks (their process groups), rolls back, releases the lock and exits 143; a
//! SIGKILLed apply takes its hooks along (`PR_SET_PDEATHSIG`). Both backends.

mod tf_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tf_support::{NOW, ok, pg_bucket, pg_url, write};

/// Records its pid (the leader of its process group), sleeps, then would leave a marker.
const SLOW_HOOK: &str = "#!/bin/bash\necho $$ >> hook.pids\nsleep 30\necho done > marker\n";

fn with_slow_hook(d: &Path) {
    write(
        d,
        "workspace/jobs/web/manifest.json",
        r#"{
  "version": "1.0.0",
  "resources": { "ports": { "web_http": {} } },
  "commands": { "command_slow": { "executed_on": ["pre_deploy"] } }
}
"#,
    );
    write(d, "workspace/jobs/web/_modules/command_slow.sh", SLOW_HOOK);
}

fn spawn_apply(d: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["apply", "--auto-approve"])
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The pids the hooks recorded, once at least one hook runs.
fn hook_pids(d: &Path) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(d.join("hook.pids")).unwrap_or_default();
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if !pids.is_empty() {
            return pids;
        }
        assert!(Instant::now() < until, "no hook started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Wait until `pid` (a process, or with a negative number a process group) is gone.
fn gone_within(pid: i32, within: Duration) -> bool {
    let until = Instant::now() + within;
    while alive(pid) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("kvform apply did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

fn sigterm_stops_hooks_rolls_back_and_exits_143(d: &Path) {
    with_slow_hook(d);
    let plan_before = ok(d, &["plan"]);
    assert!(plan_before.contains("Plan:"), "{plan_before}");
    let mut apply = spawn_apply(d);
    let pids = hook_pids(d);
    let sent = Instant::now();
    unsafe { libc::kill(apply.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut apply, Duration::from_secs(15));
    let took = sent.elapsed();
    let err = read_all(apply.stderr.take().unwrap());
    let out = read_all(apply.stdout.take().unwrap());
    assert_eq!(status.code(), Some(143), "{status:?}\n{out}\n{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(err.contains("interrupted (SIGTERM)"), "{err}");
    assert!(err.contains("stopped 1 hook(s)") || err.contains("stopped 2 hook(s)"), "{err}");
    assert!(err.contains("web/command_slow@10.0.0."), "{err}");
    assert!(err.contains("nothing of this apply was committed: rolled back"), "{err}");
    assert!(!out.contains("Apply complete"), "{out}");
    for pid in pids {
        // The hook and its whole process group (the `sleep` that would write the marker).
        assert!(gone_within(pid, Duration::from_secs(2)), "hook {pid} still running");
        assert!(gone_within(-pid, Duration::from_secs(2)), "hook group {pid} still running");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!d.join("marker").exists(), "the hook went on after the apply");
    // The lock is free and nothing was committed: the same plan again.
    assert_eq!(ok(d, &["plan"]), plan_before);
    // And a later apply runs (the hook no longer sleeps).
    write(d, "workspace/jobs/web/_modules/command_slow.sh", "#!/bin/bash\ntrue\n");
    assert!(ok(d, &["apply", "--auto-approve"]).contains("Apply complete"));
}

fn sigkill_takes_the_hooks_along(d: &Path) {
    with_slow_hook(d);
    let plan_before = ok(d, &["plan"]);
    let mut apply = spawn_apply(d);
    let pids = hook_pids(d);
    unsafe { libc::kill(apply.id() as i32, libc::SIGKILL) };
    let status = wait_exit(&mut apply, Duration::from_secs(5));
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    for &pid in &pids {
        assert!(gone_within(pid, Duration::from_secs(3)), "hook {pid} outlived the SIGKILLed apply");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!d.join("marker").exists(), "the hook went on after the apply");
    assert_eq!(ok(d, &["plan"]), plan_before);
    // The hooks' `sleep` children do not get the parent-death signal; end them here.
    for pid in pids {
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

#[test]
fn sigterm_to_apply_stops_its_hooks_and_exits_143() {
    let b = tf_support::bucket();
    sigterm_stops_hooks_rolls_back_and_exits_143(b.path());
}

#[test]
fn sigterm_to_apply_stops_its_hooks_and_exits_143_on_postgres() {
    if pg_url("sigterm_to_apply_stops_its_hooks_and_exits_143_on_postgres").is_none() {
        return;
    }
    let b = pg_bucket();
    sigterm_stops_hooks_rolls_back_and_exits_143(b.path());
}

#[test]
fn sigkill_to_apply_takes_its_hooks_along() {
    let b = tf_support::bucket();
    sigkill_takes_the_hooks_along(b.path());
}

#[test]
fn sigkill_to_apply_takes_its_hooks_along_on_postgres() {
    if pg_url("sigkill_to_apply_takes_its_hooks_along_on_postgres").is_none() {
        return;
    }
    let b = pg_bucket();
    sigkill_takes_the_hooks_along(b.path());
}
