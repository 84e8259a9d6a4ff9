//! Running hook processes: environment, working directory, logs, timeouts that kill the
//! whole process group, start errors, batches, and the Python helper end to end against a
//! live API.

mod hooks_common;

use hooks_common::*;
use kvform::hooks::api::ApiConfig;
use kvform::hooks::runner::{HookInvocation, HookStatus, log_dir, run_batch, run_hook};
use kvform::hooks::store::MemoryStore;
use kvform::workspace::types::Event;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn fixture() -> Fixture {
    Fixture::start(
        MemoryStore::new().with("maand/job/db", "version", "9.9").with("maand/job/api", "workers", "10.0.0.1,10.0.0.2"),
        ApiConfig::for_port(0),
    )
}

#[test]
fn environment_cwd_and_prefixed_logs() {
    let script = r#"
for v in KVFORM_API ALLOCATION_ID ALLOCATION_IP ALLOCATION_INDEX JOB EVENT COMMAND DISABLED CURRENT_VERSION NEW_VERSION JOB_COMMAND_API_HOST; do
  echo "$v=${!v}"
done
echo "token_len=${#KVFORM_TOKEN}"
echo "cwd=$(pwd)"
echo "py=${PYTHONPATH%%:*}"
echo "to stderr" >&2
"#;
    let (dir, rel) = bucket_with("command_setup.sh", script);
    let fx = fixture();
    let logs = log_dir(dir.path(), 7);
    let out = run_hook(&invocation(dir.path(), &rel, Event::PostDeploy, 1, "1.1.0"), &fx.server.handle(), &logs);
    assert_eq!(out.status, HookStatus::Exited(0), "{:?}", out.output);
    let p = "[api/command_setup@10.0.0.1] ";
    let root = dir.path().canonicalize().unwrap();
    let want = [
        format!("KVFORM_API={}", fx.server.base_url()),
        format!("ALLOCATION_ID={}", Uuid::from_u128(0xa11c)),
        "ALLOCATION_IP=10.0.0.1".into(),
        "ALLOCATION_INDEX=1".into(),
        "JOB=api".into(),
        "EVENT=post_deploy".into(),
        "COMMAND=command_setup".into(),
        "DISABLED=0".into(),
        "CURRENT_VERSION=1.0.0".into(),
        "NEW_VERSION=1.1.0".into(),
        "JOB_COMMAND_API_HOST=127.0.0.1".into(),
        "token_len=64".into(),
        format!("cwd={}", root.display()),
        "to stderr".into(),
    ];
    for w in &want {
        assert!(out.output.contains(&format!("{p}{w}")), "missing {w:?} in {:#?}", out.output);
    }
    // The helper directory holds kvform_hook.py and is gone after the hook.
    let py = out.output.iter().find_map(|l| l.strip_prefix(&format!("{p}py="))).unwrap();
    assert!(py.contains("kvform-hook-"), "{py}");
    assert!(!Path::new(py).exists(), "helper dir {py} was not removed");
    // Log file: every line prefixed, private permissions.
    let log = out.log_file.clone().unwrap();
    assert_eq!(log, dir.path().join("logs/7/api/command_setup@10.0.0.1.log"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > want.len());
    // A header opens the invocation's section; every hook line after it is prefixed.
    assert!(text.starts_with("=== post_deploy command_setup@10.0.0.1 "), "{text}");
    assert!(text.lines().skip(1).all(|l| l.starts_with(p)), "{text}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(&dir.path().join("logs/7")), 0o700);
    assert_eq!(mode(&dir.path().join("logs/7/api")), 0o700);
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (state Z) has exited; only a missing or non-zombie /proc entry counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')).unwrap_or(true),
    }
}

#[test]
fn timeout_kills_the_script_and_its_children() {
    let (dir, rel) = bucket_with("command_setup.sh", "sleep 1000 &\necho $! > child.pid\necho started\nsleep 1000\n");
    let fx = fixture();
    let mut inv = invocation(dir.path(), &rel, Event::PreDeploy, 1, "1.1.0");
    inv.timeout = Duration::from_secs(1);
    let started = Instant::now();
    let out = run_hook(&inv, &fx.server.handle(), &log_dir(dir.path(), 1));
    assert_eq!(out.status, HookStatus::TimedOut(Duration::from_secs(1)));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(out.output.iter().any(|l| l.ends_with("] started")));
    assert!(out.summary().contains("timed out"));
    let child: u32 = std::fs::read_to_string(dir.path().join("child.pid")).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_alive(child), "the hook's child {child} survived the timeout");
}

