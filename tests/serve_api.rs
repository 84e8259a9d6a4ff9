//! `kvform serve` over real HTTP on the quickstart bucket (applied): every route, role and
//! error of SPEC §9's REST API, metrics, the watch, and a clean exit on SIGTERM.

mod quickstart_copy;
mod tf_support;

use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kvform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn token(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["token", "create"];
    a.extend(args);
    ok(dir, &a).trim().to_string()
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn serve(dir: &Path) -> Served {
    serve_with_env(dir, &[])
}

fn serve_with_env(dir: &Path, env: &[(&str, &str)]) -> Served {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "kvform serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { child, base }
}

/// An applied quickstart bucket.
fn bucket() -> tempfile::TempDir {
    let dir = quickstart_copy::quickstart_copy();
    ok(dir.path(), &["apply", "--auto-approve"]);
    dir
}

struct Resp {
    status: u16,
    body: Value,
    text: String,
    headers: Vec<(String, String)>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn send(method: &str, url: &str, token: Option<&str>, body: Option<(&str, &str)>) -> Resp {
    request(method, url, token, body, &[])
}

/// One request: the bearer token, a body with its content type, extra headers.
fn request(method: &str, url: &str, token: Option<&str>, body: Option<(&str, &str)>, extra: &[(&str, &str)]) -> Resp {
    let a = agent();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = match body {
        Some((ct, b)) => a.run(req.header("Content-Type", ct).body(b.to_string()).unwrap()),
        None => a.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let text = resp.into_body().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, body, text, headers }
}

fn get(s: &Served, path: &str, t: &str) -> Resp {
    send("GET", &format!("{}{path}", s.base), Some(t), None)
}

fn post(s: &Served, path: &str, t: &str, body: Value) -> Resp {
    send("POST", &format!("{}{path}", s.base), Some(t), Some(("application/json", &body.to_string())))
}

/// A request with a JSON body and, optionally, `If-Match`.
fn send_json(method: &str, s: &Served, path: &str, t: &str, body: Value, if_match: Option<&str>) -> Resp {
    let extra: Vec<(&str, &str)> = if_match.map(|m| ("If-Match", m)).into_iter().collect();
    request(method, &format!("{}{path}", s.base), Some(t), Some(("application/json", &body.to_string())), &extra)
}

fn put(s: &Served, path: &str, t: &str, body: Value) -> Resp {
    send("PUT", &format!("{}{path}", s.base), Some(t), Some(("application/json", &body.to_string())))
}

#[test]
fn rest_api_routes_roles_and_errors() {
    let dir = bucket();
    let d = dir.path();
    let reader = token(d, &["r", "--role", "reader"]);
    let writer = token(d, &["w", "--role", "writer", "--namespaces", "vars/job/api,secrets/job/*"]);
    let revealer = token(d, &["rv", "--role", "reader", "--reveal"]);
    let expired = token(d, &["old", "--role", "admin", "--expires", "1"]);
    let revoked = token(d, &["gone", "--role", "admin"]);
    ok(d, &["token", "revoke", "gone"]);
    let list = ok(d, &["token", "list"]);
    assert!(list.contains("gone\tadmin") && list.contains("revoked"), "{list}");
    assert!(!list.contains(&reader), "token list never shows a token");
    let s = serve(d);

    // 401: none, bad, revoked, expired.
    let r = send("GET", &format!("{}/api/v1/namespaces", s.base), None, None);
    assert_eq!(r.status, 401);
    assert!(r.body["hint"].as_str().unwrap().contains("Bearer"), "{}", r.text);
    assert_eq!(get(&s, "/api/v1/namespaces", "kvf_nope").status, 401);
    assert!(get(&s, "/api/v1/namespaces", &revoked).body["error"].as_str().unwrap().contains("revoked"));
    std::thread::sleep(Duration::from_millis(1100));
    assert!(get(&s, "/api/v1/namespaces", &expired).body["error"].as_str().unwrap().contains("expired"));

    // Namespaces: a tree with counts.
    let r = get(&s, "/api/v1/namespaces", &reader);
    assert_eq!(r.status, 200, "{}", r.text);
    let nss = r.body["namespaces"].as_array().unwrap();
    let maand = nss.iter().find(|n| n["namespace"] == "maand").unwrap();
    assert!(maand["total_keys"].as_u64().unwrap() > 10, "{maand}");
    assert!(nss.iter().any(|n| n["namespace"] == "maand/job/api" && n["keys"].as_u64().unwrap() > 0));

    // Listing, with and without trailing slash, by prefix; a key; 404 / null.
    let r = get(&s, "/api/v1/kv/maand/job/api/", &reader);
    assert_eq!(r.status, 200, "{}", r.text);
    let keys: Vec<&str> = r.body["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"job_id") && keys.contains(&"workers"), "{keys:?}");
    let r = get(&s, "/api/v1/kv/maand/job/api?prefix=work", &reader);
    assert!(
        r.body["keys"].as_array().unwrap().iter().all(|k| k["key"].as_str().unwrap().starts_with("work")),
        "{}",
        r.text
    );
    let r = get(&s, "/api/v1/kv/maand/job/api/name", &reader);
    assert_eq!((r.status, r.body["value"].as_str()), (200, Some("api")), "{}", r.text);
    assert_eq!(r.body["type"], "string");
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(get(&s, "/api/v1/kv/maand/job/api/nope", &reader).status, 404);
    let r = get(&s, "/api/v1/kv/maand/job/api/nope?error_on_missing=false", &reader);
    assert_eq!((r.status, r.text.as_str()), (200, "null"));
    assert_eq!(get(&s, "/api/v1/kv/nonsense/ns/k", &reader).status, 404);
    assert_eq!(get(&s, "/api/v2/whatever", &reader).status, 404);

    // Writes: roles, key rules, types, overwrite, bad input.
    let body = json!({"value": 3, "type": "number", "description": "replicas", "ttl": 3600});
    let r = put(&s, "/api/v1/kv/vars/job/api/replicas", &reader, body.clone());
    assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("role")), "{}", r.text);
    let r = put(&s, "/api/v1/kv/vars/job/database/replicas", &writer, body.clone());
    assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("token-namespaces")), "{}", r.text);
    let r = put(&s, "/api/v1/kv/maand/job/api/replicas", &writer, body.clone());
    assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("kv-set-namespaces")), "{}", r.text);
    let r = put(&s, "/api/v1/kv/vars/job/api/replicas", &writer, body.clone());
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.headers.iter().any(|(k, _)| k == "x-kvform-index"));
    let r = get(&s, "/api/v1/kv/vars/job/api/replicas", &reader);
    // A number answers as a JSON number (issue 26).
    assert_eq!((r.body["value"].as_u64(), r.body["type"].as_str()), (Some(3), Some("number")));
    assert_eq!((r.body["description"].as_str(), r.body["ttl"].as_u64()), (Some("replicas"), Some(3600)));
    assert!(r.body["expires_at"].is_string());
    assert_eq!(r.body["writer"], "token:w");
    let r = put(&s, "/api/v1/kv/vars/job/api/replicas", &writer, json!({"value": "x", "overwrite": false}));
    assert_eq!(r.status, 409, "{}", r.text);
    let r = put(&s, "/api/v1/kv/vars/job/api/replicas", &writer, json!({"value": "abc", "type": "number"}));
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("is not a number"), "{}", r.text);
    let r = put(&s, "/api/v1/kv/vars/job/api/bad%20key", &writer, json!({"value": "x"}));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("invalid key"));
    let url = format!("{}/api/v1/kv/vars/job/api/k", s.base);
    assert_eq!(send("PUT", &url, Some(&writer), Some(("application/json", "{\"value\": "))).status, 400);
    assert_eq!(send("PUT", &url, Some(&writer), Some(("text/plain", "{\"value\": \"x\"}"))).status, 415);
    let big = json!({"value": "x".repeat(1 << 20)}).to_string();
    assert_eq!(send("PUT", &url, Some(&writer), Some(("application/json", &big))).status, 413);
    assert_eq!(
        get(&s, "/api/v1/kv/vars/job/api/k?error_on_missing=false", &reader).text,
        "null",
        "nothing half-written"
    );
    let r = put(
        &s,
        "/api/v1/kv/vars/job/api/replicas",
        &writer,
        json!({"value": 4, "type": "number", "description": "replicas"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // History.
    let r = get(&s, "/api/v1/history/vars/job/api/replicas", &reader);
    let versions = r.body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{}", r.text);
    assert_eq!((versions[0]["value"].as_u64(), versions[1]["value"].as_u64()), (Some(3), Some(4)));

    // Secrets: masked unless the token may reveal.
    let r = put(&s, "/api/v1/kv/secrets/job/api/pw", &writer, json!({"value": "hunter2"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = get(&s, "/api/v1/kv/secrets/job/api/pw", &reader);
    assert_eq!((r.body["value"].as_str(), r.body["sensitive"].as_bool()), (Some("(sensitive)"), Some(true)));
    assert!(!r.text.contains("hunter2"));
    assert_eq!(get(&s, "/api/v1/kv/secrets/job/api/pw", &revealer).body["value"], "hunter2");

    // Delete.
    let del = |path: &str, t: &str| send("DELETE", &format!("{}{path}", s.base), Some(t), None);
    assert_eq!(del("/api/v1/kv/vars/job/api/replicas", &reader).status, 403);
    assert_eq!(del("/api/v1/kv/vars/job/api/replicas", &writer).status, 200);
    assert_eq!(del("/api/v1/kv/vars/job/api/replicas", &writer).status, 404);
    assert_eq!(del("/api/v1/kv/vars/job/api/replicas?error_on_missing=false", &writer).status, 200);

    // Applies: the audit trail with changes.
    let r = get(&s, "/api/v1/applies", &reader);
    let applies = r.body["applies"].as_array().unwrap();
    assert!(
        applies.iter().any(|a| a["operation"] == "serve put" && a["changes"][0]["writer"] == "token:w"),
        "{}",
        r.text
    );
    let first = applies.last().unwrap();
    assert!(first["counts"]["added"].as_u64().unwrap() > 0 && first["status"] == "success", "{first}");

    // Plan: read-only JSON, the same as `kvform plan --format json`.
    let r = get(&s, "/api/v1/plan", &reader);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.is_object(), "{}", r.text);

    // OpenAPI: served without a token; every path it names is routed.
    let r = send("GET", &format!("{}/api/v1/openapi.json", s.base), None, None);
    assert_eq!(r.body["openapi"], "3.0.3");
    for path in r.body["paths"].as_object().unwrap().keys() {
        let mut concrete = path.replace("{namespace}", "vars/job/api").replace("{key}", "x").replace("{name}", "x");
        if path == "/api/v1/search" {
            concrete.push_str("?q=x");
        }
        if path.starts_with("/api/v1/tokens") {
            // Admin routes: routed, and refused to a reader by the role rule.
            let method = if path.ends_with("{name}") { "DELETE" } else { "GET" };
            let r = send(method, &format!("{}{concrete}", s.base), Some(&reader), None);
            assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("role")), "{path}: {}", r.text);
            continue;
        }
        if path.starts_with("/api/v1/restore/") {
            // POST only: routed, and refused to a reader by the role rule.
            let r = post(&s, &concrete, &reader, json!({"version": 1}));
            assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("role")), "{path}: {}", r.text);
            continue;
        }
        let code = get(&s, &concrete, &reader).status;
        assert!(code == 200 || code == 404, "{path}: {code}");
        if code == 404 {
            assert!(!get(&s, &concrete, &reader).text.contains("no route"), "{path} is not routed");
        }
    }

    // Metrics: the seed's names after the `kvform_` prefix (tests/serve_metrics.rs has the rest).
    let m = get(&s, "/metrics", &reader).text;
    for name in [
        "kvform_storage_read_duration_seconds_bucket",
        "kvform_storage_write_duration_seconds_count",
        "kvform_storage_operations_total{op=\"put\"}",
        "kvform_storage_errors_total",
        "kvform_storage_db_size_bytes",
        "kvform_storage_keys{class=\"maand\"}",
        "kvform_applies_total{status=\"success\"}",
        "kvform_serial",
        "kvform_lock_held 0",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
}

#[test]
fn a_watch_returns_when_the_serial_passes_and_sigterm_exits_cleanly() {
    let dir = bucket();
    let d = dir.path();
    let reader = token(d, &["r"]);
    let mut s = serve(d);
    let serial: u64 = get(&s, "/api/v1/namespaces", &reader)
        .headers
        .iter()
        .find(|(k, _)| k == "x-kvform-index")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    // Nothing changes: the watch answers after its wait.
    let t = Instant::now();
    let r = get(&s, &format!("/api/v1/kv/vars/job/api?index={serial}&wait=1s"), &reader);
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
    // A write from the CLI (another process) wakes it.
    let (base, tok) = (s.base.clone(), reader.clone());
    let watcher = std::thread::spawn(move || {
        let t = Instant::now();
        let r = send("GET", &format!("{base}/api/v1/kv/vars/job/api?index={serial}&wait=60s"), Some(&tok), None);
        (r, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    ok(d, &["kv", "set", "vars/job/api", "flag", "on"]);
    let (r, took) = watcher.join().unwrap();
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(r.body["keys"].as_array().unwrap().iter().any(|k| k["key"] == "flag"), "{}", r.text);

    // SIGTERM: exit 0.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("serving on http://127.0.0.1:"), "{err}");
}

/// Derived peer keys (never stored) list and read over REST as `cat kv` shows them, and
/// are read-only.
#[test]
fn derived_peer_keys_list_and_read_like_cat_kv() {
    let dir = bucket();
    let d = dir.path();
    let admin = token(d, &["a", "--role", "admin"]);
    let cat: Value = serde_json::from_str(&ok(d, &["cat", "kv", "--active", "--format", "json"])).unwrap();
    let derived: Vec<(String, String, String)> = cat
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["writer"] == "derived")
        .map(|r| {
            let s = |f: &str| r[f].as_str().unwrap().to_string();
            (s("namespace"), s("key"), s("value"))
        })
        .collect();
    assert!(derived.iter().any(|(_, k, _)| k == "peer_workers"), "{derived:?}");
    assert!(derived.iter().any(|(_, k, _)| k.ends_with("_peers")), "{derived:?}");
    let s = serve(d);
    for (ns, key, value) in &derived {
        let listing = get(&s, &format!("/api/v1/kv/{ns}/"), &admin);
        assert_eq!(listing.status, 200, "{}", listing.text);
        let row = listing.body["keys"].as_array().unwrap().iter().find(|k| k["key"] == key.as_str()).cloned();
        let row = row.unwrap_or_else(|| panic!("{ns} {key} missing from the listing: {}", listing.text));
        assert_eq!((row["value"].as_str(), row["versions"].as_u64()), (Some(value.as_str()), Some(0)), "{ns} {key}");
        // The listing is every key `cat kv` shows for the namespace, in order.
        let want: Vec<&str> = cat
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["namespace"] == ns.as_str())
            .map(|r| r["key"].as_str().unwrap())
            .collect();
        let got: Vec<&str> =
            listing.body["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
        assert_eq!(got, want, "{ns}");
        let one = get(&s, &format!("/api/v1/kv/{ns}/{key}"), &admin);
        assert_eq!((one.status, one.body["value"].as_str()), (200, Some(value.as_str())), "{}", one.text);
        assert_eq!(one.body["writer"], "derived");
        let w = put(&s, &format!("/api/v1/kv/{ns}/{key}"), &admin, json!({"value": "x"}));
        assert_eq!(w.status, 405, "{}", w.text);
        assert!(w.body["error"].as_str().unwrap().contains("is derived from"), "{}", w.text);
        let del = send("DELETE", &format!("{}/api/v1/kv/{ns}/{key}", s.base), Some(&admin), None);
        assert_eq!(del.status, 405, "{}", del.text);
    }
    // A prefix filters derived keys too.
    let (ns, key, _) = derived.iter().find(|(_, k, _)| k == "peer_workers").unwrap();
    let only = get(&s, &format!("/api/v1/kv/{ns}/?prefix=peer"), &admin);
    let keys: Vec<&str> = only.body["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [key.as_str()]);
}

/// `/api/v1/tokens`: admin only (401 without a token, 403 for the others), the plaintext
/// token once in the POST answer, never a hash in the listing; a revoked token stops at once.
#[test]
fn admin_routes_manage_tokens() {
    let dir = bucket();
    let d = dir.path();
    let admin = token(d, &["root", "--role", "admin"]);
    let writer = token(d, &["w", "--role", "writer"]);
    let s = serve(d);
    let url = format!("{}/api/v1/tokens", s.base);
    assert_eq!(send("GET", &url, None, None).status, 401);
    for (method, path) in [("GET", url.clone()), ("POST", url.clone()), ("DELETE", format!("{url}/w"))] {
        let body = (method == "POST").then_some(("application/json", r#"{"name": "x", "role": "reader"}"#));
        let r = send(method, &path, Some(&writer), body);
        assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("role")), "{method} {}", r.text);
        assert!(r.body["error"].as_str().unwrap().contains("cannot manage tokens"), "{}", r.text);
    }
    let body = json!({"name": "ci", "role": "writer", "namespaces": ["vars/job/api"], "expires": "30d"}).to_string();
    let created = send("POST", &url, Some(&admin), Some(("application/json", &body)));
    assert_eq!(created.status, 201, "{}", created.text);
    let ci = created.body["token"].as_str().unwrap().to_string();
    assert_eq!((created.body["role"].as_str(), created.body["state"].as_str()), (Some("writer"), Some("active")));
    let again = send("POST", &url, Some(&admin), Some(("application/json", &body)));
    assert_eq!(again.status, 409, "{}", again.text);
    let bad = send("POST", &url, Some(&admin), Some(("application/json", r#"{"name": "y", "role": "root"}"#)));
    assert_eq!(bad.status, 400, "{}", bad.text);
    // The new token works, within its namespaces.
    let w = put(&s, "/api/v1/kv/vars/job/api/from_ci", &ci, json!({"value": "1"}));
    assert_eq!(w.status, 201, "{}", w.text);
    let listed = send("GET", &url, Some(&admin), None);
    assert_eq!(listed.status, 200);
    let names: Vec<&str> =
        listed.body["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ci", "root", "w"]);
    for secret in [&ci, &admin, &writer] {
        assert!(!listed.text.contains(secret.as_str()), "a listing never shows a token");
        assert!(!listed.text.contains(&kvform::state::tokens::token_hash(secret)), "nor its hash");
    }
    assert!(ok(d, &["token", "list"]).contains("ci\twriter\tvars/job/api"), "the CLI sees it");
    let r = send("DELETE", &format!("{url}/ci"), Some(&admin), None);
    assert_eq!((r.status, r.body["revoked"].as_bool()), (200, Some(true)), "{}", r.text);
    assert_eq!(send("DELETE", &format!("{url}/ci"), Some(&admin), None).status, 404);
    assert_eq!(get(&s, "/api/v1/namespaces", &ci).status, 401, "revoked at once");
    let doc = send("GET", &format!("{}/api/v1/openapi.json", s.base), None, None);
    assert!(
        doc.body["paths"]["/api/v1/tokens"]["post"].is_object()
            && doc.body["paths"]["/api/v1/tokens/{name}"]["delete"].is_object()
    );
}

/// `kvform serve` on a PostgreSQL state (SPEC §10 "every command behaves the same"): reads
/// over its one connection, a write that lands in PostgreSQL with its type, a derived peer
/// key, the listing, metrics with the tables' size, and the CLI seeing what the API wrote.
#[test]
fn serve_reads_and_writes_a_postgres_state() {
    if tf_support::pg_url("serve_reads_and_writes_a_postgres_state").is_none() {
        return;
    }
    let dir = tf_support::pg_bucket();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let admin = token(d, &["ops", "--role", "admin"]);
    let s = serve(d);

    let r = put(&s, "/api/v1/kv/vars/job/web/replicas", &admin, json!({"value": "3", "type": "number"}));
    assert_eq!(r.status, 201, "a new key: {}", r.text);
    let r = get(&s, "/api/v1/kv/vars/job/web/replicas", &admin);
    assert_eq!(
        (r.status, r.body["value"].clone(), r.body["type"].clone()),
        (200, json!(3), json!("number")),
        "{}",
        r.text
    );
    assert_eq!(ok(d, &["kv", "get", "vars/job/web", "replicas"]).trim(), "3", "the CLI reads what the API wrote");

    // A derived peer key, as `cat kv` shows it, reads the same over the API.
    let cat: Value = serde_json::from_str(&ok(d, &["cat", "kv", "--active", "--format", "json"])).unwrap();
    let peer = cat.as_array().unwrap().iter().find(|r| r["key"] == "peer_workers").expect("a peer_workers key").clone();
    let r = get(&s, &format!("/api/v1/kv/{}/peer_workers", peer["namespace"].as_str().unwrap()), &admin);
    assert_eq!((r.status, &r.body["value"]), (200, &peer["value"]), "{}", r.text);
    let r = get(&s, "/api/v1/kv/vars/job/web/", &admin);
    assert!(r.body["keys"].as_array().unwrap().iter().any(|k| k["key"] == "replicas"), "{}", r.text);

    let m = get(&s, "/metrics", &admin).text;
    let size = m.lines().find(|l| l.starts_with("kvform_storage_db_size_bytes ")).expect("a db size line");
    assert_ne!(size, "kvform_storage_db_size_bytes 0", "the size of the PostgreSQL tables:\n{m}");
    assert!(m.contains("kvform_lock_held 0"), "{m}");
}

/// A PostgreSQL restart (or an administrator ending sessions) must not leave `kvform serve`
/// answering 500 until someone restarts it: the next request opens a new session, and while
/// the database cannot be reached requests get a 503 that says so. Serve reaches the
/// database through a TCP proxy of this test's, so "the database is down" is the proxy
/// closing (connections reset, new ones refused) and the other tests sharing the database
/// keep theirs; its session has an application name of its own for `pg_terminate_backend`.
#[test]
fn serve_reconnects_when_its_postgres_session_is_ended() {
    let Some(url) = tf_support::pg_url("serve_reconnects_when_its_postgres_session_is_ended") else { return };
    let dir = tf_support::pg_bucket();
    let d = dir.path();
    ok(d, &["apply", "--auto-approve"]);
    let admin = token(d, &["ops", "--role", "admin"]);
    let app = format!("kvform-serve-{}", uuid::Uuid::new_v4().simple());
    let proxy = Proxy::start(0, &url);
    let port = proxy.port;
    // The same database and user through the proxy (a second `host` would be a fallback
    // address, not a replacement).
    let config: postgres::Config = url.parse().unwrap();
    let mut serve_url = format!("host=127.0.0.1 port={port} application_name={app}");
    for (k, v) in [("user", config.get_user()), ("dbname", config.get_dbname())] {
        if let Some(v) = v {
            serve_url.push_str(&format!(" {k}={v}"));
        }
    }
    if let Some(p) = config.get_password() {
        serve_url.push_str(&format!(" password={}", String::from_utf8_lossy(p)));
    }
    let s = serve_with_env(d, &[("KVFORM_TEST_PG_URL", &serve_url)]);
    let key = "/api/v1/kv/vars/job/web/greeting";
    assert_eq!(get(&s, key, &admin).status, 200, "before");

    let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
    assert_eq!(pg.query_one(sessions, &[&app]).unwrap().get::<_, i64>(0), 1, "serve reads over one session");
    let ended = pg
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&app])
        .unwrap();
    assert_eq!(ended.len(), 1);
    let start = Instant::now();
    while pg.query_one(sessions, &[&app]).unwrap().get::<_, i64>(0) > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "the terminated session did not go away");
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 1..=3 {
        let r = get(&s, key, &admin);
        assert_eq!((r.status, r.body["value"].as_str()), (200, Some("hello")), "request {n} after: {}", r.text);
    }
    assert_eq!(pg.query_one(sessions, &[&app]).unwrap().get::<_, i64>(0), 1, "a new session, and only one");

    // The database down: the session reset, new connections refused.
    proxy.stop();
    for _ in 0..2 {
        let r = get(&s, key, &admin);
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(r.body["hint"].as_str().unwrap().contains("cannot be reached"), "{}", r.text);
    }
    let _back = Proxy::start(port, &url);
    let r = get(&s, key, &admin);
    assert_eq!((r.status, r.body["value"].as_str()), (200, Some("hello")), "back: {}", r.text);
}

/// A TCP proxy in front of the test database (its Unix socket or TCP address), so a test
/// can take "the database" away from one client.
struct Proxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listen on 127.0.0.1:`port` (0: any free port) and forward to `url`'s server.
    fn start(port: u16, url: &str) -> Proxy {
        use std::sync::atomic::Ordering;
        let config: postgres::Config = url.parse().expect("a PostgreSQL connection string");
        let dest = match (&config.get_hosts()[0], config.get_ports().first().copied().unwrap_or(5432)) {
            (postgres::config::Host::Unix(dir), p) => Err(dir.join(format!(".s.PGSQL.{p}"))),
            (postgres::config::Host::Tcp(h), p) => Ok(format!("{h}:{p}")),
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the proxy's port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, clients2) = (stop.clone(), clients.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                clients2.lock().unwrap().push(client.try_clone().unwrap());
                // Each direction copies until its side closes, then closes the other side's
                // writing half, so an end the server makes reaches the client as one.
                let (up_r, up_w, up_close): (Box<dyn std::io::Read + Send>, Box<dyn std::io::Write + Send>, _) =
                    match &dest {
                        Err(socket) => {
                            let s = std::os::unix::net::UnixStream::connect(socket).unwrap();
                            let c = s.try_clone().unwrap();
                            let close: Box<dyn Fn() + Send> = Box::new(move || {
                                let _ = c.shutdown(std::net::Shutdown::Both);
                            });
                            (Box::new(s.try_clone().unwrap()), Box::new(s), close)
                        }
                        Ok(addr) => {
                            let s = std::net::TcpStream::connect(addr).unwrap();
                            let c = s.try_clone().unwrap();
                            let close: Box<dyn Fn() + Send> = Box::new(move || {
                                let _ = c.shutdown(std::net::Shutdown::Both);
                            });
                            (Box::new(s.try_clone().unwrap()), Box::new(s), close)
                        }
                    };
                let (mut from_client, mut to_client, client_close) =
                    (client.try_clone().unwrap(), client.try_clone().unwrap(), client);
                let mut up_w = up_w;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_client, &mut up_w);
                    up_close();
                });
                let mut up_r = up_r;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut to_client);
                    let _ = client_close.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy { port, stop, clients, accept: Some(accept) }
    }

    /// Stop listening and reset every connection made through it.
    fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in self.clients.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shut();
    }
}

