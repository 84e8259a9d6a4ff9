//! Secret plaintext never reaches hook logs or hook output (SPEC §4 Secrets), and every
//! hook invocation opens its log section with a header line (retried applies append to
//! the same `logs/<serial>/` files).

mod hooks_common;

use hooks_common::*;
use kvform::hooks::api::ApiConfig;
use kvform::hooks::runner::{HookOutcome, HookStatus, log_dir, run_hook};
use kvform::hooks::store::MemoryStore;
use kvform::workspace::types::Event;

const PREFIX: &str = "[api/command_setup@10.0.0.1] ";

fn seeded() -> Fixture {
    let store = MemoryStore::new()
        .with("secrets/job/api", "db_password", "hunter2-own")
        .with("secrets/job/db", "root_password", "Upstream#Pass")
        .with("secrets/job/api", "pin", "42")
        .with("vars/job/api", "greeting", "hello-plain");
    Fixture::start(store, ApiConfig::for_port(0))
}

/// The hook's text of every line (output and log), prefix stripped.
fn texts(o: &HookOutcome) -> (Vec<String>, String) {
    let out = o.output.iter().map(|l| l.strip_prefix(PREFIX).expect("prefixed").to_string()).collect();
    let log = std::fs::read_to_string(o.log_file.as_ref().expect("a log file")).unwrap();
    (out, log)
}

fn assert_absent(o: &HookOutcome, log: &str, plaintexts: &[&str]) {
    for p in plaintexts {
        assert!(!log.contains(p), "{p:?} leaked into the log:\n{log}");
        assert!(o.output.iter().all(|l| !l.contains(p)), "{p:?} leaked into the output: {:#?}", o.output);
    }
}

#[test]
fn secrets_a_hook_reads_are_redacted_from_stdout_stderr_log_and_output() {
    let script = r#"
import sys, json, kvform_hook as kv
own = kv.get("secrets/job/api", "db_password")
up = kv.get("secrets/job/db", "root_password")
pin = kv.get("secrets/job/api", "pin")
print("own=" + own)
print("upstream", up, file=sys.stderr)
print("json", json.dumps({"pw": own}))
print("pin=" + pin + " port 4242")
print("greeting=" + kv.get("vars/job/api", "greeting"))
sys.exit(1)
"#;
    let (dir, rel) = bucket_with("command_setup.py", script);
    let fx = seeded();
    let o = run_hook(
        &invocation(dir.path(), &rel, Event::PreDeploy, 0, "1.0.0"),
        &fx.server.handle(),
        &log_dir(dir.path(), 5),
    );
    assert_eq!(o.status, HookStatus::Exited(1), "{:#?}", o.output);
    let (mut out, log) = texts(&o);
    out.sort(); // stdout and stderr interleave in no fixed order
    assert_eq!(
        out,
        [
            "greeting=hello-plain",
            "json {\"pw\": \"(sensitive)\"}",
            "own=(sensitive)",
            "pin=(sensitive) port 4242",
            "upstream (sensitive)",
        ]
    );
    assert_absent(&o, &log, &["hunter2-own", "Upstream#Pass", "pin=42"]);
    assert!(log.contains("greeting=hello-plain") && log.contains("upstream (sensitive)"), "{log}");
}

#[test]
fn secrets_a_hook_writes_are_redacted_even_when_printed_before_the_write() {
    let script = r#"
import kvform_hook as kv
pw = "fresh-" + "generated-pw"
print("about to store " + pw)
kv.put_secret("api_key", pw)
print("stored " + pw)
kv.put("color", "blue-not-secret")
print("color blue-not-secret")
"#;
    let (dir, rel) = bucket_with("command_setup.py", script);
    let fx = seeded();
    let o = run_hook(
        &invocation(dir.path(), &rel, Event::PreDeploy, 0, "1.0.0"),
        &fx.server.handle(),
        &log_dir(dir.path(), 6),
    );
    assert_eq!(o.status, HookStatus::Exited(0), "{:#?}", o.output);
    let (out, log) = texts(&o);
    assert_eq!(out, ["about to store (sensitive)", "stored (sensitive)", "color blue-not-secret"]);
    assert_absent(&o, &log, &["fresh-generated-pw"]);
    let body: Vec<&str> = log.lines().skip(1).collect();
    assert_eq!(
        body,
        [
            format!("{PREFIX}about to store (sensitive)"),
            format!("{PREFIX}stored (sensitive)"),
            format!("{PREFIX}color blue-not-secret"),
        ]
    );
    // The store itself got the real value.
    assert_eq!(fx.store.lock().unwrap().entry("secrets/job/api", "api_key").unwrap().value, "fresh-generated-pw");
}

