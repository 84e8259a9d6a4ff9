//! One scenario through every door (issue 24): create a key with type, description and ttl,
//! patch its description, a compare-and-set mismatch, restore version 1, delete, undelete —
//! driven through the CLI (`kv set/restore/delete`), through REST (`kvform serve` over HTTP)
//! and through the hook API (a hook script run by `kvform apply`, with curl). The state rows
//! of the key — namespace, key, version, value, type, description, ttl, tombstone: all but the
//! writer and the times — must be the same from the three doors, on SQLite and on
//! PostgreSQL, and each door's CAS refusal names the current version.
//!
//! The hook API has no restore route (maand's API has none): the hook restores by writing the
//! earlier version's value, type, description and ttl back, which leaves the same row.

mod serve_support;
mod tf_support;

use serve_support::{Served, serve_with};

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use tf_support::{BucketDir, NOW, kvform, ok, stderr, write};

const NS: &str = "vars/job/db";
const KEY: &str = "replicas";

/// A state row as the scenario compares it (no writer, no times).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    namespace: String,
    key: String,
    version: u64,
    value: String,
    kv_type: String,
    description: String,
    ttl: u64,
    deleted: bool,
}

fn rows(dir: &Path) -> Vec<Row> {
    tf_support::state(dir)
        .history(NS, KEY)
        .unwrap()
        .into_iter()
        .map(|r| Row {
            namespace: r.namespace,
            key: r.key,
            version: r.version,
            value: r.value,
            kv_type: r.kv_type.as_str().to_string(),
            description: r.description,
            ttl: r.ttl,
            deleted: r.deleted,
        })
        .collect()
}

/// What the scenario leaves, door-independent: v1 created, v2 the patched description (same
/// value, type and expiry), v3 version 1 restored, v4 the deletion, v5 version 3 restored.
fn expected() -> Vec<Row> {
    let row = |version, description: &str| Row {
        namespace: NS.into(),
        key: KEY.into(),
        version,
        value: "3".into(),
        kv_type: "number".into(),
        description: description.into(),
        ttl: 3600,
        deleted: false,
    };
    // A tombstone has no value and no ttl; the key's type and description stay with it.
    let tombstone = Row { value: String::new(), ttl: 0, deleted: true, ..row(4, "how many") };
    vec![row(1, "how many"), row(2, "replicas of db"), row(3, "how many"), tombstone, row(5, "how many")]
}

/// The conflict every door reports for the stale `cas` of step 3.
const CONFLICT: &str = "vars/job/db replicas is at version 2, not 1";

fn cli_door(d: &Path) {
    ok(d, &["kv", "set", NS, KEY, "3", "--type", "number", "--description", "how many", "--ttl", "1h", "--cas", "0"]);
    // Only the description: value, type and expiry are kept.
    ok(d, &["kv", "set", NS, KEY, "3", "--description", "replicas of db"]);
    let o = kvform(d, &["kv", "set", NS, KEY, "5", "--cas", "1"]);
    assert!(!o.status.success(), "a stale --cas was accepted");
    let err = stderr(&o);
    assert!(err.contains(CONFLICT) && err.contains("help: read it again and retry with --cas 2"), "{err}");
    ok(d, &["kv", "restore", NS, KEY, "1", "--cas", "2"]);
    ok(d, &["kv", "delete", NS, KEY, "--cas", "3"]);
    ok(d, &["kv", "restore", NS, KEY, "3", "--cas", "0"]);
}

fn serve(d: &Path) -> Served {
    serve_with(d, &[], &[("KVFORM_NOW", NOW)])
}

/// One request with a JSON body and optionally `If-Match`: (status, body, ETag).
fn call(
    s: &Served,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
    if_match: Option<&str>,
) -> (u16, Value, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", s.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json");
    if let Some(m) = if_match {
        req = req.header("If-Match", m);
    }
    let resp = agent.run(req.body(body.to_string()).unwrap()).unwrap();
    let status = resp.status().as_u16();
    let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = resp.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), etag)
}

