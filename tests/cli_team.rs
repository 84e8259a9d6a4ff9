//! A bucket shared by a laptop and a CI runner (SPEC §8, §10): the laptop made the bucket
//! (it has `secrets/kv.key`, `secrets/ca.crt`, `secrets/ca.key`); the runner is a clone of
//! the repository (kvform.hcl and the workspace) that gets the key from `KVFORM_SECRET_KEY`
//! and has no CA files. On one PostgreSQL state neither machine may undo the other's work:
//! the runner never tombstones or changes the CA certificate it finds in the state.

mod tf_support;

use base64::Engine as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tf_support::*;

/// `kvform -C dir ARGS` with `KVFORM_SECRET_KEY` set (the runner's way to get the key).
fn runner(dir: &Path, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .env("KVFORM_SECRET_KEY", key)
        .stdin(Stdio::null())
        .output()
        .expect("run kvform")
}

fn runner_ok(dir: &Path, key: &str, args: &[&str]) -> String {
    let o = runner(dir, key, args);
    assert!(o.status.success(), "runner {args:?} failed ({:?}):\n{}{}", o.status, stdout(&o), stderr(&o));
    stdout(&o) + &stderr(&o)
}

/// A clone of the laptop's repository: kvform.hcl and the workspace, nothing under secrets/.
fn clone_repo(laptop: &Path) -> tempfile::TempDir {
    let clone = tempfile::tempdir().unwrap();
    std::fs::copy(laptop.join("kvform.hcl"), clone.path().join("kvform.hcl")).unwrap();
    copy_dir(&laptop.join("workspace"), &clone.path().join("workspace"));
    clone
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn ca_in_state(dir: &Path) -> String {
    ok(dir, &["kv", "get", "maand/worker", "certs/ca.crt"])
}

const WORKERS_MORE_LABELS: &str = r#"[
  { "host": "10.0.0.1", "labels": ["web", "db", "edge"], "memory": "4 gb", "cpu": "4000 mhz" },
  { "host": "10.0.0.2", "labels": ["web"], "memory": "4 gb", "cpu": "4000 mhz" }
]
"#;

