//! Hook writes through the HTTP API land in the apply's write transaction (TxnStore):
//! committed with the job's checkpoint, rolled back with it when the job fails, secrets
//! sealed at rest and readable by later hooks (of the job and of jobs that demand it),
//! and never written to hook logs.

mod hooks_apply_support;

use hooks_apply_support::*;
use serde_json::json;

const SECRET: &str = "s3cr3t-HOOK-value-4242";
const H1: &str = "10.0.0.1";

/// vault: pre_deploy creates a var and (once) a secret.
const VAULT_INIT: &str = r#"
import kvform_hook as kv
kv.put("greeting", "hello")
if kv.get("secrets/job/vault", "token") is None:
    kv.put_secret("token", "s3cr3t-HOOK-" + "value-4242")
    print("init: created the token")
else:
    print("init: token already set")
"#;

/// app (demands vault): post_deploy reads vault's secret and var.
const APP_USE: &str = r#"
import kvform_hook as kv
token = kv.get("secrets/job/vault", "token")
kv.put("token_ok", "yes" if token == "s3cr3t-HOOK-" + "value-4242" else "no")
kv.put("greeting_seen", kv.get("vars/job/vault", "greeting"))
print("use: checked the token")
"#;

/// app: pre_deploy through the raw API with curl (a .sh hook).
const APP_CURL: &str = r#"#!/bin/bash
set -eu
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
curl -sf -X PUT -H "$auth" -H "$ct" -d '{"namespace":"vars/job/app","key":"from_sh","value":"1"}' "$KVFORM_API/kv" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -X GET -H "$auth" -H "$ct" -d '{"namespace":"vars/job/app","key":"nope"}' "$KVFORM_API/kv")
curl -sf -X PUT -H "$auth" -H "$ct" -d "{\"namespace\":\"vars/job/app\",\"key\":\"missing_status\",\"value\":\"$code\"}" "$KVFORM_API/kv" >/dev/null
"#;

/// broken: writes, then fails.
const BROKEN: &str = r#"#!/bin/bash
python3 -c 'import kvform_hook as kv; kv.put("partial", "1"); kv.put_secret("leak", "s3cr3t-HOOK-value-4242")'
echo "broken: wrote partial, now failing"
exit 3
"#;

const LABELS: &[&str] = &["vault", "app", "broken", "dependent"];

fn bucket() -> TestBucket {
    jobs(TestBucket::new(&[(H1, LABELS)]))
}

fn jobs(tb: TestBucket) -> TestBucket {
    let cmd = |events: &[&str], demands: Option<(&str, &str)>| {
        let mut c = json!({ "executed_on": events });
        if let Some((job, command)) = demands {
            c["demands"] = json!({"job": job, "command": command});
        }
        c
    };
    tb.job(
        "vault",
        json!({"version": "1.0", "commands": {"command_init": cmd(&["pre_deploy"], None)}}),
        &[("command_init.py", VAULT_INIT)],
    );
    tb.job(
        "app",
        json!({"version": "1.0", "commands": {
            "command_use": cmd(&["post_deploy"], Some(("vault", "command_init"))),
            "command_curl": cmd(&["pre_deploy"], None),
        }}),
        &[("command_use.py", APP_USE), ("command_curl.sh", APP_CURL)],
    );
    tb.job(
        "broken",
        json!({"version": "1.0", "commands": {"command_fail": cmd(&["post_deploy"], None)}}),
        &[("command_fail.sh", BROKEN)],
    );
    tb.job(
        "dependent",
        json!({"version": "1.0", "commands": {"command_x": cmd(&["pre_deploy"], Some(("broken", "command_fail")))}}),
        &[("command_x.sh", &logging_hook("dependent.log", ""))],
    );
    tb
}

#[test]
fn hook_writes_commit_with_their_job_and_roll_back_with_a_failed_one() {
    hook_writes_commit_and_roll_back(bucket());
}

/// The same apply, hooks and API with the state on PostgreSQL.
#[test]
fn hook_writes_commit_with_their_job_and_roll_back_with_a_failed_one_on_postgres() {
    let name = "hook_writes_commit_with_their_job_and_roll_back_with_a_failed_one_on_postgres";
    if let Some(tb) = TestBucket::new_on_postgres(name, &[(H1, LABELS)]) {
        hook_writes_commit_and_roll_back(jobs(tb));
    }
}

