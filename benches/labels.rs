//! Issue-9 benchmark: one worker with many labels (default 100,000; `LABELS=N`), through
//! `workspace::load` (validate) and `model::desired` (what plan builds). Before the fix the
//! duplicate-label check was quadratic: 100,000 labels took 88 s to validate.
//!
//! `cargo bench --bench labels`. Each figure is printed with its ratio to a baseline
//! measured in the same run: `serde_json` parsing the same workers.json into a
//! `serde_json::Value` (what reading the file costs at the least). Prints, never asserts.

use kvform::model::{self, types::Prior};
use std::time::{Duration, Instant};

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() {
    let n: usize = std::env::var("LABELS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("workspace/jobs/api")).unwrap();
    let labels: Vec<String> = (0..n).map(|i| format!("\"label{i}\"")).collect();
    let workers = format!("[{{\"host\": \"10.0.0.1\", \"labels\": [\"api\", {}]}}]", labels.join(", "));
    std::fs::write(dir.path().join("workspace/workers.json"), &workers).unwrap();
    std::fs::write(dir.path().join("workspace/jobs/api/manifest.json"), "{}").unwrap();

    let (_, base) = time(|| serde_json::from_str::<serde_json::Value>(&workers).expect("json"));
    let (loaded, load) = time(|| kvform::workspace::load(dir.path()));
    let ws = loaded.workspace.expect("valid workspace");
    let (desired, build) =
        time(|| model::desired(&ws, &Prior::default()).unwrap_or_else(|_| panic!("the model rejected the workspace")));
    let keys: usize = desired.kv.values().map(|m| m.len()).sum();

    let ratio = |d: Duration| d.as_secs_f64() / base.as_secs_f64().max(1e-9);
    println!("one worker, {n} labels ({} KiB workers.json)", workers.len() / 1024);
    println!("  baseline serde_json parse      {:>9.3} s", base.as_secs_f64());
    println!("  workspace::load (validate)     {:>9.3} s  x{:.1}", load.as_secs_f64(), ratio(load));
    println!("  model::desired ({keys} keys) {:>9.3} s  x{:.1}", build.as_secs_f64(), ratio(build));
}