fn rest_door(d: &Path) {
    let token =
        ok(d, &["token", "create", "doors", "--role", "writer", "--namespaces", "vars/job/*"]).trim().to_string();
    let s = serve(d);
    let key = format!("/api/v1/kv/{NS}/{KEY}");
    let restore = format!("/api/v1/restore/{NS}/{KEY}");
    let body = json!({"value": 3, "type": "number", "description": "how many", "ttl": "1h", "cas": 0});
    let (status, b, _) = call(&s, "PUT", &key, &token, body, None);
    assert_eq!(status, 201, "{b}");
    let (status, b, _) = call(&s, "PATCH", &key, &token, json!({"description": "replicas of db"}), Some("\"1\""));
    assert_eq!(status, 200, "{b}");
    let (status, b, etag) = call(&s, "PUT", &key, &token, json!({"value": 5}), Some("\"1\""));
    assert_eq!((status, etag.as_str()), (412, "\"2\""), "{b}");
    assert!(b["error"].as_str().unwrap_or_default().contains(CONFLICT), "{b}");
    assert!(b["hint"].as_str().unwrap_or_default().contains("If-Match: \"2\""), "{b}");
    let (status, b, _) = call(&s, "POST", &restore, &token, json!({"version": 1, "cas": 2}), None);
    assert_eq!(status, 200, "{b}");
    let (status, b, _) = call(&s, "DELETE", &key, &token, json!({}), Some("\"3\""));
    assert_eq!(status, 200, "{b}");
    let (status, b, _) = call(&s, "POST", &restore, &token, json!({"version": 3, "cas": 0}), None);
    assert_eq!(status, 200, "{b}");
}

/// The db job's `pre_deploy` hook (one allocation, 10.0.0.1): the scenario with curl, the
/// CAS refusal's status and body kept in `cas.txt` / `cas.json` for the test to read.
const HOOK: &str = r#"#!/bin/bash
set -eu
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
kv() { curl -sf -X "$1" -H "$auth" -H "$ct" -d "$2" "$KVFORM_API/kv" >/dev/null; }
k='"namespace":"vars/job/db","key":"replicas"'
kv PUT "{$k,\"value\":\"3\",\"type\":\"number\",\"description\":\"how many\",\"ttl\":3600,\"cas\":0}"
kv PUT "{$k,\"value\":\"3\",\"type\":\"number\",\"description\":\"replicas of db\",\"ttl\":3600,\"cas\":1}"
curl -s -o cas.json -w '%{http_code}' -X PUT -H "$auth" -H "$ct" -d "{$k,\"value\":\"5\",\"cas\":1}" "$KVFORM_API/kv" > cas.txt
kv PUT "{$k,\"value\":\"3\",\"type\":\"number\",\"description\":\"how many\",\"ttl\":3600,\"cas\":2}"
kv DELETE "{$k,\"cas\":3}"
kv PUT "{$k,\"value\":\"3\",\"type\":\"number\",\"description\":\"how many\",\"ttl\":3600,\"cas\":0}"
"#;

