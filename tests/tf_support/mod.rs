//! A small bucket without hooks (two workers, jobs `web` and `db`) and a runner for the
//! binary, shared by the CLI tests of the Terraform-habit features (pipes, flags, init,
//! fmt, targets, show, state list).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

#[path = "../pg_support/mod.rs"]
pub mod pg_support;
pub use pg_support::DropRegistry;

pub const NOW: &str = "2026-01-02T03:04:05Z";

pub fn kvform(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kvform")
}

/// Run in `dir` as the current directory, `args` exactly as given (no `-C`).
pub fn kvform_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .current_dir(dir)
        .args(args)
        .env("KVFORM_NOW", NOW)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kvform")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `kvform -C dir ARGS`, which must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = kvform(dir, args);
    assert!(o.status.success(), "{args:?} failed ({:?}):\n{}{}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// Write `text` to `dir/rel`, creating its directories.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub const WORKERS: &str = r#"[
  { "host": "10.0.0.1", "labels": ["web", "db"], "memory": "4 gb", "cpu": "4000 mhz" },
  { "host": "10.0.0.2", "labels": ["web"], "memory": "4 gb", "cpu": "4000 mhz" }
]
"#;

pub const JOBS_CONF: &str = r#"# reservations
job "web" {
  memory = "256 mb"
}

job "db" {
  memory = "512 mb"
}
"#;

/// A bucket made by `kvform init` with workers and the jobs `web` and `db` (no hooks), not
/// yet applied.
pub fn bucket() -> tempfile::TempDir {
    bucket_with_settings("")
}

/// [`bucket`] with `kvform.hcl` written before `kvform init` (empty: none).
pub fn bucket_with_settings(kvform_hcl: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    if !kvform_hcl.is_empty() {
        std::fs::write(tmp.path().join("kvform.hcl"), kvform_hcl).unwrap();
    }
    let out = kvform(tmp.path(), &["init"]);
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    let ws = tmp.path().join("workspace");
    std::fs::write(ws.join("workers.json"), WORKERS).unwrap();
    std::fs::write(ws.join("bucket.jobs.conf"), JOBS_CONF).unwrap();
    for (job, manifest) in [
        (
            "web",
            "{\n  \"version\": \"1.0.0\",\n  \"resources\": {\n    \"ports\": {\n      \"web_http\": {}\n    }\n  }\n}\n",
        ),
        ("db", "{\n  \"version\": \"2.0.0\"\n}\n"),
    ] {
        std::fs::create_dir_all(ws.join("jobs").join(job)).unwrap();
        std::fs::write(ws.join("jobs").join(job).join("manifest.json"), manifest).unwrap();
    }
    std::fs::write(ws.join("jobs/web/vars.hcl"), "greeting = \"hello\"\n").unwrap();
    tmp
}

/// [`bucket`], applied once.
pub fn applied_bucket() -> tempfile::TempDir {
    let b = bucket();
    ok(b.path(), &["apply", "--auto-approve"]);
    b
}

/// The PostgreSQL the backend tests run against, or `None` with a visible `SKIPPED` line
/// (a failure under `CI=true`): see [`pg_support::pg_url`].
pub fn pg_url(test: &str) -> Option<String> {
    pg_support::pg_url(test)
}

/// A `state` block for a PostgreSQL bucket in a registry schema of its own, so tests run in
/// parallel against one database without seeing each other's buckets.
pub fn pg_state_block() -> String {
    let schema = format!("kvt_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    format!("state {{\n  backend = \"postgres\"\n  url_env = \"KVFORM_TEST_PG_URL\"\n  schema  = \"{schema}\"\n}}\n")
}

/// [`bucket`] whose state is on PostgreSQL (`kvform init` creates the bucket there and
/// writes its id into kvform.hcl); its schemas are dropped with it.
pub fn pg_bucket() -> BucketDir {
    let block = pg_state_block();
    let registry = DropRegistry(registry_of(&block));
    BucketDir { dir: bucket_with_settings(&block), _registry: Some(registry) }
}

/// The registry schema a [`pg_state_block`] names.
pub fn registry_of(block: &str) -> String {
    let line = block.lines().find_map(|l| l.trim().strip_prefix("schema")).expect("a `schema` line");
    line.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string()
}

/// A test's bucket directory (a [`tempfile::TempDir`] through `Deref`) and, for a
/// PostgreSQL bucket, the guard that drops its schemas when the test is done.
pub struct BucketDir {
    dir: tempfile::TempDir,
    _registry: Option<DropRegistry>,
}

impl BucketDir {
    /// `dir` as it is (an SQLite bucket, or one whose schemas are left behind).
    pub fn sqlite(dir: tempfile::TempDir) -> BucketDir {
        BucketDir { dir, _registry: None }
    }

    /// `dir`, its registry schema `registry` dropped with it.
    pub fn on_postgres(dir: tempfile::TempDir, registry: &str) -> BucketDir {
        BucketDir { dir, _registry: Some(DropRegistry(registry.to_string())) }
    }
}

impl std::ops::Deref for BucketDir {
    type Target = tempfile::TempDir;
    fn deref(&self) -> &tempfile::TempDir {
        &self.dir
    }
}

/// Where the state of the bucket in `dir` is, by its kvform.hcl: the CLI's own answer.
pub fn state_location(dir: &Path) -> kvform::state::Location {
    kvform::cli::session::Session::for_bucket(kvform::bucket::Bucket::at(dir)).unwrap().state_location()
}

/// The state of the bucket in `dir`, opened through the library (either backend).
pub fn state(dir: &Path) -> kvform::state::StateStore {
    state_location(dir).open().unwrap()
}

/// `sql` (one `count(*)`) on the bucket's own tables, straight from the database — the
/// SQLite file, or the bucket's schema on PostgreSQL — not through kvform.
pub fn count_rows(dir: &Path, sql: &str) -> i64 {
    match state_location(dir) {
        kvform::state::Location::Sqlite(path) => {
            rusqlite::Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
        }
        kvform::state::Location::Postgres(pg) => {
            let schema =
                kvform::state::postgres::bucket_schema(&pg.schema, pg.bucket_id.expect("an initialised bucket"));
            let url = std::env::var(&pg.url_env).unwrap();
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&format!("SET search_path TO \"{schema}\"")).unwrap();
            c.query_one(sql, &[]).unwrap().get(0)
        }
    }
}