/// SIGTERM and SIGINT stop `kvform serve` cleanly on both backends (SPEC §9: finish in-flight
/// requests, release the state, exit 0 — no panic): on PostgreSQL the read connection used
/// to be dropped on the server's runtime thread, and the `postgres` client's own runtime
/// panicked there ("Cannot start a runtime from within a runtime") while the exit code
/// stayed 0.
#[test]
fn sigterm_and_sigint_stop_serve_cleanly_on_both_backends() {
    fn stop_with(d: &Path, signal: &str, backend: &str) {
        let reader = token(d, &[&format!("r{signal}"), "--role", "reader"]);
        let mut s = serve(d);
        // A read first, so the read connection is in use when the signal arrives.
        assert_eq!(get(&s, "/api/v1/namespaces", &reader).status, 200);
        let pid = s.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
        let status = s.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{backend} {signal}: {status:?}\n{err}");
        assert!(!err.contains("panicked"), "{backend} {signal}: {err}");
        assert!(err.contains("stopping: finishing requests in flight"), "{backend} {signal}: {err}");
    }
    let dir = bucket();
    for signal in ["TERM", "INT"] {
        stop_with(dir.path(), signal, "sqlite");
    }
    if tf_support::pg_url("sigterm_and_sigint_stop_serve_cleanly_on_both_backends").is_none() {
        return;
    }
    let dir = tf_support::pg_bucket();
    ok(dir.path(), &["apply", "--auto-approve"]);
    for signal in ["TERM", "INT"] {
        stop_with(dir.path(), signal, "postgres");
    }
}

