//! `GET /metrics` (Prometheus text format), the seed's names: storage latency histograms,
//! operation and error counters, database size, keys by class, applies by status, the
//! serial and whether the write lock is held.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket bounds, seconds.
const BOUNDS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BOUNDS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (i, b) in BOUNDS.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {}\n", self.counts[i]));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            self.count, self.sum, self.count
        ));
    }
}

/// The server's own counters (what the state cannot tell afterwards).
#[derive(Default)]
pub struct Metrics {
    read: Mutex<Histogram>,
    write: Mutex<Histogram>,
    /// (op, count), ops in first-seen order.
    ops: Mutex<Vec<(&'static str, u64)>>,
    errors: AtomicU64,
}

/// What the state says at scrape time.
pub struct StateFigures {
    pub db_size_bytes: u64,
    /// (class, live keys): `maand`, `vars`, `secrets`.
    pub keys: Vec<(String, u64)>,
    /// (status, applies).
    pub applies: Vec<(String, u64)>,
    pub serial: u64,
    pub lock_held: bool,
}

impl Metrics {
    /// Record one storage operation.
    pub fn observe(&self, op: &'static str, write: bool, took: Duration, ok: bool) {
        let h = if write { &self.write } else { &self.read };
        h.lock().unwrap_or_else(|p| p.into_inner()).observe(took.as_secs_f64());
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        match ops.iter_mut().find(|(o, _)| *o == op) {
            Some((_, n)) => *n += 1,
            None => ops.push((op, 1)),
        }
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, s: &StateFigures) -> String {
        let mut out = String::new();
        self.read.lock().unwrap_or_else(|p| p.into_inner()).render(
            "storage_read_duration_seconds",
            "Time of state reads.",
            &mut out,
        );
        self.write.lock().unwrap_or_else(|p| p.into_inner()).render(
            "storage_write_duration_seconds",
            "Time of state writes (lock + commit).",
            &mut out,
        );
        out.push_str(
            "# HELP storage_operations_total State operations by kind.\n# TYPE storage_operations_total counter\n",
        );
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ops.sort();
        for (op, n) in ops {
            out.push_str(&format!("storage_operations_total{{op=\"{op}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "# HELP storage_errors_total Failed state operations.\n# TYPE storage_errors_total counter\nstorage_errors_total {}\n",
            self.errors.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "# HELP storage_db_size_bytes Size of the state file and its WAL.\n# TYPE storage_db_size_bytes gauge\nstorage_db_size_bytes {}\n",
            s.db_size_bytes
        ));
        out.push_str("# HELP storage_keys Live keys by namespace class.\n# TYPE storage_keys gauge\n");
        for (class, n) in &s.keys {
            out.push_str(&format!("storage_keys{{class=\"{class}\"}} {n}\n"));
        }
        out.push_str("# HELP kvform_applies_total Recorded applies by status.\n# TYPE kvform_applies_total counter\n");
        for (status, n) in &s.applies {
            out.push_str(&format!("kvform_applies_total{{status=\"{status}\"}} {n}\n"));
        }
        out.push_str(&format!(
            "# HELP kvform_serial The state's serial.\n# TYPE kvform_serial gauge\nkvform_serial {}\n",
            s.serial
        ));
        out.push_str(&format!(
            "# HELP kvform_lock_held 1 while a kvform process holds the write lock.\n# TYPE kvform_lock_held gauge\nkvform_lock_held {}\n",
            u8::from(s.lock_held)
        ));
        out
    }
}