/// Give the db job a `pre_deploy` hook `command_doors` running `script`, and apply.
fn apply_with_hook(d: &Path, script: &str) {
    write(
        d,
        "workspace/jobs/db/manifest.json",
        "{\n  \"version\": \"2.0.0\",\n  \"commands\": {\n    \"command_doors\": {\n      \"executed_on\": [\"pre_deploy\"]\n    }\n  }\n}\n",
    );
    write(d, "workspace/jobs/db/_modules/command_doors.sh", script);
    use std::os::unix::fs::PermissionsExt;
    let script = d.join("workspace/jobs/db/_modules/command_doors.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(d, &["apply", "--auto-approve"]);
}

fn hook_door(d: &Path) {
    apply_with_hook(d, HOOK);
    let status = std::fs::read_to_string(d.join("cas.txt")).unwrap();
    let body: Value = serde_json::from_str(&std::fs::read_to_string(d.join("cas.json")).unwrap()).unwrap();
    assert_eq!((status.trim(), body["version"].as_u64()), ("412", Some(2)), "{body}");
    let err = body["error"].as_str().unwrap_or_default();
    assert!(err.contains(CONFLICT) && err.contains("help: read it again and send \"cas\": 2"), "{body}");
}

/// The scenario on three fresh buckets made by `make`.
fn every_door(make: impl Fn() -> BucketDir) {
    let cli = make();
    ok(cli.path(), &["apply", "--auto-approve"]);
    cli_door(cli.path());
    let rest = make();
    ok(rest.path(), &["apply", "--auto-approve"]);
    rest_door(rest.path());
    let hook = make();
    hook_door(hook.path());

    let want = expected();
    assert_eq!(rows(cli.path()), want, "the CLI door");
    assert_eq!(rows(rest.path()), want, "the REST door");
    assert_eq!(rows(hook.path()), want, "the hook door");
    // The writers differ by door, each the door's actor.
    let writer = |d: &Path| tf_support::state(d).history(NS, KEY).unwrap()[0].writer.clone();
    assert_eq!(writer(cli.path()), kvform::state::actor());
    assert_eq!(writer(rest.path()), "token:doors");
    assert_eq!(writer(hook.path()), "db:10.0.0.1/pre_deploy/command_doors");
}

#[test]
fn the_same_scenario_leaves_the_same_rows_through_every_door() {
    every_door(|| BucketDir::sqlite(tf_support::bucket()));
}

#[test]
fn the_same_scenario_leaves_the_same_rows_through_every_door_on_postgres() {
    if tf_support::pg_url("the_same_scenario_leaves_the_same_rows_through_every_door_on_postgres").is_none() {
        return;
    }
    every_door(tf_support::pg_bucket);
}

/// The write logic is in `src/ops/` once: no door (`src/cli/`, `src/serve/`, `src/hooks/`)
/// calls the state's write transaction to write or delete a key itself (`put*`,
/// `tombstone`, `write*` on a transaction). A door parses, calls `kvform::ops`, renders.
#[test]
fn no_door_writes_a_key_past_the_operations_layer() {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for door in ["src/cli", "src/serve", "src/hooks"] {
        let mut list = Vec::new();
        files(&root.join(door), &mut list);
        for f in list {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let Some(at) = code.find("txn") else { continue };
                let call = &code[at..];
                let after = call.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ')' || c == '*');
                // `put_render` records a rendered file (`render_files`), not a key.
                let direct = ["put(", "put_", "tombstone(", "write("].iter().any(|m| {
                    after.strip_prefix('.').is_some_and(|rest| rest.starts_with(m) && !rest.starts_with("put_render("))
                });
                if direct {
                    found.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "doors writing a key past src/ops/:\n{}", found.join("\n"));
}

/// What no backend can store, refused alike by every door: a value with a NUL byte, a ttl of
/// 2^64-1 and one of i64::MAX (`created_at + ttl` overflows). Each answer is a 400 (the CLI:
/// an error) with a `help:`/`hint`, no SQL and no path; nothing is written.
const BAD_TTLS: [u64; 2] = [u64::MAX, i64::MAX as u64];

fn no_sql_no_path(text: &str, d: &Path) {
    assert!(!text.contains("CHECK") && !text.contains("SQL") && !text.contains("constraint"), "{text}");
    assert!(!text.contains(d.to_str().unwrap()) && !text.contains("kvform.db"), "{text}");
}

fn cli_refuses(d: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["kv", "set", NS, KEY, "-"])
        .env("KVFORM_NOW", NOW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"a\0b").unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("contains a NUL byte") && err.contains("help:"), "{err}");
    no_sql_no_path(&err, d);
    for ttl in BAD_TTLS {
        let o = kvform(d, &["kv", "set", NS, KEY, "3", "--ttl", &ttl.to_string()]);
        let err = stderr(&o);
        assert!(!o.status.success() && err.contains("100 years") && err.contains("help:"), "{ttl}: {err}");
        no_sql_no_path(&err, d);
    }
}