/// Only a token that may reveal can create one that may (SPEC §9): an admin without
/// `--reveal` gets 403 (rule `reveal`) and no token is made; with `--reveal` it works.
#[test]
fn only_a_reveal_admin_creates_reveal_tokens() {
    let dir = bucket();
    let d = dir.path();
    let admin = token(d, &["root", "--role", "admin"]);
    let revealing = token(d, &["root2", "--role", "admin", "--reveal"]);
    let s = serve(d);
    let url = format!("{}/api/v1/tokens", s.base);
    let body = json!({"name": "peek", "role": "reader", "reveal": true}).to_string();
    let r = send("POST", &url, Some(&admin), Some(("application/json", &body)));
    assert_eq!((r.status, r.body["rule"].as_str()), (403, Some("reveal")), "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("cannot create a token that may"), "{}", r.text);
    assert!(r.body["hint"].as_str().unwrap().contains("--reveal"), "{}", r.text);
    assert!(!ok(d, &["token", "list"]).contains("peek"), "nothing was created");
    // Without reveal it may still create tokens.
    let plain = json!({"name": "plain", "role": "reader"}).to_string();
    assert_eq!(send("POST", &url, Some(&admin), Some(("application/json", &plain))).status, 201);
    let r = send("POST", &url, Some(&revealing), Some(("application/json", &body)));
    assert_eq!((r.status, r.body["reveal"].as_bool()), (201, Some(true)), "{}", r.text);
}

/// Plain HTTP off loopback is refused with an error naming both ways out; with
/// `--insecure-http` it serves, with a warning.
#[test]
fn plain_http_off_loopback_needs_insecure_http() {
    let dir = bucket();
    let d = dir.path();
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    // Bounded: a server that starts instead of refusing must fail the test, not hang it.
    let mut refused = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["serve", "--listen", &listen])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while refused.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = refused.kill();
    let o = refused.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("refusing to serve plain HTTP on `{listen}`")), "{err}");
    assert!(err.contains("--tls-cert FILE --tls-key FILE") && err.contains("--insecure-http"), "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["serve", "--listen", &listen, "--insecure-http"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "kvform serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = send("GET", &format!("http://127.0.0.1:{port}/api/v1/openapi.json"), None, None);
    assert_eq!(r.status, 200);
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("warning: serving plain HTTP on 0.0.0.0") && err.contains("in clear"), "{err}");
}