fn hook_writes_commit_and_roll_back(tb: TestBucket) {
    let applied = mini_apply(&tb, |_| {});

    // Committed: vault's var and secret, app's reads of them, the curl hook's writes.
    assert_eq!(tb.value("vars/job/vault", "greeting").as_deref(), Some("hello"));
    let writer = tb.store().get("vars/job/vault", "greeting").unwrap().unwrap().writer;
    assert_eq!(writer, format!("vault:{H1}/pre_deploy/command_init"));
    assert_eq!(tb.value("secrets/job/vault", "token").as_deref(), Some(SECRET));
    assert_eq!(tb.value("vars/job/app", "token_ok").as_deref(), Some("yes"));
    assert_eq!(tb.value("vars/job/app", "greeting_seen").as_deref(), Some("hello"));
    assert_eq!(tb.value("vars/job/app", "from_sh").as_deref(), Some("1"));
    assert_eq!(tb.value("vars/job/app", "missing_status").as_deref(), Some("404"));
    assert_eq!(tb.value("maand/job/app/worker/10.0.0.1", "version").as_deref(), Some("1.0"));

    // Rolled back: the failed job's hook writes and its own namespaces; its dependent skipped.
    assert_eq!(applied.failures.len(), 1, "{:?}", applied.failures);
    let f = &applied.failures[0];
    assert_eq!(f.job, "broken");
    assert_eq!(f.event.as_str(), "post_deploy");
    assert!(f.message.contains(&format!("broken/command_fail@{H1} exited with status 3")), "{}", f.message);
    assert!(f.output.iter().any(|l| l.ends_with("broken: wrote partial, now failing")), "{:?}", f.output);
    assert_eq!(tb.value("vars/job/broken", "partial"), None);
    assert_eq!(tb.value("secrets/job/broken", "leak"), None);
    assert_eq!(tb.value("maand/job/broken", "version"), None);
    assert_eq!(applied.skipped, ["dependent"]);
    assert!(!tb.path("dependent.log").exists(), "a skipped job runs no hooks");

    // Sealed at rest: the plaintext is in no stored row (values as the database holds them)…
    let store = tb.store();
    for (ns, keys) in store.snapshot().unwrap().entries {
        for key in keys.keys() {
            for row in store.history(&ns, key).unwrap() {
                assert!(!row.value.contains(SECRET), "plaintext secret stored in {ns} {key}");
            }
        }
    }
    drop(store);
    // … nor in the state files (db, -wal, -shm); a PostgreSQL state has none.
    assert!(tb.pg.is_none() || !tb.path("data").exists(), "a PostgreSQL state writes no file");
    for entry in std::fs::read_dir(tb.path("data")).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        assert!(!found, "plaintext secret in {}", entry.path().display());
    }
    // Not in hook logs either (the logs themselves are there).
    let logs = tb.all_logs();
    assert!(logs.contains("init: created the token"), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");

    // A later apply keeps the secret (version 1) and the hooks see it.
    tb.write(
        "workspace/jobs/vault/manifest.json",
        &json!({"version": "1.1", "commands": {
        "command_init": {"executed_on": ["pre_deploy"]}}})
        .to_string(),
    );
    let again = mini_apply(&tb, |_| {});
    assert!(again.failures.iter().all(|f| f.job == "broken"), "{:?}", again.failures);
    assert!(tb.all_logs().contains("init: token already set"));
    assert_eq!(tb.store().get("secrets/job/vault", "token").unwrap().unwrap().version, 1);
    assert_eq!(tb.value("vars/job/app", "token_ok").as_deref(), Some("yes"));
}

/// web: pre_deploy writes a key its vars.hcl declares and one it does not, keeping the answers.
const WEB_DECLARED: &str = r#"#!/bin/bash
set -eu
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
curl -sf -X PUT -H "$auth" -H "$ct" -d '{"namespace":"vars/job/web","key":"greeting","value":"hi"}' "$KVFORM_API/kv" > declared.json
curl -sf -X PUT -H "$auth" -H "$ct" -d '{"namespace":"vars/job/web","key":"own","value":"1"}' "$KVFORM_API/kv" > own.json
"#;

/// A hook write to a key the workspace declares (`vars.hcl`) succeeds, and its answer says
/// the next apply writes the workspace's value back, as the REST API's does: a `warnings`
/// list and `managed_by` with the file and line. A key the workspace does not declare has
/// neither.
fn a_hook_write_to_a_declared_key_warns(tb: TestBucket) {
    tb.write("workspace/jobs/web/vars.hcl", "# the greeting\ngreeting = \"hello\"\n");
    tb.job(
        "web",
        json!({"version": "1.0", "commands": {"command_w": {"executed_on": ["pre_deploy"]}}}),
        &[("command_w.sh", WEB_DECLARED)],
    );
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}\n{}", applied.failures, tb.all_logs());
    let declared: serde_json::Value = serde_json::from_str(&tb.read("declared.json")).unwrap();
    assert_eq!(declared["managed_by"], "workspace/jobs/web/vars.hcl:2", "{declared}");
    let warning = declared["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("vars/job/web greeting is declared by the workspace (workspace/jobs/web/vars.hcl:2)")
            && warning.contains("the next apply writes the workspace's value back"),
        "{declared}"
    );
    let own: serde_json::Value = serde_json::from_str(&tb.read("own.json")).unwrap();
    assert!(own.get("warnings").is_none() && own.get("managed_by").is_none(), "{own}");
}
on_both_backends!(
    a_hook_write_to_a_declared_key_warns_on_sqlite,
    a_hook_write_to_a_declared_key_warns_on_postgres,
    &[(H1, &["web"])],
    a_hook_write_to_a_declared_key_warns
);

