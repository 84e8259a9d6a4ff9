//! No command panics on a closed pipe (`kvform completions bash | head -1`): each listing
//! command runs with its stdout (and, separately, stderr) already closed by the reader,
//! and must exit as usual, never with Rust's panic status 101.

mod tf_support;

use std::path::Path;
use std::process::{Command, Stdio};
use tf_support::{applied_bucket, ok};

/// Which stream the reader closes before kvform writes.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Both,
}

/// Run with the chosen streams' read ends closed at once; the exit code.
fn run_closed(dir: &Path, args: &[&str], closed: Closed) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"));
    c.arg("-C").arg(dir).args(args).env("NO_COLOR", "1").env("KVFORM_NOW", tf_support::NOW);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // Dropping the parent's end closes the pipe: every write of the child gets EPIPE.
    drop(child.stdout.take());
    let mut err = String::new();
    match closed {
        Closed::Stdout => {
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        }
        Closed::Both => drop(child.stderr.take()),
    }
    (child.wait().unwrap().code(), err)
}

const LISTINGS: &[&[&str]] = &[
    &["completions", "bash"],
    &["completions", "zsh"],
    &["cat", "kv"],
    &["cat", "kv", "--format", "json"],
    &["cat", "workers"],
    &["cat", "jobs"],
    &["cat", "allocations"],
    &["kv", "keys", "maand/job/web"],
    &["kv", "history", "vars/job/web", "greeting"],
    &["kv", "get", "vars/job/web", "greeting"],
    &["state", "info"],
    &["validate", "--print-desired"],
    &["validate"],
    &["plan"],
    &["plan", "--json"],
    &["show", "p.json"],
    &["show"],
    &["show", "--json"],
    &["state", "list"],
    &["state", "info", "--format", "json"],
    &["kv", "get", "vars/job/web", "greeting", "--format", "json"],
    &["--help"],
];

#[test]
fn listings_into_a_closed_pipe_never_panic() {
    let b = applied_bucket();
    // A change to plan, so `plan` prints more than "No changes." (and a saved plan to show).
    std::fs::write(b.path().join("workspace/jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    ok(b.path(), &["plan", "--out", "p.json"]);
    for args in LISTINGS {
        for closed in [Closed::Stdout, Closed::Both] {
            let (code, err) = run_closed(b.path(), args, closed);
            assert_ne!(code, Some(101), "{args:?} with {closed:?} closed panicked:\n{err}");
            assert!(!err.contains("panicked"), "{args:?} with {closed:?} closed panicked:\n{err}");
            assert!(!err.contains("Broken pipe"), "{args:?} reported the closed pipe as an error:\n{err}");
            assert_eq!(code, Some(0), "{args:?} with {closed:?} closed failed:\n{err}");
        }
    }
}