fn rest_refuses(d: &Path) {
    let token = ok(d, &["token", "create", "bad", "--role", "writer", "--namespaces", "vars/job/*"]).trim().to_string();
    let s = serve(d);
    let key = format!("/api/v1/kv/{NS}/{KEY}");
    let bodies =
        [json!({"value": "a\u{0}b"}), json!({"value": 3, "ttl": BAD_TTLS[0]}), json!({"value": 3, "ttl": BAD_TTLS[1]})];
    for body in bodies {
        let (status, b, _) = call(&s, "PUT", &key, &token, body.clone(), None);
        assert_eq!(status, 400, "{body}: {b}");
        assert!(b["hint"].as_str().is_some_and(|h| !h.is_empty()), "{body}: {b}");
        no_sql_no_path(&b.to_string(), d);
    }
}

/// The hook sends the three bad writes and keeps each status and answer.
const BAD_HOOK: &str = r#"#!/bin/bash
set -u
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
k='"namespace":"vars/job/db","key":"replicas"'
n=0
for body in "{$k,\"value\":\"a\\u0000b\"}" "{$k,\"value\":\"3\",\"ttl\":18446744073709551615}" "{$k,\"value\":\"3\",\"ttl\":9223372036854775807}"; do
  n=$((n+1))
  curl -s -o "bad$n.json" -w '%{http_code}' -X PUT -H "$auth" -H "$ct" -d "$body" "$KVFORM_API/kv" > "bad$n.txt"
done
"#;

fn hook_refuses(d: &Path) {
    apply_with_hook(d, BAD_HOOK);
    for (n, what) in [(1, "contains a NUL byte"), (2, "100 years"), (3, "100 years")] {
        let status = std::fs::read_to_string(d.join(format!("bad{n}.txt"))).unwrap();
        let body = std::fs::read_to_string(d.join(format!("bad{n}.json"))).unwrap();
        assert_eq!(status.trim(), "400", "request {n}: {body}");
        let b: Value = serde_json::from_str(&body).unwrap();
        let err = b["error"].as_str().unwrap_or_default();
        assert!(err.contains(what) && err.contains("help:"), "request {n}: {body}");
        no_sql_no_path(&body, d);
    }
}

fn every_door_refuses(make: impl Fn() -> BucketDir) {
    let cli = make();
    ok(cli.path(), &["apply", "--auto-approve"]);
    cli_refuses(cli.path());
    let rest = make();
    ok(rest.path(), &["apply", "--auto-approve"]);
    rest_refuses(rest.path());
    let hook = make();
    hook_refuses(hook.path());
    for d in [&cli, &rest, &hook] {
        assert_eq!(rows(d.path()), [], "a refused write left a row");
    }
}

#[test]
fn what_no_backend_can_store_is_refused_with_a_hint_on_every_door() {
    every_door_refuses(|| BucketDir::sqlite(tf_support::bucket()));
}

#[test]
fn what_no_backend_can_store_is_refused_with_a_hint_on_every_door_on_postgres() {
    if tf_support::pg_url("what_no_backend_can_store_is_refused_with_a_hint_on_every_door_on_postgres").is_none() {
        return;
    }
    every_door_refuses(tf_support::pg_bucket);
}

