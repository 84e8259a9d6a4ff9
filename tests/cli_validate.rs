//! `kvform validate` end to end, on the quickstart example and on broken buckets.

mod quickstart_copy;

use kvform::state::Write;
use quickstart_copy::quickstart_copy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn validate(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .args(["-C", dir.to_str().unwrap(), "validate"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run kvform")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bucket(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("workspace")).unwrap();
    for (rel, contents) in files {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    tmp
}

#[test]
fn quickstart_is_valid() {
    let qs = quickstart_copy();
    let out = validate(qs.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("Workspace is valid: "), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr), "", "no warnings expected");
}

#[test]
fn quickstart_counts_workers_and_jobs() {
    let qs = quickstart_copy();
    let out = validate(qs.path());
    assert_eq!(text(&out.stdout), "Workspace is valid: 3 workers, 3 jobs.\n");
}

#[test]
fn quickstart_hcl_files_convert_as_documented() {
    let qs = quickstart_copy();
    let root = qs.path().to_path_buf();
    let loaded = kvform::workspace::load(&root);
    assert!(!loaded.diagnostics.has_errors(), "{}", loaded.diagnostics.render(&loaded.sources, false));
    let ws = loaded.workspace.unwrap();
    let vars: Vec<(&str, &str)> = ws.bucket_vars.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    assert_eq!(
        vars,
        [
            ("port_min", "30000"),
            ("port_max", "30999"),
            ("environment", "quickstart"),
            ("log_level", "info"),
            ("features", r#"["metrics","tracing"]"#),
            ("limits", r#"{"burst":20,"requests_per_second":100}"#),
        ]
    );
    assert_eq!((ws.port_pool.min, ws.port_pool.max), (30000, 30999));
    assert_eq!(ws.settings.hook_timeout_secs, 300);
    let db = &ws.job_configs["database"];
    assert_eq!(db.memory_mb.as_ref().map(|s| s.value), Some(2048.0));
    assert_eq!(db.cpu_mhz.as_ref().map(|s| s.value), Some(1500.0));
    let api = &ws.job_configs["api"];
    let api_vars: Vec<(&str, &str)> = api.vars.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    assert_eq!(api_vars, [("memory", "512 mb"), ("cpu", "500 mhz"), ("replicas_hint", "2")]);
    let mut sources = kvform::diag::SourceMap::new();
    let mut diags = kvform::diag::Diagnostics::new();
    let vars = kvform::workspace::hcl_files::job_vars(&root, "api", &mut sources, &mut diags);
    let vars: Vec<(&str, &str)> = vars.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    assert_eq!(vars, [("base_path", "/api/v1"), ("workers", "4"), ("debug", "false")]);
    assert!(diags.is_empty());
}

#[test]
fn every_error_is_reported_with_a_count() {
    let b = bucket(&[
        ("kvform.hcl", "max_version = 3\n"),
        ("workspace/bucket.conf", "port_min = 40000\nregion = var.region\n"),
        ("workspace/bucket.jobs.conf", "job \"api\" {\n  memory = \"1 kb\"\n}\n"),
    ]);
    let out = validate(b.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let e = text(&out.stderr);
    for needle in [
        "--> kvform.hcl:1:1",
        "did you mean `max_versions`?",
        "--> workspace/bucket.conf:1:12",
        "--> workspace/bucket.conf:2:10",
        "--> workspace/bucket.jobs.conf:2:12",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
    assert!(e.ends_with("error: 4 errors, 1 warning\n"), "{e}");
    // Sorted by file: kvform.hcl before workspace/…
    assert!(e.find("kvform.hcl:1:1").unwrap() < e.find("bucket.conf:1:12").unwrap());
    assert!(!e.contains('\x1b'), "no colour when NO_COLOR is set");
}

#[test]
fn a_syntax_error_is_located_and_singular() {
    let b = bucket(&[("workspace/bucket.conf", "a = 1\nlimits = {\n  x = 1\n")]);
    let out = validate(b.path());
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.starts_with("error: unclosed `{`\n  --> workspace/bucket.conf:2:10\n"), "{e}");
    assert!(e.ends_with("error: 1 error, 0 warnings\n"), "{e}");
}

#[test]
fn validate_never_touches_the_state() {
    let b = bucket(&[("workspace/bucket.conf", "log_level = \"info\"\n")]);
    let before: Vec<_> = walk(b.path());
    let out = validate(b.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(walk(b.path()), before, "validate created or removed files");
    assert!(!b.path().join("data").exists());
}

#[test]
fn outside_a_bucket_it_says_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = validate(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("is not a kvform bucket") && e.contains("kvform init"), "{e}");
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fn kvform_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("KVFORM_NOW", "2026-01-02T03:04:05Z")
        .output()
        .expect("run kvform")
}

#[test]
fn print_desired_without_a_state_uses_the_nil_bucket_id_and_says_so() {
    let qs = quickstart_copy();
    let out = kvform_in(qs.path(), &["validate", "--print-desired"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("# bucket_id 00000000-0000-0000-0000-000000000000\n"), "{s}");
    for line in ["# wave 0: database\n", "# wave 1: api\n", "# wave 2: frontend\n"] {
        assert!(s.contains(line), "missing {line:?} in:\n{s}");
    }
    assert!(s.contains("# allocation api@10.0.0.1 active (new)\n"), "{s}");
    assert!(s.contains("maand/job/frontend  deployment_seq = \"2\"\n"), "{s}");
    assert!(!s.contains("Workspace is valid"), "stdout holds only the rendering");
    let e = text(&out.stderr);
    assert!(e.contains("note: no state at") && e.contains("--bucket-id"), "{e}");

    let id = "3f2b6a1e-8c1d-4f3e-9a7b-1c2d3e4f5a6b";
    let out = kvform_in(qs.path(), &["validate", "--print-desired", "--bucket-id", id]);
    assert!(text(&out.stdout).starts_with(&format!("# bucket_id {id}\n")));
    assert!(!text(&out.stderr).contains("note:"), "{}", text(&out.stderr));
    assert!(!qs.path().join("data").exists(), "validate created a state");
}

#[test]
fn print_desired_json_has_the_waves() {
    let qs = quickstart_copy();
    let out = kvform_in(qs.path(), &["validate", "--print-desired", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(v["waves"], serde_json::json!([["database"], ["api"], ["frontend"]]));
    assert_eq!(v["jobs"]["api"]["deployment_seq"], 1);
    assert_eq!(v["jobs"]["frontend"]["deployment_seq"], 2);
    assert_eq!(v["kv"]["maand/job/api"]["deployment_seq"], "1");
}

#[test]
fn print_desired_reads_the_state_without_changing_it() {
    let tmp = quickstart_copy();
    let d = tmp.path();
    let init = kvform_in(d, &["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let state = d.join("data/kvform.db");
    // What an earlier apply would have left: a port number and one allocation.
    let bucket_id = {
        let store = kvform::state::StateStore::open(&state).unwrap();
        let id = store.meta().unwrap().bucket_id;
        let mut txn = store.begin_write("test", std::time::Duration::ZERO, 1767323045).unwrap();
        txn.put(Write::new("maand/bucket", "api_http", "30777", "apply", 1)).unwrap();
        txn.put(Write::new("maand/job/api/worker/10.0.0.1", "version", "1.4.0", "apply", 1)).unwrap();
        txn.commit(kvform::state::ApplyRecord::new("test", 1)).unwrap();
        id
    };
    let before = std::fs::read(&state).unwrap();
    let out = kvform_in(d, &["validate", "--print-desired"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with(&format!("# bucket_id {bucket_id}\n")), "{s}");
    assert!(s.contains("maand/bucket  api_http = \"30777\"\n"), "the state's port is kept:\n{s}");
    assert!(s.contains("# allocation api@10.0.0.1 active\n"), "the state's allocation is not new:\n{s}");
    assert!(s.contains("# allocation api@10.0.0.2 active (new)\n"), "{s}");
    assert!(!text(&out.stderr).contains("note:"));
    assert_eq!(std::fs::read(&state).unwrap(), before, "the state file changed");
    let serial = kvform::state::StateStore::open(&state).unwrap().meta().unwrap().serial;
    assert_eq!(serial, 1);
}

#[test]
fn format_needs_print_desired() {
    let out = kvform_in(quickstart_copy().path(), &["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "a usage error (exit 1, never 2)");
    assert!(text(&out.stderr).contains("--print-desired"), "{}", text(&out.stderr));
}

/// Issue 22 item 6: thousands of problems in one minified file. The first 50 are shown in
/// full, each with a window of its (one, long) line, then a line counting the rest; the
/// summary counts all of them. Printing the whole line under every diagnostic made the
/// output (and the time) quadratic in their number.
#[test]
fn many_problems_on_one_long_line_are_capped_and_windowed() {
    let n = 5000;
    let keys: Vec<String> = (0..n).map(|i| format!("\"unknown_{i}\": 1")).collect();
    let b = bucket(&[("workspace/disabled.json", &format!("{{{}}}", keys.join(",")))]);
    let out = validate(b.path());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_eq!(err.matches("error: unknown field `unknown_").count(), 50, "{err}");
    assert!(err.contains("error: unknown field `unknown_49` in disabled.json"), "{err}");
    assert!(!err.contains("`unknown_50`"), "{err}");
    assert!(err.contains("... and 4950 more not shown (4950 errors): fix the ones above and run again"), "{err}");
    assert!(err.contains(&format!("error: {n} errors, 0 warnings")), "{err}");
    // The real line and column, a window of the line, `...` where it is cut.
    let col = keys[..49].iter().map(|k| k.len() + 1).sum::<usize>() + 2;
    assert!(err.contains(&format!("--> workspace/disabled.json:1:{col}")), "{err}");
    assert!(err.contains("1 | ...nown_45\": 1,\"unknown_46\""), "{err}");
    assert!(err.len() < 50 * 600, "{} bytes of diagnostics", err.len());
}
