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
    kvform_out(root, args).0
}

/// [`kvform`], also returning what it printed on stdout.
pub fn kvform_out(root: &Path, args: &[&str]) -> (Duration, String) {
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
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The keys a plan changes: the sum of its `Plan: N to add, M to change, K to destroy.` line
/// (every count is one key).
pub fn changed_keys(plan_stdout: &str) -> usize {
    let Some(line) = plan_stdout.lines().find(|l| l.starts_with("Plan: ")) else { return 0 };
    line.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<usize>().ok()).sum()
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
    /// Keys the one-job change writes (from its plan's summary line).
    pub one_job_keys: usize,
    /// `kvform plan` + `kvform apply` after editing one worker's labels, per run.
    pub one_worker: Vec<(Duration, Duration)>,
    pub one_worker_keys: usize,
    /// One-job change through a saved plan: `kvform plan --out` then `kvform apply FILE`
    /// (the apply's time only, to compare with `apply --auto-approve` above), per run.
    pub saved_apply: Vec<Duration>,
}

/// The worker the one-worker change edits (host `10.0.0.7`, in label group 7 of the default
/// 20) and its labels line as the generator writes it.
const EDITED_WORKER: &str = r#""host": "10.0.0.7", "labels": ["g7", "rack7""#;

/// Give the edited worker label `edit{to}` instead of `edit{from}` (none when `from` is 0).
/// The label selects no job, so only that worker's namespace changes.
fn edit_worker(root: &Path, from: usize, to: usize) {
    let path = root.join("workspace/workers.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let old = if from == 0 { EDITED_WORKER.to_string() } else { format!(r#"{EDITED_WORKER}, "edit{from}""#) };
    let new = format!(r#"{EDITED_WORKER}, "edit{to}""#);
    let edited = text.replacen(&old, &new, 1);
    assert_ne!(text, edited, "the generator's workers.json changed shape");
    std::fs::write(&path, edited).unwrap();
}

/// Bump job `job`'s version from `1.0.x`-style `{from}.0.` to `{to}.0.`.
fn bump_job(root: &Path, job: &str, from: usize, to: usize) {
    let manifest = root.join("workspace/jobs").join(job).join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let bumped = text.replacen(&format!("\"version\": \"{from}.0."), &format!("\"version\": \"{to}.0."), 1);
    assert_ne!(text, bumped, "the generator's manifest changed shape");
    std::fs::write(&manifest, bumped).unwrap();
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
    let mut one_job_keys = 0;
    let one_job = (0..runs)
        .map(|i| {
            bump_job(root, &job, i + 1, i + 2);
            let (plan, out) = kvform_out(root, &["plan"]);
            one_job_keys = changed_keys(&out);
            (plan, kvform(root, &["apply", "--auto-approve"]))
        })
        .collect();
    let mut one_worker_keys = 0;
    let one_worker = (0..runs)
        .map(|i| {
            edit_worker(root, i, i + 1);
            let (plan, out) = kvform_out(root, &["plan"]);
            one_worker_keys = changed_keys(&out);
            (plan, kvform(root, &["apply", "--auto-approve"]))
        })
        .collect();
    let saved_apply = (0..runs)
        .map(|i| {
            bump_job(root, &job, runs + i + 1, runs + i + 2);
            kvform(root, &["plan", "--out", "bench-plan.json"]);
            kvform(root, &["apply", "bench-plan.json"])
        })
        .collect();
    CliRun {
        first_apply,
        first_apply_peak,
        state_bytes,
        noop,
        one_job,
        one_job_keys,
        one_worker,
        one_worker_keys,
        saved_apply,
    }
}
