//! Cleaning up after a PostgreSQL test: each test's buckets live in a registry schema of its
//! own (`kvt_…`, `kvh_…`, …) and one schema per bucket, `<registry>_b_<bucket id hex>`
//! (`kvform::state::postgres::bucket_schema`); dropping the registry drops them all.
#![allow(dead_code)]

use std::io::Write;

/// The PostgreSQL the backend tests run against: `KVFORM_TEST_PG_URL` (`.ci/run` starts a
/// throwaway cluster and sets it). Unset: `None`, and a `SKIPPED` line for `test` that shows
/// in `cargo test`'s output — except under `CI=true`, where a missing database is a failure,
/// so CI never passes by skipping.
///
/// The line is written to the process's stderr handle, not with `eprintln!`: the test
/// harness captures `eprintln!` (and shows it only for a failing test), so a skipped half
/// used to read as a plain `ok`.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("KVFORM_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: CI=true but KVFORM_TEST_PG_URL is not set: the PostgreSQL tests must run in CI")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: the PostgreSQL half did not run (KVFORM_TEST_PG_URL is not set; see CONTRIBUTING)"
            );
            None
        }
    }
}

/// Drops the registry schema it names, and every bucket schema of it, when dropped. A test
/// that panicked keeps them (its rows are the evidence), and says so.
pub struct DropRegistry(pub String);

impl Drop for DropRegistry {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the PostgreSQL schemas of registry {} (the test failed)", self.0);
            return;
        }
        drop_registry(&self.0);
    }
}

/// Drop `registry` and its `<registry>_b_…` schemas in `KVFORM_TEST_PG_URL`; errors are
/// ignored (a cleanup never fails a test).
pub fn drop_registry(registry: &str) {
    let Ok(url) = std::env::var("KVFORM_TEST_PG_URL") else { return };
    let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) else { return };
    // Never wait long on a connection some process left open.
    let _ = c.batch_execute("SET lock_timeout = '5s'");
    let Ok(rows) = c.query(
        "SELECT nspname::text FROM pg_namespace WHERE nspname = $1 OR starts_with(nspname, $1 || '_b_')",
        &[&registry],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", name.replace('"', "\"\"")));
    }
}
