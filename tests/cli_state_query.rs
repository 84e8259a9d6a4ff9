//! `kvform state list [PATTERN]`, `kvform kv get --format json` and `kvform show` without a
//! file (the golden corpus `testdata/show/` pins show's output; this checks the edges).

mod tf_support;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use tf_support::{NOW, applied_bucket, kvform, ok, stderr, stdout};

#[test]
fn state_list_filters_namespaces_by_glob() {
    let b = applied_bucket();
    let all = ok(b.path(), &["state", "list"]);
    assert!(all.lines().any(|l| l == "maand/bucket") && all.lines().any(|l| l == "vars/job/web"), "{all}");
    let mut sorted: Vec<&str> = all.lines().collect();
    sorted.sort();
    assert_eq!(all.lines().collect::<Vec<_>>(), sorted, "not sorted");
    // `*` stays within a segment: the jobs, not their allocations.
    assert_eq!(ok(b.path(), &["state", "list", "maand/job/*"]), "maand/job/db\nmaand/job/web\n");
    assert_eq!(
        ok(b.path(), &["state", "list", "maand/job/web/**"]),
        "maand/job/web/worker/10.0.0.1\nmaand/job/web/worker/10.0.0.2\n"
    );
    assert_eq!(ok(b.path(), &["state", "list", "vars/job/*", "--keys"]), "vars/job/web greeting\n");
    let o = kvform(b.path(), &["state", "list", "nothing/*"]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(stderr(&o).contains("no namespace with live keys matches \"nothing/*\""), "{}", stderr(&o));
    let o = kvform(b.path(), &["state", "list", "maand/[job"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid pattern \"maand/[job\""), "{}", stderr(&o));
}

#[test]
fn kv_get_json_has_version_times_and_ttl() {
    let b = applied_bucket();
    let v: Value =
        serde_json::from_str(&ok(b.path(), &["kv", "get", "vars/job/web", "greeting", "--format", "json"])).unwrap();
    assert_eq!(v["value"], "hello");
    assert_eq!(v["version"], 1);
    assert_eq!(v["created_at"], NOW);
    assert_eq!(v["updated_at"], NOW);
    assert_eq!(v["ttl"], 0);
    assert_eq!(v["expires_at"], Value::Null);
    assert_eq!(v["writer"], "apply");
    assert_eq!((v["type"].as_str(), v["description"].as_str()), (Some("string"), Some("")));

    let later = "2026-01-02T05:00:00Z";
    let set = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(b.path())
        .args(["kv", "set", "vars/job/web", "greeting", "hi", "--ttl", "30m"])
        .env("KVFORM_NOW", later)
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let v: Value =
        serde_json::from_str(&ok(b.path(), &["kv", "get", "vars/job/web", "greeting", "--format", "json"])).unwrap();
    assert_eq!((v["version"].as_u64(), v["value"].as_str()), (Some(2), Some("hi")));
    assert_eq!(v["created_at"], NOW, "the first version's time");
    assert_eq!(v["updated_at"], later);
    assert_eq!(v["expires_at"], "2026-01-02T05:30:00Z");
    assert_eq!(v["expired"], false);

    // A secret stays (sensitive) without --reveal; a missing key is null (or an error).
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(b.path())
        .args(["kv", "set", "secrets/job/web", "token", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cr3t").unwrap();
    assert!(child.wait().unwrap().success());
    let out = ok(b.path(), &["kv", "get", "secrets/job/web", "token", "--format", "json"]);
    assert!(!out.contains("s3cr3t"), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["value"].as_str(), v["sensitive"].as_bool()), (Some("(sensitive)"), Some(true)));
    assert_eq!(ok(b.path(), &["kv", "get", "vars/job/web", "nope", "--format", "json"]).trim(), "null");
    let o = kvform(b.path(), &["kv", "get", "vars/job/web", "nope", "--format", "json", "--error-on-missing"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn show_without_a_file_prints_the_state_and_never_a_secret() {
    let b = applied_bucket();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(b.path())
        .args(["kv", "set", "secrets/job/web", "token", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cr3t").unwrap();
    assert!(child.wait().unwrap().success());
    let text = ok(b.path(), &["show"]);
    assert!(text.lines().any(|l| l.starts_with("  vars/job/web") && l.ends_with("greeting = \"hello\"")), "{text}");
    assert!(text.contains("token = (sensitive)") && !text.contains("s3cr3t"), "{text}");
    assert!(text.ends_with("namespaces (serial 2).\n"), "{text}");
    let json = ok(b.path(), &["show", "-json"]);
    assert!(!json.contains("s3cr3t"), "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let token = v["values"].as_array().unwrap().iter().find(|r| r["key"] == "token").unwrap();
    assert_eq!((token["value"].clone(), token["sensitive"].clone()), (Value::Null, Value::Bool(true)));
    // Without a state: the usual "no state" error, exit 1.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(kvform(empty.path(), &["show"]).status.code(), Some(1));
}

#[test]
fn kv_get_json_shows_the_type_and_description_a_writer_gave() {
    let b = applied_bucket();
    ok(b.path(), &["kv", "set", "vars/job/web", "replicas", "3", "--type", "number", "--description", "how many"]);
    let v: Value =
        serde_json::from_str(&ok(b.path(), &["kv", "get", "vars/job/web", "replicas", "--format", "json"])).unwrap();
    assert_eq!((v["type"].as_str(), v["description"].as_str()), (Some("number"), Some("how many")));
}
