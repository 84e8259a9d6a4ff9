//! Cleaning up after a PostgreSQL test: each test's buckets live in a registry schema of its
//! own (`kvt_…`, `kvh_…`, …) and one schema per bucket, `<registry>_b_<bucket id hex>`
//! (`kvform::state::pg::bucket_schema`); dropping the registry drops them all.
#![allow(dead_code)]

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