/// `curl` against `url`, trusting `ca`: (exit ok, HTTP code, headers and body).
fn curl(url: &str, ca: Option<&Path>, token: Option<&str>) -> (bool, String, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "-i", "--max-time", "20", "-w", "\n%{http_code}"]);
    if let Some(ca) = ca {
        c.arg("--cacert").arg(ca);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let o = c.arg(url).output().expect("curl is installed");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (text, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (o.status.success(), code.to_string(), format!("{text}{}", String::from_utf8_lossy(&o.stderr)))
}

fn serve_args(d: &Path, port: u16, args: &[&str]) -> Served {
    let child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "kvform serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { child, base: format!("https://127.0.0.1:{port}") }
}

/// Every file under `dir` but the state (`data/`), with a digest of its bytes: to see that
/// serving wrote nothing.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    use std::hash::{Hash, Hasher};
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "data") {
                out.extend(files(&p));
            }
        } else {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(&p).unwrap_or_default().hash(&mut h);
            out.push((p.clone(), h.finish()));
        }
    }
    out.sort();
    out
}

/// `--tls-from-ca`: HTTPS with a certificate from the bucket CA for the listen address
/// (curl trusting secrets/ca.crt completes the handshake and gets a 200), its key nowhere
/// on disk or in the output; plain HTTP to the port fails; the UI's cookies get `Secure`.
/// `--tls-cert/--tls-key` serve a certificate from files.
#[test]
fn serve_speaks_tls_from_the_bucket_ca_and_from_files() {
    let dir = bucket();
    let d = dir.path();
    let reader = token(d, &["r", "--role", "reader"]);
    let ca = d.join("secrets/ca.crt");
    let before = files(d);
    let port = free_port();
    let mut s = serve_args(d, port, &["--tls-from-ca"]);
    let (done, code, text) = curl(&format!("{}/api/v1/namespaces", s.base), Some(&ca), Some(&reader));
    assert!(done && code == "200", "{code}: {text}");
    assert!(text.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{text}");
    let (_, code, text) = curl(&format!("{}/", s.base), Some(&ca), None);
    assert_eq!(code, "200", "{text}");
    let login = text.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie: kvform_login=")).unwrap();
    assert!(login.contains("; Secure"), "{login}");
    // Without trusting the bucket CA the handshake is refused; plain HTTP gets no answer.
    let (done, code, text) = curl(&format!("{}/api/v1/namespaces", s.base), None, Some(&reader));
    assert!(!done && code == "000", "{code}: {text}");
    let (done, code, text) = curl(&format!("http://127.0.0.1:{port}/api/v1/namespaces"), None, Some(&reader));
    assert!(!done && code == "000", "plain HTTP to a TLS port: {code}: {text}");
    assert!(Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap().success());
    assert!(s.child.wait().unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(s.child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains(&format!("serving on https://127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("PRIVATE KEY") && !err.contains("BEGIN"), "{err}");
    assert_eq!(files(d), before, "serving wrote no file (the server's key is in memory only)");

    // A certificate and key from files (issued here from the same CA for 127.0.0.1).
    let signer = kvform::certs::ca::load_signer(&kvform::bucket::Bucket::at(d)).unwrap();
    let req = kvform::certs::IssueRequest {
        name: "test".into(),
        common_name: "test".into(),
        key_type: kvform::workspace::types::KeyType::EcdsaP256,
        pkcs8: false,
        sans: vec!["127.0.0.1".into()],
        ttl_days: 2,
    };
    let issued = kvform::certs::issue::issue(&signer, &req, 1_700_000_000.max(now())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (crt, key) = (tmp.path().join("server.crt"), tmp.path().join("server.key"));
    std::fs::write(&crt, &issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.as_bytes()).unwrap();
    let port = free_port();
    let s = serve_args(d, port, &["--tls-cert", crt.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let (done, code, text) = curl(&format!("{}/api/v1/namespaces", s.base), Some(&ca), Some(&reader));
    assert!(done && code == "200", "{code}: {text}");
    drop(s);

    // A key that is not a key: an error naming the file, exit 1.
    std::fs::write(&key, "not a key\n").unwrap();
    let o = kvform(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--tls-cert", crt.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("server.key") && err.contains("help: "), "{err}");
    // --tls-from-ca needs an address that names a host.
    let o = kvform(d, &["serve", "--listen", "0.0.0.0:0", "--tls-from-ca"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("names no host") && err.contains("--tls-cert"), "{err}");
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The operations layer through the REST door (issue 24): ETag/If-Match and `cas` (412 naming
/// the current version), PATCH and a PUT that keep what they omit, `?version=N`, restore and
/// undelete, TTL as a duration, and the one validation (NUL, ttl range) as 400s.
#[test]
fn rest_cas_patch_version_reads_and_restore() {
    let dir = bucket();
    let d = dir.path();
    let writer = token(d, &["w", "--role", "writer", "--namespaces", "vars/job/*"]);
    let s = serve(d);
    let url = "/api/v1/kv/vars/job/api/replicas";
    let r =
        put(&s, url, &writer, json!({"value": 3, "type": "number", "description": "how many", "ttl": "1h", "cas": 0}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.headers.iter().any(|(k, v)| k == "etag" && v == "\"1\""), "{:?}", r.headers);
    let r = get(&s, url, &writer);
    assert_eq!((r.body["ttl"].as_u64(), r.body["type"].as_str()), (Some(3600), Some("number")));
    let expires = r.body["expires_at"].clone();
    // A PATCH of the description keeps value, type and expiry.
    let r = send_json("PATCH", &s, url, &writer, json!({"description": "replicas wanted"}), None);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&s, url, &writer);
    assert_eq!((r.body["value"].as_u64(), r.body["type"].as_str()), (Some(3), Some("number")), "{}", r.text);
    assert_eq!(r.body["expires_at"], expires, "an untouched ttl keeps its expiry");
    assert_eq!(r.body["version"].as_u64(), Some(2));
    // A PUT without type keeps number: a non-number is refused, not stored as a string.
    assert_eq!(put(&s, url, &writer, json!({"value": "many"})).status, 400);
    // Compare-and-set: a stale If-Match is 412 with the current version; the right one wins.
    let r = send_json("PUT", &s, url, &writer, json!({"value": 5}), Some("\"1\""));
    assert_eq!(r.status, 412, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("is at version 2, not 1"), "{}", r.text);
    assert!(r.headers.iter().any(|(k, v)| k == "etag" && v == "\"2\""));
    assert_eq!(send_json("PUT", &s, url, &writer, json!({"value": 5}), Some("\"2\"")).status, 200);
    assert_eq!(put(&s, url, &writer, json!({"value": 6, "cas": 2})).status, 412);
    // A version read.
    let r = get(&s, &format!("{url}?version=1"), &writer);
    assert_eq!((r.status, r.body["value"].as_u64(), r.body["description"].as_str()), (200, Some(3), Some("how many")));
    assert_eq!(get(&s, &format!("{url}?version=99"), &writer).status, 404);
    // Delete with a stale If-Match: 412; then delete; then restore version 1 (undelete).
    let del = |m: Option<&str>| send_json("DELETE", &s, url, &writer, json!({}), m);
    assert_eq!(del(Some("\"1\"")).status, 412);
    assert_eq!(del(Some("\"3\"")).status, 200);
    let r = post(&s, "/api/v1/restore/vars/job/api/replicas", &writer, json!({"version": 1, "cas": 0}));
    assert_eq!((r.status, r.body["version"].as_u64()), (200, Some(5)), "{}", r.text);
    let r = get(&s, url, &writer);
    assert_eq!((r.body["value"].as_u64(), r.body["description"].as_str()), (Some(3), Some("how many")));
    assert_eq!(
        post(&s, "/api/v1/restore/vars/job/api/replicas", &writer, json!({"version": 4})).status,
        400,
        "a deletion"
    );
    // The one validation: NUL, ttl 2^64-1 and i64::MAX are 400s with a hint, no SQL, no path.
    for body in
        [json!({"value": "a\u{0}b"}), json!({"value": "x", "ttl": u64::MAX}), json!({"value": "x", "ttl": i64::MAX})]
    {
        let r = put(&s, "/api/v1/kv/vars/job/api/bad", &writer, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert!(!r.text.contains("CHECK") && !r.text.contains(d.to_str().unwrap()), "{}", r.text);
        assert!(r.body["hint"].as_str().is_some_and(|h| !h.is_empty()), "{}", r.text);
    }
}

/// Sensitive is one rule (`kv::is_secret_key`): a certificate private key
/// (`certs/<name>.key` in `maand/job/<job>/worker/<host>`) is `(sensitive)` to a reader
/// without `--reveal` in a get, a listing, the history and a version read, and plaintext PEM
/// to one with it — never the `kvs1:` ciphertext.
#[test]
fn certificate_private_keys_are_sensitive_in_the_api() {
    let dir = bucket();
    let d = dir.path();
    let reader = token(d, &["r", "--role", "reader"]);
    let revealer = token(d, &["rv", "--role", "reader", "--reveal"]);
    let s = serve(d);
    let r = get(&s, "/api/v1/namespaces", &reader);
    let ns = r.body["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["namespace"].as_str())
        .find(|n| n.starts_with("maand/job/api/worker/") && n.matches('/').count() == 4)
        .unwrap_or_else(|| panic!("no api allocation namespace: {}", r.text))
        .to_string();
    let key = format!("/api/v1/kv/{ns}/certs%2Fserver.key");
    let history = format!("/api/v1/history/{ns}/certs%2Fserver.key");
    let listed = |t: &str| {
        let r = get(&s, &format!("/api/v1/kv/{ns}/"), t);
        assert_eq!(r.status, 200, "{}", r.text);
        let row = r.body["keys"].as_array().unwrap().iter().find(|k| k["key"] == "certs/server.key").cloned();
        row.unwrap_or_else(|| panic!("no certs/server.key in {}", r.text))
    };
    // Without reveal: masked everywhere, never the ciphertext.
    for (what, r) in [("get", get(&s, &key, &reader)), ("version", get(&s, &format!("{key}?version=1"), &reader))] {
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_eq!(
            (r.body["value"].as_str(), r.body["sensitive"].as_bool()),
            (Some("(sensitive)"), Some(true)),
            "{what}: {}",
            r.text
        );
    }
    assert_eq!(listed(&reader)["value"], "(sensitive)");
    let h = get(&s, &history, &reader);
    assert_eq!(h.status, 200, "{}", h.text);
    assert!(!h.text.contains("kvs1:") && h.text.contains("(sensitive)"), "{}", h.text);
    // With reveal: the PEM.
    let pem = |v: &Value| v.as_str().is_some_and(|t| t.starts_with("-----BEGIN"));
    let r = get(&s, &key, &revealer);
    assert!(pem(&r.body["value"]) && r.body.get("sensitive").is_none(), "{}", r.text);
    assert!(pem(&get(&s, &format!("{key}?version=1"), &revealer).body["value"]));
    assert!(pem(&listed(&revealer)["value"]));
    let h = get(&s, &history, &revealer);
    assert!(!h.text.contains("kvs1:") && h.text.contains("-----BEGIN"), "{}", h.text);
    // The certificate itself is not sensitive.
    let r = get(&s, &format!("/api/v1/kv/{ns}/certs%2Fserver.crt"), &reader);
    assert!(pem(&r.body["value"]), "{}", r.text);
}

/// The audit trail names the API token, not the server's OS user, for every serve write
/// (put, delete, restore): `GET /api/v1/applies` shows `token:<name>` for their serials.
#[test]
fn serve_writes_are_audited_as_their_token() {
    let dir = bucket();
    let d = dir.path();
    let writer = token(d, &["deployer", "--role", "writer", "--namespaces", "vars/job/*"]);
    let s = serve(d);
    let url = "/api/v1/kv/vars/job/api/audited";
    let mut serials = vec![];
    let r = put(&s, url, &writer, json!({"value": "a"}));
    assert_eq!(r.status, 201, "{}", r.text);
    serials.push(r.body["serial"].as_u64().unwrap());
    let r = send_json("DELETE", &s, url, &writer, json!({}), None);
    assert_eq!(r.status, 200, "{}", r.text);
    serials.push(r.body["serial"].as_u64().unwrap_or_else(|| panic!("no serial: {}", r.text)));
    let r = post(&s, "/api/v1/restore/vars/job/api/audited", &writer, json!({"version": 1}));
    assert_eq!(r.status, 200, "{}", r.text);
    serials.push(r.body["serial"].as_u64().unwrap_or_else(|| panic!("no serial: {}", r.text)));
    let applies = get(&s, "/api/v1/applies", &writer);
    for serial in serials {
        let a = applies.body["applies"].as_array().unwrap().iter().find(|a| a["serial"] == serial);
        let a = a.unwrap_or_else(|| panic!("serial {serial} not in {}", applies.text));
        assert_eq!(a["actor"], "token:deployer", "{a}");
    }
}

/// A REST write to a key the workspace declares answers with a `warnings` entry and
/// `managed_by` (the vars.hcl line); the web UI's key page shows the badge (issue 24).
#[test]
fn a_write_to_a_workspace_declared_key_warns_over_rest() {
    let dir = bucket();
    let d = dir.path();
    let writer = token(d, &["w", "--role", "writer", "--namespaces", "vars/job/*"]);
    let s = serve(d);
    let r = put(&s, "/api/v1/kv/vars/job/api/base_path", &writer, json!({"value": "/v2"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["managed_by"], "workspace/jobs/api/vars.hcl:2", "{}", r.text);
    assert!(r.body["warnings"][0].as_str().unwrap().contains("the next apply writes the workspace's value back"));
    let r = put(&s, "/api/v1/kv/vars/job/api/free", &writer, json!({"value": "x"}));
    assert!(r.body.get("warnings").is_none(), "{}", r.text);
}