/// A restore is a write like any other: restoring a key the workspace declares (`greeting` of
/// `workspace/jobs/web/vars.hcl`) says that the next apply writes the workspace's value back,
/// from `kv restore` and from the REST restore as from `kv set` and `PUT`.
#[test]
fn restoring_a_declared_key_warns_like_writing_it() {
    let b = tf_support::bucket();
    let d = b.path();
    ok(d, &["apply", "--auto-approve"]);
    let warning = "vars/job/web greeting is declared by the workspace (workspace/jobs/web/vars.hcl:1)";
    let o = kvform(d, &["kv", "set", "vars/job/web", "greeting", "hi"]);
    assert!(o.status.success() && stderr(&o).contains(warning), "{}", stderr(&o));
    let o = kvform(d, &["kv", "restore", "vars/job/web", "greeting", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(warning) && stderr(&o).contains("the next apply writes"), "{}", stderr(&o));
    let token = ok(d, &["token", "create", "w", "--role", "writer", "--namespaces", "vars/job/*"]).trim().to_string();
    let s = serve(d);
    let (status, b, _) = call(&s, "POST", "/api/v1/restore/vars/job/web/greeting", &token, json!({"version": 2}), None);
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["managed_by"], "workspace/jobs/web/vars.hcl:1", "{b}");
    assert!(b["warnings"][0].as_str().is_some_and(|w| w.contains(warning)), "{b}");
    // A key the workspace does not declare: no warning.
    ok(d, &["kv", "set", "vars/job/web", "own", "1"]);
    ok(d, &["kv", "set", "vars/job/web", "own", "2"]);
    let o = kvform(d, &["kv", "restore", "vars/job/web", "own", "1"]);
    assert!(o.status.success() && !stderr(&o).contains("declared by the workspace"), "{}", stderr(&o));
    let (status, b, _) = call(&s, "POST", "/api/v1/restore/vars/job/web/own", &token, json!({"version": 2}), None);
    assert!(status == 200 && b.get("warnings").is_none(), "{b}");
}

/// A delete is a change like a write: deleting a key the workspace declares (`greeting` of
/// `workspace/jobs/web/vars.hcl`) says that the next apply writes the workspace's value back,
/// from `kv delete` and from the REST `DELETE` (the hook API's `DELETE /kv` is
/// `hooks_apply_store`'s), and the next apply does write it back.
#[test]
fn deleting_a_declared_key_warns_like_writing_it() {
    let b = tf_support::bucket();
    let d = b.path();
    ok(d, &["apply", "--auto-approve"]);
    let warning = "vars/job/web greeting is declared by the workspace (workspace/jobs/web/vars.hcl:1)";
    let o = kvform(d, &["kv", "delete", "vars/job/web", "greeting"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(warning)
            && stderr(&o)
                .contains("the next apply writes the workspace's value back; remove it there to keep it deleted"),
        "{}",
        stderr(&o)
    );
    // True to its word: the next apply writes it back.
    ok(d, &["apply", "--auto-approve"]);
    assert!(ok(d, &["kv", "get", "vars/job/web", "greeting"]).contains("hello"));
    let token = ok(d, &["token", "create", "w", "--role", "writer", "--namespaces", "vars/job/*"]).trim().to_string();
    let s = serve(d);
    let (status, b, _) = call(&s, "DELETE", "/api/v1/kv/vars/job/web/greeting", &token, json!({}), None);
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["deleted"], true, "{b}");
    assert_eq!(b["managed_by"], "workspace/jobs/web/vars.hcl:1", "{b}");
    assert!(b["warnings"][0].as_str().is_some_and(|w| w.contains(warning) && w.contains("keep it deleted")), "{b}");
    // A key the workspace does not declare: no warning.
    ok(d, &["kv", "set", "vars/job/web", "own", "1"]);
    let o = kvform(d, &["kv", "delete", "vars/job/web", "own"]);
    assert!(o.status.success() && !stderr(&o).contains("declared by the workspace"), "{}", stderr(&o));
    ok(d, &["kv", "set", "vars/job/web", "own", "2"]);
    let (status, b, _) = call(&s, "DELETE", "/api/v1/kv/vars/job/web/own", &token, json!({}), None);
    assert!(status == 200 && b.get("warnings").is_none() && b.get("managed_by").is_none(), "{b}");
}
