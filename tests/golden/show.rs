//! `testdata/show/<case>/` -> `golden/show/<case>.{txt,json}`: `kvform show` (the current
//! state in the plan's notation) and `kvform show --json` after applying the case's
//! `workspace/`, then running its optional `pre` lines (`kv set NS KEY VALUE [--ttl N]`;
//! a value for `secrets/…` is passed on stdin, as operators do).
//!
//! Determinism: the state gets a fixed bucket id and lineage, and the clock is fixed.

use crate::support::{Golden, case_name, cases, copy_dir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BUCKET_ID: &str = "6b766672-6d00-4000-8000-000000000003";
const LINEAGE: &str = "6b766672-6d00-4000-8000-00000000000a";
const NOW: &str = "2026-01-01T00:00:00Z";

fn run(root: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"));
    c.arg("-C").arg(root).args(args).env("KVFORM_NOW", NOW).env("NO_COLOR", "1");
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(root: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let o = run(root, args, stdin);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!("{args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr)))
    }
}

fn case(dir: &Path) -> Result<(String, String), String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy_dir(&dir.join("workspace"), &root.join("workspace"));
    let bucket = kvform::bucket::Bucket::at(root);
    kvform::secrets::Keyring::create(&bucket).unwrap();
    let path = bucket.default_state_file();
    drop(kvform::state::StateStore::init(&path, 1_767_225_600).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE meta SET bucket_id = ?1, lineage = ?2 WHERE id = 1", [BUCKET_ID, LINEAGE]).unwrap();
    drop(conn);
    ok(root, &["apply", "--auto-approve"], None)?;
    let pre = std::fs::read_to_string(dir.join("pre")).unwrap_or_default();
    for line in pre.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["kv", "set", ns, key, value, rest @ ..] if ns.starts_with("secrets/") => {
                let mut args = vec!["kv", "set", ns, key, "-"];
                args.extend(rest);
                ok(root, &args, Some(value))?;
            }
            _ => {
                ok(root, &words, None)?;
            }
        }
    }
    Ok((ok(root, &["show"], None)?, ok(root, &["show", "--json"], None)?))
}

#[test]
fn show_corpus() {
    let mut g = Golden::new();
    for dir in cases("show") {
        let name = case_name(&dir);
        match case(&dir) {
            Ok((text, json)) => {
                g.check(&format!("show/{name}.txt"), &text);
                g.check(&format!("show/{name}.json"), &json);
            }
            Err(e) => g.fail(format!("testdata/show/{name}: {e}")),
        }
    }
    g.finish("show", 2);
}