/// web: pre_deploy writes a key of its own, then deletes it and a key its vars.hcl declares,
/// keeping the answers.
const WEB_DELETES_DECLARED: &str = r#"#!/bin/bash
set -eu
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
curl -sf -X PUT -H "$auth" -H "$ct" -d '{"namespace":"vars/job/web","key":"own","value":"1"}' "$KVFORM_API/kv" > /dev/null
curl -sf -X DELETE -H "$auth" -H "$ct" -d '{"namespace":"vars/job/web","key":"greeting"}' "$KVFORM_API/kv" > declared.json
curl -sf -X DELETE -H "$auth" -H "$ct" -d '{"namespace":"vars/job/web","key":"own"}' "$KVFORM_API/kv" > own.json
"#;

/// A hook delete of a key the workspace declares (`vars.hcl`) succeeds, and its answer says
/// the next apply writes the workspace's value back, as a write's does: a `warnings` list
/// and `managed_by` with the file and line. A key the workspace does not declare has neither.
fn a_hook_delete_of_a_declared_key_warns(tb: TestBucket) {
    tb.write("workspace/jobs/web/vars.hcl", "# the greeting\ngreeting = \"hello\"\n");
    tb.job(
        "web",
        json!({"version": "1.0", "commands": {"command_w": {"executed_on": ["pre_deploy"]}}}),
        &[("command_w.sh", WEB_DELETES_DECLARED)],
    );
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}\n{}", applied.failures, tb.all_logs());
    let declared: serde_json::Value = serde_json::from_str(&tb.read("declared.json")).unwrap();
    assert_eq!(declared["deleted"], true, "{declared}");
    assert_eq!(declared["managed_by"], "workspace/jobs/web/vars.hcl:2", "{declared}");
    let warning = declared["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("vars/job/web greeting is declared by the workspace (workspace/jobs/web/vars.hcl:2)")
            && warning.contains("the next apply writes the workspace's value back; remove it there to keep it deleted"),
        "{declared}"
    );
    assert_eq!(tb.value("vars/job/web", "greeting"), None, "the delete stands until the next apply");
    let own: serde_json::Value = serde_json::from_str(&tb.read("own.json")).unwrap();
    assert!(own["deleted"] == true && own.get("warnings").is_none() && own.get("managed_by").is_none(), "{own}");
}
on_both_backends!(
    a_hook_delete_of_a_declared_key_warns_on_sqlite,
    a_hook_delete_of_a_declared_key_warns_on_postgres,
    &[(H1, &["web"])],
    a_hook_delete_of_a_declared_key_warns
);

/// The last render of a job removed from the workspace is forgotten by the apply that purges
/// its namespaces (`render_files`): `plan --render` walks the workspace's jobs, so nothing
/// else would ever clear it. The render of the jobs that stay is kept.
fn a_removed_job_s_render_is_forgotten(tb: TestBucket) {
    for job in ["app", "web"] {
        tb.job(job, json!({"version": "1.0"}), &[]);
        tb.write(&format!("workspace/jobs/{job}/config.txt.tpl"), &format!("job {job}\n"));
    }
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}\n{}", applied.failures, tb.all_logs());
    let rendered: Vec<String> = tb.store().last_render().unwrap().into_keys().collect();
    assert_eq!(rendered, [format!("{H1}/jobs/app/config.txt"), format!("{H1}/jobs/web/config.txt")]);

    // web leaves the workspace: its namespaces are purged, and its render with them.
    std::fs::remove_dir_all(tb.path("workspace/jobs/web")).unwrap();
    tb.write("workspace/workers.json", &json!([{"host": H1, "labels": ["app"]}]).to_string());
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}\n{}", applied.failures, tb.all_logs());
    assert_eq!(tb.value("maand/job/web", "workers"), None, "web's namespaces are purged");
    let render = tb.store().last_render().unwrap();
    assert_eq!(render.keys().collect::<Vec<_>>(), [&format!("{H1}/jobs/app/config.txt")]);
    assert_eq!(render.values().next().map(String::as_str), Some("job app\n"));
}
on_both_backends!(
    a_removed_job_s_render_is_forgotten_on_sqlite,
    a_removed_job_s_render_is_forgotten_on_postgres,
    &[(H1, &["app", "web"])],
    a_removed_job_s_render_is_forgotten
);
