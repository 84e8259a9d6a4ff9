//! Issue-5 benchmark: how kvform scales to a large fleet, measured through the library.
//!
//! `cargo bench --bench fleet` (release). Size from the environment:
//! `FLEET_WORKERS` (default 10,000), `FLEET_JOBS` (default 200), `FLEET_GROUPS` (default
//! 20; each job lands on workers/groups workers, so the defaults give 100,000 allocations).
//!
//! Every figure is printed with its ratio to a raw-rusqlite baseline measured in the same
//! run on the same machine: bulk-inserting as many `(namespace, key, value)` rows as the
//! desired state has keys, in one transaction, into a plain table, then scanning them all.
//! A ratio near 1 means kvform costs about what storing the data costs; peak memory is
//! the process's VmHWM from /proc/self/status.
//!
//! Then, through the real state store and executor (no hooks): the first apply (plan +
//! apply into a fresh state, compared with the bulk insert), a no-op plan (compared with the
//! full scan) and a one-job version change (plan + apply, compared with the full scan). Each
//! apply figure reports its own peak memory (VmHWM reset between phases).

mod generate;

use generate::Fleet;
use kvform::apply::{self, ApplyOptions, NoHooks, NoProgress};
use kvform::kv::{Snapshot, Value};
use kvform::model::{self, types::Prior};
use kvform::plan::{diff, types::PlanOptions};
use kvform::state::StateStore;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Which baseline a figure is compared with.
#[derive(Clone, Copy)]
enum Base {
    /// Bulk insert + full scan.
    Both,
    /// The bulk insert alone (for applies that write everything).
    Insert,
    /// The full scan alone (for plans that read everything).
    Scan,
}

/// One measured step.
struct Figure {
    name: &'static str,
    took: Duration,
    base: Base,
    note: String,
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Peak resident memory so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The baseline: `rows` rows inserted in one transaction into a plain table (same journal
/// settings kvform uses: WAL, synchronous=FULL), then one full scan.
/// Values come as two pieces (see `kvform::kv::Value`), joined into one reused buffer.
fn baseline<'a>(dir: &Path, rows: impl Iterator<Item = (&'a str, &'a str, [&'a str; 2])>) -> (Duration, Duration) {
    let path = dir.join("baseline.db");
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
    (insert, start.elapsed())
}

/// Reset the peak-memory counter (VmHWM) so the next phase's peak can be read on its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One plan + apply: its change count, times, and where the plan's time went.
struct Run {
    changes: usize,
    plan: Duration,
    apply: Duration,
    /// `scan a + desired b + compare c + diff d`.
    breakdown: String,
}

/// Plan (rows without values, desired, values compared in place, diff — what `kvform plan`
/// does) and apply it with the real executor, no hooks.
fn plan_and_apply(root: &Path, state: &Path) -> Run {
    let ws = kvform::workspace::load(root).workspace.expect("valid workspace");
    let start = Instant::now();
    let store = StateStore::open(state).expect("open state");
    let marks = std::cell::Cell::new((start, start));
    let (snap, desired) = store
        .read_for_plan(
            |snap| {
                let scanned = Instant::now();
                let desired = model::desired(&ws, &Prior::from_current(snap)).expect("desired");
                marks.set((scanned, Instant::now()));
                Ok::<_, kvform::state::StateError>(desired)
            },
            |d| &d.kv,
        )
        .expect("read the state");
    let compared = Instant::now();
    let plan = diff::diff(&desired, &snap, &PlanOptions::default(), 0);
    drop(snap);
    let planned = start.elapsed();
    let (scanned, desired_at) = marks.get();
    let breakdown = format!(
        "scan {:.2?} + desired {:.2?} + compare {:.2?} + diff {:.2?}",
        scanned - start,
        desired_at - scanned,
        compared - desired_at,
        compared.elapsed()
    );
    let changes = plan.changes.len();
    let start = Instant::now();
    if !plan.is_empty() {
        let txn = store.begin_write("apply", Duration::ZERO).expect("lock");
        let report =
            apply::execute(txn, &plan, &desired, &mut NoHooks, &mut NoProgress, &ApplyOptions::new(0)).expect("apply");
        assert!(report.failed.is_empty(), "the benchmark apply failed");
    }
    Run { changes, plan: planned, apply: start.elapsed(), breakdown }
}

