//! Fleet benchmark (issues 5 and 11): how kvform scales to a large fleet.
//!
//! `cargo bench --bench fleet` (release). Size from the environment:
//! `FLEET_WORKERS` (default 10,000), `FLEET_JOBS` (default 200), `FLEET_GROUPS` (default
//! 20; each job lands on workers/groups workers, so the defaults give 100,000 allocations);
//! `FLEET_BIG_WORKERS` (default 100,000: 1,000,000 allocations; 0 skips that run);
//! `FLEET_KEEP=DIR` leaves the generated buckets and their states in DIR.
//!
//! Every figure is printed with its ratio to a raw-rusqlite baseline measured in the same
//! run on the same machine: bulk-inserting as many `(namespace, key, value)` rows as the
//! desired state has keys, in one transaction, into a plain table, then scanning them all.
//!
//! The issue-11 rows are whole `kvform` processes (the release binary, `cli.rs`): the first
//! apply of a fresh state (time, and peak memory by getrusage), the state's size, a no-op
//! `kvform plan` (3 runs), the same at a tenth of the fleet (their ratio), and a one-job
//! version change (`kvform plan` + `kvform apply`, 3 runs), a one-worker label change (the
//! same, plus its ratio to the tenth-size fleet: issue 25), the one-job change applied from a
//! saved plan, and the cost per changed key; then the hook API's `GET /kv`
//! latency (`benches/hook_api.rs`, p99 from a Python hook against the store's point get);
//! then the 1,000,000-allocation run plans and applies once.

mod cli;
mod generate;
// The issue-11 table's hook API row, measured by the hook API bench itself.
#[path = "../hook_api.rs"]
#[allow(dead_code)]
mod hook_api;

use generate::Fleet;
use kvform::kv::Snapshot;
use kvform::model::{self, types::Prior};
use kvform::plan::{diff, types::PlanOptions};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// The baseline: `rows` rows inserted in one transaction into a plain table (same journal
/// settings kvform uses: WAL, synchronous=FULL), then one full scan.
/// Values come as two pieces (see `kvform::kv::Value`), joined into one reused buffer.
fn baseline<'a>(dir: &Path, rows: impl Iterator<Item = (&'a str, &'a str, [&'a str; 2])>) -> Baseline {
    let path = dir.join("baseline.db");
    let _ = std::fs::remove_file(&path);
    let mut conn = rusqlite::Connection::open(&path).expect("open baseline db");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL)").unwrap();
    let start = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx.prepare("INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)").unwrap();
        let mut v = String::new();
        for (ns, k, [a, b]) in rows {
            v.clear();
            v.push_str(a);
            v.push_str(b);
            st.execute((ns, k, &v)).unwrap();
        }
    }
    tx.commit().unwrap();
    let insert = start.elapsed();
    let start = Instant::now();
    let mut st = conn.prepare("SELECT namespace, key, value FROM kv").unwrap();
    let mut n = 0usize;
    let mut it = st.query([]).unwrap();
    while let Some(r) = it.next().unwrap() {
        let v: String = r.get(2).unwrap();
        n += v.len().min(1);
    }
    std::hint::black_box(n);
    let scan = start.elapsed();
    drop(it);
    drop(st);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(conn);
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&path);
    Baseline { insert, scan, bytes }
}

/// The raw-SQLite baseline of one fleet.
struct Baseline {
    insert: Duration,
    scan: Duration,
    /// The database file holding the rows.
    bytes: u64,
}

