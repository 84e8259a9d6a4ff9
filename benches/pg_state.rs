//! PostgreSQL state benchmark (issue 12): first apply, no-op plan and a one-job change of a
//! generated fleet through the real binary, with the state on SQLite and on PostgreSQL, and
//! a raw PostgreSQL baseline measured in the same run: the rows the first apply wrote
//! (`namespace, key, value` of every latest row) loaded into a plain table with COPY, and
//! with multi-row INSERTs of 1,000 rows; and kvform's write path alone on the same rows
//! (`WriteTxn::put_new` into a fresh bucket, then commit), which is what the COPY baseline
//! is the raw form of. A first apply is timed in three buckets of the same fleet, and the
//! baselines and the state write three times; each row is the min. Prints figures and
//! ratios; asserts no timing.
//!
//! `KVFORM_TEST_PG_URL=… cargo bench --bench pg_state`. Size: `FLEET_WORKERS` (default
//! 1,000), `FLEET_JOBS` (50), `FLEET_GROUPS` (10). Targets: first apply <= 3x the COPY
//! baseline; no-op plan and one-job change within 2x of SQLite. `PG_STATE_KEEP=DIR` keeps the
//! workspaces and the PostgreSQL schemas for profiling by hand.

#[path = "fleet/cli.rs"]
#[allow(dead_code)]
mod cli;
#[path = "fleet/generate.rs"]
#[allow(dead_code)]
mod generate;

use generate::Fleet;
use std::io::Write as _;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// First apply (min over `first` and `run`'s), no-op plan, one-job change (plan + apply),
/// and the one-job change's plan alone.
fn row(name: &str, run: &cli::CliRun, first: &[Duration]) -> (Duration, Duration, Duration, Duration) {
    let first_apply = first.iter().copied().chain([run.first_apply]).min().unwrap();
    let (noop, _) = cli::stats(cli::stats_input(&run.noop));
    let (one, _) = cli::stats(run.one_job.iter().map(|(p, a)| *p + *a).collect());
    let (one_plan, _) = cli::stats(run.one_job.iter().map(|(p, _)| *p).collect());
    println!(
        "{name:>10}: first apply {first_apply:.2?} (min of {}), no-op plan {:.2?} (min of {}), one-job change {:.2?} (its plan {:.2?})",
        first.len() + 1,
        noop,
        run.noop.len(),
        one,
        one_plan
    );
    (first_apply, noop, one, one_plan)
}

/// The `state` block of a bucket on PostgreSQL in `registry`.
fn pg_block(registry: &str) -> String {
    format!("\nstate {{\n  backend = \"postgres\"\n  url_env = \"KVFORM_TEST_PG_URL\"\n  schema = \"{registry}\"\n}}\n")
}

/// The bucket id `kvform init` wrote into `root`'s kvform.hcl.
fn bucket_id_of(root: &std::path::Path) -> uuid::Uuid {
    std::fs::read_to_string(root.join("kvform.hcl"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("bucket_id")
                .map(|r| r.trim_start_matches([' ', '=']).trim().trim_matches('"').to_string())
        })
        .expect("init wrote the bucket id")
        .parse()
        .unwrap()
}

/// A first apply is measured once per bucket, so this makes `cli::RUNS - 1` more buckets of
/// the same fleet (on PostgreSQL: in `registry`) and times their first applies. Returns the
/// times and the bucket schemas made on PostgreSQL (for the caller to drop).
fn more_first_applies(
    tmp: &std::path::Path,
    fleet: &Fleet,
    name: &str,
    registry: Option<&str>,
) -> (Vec<Duration>, Vec<String>) {
    let (mut times, mut schemas) = (Vec::new(), Vec::new());
    for i in 1..cli::RUNS {
        let root = tmp.join(format!("{name}-{i}"));
        std::fs::create_dir_all(&root).unwrap();
        fleet.write(&root).unwrap();
        if let Some(registry) = registry {
            let hcl = root.join("kvform.hcl");
            let text = std::fs::read_to_string(&hcl).unwrap() + &pg_block(registry);
            std::fs::write(&hcl, text).unwrap();
        }
        cli::kvform(&root, &["init", "-q"]);
        times.push(cli::kvform(&root, &["apply", "--auto-approve"]));
        if let Some(registry) = registry {
            schemas.push(kvform::state::postgres::bucket_schema(registry, bucket_id_of(&root)));
        }
    }
    (times, schemas)
}