/// First apply, no-op plan, and a one-job version change, each through the real pipeline
/// (workspace load excluded) against a state at `dir/bucket/data/kvform.db`.
fn apply_figures(root: &Path, fleet: &Fleet) -> Vec<Figure> {
    let state = root.join("data/kvform.db");
    StateStore::init(&state).expect("init state");
    let mut out = Vec::new();

    reset_peak();
    let r = plan_and_apply(root, &state);
    out.push(Figure {
        name: "first apply",
        took: r.plan + r.apply,
        base: Base::Insert,
        note: format!("{} changes: plan {:.2?} + apply {:.2?}; peak {:.0} MiB", r.changes, r.plan, r.apply, peak_mib()),
    });

    reset_peak();
    let r = plan_and_apply(root, &state);
    assert_eq!(r.changes, 0, "planning right after an apply must show no changes");
    out.push(Figure {
        name: "no-op plan",
        took: r.plan,
        base: Base::Scan,
        note: format!("{}; peak {:.0} MiB", r.breakdown, peak_mib()),
    });

    // Bump one job's version: its job namespace and every allocation's `version` change.
    let job = Fleet::job(fleet.jobs / 2);
    let manifest = root.join("workspace/jobs").join(&job).join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let bumped = text.replacen("\"version\": \"1.0.", "\"version\": \"2.0.", 1);
    assert_ne!(text, bumped, "the generator's manifest changed shape");
    std::fs::write(&manifest, bumped).unwrap();
    reset_peak();
    let r = plan_and_apply(root, &state);
    out.push(Figure {
        name: "one-job change",
        took: r.plan + r.apply,
        base: Base::Scan,
        note: format!(
            "{job}: {} changes: plan {:.2?} ({}) + apply {:.2?}; peak {:.0} MiB",
            r.changes,
            r.plan,
            r.breakdown,
            r.apply,
            peak_mib()
        ),
    });
    out
}

fn main() {
    let fleet = Fleet {
        workers: env_usize("FLEET_WORKERS", 10_000),
        jobs: env_usize("FLEET_JOBS", 200),
        groups: env_usize("FLEET_GROUPS", 20).max(1),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("bucket");
    std::fs::create_dir_all(&root).unwrap();
    let (_, gen_took) = time(|| fleet.write(&root).expect("write the bucket"));
    println!(
        "fleet: {} workers, {} jobs, {} groups -> {} allocations (generated in {:.2?})",
        fleet.workers,
        fleet.jobs,
        fleet.groups,
        fleet.allocations(),
        gen_took
    );

    let mut figures = Vec::new();

    let (loaded, took) = time(|| kvform::workspace::load(&root));
    if loaded.diagnostics.has_errors() {
        eprintln!("{}", loaded.diagnostics.render(&loaded.sources, false));
        panic!("the generated workspace is invalid");
    }
    let ws = loaded.workspace.expect("valid");
    figures.push(Figure {
        name: "workspace load",
        took,
        base: Base::Both,
        note: format!("{} workers, {} jobs", ws.workers.len(), ws.jobs.len()),
    });

    let prior = Prior { bucket_id: Uuid::from_u128(0x5eed), ..Prior::default() };
    let (desired, took) = time(|| model::desired(&ws, &prior));
    let desired = desired.unwrap_or_else(|d| panic!("model errors:\n{}", d.render(&loaded.sources, false)));
    let keys: usize = desired.kv.values().map(|m| m.len()).sum();
    // Peer lists are derived when read (`kv::derived`), so what is written is linear in the
    // fleet: `placed_workers` (one list per job) is shown as the largest remaining list kind.
    let bytes: usize = desired.kv.values().flat_map(|m| m.values()).map(Value::len).sum();
    let placed: usize = desired.kv.values().filter_map(|m| m.get("placed_workers")).map(Value::len).sum();
    figures.push(Figure {
        name: "desired",
        took,
        base: Base::Both,
        note: format!(
            "{} allocations, {} namespaces, {keys} keys, {} MiB of values ({} KiB in placed_workers)",
            desired.allocations.len(),
            desired.kv.len(),
            bytes >> 20,
            placed >> 10
        ),
    });

    let empty = Snapshot { bucket_id: prior.bucket_id, ..Snapshot::default() };
    let (plan, took) = time(|| diff::diff(&desired, &empty, &PlanOptions::default(), 0));
    figures.push(Figure {
        name: "diff vs empty",
        took,
        base: Base::Both,
        note: format!("{} changes, {} waves", plan.changes.len(), plan.rollout.len()),
    });
    drop(plan);

    // Borrowed from the desired state, so the baseline holds no second copy of the data.
    let rows = desired.kv.iter().flat_map(|(ns, m)| m.iter().map(move |(k, v)| (ns.as_str(), k.as_str(), v.parts())));
    let (insert, scan) = baseline(tmp.path(), rows);
    let peak_before_apply = peak_mib();
    drop(desired);
    figures.extend(apply_figures(&root, &fleet));
    let base = insert + scan;

    println!("baseline (raw rusqlite, {keys} rows): insert in one transaction {insert:.2?}, full scan {scan:.2?}");
    println!("{:<16} {:>10} {:>8}  note", "step", "time", "ratio");
    let total: Duration = figures.iter().map(|f| f.took).sum();
    for f in &figures {
        println!(
            "{:<16} {:>10} {:>7.2}x  {}",
            f.name,
            format!("{:.2?}", f.took),
            f.took.as_secs_f64()
                / match f.base {
                    Base::Both => base,
                    Base::Insert => insert,
                    Base::Scan => scan,
                }
                .as_secs_f64(),
            f.note
        );
    }
    println!("{:<16} {:>10} {:>7.2}x", "total", format!("{total:.2?}"), total.as_secs_f64() / base.as_secs_f64());
    println!("peak memory (VmHWM) through desired + diff + baseline: {peak_before_apply:.0} MiB");
    println!("ratios: first apply vs insert, plans vs scan, the rest vs insert + scan");
}