/// Desired state (library) and the raw-SQLite baseline of its rows.
fn desired_and_baseline(dir: &Path, root: &Path) -> (usize, Baseline, Duration, Duration) {
    let loaded = kvform::workspace::load(root);
    if loaded.diagnostics.has_errors() {
        eprintln!("{}", loaded.diagnostics.render(&loaded.sources, false));
        panic!("the generated workspace is invalid");
    }
    let ws = loaded.workspace.expect("valid");
    let prior = Prior { bucket_id: Uuid::from_u128(0x5eed), ..Prior::default() };
    let (desired, took) = time(|| model::desired(&ws, &prior));
    let desired = desired.unwrap_or_else(|d| panic!("model errors:\n{}", d.render(&loaded.sources, false)));
    let keys: usize = desired.kv.values().map(|m| m.len()).sum();
    let empty = Snapshot { bucket_id: prior.bucket_id, ..Snapshot::default() };
    let (plan, diff_took) = time(|| diff::diff(&desired, &empty, &PlanOptions::default(), 0));
    drop(plan);
    // Borrowed from the desired state, so the baseline holds no second copy of the data.
    let rows = desired.kv.iter().flat_map(|(ns, m)| m.iter().map(move |(k, v)| (ns.as_str(), k.as_str(), v.parts())));
    (keys, baseline(dir, rows), took, diff_took)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn row(measure: &str, kvform: &str, baseline: &str, ratio: f64, target: &str, met: bool) {
    println!(
        "{measure:<34} {kvform:>20} {baseline:>22} {ratio:>8.2}x  {target:<10} {}",
        if met { "met" } else { "NOT met" }
    );
}

fn main() {
    let workers = env_usize("FLEET_WORKERS", 10_000);
    let jobs = env_usize("FLEET_JOBS", 200);
    let groups = env_usize("FLEET_GROUPS", 20).max(1);
    let fleet = Fleet { workers, jobs, groups };
    // The no-op ratio's smaller fleet: a tenth of the workers (a tenth of the allocations).
    let small = Fleet { workers: (workers / 10).max(groups), jobs, groups };
    let big_workers = env_usize("FLEET_BIG_WORKERS", 100_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    // `FLEET_KEEP=DIR`: generate into DIR and leave the buckets there (profiling by hand).
    let keep = std::env::var_os("FLEET_KEEP").map(std::path::PathBuf::from);
    let tmp_path = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let root = tmp_path.join("bucket");
    std::fs::create_dir_all(&root).unwrap();
    let (_, gen_took) = time(|| fleet.write(&root).expect("write the bucket"));
    println!(
        "fleet: {} workers, {} jobs, {} groups -> {} allocations (generated in {:.2?}); small fleet {} allocations",
        fleet.workers,
        fleet.jobs,
        fleet.groups,
        fleet.allocations(),
        gen_took,
        small.allocations()
    );

    // Library figures and the baselines (the generated bucket is reused by the CLI run).
    let (keys, base, desired_took, diff_took) = desired_and_baseline(&tmp_path, &root);
    println!(
        "baseline (raw rusqlite, {keys} rows): insert in one transaction {:.2?}, full scan {:.2?}, file {:.1} MiB",
        base.insert,
        base.scan,
        mib(base.bytes)
    );
    println!(
        "library: desired {desired_took:.2?}, diff vs empty {diff_took:.2?} ({:.2}x insert + scan)",
        secs(desired_took + diff_took) / secs(base.insert + base.scan)
    );

    // The CLI rows. The first apply is this process's first big child, so getrusage's
    // largest child is its peak.
    let cli = cli::measure(&root, &fleet, cli::RUNS);
    let small_root = tmp_path.join("small");
    std::fs::create_dir_all(&small_root).unwrap();
    small.write(&small_root).unwrap();
    let (_, small_base, _, _) = desired_and_baseline(&tmp_path, &small_root);
    let small_cli = cli::measure(&small_root, &small, cli::RUNS);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&small_root);
    }

    let (noop_min, noop_med) = cli::stats(cli::stats_input(&cli.noop));
    let (small_min, small_med) = cli::stats(cli::stats_input(&small_cli.noop));
    let one: Vec<Duration> = cli.one_job.iter().map(|(p, a)| *p + *a).collect();
    let (one_min, one_med) = cli::stats(one);
    let data_bytes: u64 = base.bytes;
    println!();
    println!("issue 11 (whole `kvform` processes, release build; min / median of {} runs where repeated):", cli::RUNS);
    println!("{:<34} {:>20} {:>22} {:>9}  {:<10}", "measure", "kvform", "raw SQLite baseline", "ratio", "target");
    row(
        "state size",
        &format!("{:.1} MiB", mib(cli.state_bytes)),
        &format!("{:.1} MiB (rows only)", mib(base.bytes)),
        cli.state_bytes as f64 / base.bytes.max(1) as f64,
        "<= 250 MB",
        cli.state_bytes <= 250_000_000,
    );
    row(
        "no-op plan, whole process",
        &format!("{:.3}s / {:.3}s", secs(noop_min), secs(noop_med)),
        &format!("scan {:.3}s", secs(base.scan)),
        secs(noop_med) / secs(base.scan),
        "<= 1 s",
        noop_med <= Duration::from_secs(1),
    );
    let ratio = secs(noop_med) / secs(small_med);
    row(
        &format!("no-op plan {}k / {}k alloc", fleet.allocations() / 1000, small.allocations() / 1000),
        &format!("{ratio:.2} ({:.3}s / {:.3}s)", secs(noop_med), secs(small_med)),
        &format!("scan ratio {:.2}", secs(base.scan) / secs(small_base.scan)),
        ratio / (secs(base.scan) / secs(small_base.scan)),
        "<= 3",
        ratio <= 3.0,
    );
    let _ = small_min;
    row(
        "one-job change: plan + apply",
        &format!("{:.3}s / {:.3}s", secs(one_min), secs(one_med)),
        &format!("scan {:.3}s", secs(base.scan)),
        secs(one_med) / secs(base.scan),
        "<= 0.25 s",
        one_min <= Duration::from_millis(250),
    );
    // Issue 25: a change costs what it changes.
    let pair = |runs: &[(Duration, Duration)]| cli::stats(runs.iter().map(|(p, a)| *p + *a).collect());
    let (worker_min, worker_med) = pair(&cli.one_worker);
    let (small_worker_min, _) = pair(&small_cli.one_worker);
    let worker_ratio = secs(worker_min) / secs(small_worker_min);
    row(
        "one-worker change: plan + apply",
        &format!("{:.3}s / {:.3}s", secs(worker_min), secs(worker_med)),
        &format!("scan {:.3}s", secs(base.scan)),
        secs(worker_min) / secs(base.scan),
        "<= 0.15 s",
        worker_min <= Duration::from_millis(150),
    );
    row(
        &format!("one-worker {}k / {}k alloc", fleet.allocations() / 1000, small.allocations() / 1000),
        &format!("{worker_ratio:.2} ({:.3}s / {:.3}s)", secs(worker_min), secs(small_worker_min)),
        "-",
        worker_ratio,
        "<= 1.5",
        worker_ratio <= 1.5,
    );
    let (saved_min, saved_med) = cli::stats(cli.saved_apply.clone());
    let auto_min = cli.one_job.iter().map(|(_, a)| *a).min().unwrap_or_default();
    row(
        "one-job `apply plan.json`",
        &format!("{:.3}s / {:.3}s", secs(saved_min), secs(saved_med)),
        &format!("auto-approve {:.3}s", secs(auto_min)),
        secs(saved_min) / secs(auto_min),
        "<= auto-approve",
        saved_min <= auto_min,
    );
    println!(
        "  cost per changed key (min plan + apply / keys): one job {} keys {:.1} us/key, one worker {} keys {:.1} us/key",
        cli.one_job_keys,
        secs(one_min) * 1e6 / cli.one_job_keys.max(1) as f64,
        cli.one_worker_keys,
        secs(worker_min) * 1e6 / cli.one_worker_keys.max(1) as f64
    );
    row(
        "first apply (CLI)",
        &format!("{:.2}s", secs(cli.first_apply)),
        &format!("insert {:.2}s", secs(base.insert)),
        secs(cli.first_apply) / secs(base.insert),
        "<= 10 s",
        cli.first_apply <= Duration::from_secs(10),
    );
    row(
        "first apply peak memory (CLI)",
        &format!("{:.0} MiB", cli.first_apply_peak),
        &format!("{:.0} MiB of rows", mib(data_bytes)),
        cli.first_apply_peak / mib(data_bytes).max(1.0),
        "<= 1 GiB",
        cli.first_apply_peak <= 1024.0,
    );
    println!(
        "  one-job change runs (plan + apply): {}",
        cli.one_job.iter().map(|(p, a)| format!("{:.3}s + {:.3}s", secs(*p), secs(*a))).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  no-op plan runs: {}",
        cli.noop.iter().map(|d| format!("{:.3}s", secs(*d))).collect::<Vec<_>>().join(", ")
    );
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    println!();
    println!("hook API latency (issue 11 row: p99 < 1 ms from a Python hook; raw baseline: the store's point get):");
    hook_api::run();

    if big_workers > 0 {
        let big = Fleet { workers: big_workers, jobs, groups };
        let big_root = tmp_path.join("big");
        let run = cli::measure(&big_root, &big, 1);
        println!();
        println!(
            "{} allocations ({} workers x {} jobs): first apply {:.1}s (peak {:.0} MiB), state {:.0} MiB, no-op plan {:.2}s, one-job change plan {:.2}s + apply {:.2}s",
            big.allocations(),
            big.workers,
            big.jobs,
            secs(run.first_apply),
            cli::children_peak_mib(),
            mib(run.state_bytes),
            secs(run.noop[0]),
            secs(run.one_job[0].0),
            secs(run.one_job[0].1)
        );
        println!(
            "  one-worker change plan {:.2}s + apply {:.2}s ({} keys); one-job change {} keys; `apply plan.json` {:.2}s",
            secs(run.one_worker[0].0),
            secs(run.one_worker[0].1),
            run.one_worker_keys,
            run.one_job_keys,
            secs(run.saved_apply[0])
        );
        println!("  (peak: the largest kvform process of the whole run, which is this fleet's first apply)");
    }
}