#[test]
fn a_shell_hook_echoing_a_secret_it_read_is_redacted() {
    // curl is not guaranteed on every machine; the shell hook reads through python3.
    let script = r#"
pw=$(python3 -c 'import kvform_hook as kv; print(kv.get("secrets/job/api", "db_password"))')
echo "pw is $pw"
echo "err $pw" >&2
"#;
    let (dir, rel) = bucket_with("command_setup.sh", script);
    let fx = seeded();
    let o = run_hook(
        &invocation(dir.path(), &rel, Event::PostDeploy, 0, "1.0.0"),
        &fx.server.handle(),
        &log_dir(dir.path(), 7),
    );
    assert_eq!(o.status, HookStatus::Exited(0), "{:#?}", o.output);
    let (mut out, log) = texts(&o);
    out.sort();
    assert_eq!(out, ["err (sensitive)", "pw is (sensitive)"]);
    assert_absent(&o, &log, &["hunter2-own"]);
}

#[test]
fn the_seen_set_is_per_token_and_dies_with_it() {
    let fx = seeded();
    let api = fx.server.handle();
    let reader = fx.issue(Event::PreDeploy);
    let bystander = fx.issue(Event::PreDeploy);
    let r = call(
        fx.addr(),
        &reader,
        "GET",
        "/kv",
        serde_json::json!({"namespace": "secrets/job/api", "key": "db_password"}),
    );
    assert_eq!(r.status, 200, "{}", r.raw_body);
    let r = call(fx.addr(), &reader, "GET", "/kv", serde_json::json!({"namespace": "vars/job/api", "key": "greeting"}));
    assert_eq!(r.status, 200, "{}", r.raw_body);
    // A refused secret write is still a secret the hook meant to keep.
    let ro = fx.issue(Event::HealthCheck);
    let r = call(
        fx.addr(),
        &ro,
        "PUT",
        "/kv/secret",
        serde_json::json!({"namespace": "secrets/job/api", "key": "k", "value": "denied-secret"}),
    );
    assert_eq!(r.status, 403, "{}", r.raw_body);
    assert_eq!(api.redact(&ro, "v=denied-secret"), "v=(sensitive)");

    let line = "x hunter2-own hello-plain";
    assert_eq!(api.redact(&reader, line), "x (sensitive) hello-plain");
    assert_eq!(api.redact(&bystander, line), line, "another hook's token never saw it");
    let (holds, seen) = api.retire(&reader);
    assert_eq!(holds, 0);
    assert_eq!(seen.redact(line), "x (sensitive) hello-plain", "handed back for the final pass");
    drop(seen);
    assert_eq!(api.redact(&reader, line), line, "revoked: the token no longer knows it");
}

#[test]
fn every_invocation_opens_its_log_section_with_a_header() {
    let (dir, rel) = bucket_with("command_setup.sh", "echo \"run $EVENT\"\n");
    let fx = seeded();
    let logs = log_dir(dir.path(), 9);
    let first = run_hook(&invocation(dir.path(), &rel, Event::PostDeploy, 0, "1.0.0"), &fx.server.handle(), &logs);
    let second = run_hook(&invocation(dir.path(), &rel, Event::PostDeploy, 0, "1.0.0"), &fx.server.handle(), &logs);
    assert_eq!(first.log_file, second.log_file, "a retry appends to the same file");
    // The header is only in the log: failure reports show the hook's own lines.
    assert_eq!(second.output, [format!("{PREFIX}run post_deploy")]);
    let log = std::fs::read_to_string(second.log_file.unwrap()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    for (i, l) in lines.iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(*l, format!("{PREFIX}run post_deploy"));
            continue;
        }
        let time = l
            .strip_prefix("=== post_deploy command_setup@10.0.0.1 ")
            .and_then(|r| r.strip_suffix(" ==="))
            .unwrap_or_else(|| panic!("not a header: {l:?}"));
        assert!(time.ends_with('Z') && kvform::clock::parse_time(time).is_some(), "bad time {time:?}");
    }
}