#[test]
fn a_runner_without_the_ca_files_never_flips_the_ca_in_a_shared_postgres_state() {
    let Some(_) = pg_url("a_runner_without_the_ca_files_never_flips_the_ca_in_a_shared_postgres_state") else {
        return;
    };
    let laptop = pg_bucket();
    ok(laptop.path(), &["apply", "--auto-approve"]);
    let ca = ca_in_state(laptop.path());
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    let key =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(laptop.path().join("secrets/kv.key")).unwrap());

    let ci = clone_repo(laptop.path());
    let init = runner_ok(ci.path(), &key, &["init"]);
    assert!(init.contains("missing  secrets/ca.crt, secrets/ca.key"), "{init}");
    assert!(init.contains("plans here leave its CA certificate in the state as it is"), "{init}");

    // A full re-read on the runner: nothing to do, and the plan says what it leaves alone.
    let plan = runner_ok(ci.path(), &key, &["plan", "--refresh"]);
    assert!(plan.contains("No changes."), "{plan}");
    assert!(!plan.contains("certs/ca.crt  ") && !plan.contains("no longer derived"), "{plan}");
    assert!(plan.contains("secrets/ca.crt and secrets/ca.key are missing on this machine"), "{plan}");
    assert!(plan.contains("(`maand/worker` `certs/ca.crt`) is left as it is"), "{plan}");

    // A workers.json edit makes the runner re-read and rewrite `maand/worker`.
    write(ci.path(), "workspace/workers.json", WORKERS_MORE_LABELS);
    let json: serde_json::Value =
        serde_json::from_str(&runner_ok_stdout(ci.path(), &key, &["plan", "--json"])).unwrap();
    let touched: Vec<&serde_json::Value> =
        json["changes"].as_array().unwrap().iter().filter(|c| c["key"] == "certs/ca.crt").collect();
    assert!(touched.is_empty(), "the runner's plan touches the CA: {touched:?}");
    runner_ok(ci.path(), &key, &["apply", "--auto-approve"]);
    assert_eq!(ca_in_state(laptop.path()), ca, "the runner's apply changed the CA certificate");

    // The laptop, with the same workspace: nothing to revive, nothing pending either way.
    write(laptop.path(), "workspace/workers.json", WORKERS_MORE_LABELS);
    for dir in [laptop.path(), ci.path()] {
        let o = runner(dir, &key, &["plan", "--refresh", "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(0), "{}: {}{}", dir.display(), stdout(&o), stderr(&o));
    }
    assert_eq!(ca_in_state(ci.path()), ca);
}

fn runner_ok_stdout(dir: &Path, key: &str, args: &[&str]) -> String {
    let o = runner(dir, key, args);
    assert!(o.status.success(), "runner {args:?} failed ({:?}):\n{}{}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

const API_WITH_CERT: &str = r#"{
  "version": "1.0.0",
  "certs": { "server": { "subject": { "common_name": "web" } } }
}
"#;

/// The same machine without its CA files (SQLite): certificates that are still good keep the
/// plan going; one that must be issued stops it and names the files.
#[test]
fn without_the_ca_files_a_plan_checks_certificates_against_the_state_and_stops_before_issuing() {
    let b = bucket();
    write(b.path(), "workspace/jobs/web/manifest.json", API_WITH_CERT);
    ok(b.path(), &["apply", "--auto-approve"]);
    let ca = ca_in_state(b.path());
    let away = tempfile::tempdir().unwrap();
    for f in ["ca.crt", "ca.key"] {
        std::fs::rename(b.path().join("secrets").join(f), away.path().join(f)).unwrap();
    }

    let o = kvform(b.path(), &["plan", "--refresh", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("is left as it is"), "{}", stdout(&o));

    // A new allocation needs a certificate: the plan stops and says which files are missing.
    write(
        b.path(),
        "workspace/workers.json",
        &WORKERS.replace(
            "]\n",
            "  ,{ \"host\": \"10.0.0.3\", \"labels\": [\"web\"], \"memory\": \"4 gb\", \"cpu\": \"4000 mhz\" }\n]\n",
        ),
    );
    let o = kvform(b.path(), &["plan"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("this plan must issue 1 certificate"), "{err}");
    assert!(err.contains("`maand/job/web/worker/10.0.0.3` `certs/server.crt` (issue: new certificate)"), "{err}");
    assert!(err.contains("secrets/ca.crt and secrets/ca.key are missing on this machine"), "{err}");
    assert!(err.contains("help: copy both files"), "{err}");
    assert_eq!(ca_in_state(b.path()), ca);
}

/// `plan` on a bucket with neither state nor CA shows what `apply` will make, like Terraform.
#[test]
fn plan_before_the_ca_exists_shows_it_known_after_apply() {
    let b = tempfile::tempdir().unwrap();
    write(b.path(), "workspace/workers.json", WORKERS);
    write(b.path(), "workspace/bucket.jobs.conf", JOBS_CONF);
    write(b.path(), "workspace/jobs/web/manifest.json", API_WITH_CERT);
    write(b.path(), "workspace/jobs/db/manifest.json", "{ \"version\": \"2.0.0\" }\n");
    let plan = ok(b.path(), &["plan"]);
    assert!(
        plan.lines().any(|l| l.trim_start().starts_with("+ maand/worker ")
            && l.contains("certs/ca.crt = (known after apply)")
            && l.ends_with("# the bucket CA: `apply` makes secrets/ca.crt and secrets/ca.key with the state")),
        "{plan}"
    );
    assert!(plan.contains("certs/server.crt = (known after apply)"), "{plan}");
    let json: serde_json::Value = serde_json::from_str(&ok(b.path(), &["plan", "--json"])).unwrap();
    let ca = json["changes"].as_array().unwrap().iter().find(|c| c["key"] == "certs/ca.crt").expect("the CA");
    assert_eq!(ca["after_unknown"], true);
    assert!(!b.path().join("secrets/ca.crt").exists(), "plan made the CA");
    // And apply does what the plan said.
    ok(b.path(), &["apply", "--auto-approve"]);
    assert!(ca_in_state(b.path()).contains("BEGIN CERTIFICATE"));
}

/// The CA in a plan is its fingerprint (the one `openssl x509 -fingerprint -sha256` prints),
/// subject and not-after, not a 12-line PEM; a rotated CA shows both.
#[test]
fn a_certificate_in_a_plan_is_its_fingerprint_subject_and_not_after() {
    let b = bucket();
    let plan = ok(b.path(), &["plan"]);
    assert!(!plan.contains("BEGIN CERTIFICATE"), "{plan}");
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(b.path().join("secrets/ca.crt"))
        .output()
        .expect("openssl is installed (see .ci/run)");
    let fp = String::from_utf8(o.stdout).unwrap();
    let fp = fp.trim().rsplit('=').next().unwrap().replace(':', "").to_lowercase();
    let line = plan.lines().find(|l| l.contains("certs/ca.crt")).expect("the CA line");
    assert!(line.contains(&format!("certs/ca.crt = <certificate sha256:{fp} CN=")), "{line}");
    assert!(line.contains(", not after 20") && line.ends_with("Z>"), "{line}");
    ok(b.path(), &["apply", "--auto-approve"]);
    ok(b.path(), &["certs", "rotate-ca"]);
    let plan = ok(b.path(), &["plan"]);
    let line = plan.lines().find(|l| l.contains("certs/ca.crt")).expect("the CA line");
    assert!(
        line.contains(&format!("certs/ca.crt = <certificate sha256:{fp} CN="))
            && line.contains("> -> <certificate sha256:"),
        "{line}"
    );
    assert!(!plan.contains("BEGIN CERTIFICATE"), "{plan}");
}