/// The rows the first apply wrote: `namespace, key, value` of every latest row (no secrets:
/// the library write below has no keyring), namespace by namespace as an apply writes them.
fn latest_rows(url: &str, bucket_schema: &str) -> Vec<(String, String, String)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query(
        &format!("SELECT namespace, key, value FROM {bucket_schema}.latest WHERE NOT namespace LIKE 'secrets/%' ORDER BY namespace, key"),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// The raw baseline: `rows` COPYed (and multi-row INSERTed) into a plain table of a fresh
/// schema. Returns (copy, insert).
fn baseline(url: &str, rows: &[(String, String, String)]) -> (Duration, Duration) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute("DROP SCHEMA IF EXISTS kvform_bench_raw CASCADE; CREATE SCHEMA kvform_bench_raw;
                     CREATE TABLE kvform_bench_raw.kv (namespace TEXT COLLATE \"C\" NOT NULL, key TEXT COLLATE \"C\" NOT NULL,
                                                      value TEXT NOT NULL, UNIQUE (namespace, key))")
        .unwrap();
    let escape = |s: &str| s.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r");
    let start = Instant::now();
    let mut tx = c.transaction().unwrap();
    {
        let mut w = tx.copy_in("COPY kvform_bench_raw.kv (namespace, key, value) FROM STDIN").unwrap();
        for (ns, k, v) in rows {
            writeln!(w, "{}\t{}\t{}", escape(ns), escape(k), escape(v)).unwrap();
        }
        w.finish().unwrap();
    }
    tx.commit().unwrap();
    let copy = start.elapsed();
    c.batch_execute("TRUNCATE kvform_bench_raw.kv").unwrap();
    let start = Instant::now();
    let mut tx = c.transaction().unwrap();
    for chunk in rows.chunks(1000) {
        let marks: Vec<String> =
            (0..chunk.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
        let sql = format!("INSERT INTO kvform_bench_raw.kv (namespace, key, value) VALUES {}", marks.join(", "));
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            chunk.iter().flat_map(|(a, b, v)| [a as _, b as _, v as _]).collect();
        tx.execute(&sql, &params).unwrap();
    }
    tx.commit().unwrap();
    let insert = start.elapsed();
    c.batch_execute("DROP SCHEMA kvform_bench_raw CASCADE").unwrap();
    (copy, insert)
}

/// kvform's own write path alone, without the workspace, plan and hooks around it: the same
/// rows written with `WriteTxn::put_new` (what a first apply does per key) into a fresh
/// bucket of its own registry, committed. Returns the time from `begin_write` to commit.
fn state_write(rows: &[(String, String, String)]) -> Duration {
    let registry = format!("kvb_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let mut loc = kvform::state::Location::Postgres(kvform::state::PgLocation {
        url_env: "KVFORM_TEST_PG_URL".into(),
        schema: registry.clone(),
        bucket_id: None,
    });
    let (_, _, id) = loc.init(1_767_323_045).unwrap();
    if let kvform::state::Location::Postgres(pg) = &mut loc {
        pg.bucket_id = id;
    }
    let store = loc.open().unwrap();
    let start = Instant::now();
    let mut txn = store.begin_write("bench", Duration::ZERO, 1_767_323_045).unwrap();
    for (ns, k, v) in rows {
        txn.put(kvform::state::Write::new(ns, k, v, "apply", 1_767_323_045).expect_new()).unwrap();
    }
    txn.commit(kvform::state::ApplyRecord::new("bench", 1_767_323_045)).unwrap();
    let took = start.elapsed();
    let url = std::env::var("KVFORM_TEST_PG_URL").unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let schema = kvform::state::postgres::bucket_schema(&registry, id.unwrap());
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE; DROP SCHEMA {registry} CASCADE")).unwrap();
    took
}

fn main() {
    let Ok(url) = std::env::var("KVFORM_TEST_PG_URL") else {
        println!("pg_state: KVFORM_TEST_PG_URL is not set; nothing measured (see CONTRIBUTING)");
        return;
    };
    let fleet = Fleet {
        workers: env_usize("FLEET_WORKERS", 1_000),
        jobs: env_usize("FLEET_JOBS", 50),
        groups: env_usize("FLEET_GROUPS", 10).max(1),
    };
    println!("fleet: {} workers, {} jobs -> {} allocations", fleet.workers, fleet.jobs, fleet.allocations());
    // `PG_STATE_KEEP=DIR` keeps the workspaces (and their state) for profiling by hand.
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = std::env::var_os("PG_STATE_KEEP").map_or_else(|| tmp.path().to_path_buf(), Into::into);

    let lite_root = tmp_path.join("sqlite");
    let lite = cli::measure(&lite_root, &fleet, cli::RUNS);
    let (lite_first, _) = more_first_applies(&tmp_path, &fleet, "sqlite", None);

    let pg_root = tmp_path.join("postgres");
    std::fs::create_dir_all(&pg_root).unwrap();
    fleet.write(&pg_root).unwrap();
    let registry = format!("kvb_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let hcl = pg_root.join("kvform.hcl");
    let text = std::fs::read_to_string(&hcl).unwrap() + &pg_block(&registry);
    std::fs::write(&hcl, text).unwrap();
    let pg = cli::measure(&pg_root, &fleet, cli::RUNS);
    let (pg_first, extra_schemas) = more_first_applies(&tmp_path, &fleet, "postgres", Some(&registry));
    let bucket_schema = kvform::state::postgres::bucket_schema(&registry, bucket_id_of(&pg_root));
    let rows = latest_rows(&url, &bucket_schema);
    // Each baseline and the state write are min of `cli::RUNS` too, like the first applies.
    let runs: Vec<(Duration, Duration)> = (0..cli::RUNS).map(|_| baseline(&url, &rows)).collect();
    let copy = runs.iter().map(|r| r.0).min().unwrap();
    let insert = runs.iter().map(|r| r.1).min().unwrap();
    let write = (0..cli::RUNS).map(|_| state_write(&rows)).min().unwrap();

    println!(
        "baseline (raw PostgreSQL, {} rows, min of {}): COPY {copy:.2?}, multi-row INSERT {insert:.2?}",
        rows.len(),
        cli::RUNS
    );
    let (la, ln, lo, lp) = row("sqlite", &lite, &lite_first);
    let (pa, pn, po, pp) = row("postgres", &pg, &pg_first);
    println!(
        "first apply on PostgreSQL: {:.1}x COPY, {:.1}x multi-row INSERT (target <= 3x COPY); {:.1}x SQLite",
        secs(pa) / secs(copy),
        secs(pa) / secs(insert),
        secs(pa) / secs(la)
    );
    println!(
        "state write of the same rows (WriteTxn::put_new, commit; min of 3): {write:.2?} = {:.1}x COPY (target <= 3x COPY)",
        secs(write) / secs(copy)
    );
    println!(
        "plans (target <= 2x SQLite): no-op plan {:.2}x, one-job change's plan {:.2}x; one-job plan + apply {:.2}x SQLite",
        secs(pn) / secs(ln),
        secs(pp) / secs(lp),
        secs(po) / secs(lo)
    );
    if std::env::var_os("PG_STATE_KEEP").is_none() {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        for schema in extra_schemas {
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).unwrap();
        }
        c.batch_execute(&format!("DROP SCHEMA {bucket_schema} CASCADE; DROP SCHEMA {registry} CASCADE")).unwrap();
    }
}