#[test]
fn start_errors_and_exit_codes() {
    let fx = fixture();
    let api = fx.server.handle();
    // A file with no .sh/.py extension must be executable.
    let (dir, rel) = bucket_with("command_setup", "#!/bin/sh\necho hi\n");
    let out = run_hook(&invocation(dir.path(), &rel, Event::Cli, 1, "1.1.0"), &api, &log_dir(dir.path(), 1));
    match &out.status {
        HookStatus::FailedToStart(why) => assert!(why.contains("not executable") && why.contains("chmod +x"), "{why}"),
        other => panic!("expected a start error, got {other:?}"),
    }
    std::fs::set_permissions(dir.path().join(&rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run_hook(&invocation(dir.path(), &rel, Event::Cli, 1, "1.1.0"), &api, &log_dir(dir.path(), 1));
    assert_eq!(out.status, HookStatus::Exited(0));
    assert_eq!(out.output, vec!["[api/command_setup@10.0.0.1] hi".to_string()]);
    // Missing script.
    let missing = invocation(dir.path(), Path::new("workspace/jobs/api/_modules/nope.sh"), Event::Cli, 1, "1.1.0");
    assert!(matches!(run_hook(&missing, &api, &log_dir(dir.path(), 1)).status, HookStatus::FailedToStart(_)));
    // Non-zero exit.
    let (dir, rel) = bucket_with("command_setup.sh", "echo boom >&2\nexit 3\n");
    let out = run_hook(&invocation(dir.path(), &rel, Event::Cli, 1, "1.1.0"), &api, &log_dir(dir.path(), 1));
    assert_eq!(out.status, HookStatus::Exited(3));
    assert!(!out.success());
    assert_eq!(out.summary(), "api/command_setup@10.0.0.1 exited with status 3");
    assert_eq!(out.output, vec!["[api/command_setup@10.0.0.1] boom".to_string()]);
}

#[test]
fn batches_run_in_parallel_and_keep_input_order() {
    let (dir, rel) = bucket_with("command_setup.sh", "sleep 1\necho \"host=$ALLOCATION_IP\"\n");
    let fx = fixture();
    let invs: Vec<HookInvocation> = ["10.0.0.3", "10.0.0.1", "10.0.0.2"]
        .iter()
        .enumerate()
        .map(|(i, h)| HookInvocation {
            host: h.to_string(),
            alloc_id: Uuid::from_u128(i as u128),
            ..invocation(dir.path(), &rel, Event::PostDeploy, 1, "1.1.0")
        })
        .collect();
    let started = Instant::now();
    let outs = run_batch(&invs, 3, &fx.server.handle(), &log_dir(dir.path(), 2));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "3 x 1 s hooks with parallelism 3 took {took:?}");
    let hosts: Vec<&str> = outs.iter().map(|o| o.host.as_str()).collect();
    assert_eq!(hosts, ["10.0.0.3", "10.0.0.1", "10.0.0.2"]);
    for o in &outs {
        assert!(o.success());
        assert_eq!(o.output, vec![format!("[api/command_setup@{}] host={}", o.host, o.host)]);
    }
}

#[test]
fn python_helper_end_to_end() {
    let script = r#"
import os, kvform_hook as kv
open("token.txt", "w").write(os.environ["KVFORM_TOKEN"])
kv.put("greeting", "hello", ttl=60)
kv.put_secret("db_password", "s3cr3t", ttl="1h")
print("var", kv.get("vars/job/api", "greeting"))
print("secret_ok", kv.get("secrets/job/api", "db_password") == "s3cr3t")
print("upstream", kv.get("maand/job/db", "version"))
print("missing", kv.get("vars/job/api", "nope", default="-"))
print("keys", kv.keys())
print("demands", kv.demands())
try:
    kv.get("vars/job/web", "x")
except kv.KvformHookError as e:
    print("denied", e.status, e.rule)
kv.rollout_order(["10.0.0.2", "10.0.0.1"])
print("deleted", kv.delete("greeting"), kv.delete("greeting"))
kv.acquire("forgotten", capacity=1, timeout=5)
print("held", kv.status("forgotten")["holders"] == [os.environ["ALLOCATION_ID"]])
"#;
    let (dir, rel) = bucket_with("command_setup.py", script);
    let fx = fixture();
    let out = run_hook(
        &invocation(dir.path(), &rel, Event::PreDeploy, 1, "1.1.0"),
        &fx.server.handle(),
        &log_dir(dir.path(), 3),
    );
    assert_eq!(out.status, HookStatus::Exited(0), "{:#?}", out.output);
    let lines: Vec<&str> =
        out.output.iter().map(|l| l.strip_prefix("[api/command_setup@10.0.0.1] ").unwrap()).collect();
    assert_eq!(
        lines,
        [
            "var hello",
            "secret_ok True",
            "upstream 9.9",
            "missing -",
            "keys {'vars/job/api': ['greeting'], 'secrets/job/api': ['db_password']}",
            "demands [{'job': 'web', 'command': 'command_a', 'demand_config': {}}, {'job': 'web', 'command': 'command_b', 'demand_config': {'replicas': 2}}]",
            "denied 403 readable-by-allocation",
            "deleted True False",
            "held True",
            "kvform: released 1 semaphore hold(s) the hook did not release",
        ]
    );
    {
        let st = fx.store.lock().unwrap();
        let secret = st.entry("secrets/job/api", "db_password").unwrap();
        assert_eq!(
            (secret.value.as_str(), secret.writer.as_str()),
            ("s3cr3t", "api:10.0.0.1/pre_deploy/command_setup")
        );
        assert_eq!(secret.ttl, 3600, "ttl=\"1h\" in the one duration grammar");
        assert_eq!(st.entry("maand/job/api", "rollout_order").unwrap().value, "10.0.0.2,10.0.0.1");
        assert!(st.entry("vars/job/api", "greeting").is_none());
    }
    // The hook's token died with it, and so did its semaphore hold.
    let token = std::fs::read_to_string(dir.path().join("token.txt")).unwrap();
    let bearer = format!("Bearer {token}");
    let r = send(fx.addr(), "GET", "/kv?namespace=vars%2Fjob%2Fapi&key=x", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 401);
    // Another allocation: the same one would simply hold the slot again.
    let other = fx
        .server
        .handle()
        .issue(kvform::hooks::token::HookIdentity {
            alloc_id: Uuid::from_u128(0xb),
            job: "api".into(),
            host: "10.0.0.2".into(),
            event: Event::PreDeploy,
            command: "command_setup".into(),
        })
        .unwrap();
    let body = serde_json::json!({"name": "forgotten", "timeout_seconds": 1});
    let r = call(fx.addr(), &other, "POST", "/semaphore/acquire", body);
    assert_eq!(r.status, 200, "{}", r.raw_body);
}

#[test]
fn python_helper_raises_with_the_api_error() {
    let script = "import kvform_hook as kv\nkv.put_secret('k', 'v')\n";
    let (dir, rel) = bucket_with("command_setup.py", script);
    let fx = fixture();
    let out = run_hook(
        &invocation(dir.path(), &rel, Event::HealthCheck, 1, "1.1.0"),
        &fx.server.handle(),
        &log_dir(dir.path(), 4),
    );
    assert_eq!(out.status, HookStatus::Exited(1));
    let text = out.output.join("\n");
    assert!(text.contains("kvform_hook.KvformHookError: kvform hook API PUT /kv/secret failed with 403"), "{text}");
    assert!(text.contains("(rule: read-only-event)"), "{text}");
}
