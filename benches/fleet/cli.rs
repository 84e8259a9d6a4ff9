//! The issue-11 rows, measured on the real binary (`kvform`, whole process: start, workspace
//! load, state, plan, output), each with its ratio to a raw-SQLite baseline measured in the
//! same run (see `super::baseline`).

use super::generate::Fleet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs of each repeatable measure (min and median are printed).
pub const RUNS: usize = 3;

/// Run `kvform -C root args…`; panics on failure. Returns the wall time.
pub fn kvform(root: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run kvform");
    let took = start.elapsed();
    assert!(out.status.success(), "kvform {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

/// The largest resident set of any child waited for so far, in MiB (getrusage).
pub fn children_peak_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

/// The durations of a run list, for [`stats`].
pub fn stats_input(runs: &[Duration]) -> Vec<Duration> {
    runs.to_vec()
}

/// Min and median.
pub fn stats(mut runs: Vec<Duration>) -> (Duration, Duration) {
    runs.sort();
    (runs[0], runs[runs.len() / 2])
}

/// Size of the state (the database file after a checkpoint, plus any WAL left).
pub fn state_bytes(root: &Path) -> u64 {
    let db = root.join("data/kvform.db");
    if let Ok(c) = rusqlite::Connection::open(&db) {
        let _ = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(&db) + size(&root.join("data/kvform.db-wal"))
}

/// What one fleet measured through the CLI.
pub struct CliRun {
    pub first_apply: Duration,
    /// Peak RSS of the first `kvform apply` (MiB); only meaningful for the first fleet a
    /// process measures (getrusage keeps the largest child so far).
    pub first_apply_peak: f64,
    pub state_bytes: u64,
    pub noop: Vec<Duration>,
    /// `kvform plan` + `kvform apply` after bumping one job's version, per run.
    pub one_job: Vec<(Duration, Duration)>,
}

/// Generate `fleet` under `root`, then: first apply, state size, no-op plans, one-job changes.
pub fn measure(root: &Path, fleet: &Fleet, runs: usize) -> CliRun {
    if !root.join("workspace").exists() {
        std::fs::create_dir_all(root).unwrap();
        fleet.write(root).expect("write the bucket");
    }
    kvform(root, &["init", "-q"]);
    let first_apply = kvform(root, &["apply", "--auto-approve"]);
    let first_apply_peak = children_peak_mib();
    let state_bytes = state_bytes(root);
    let noop = (0..runs).map(|_| kvform(root, &["plan"])).collect();
    let job = Fleet::job(fleet.jobs / 2);
    let manifest = root.join("workspace/jobs").join(&job).join("manifest.json");
    let one_job = (0..runs)
        .map(|i| {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let bumped =
                text.replacen(&format!("\"version\": \"{}.0.", i + 1), &format!("\"version\": \"{}.0.", i + 2), 1);
            assert_ne!(text, bumped, "the generator's manifest changed shape");
            std::fs::write(&manifest, bumped).unwrap();
            (kvform(root, &["plan"]), kvform(root, &["apply", "--auto-approve"]))
        })
        .collect();
    CliRun { first_apply, first_apply_peak, state_bytes, noop, one_job }
}
