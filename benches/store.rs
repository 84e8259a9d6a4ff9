//! Store benchmark: the state store's API next to a raw rusqlite baseline doing the same on
//! a plain `(namespace, key, value)` table, in the same run, with the same pragmas (WAL,
//! synchronous=FULL). Prints figures and ratios; asserts nothing (timings are not tests).
//!
//! Run: `cargo bench --bench store` (env `KVFORM_BENCH_KEYS` overrides the 500,000 keys).
//! Targets: write and full scan within 2x of the baseline; point get p99 < 1 ms.

use kvform::state::Write;
use kvform::state::{ApplyRecord, StateStore};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const GETS: usize = 10_000;
/// Writes and scans are timed as the best of this many runs on each side (allocator and page-cache noise).
const RUNS: usize = 3;
const KEYS_PER_NS: usize = 500;

fn ns_key(i: usize) -> (String, String) {
    (format!("maand/job/job{:04}/worker/10.0.{}.{}", i / KEYS_PER_NS, (i / 250) % 256, i % 250), format!("key_{i:07}"))
}

fn value(i: usize) -> String {
    format!("value-{i}-{}", "x".repeat(16))
}

/// Deterministic pseudo-random indexes (xorshift), the same for both sides.
fn sample(n: usize, count: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        })
        .collect()
}

fn percentiles(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[d.len() * 99 / 100])
}

fn main() {
    let n: usize = std::env::var("KVFORM_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<(String, String)> = (0..n).map(ns_key).collect();
    let picks = sample(n, GETS);

    // --- kvform store ---
    let mut store_write = Duration::MAX;
    let mut path = PathBuf::new();
    for run in 0..RUNS {
        path = dir.path().join(format!("data{run}/kvform.db"));
        let (store, _) = StateStore::init(&path, 1767323045).unwrap();
        let t = Instant::now();
        let mut txn = store.begin_write("bench", Duration::ZERO, 1767323045).unwrap();
        for (i, (ns, key)) in names.iter().enumerate() {
            txn.put(Write::new(ns, key, &value(i), "bench", 0)).unwrap();
        }
        txn.commit(ApplyRecord::new("bench", 0)).unwrap();
        store_write = store_write.min(t.elapsed());
    }
    let store = StateStore::open(&path).unwrap();
    let mut store_scan = Duration::MAX;
    for _ in 0..RUNS {
        let t = Instant::now();
        let snap = store.snapshot().unwrap();
        store_scan = store_scan.min(t.elapsed());
        assert_eq!(snap.entries.values().map(|m| m.len()).sum::<usize>(), n);
    }
    // Where the scan time goes: SQLite decoding alone, on the store's table.
    let raw = Connection::open(&path).unwrap();
    let t = Instant::now();
    let mut count = 0usize;
    {
        let mut st = raw
            .prepare("SELECT value, version, deleted, ttl, created_at, serial, writer, namespace, key FROM latest ORDER BY namespace, key")
            .unwrap();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            count += r.get_ref(0).unwrap().as_str().unwrap().len() + r.get_ref(8).unwrap().as_str().unwrap().len();
        }
    }
    let store_decode = t.elapsed();
    assert!(count > 0);
    let mut store_gets = Vec::with_capacity(GETS);
    for &i in &picks {
        let (ns, key) = &names[i];
        let t = Instant::now();
        let e = store.get(ns, key).unwrap().unwrap();
        store_gets.push(t.elapsed());
        assert_eq!(e.version, 1);
    }

    // --- raw rusqlite baseline ---
    let mut base_write = Duration::MAX;
    let mut bpath = PathBuf::new();
    for run in 0..RUNS {
        bpath = dir.path().join(format!("baseline{run}.db"));
        let conn = Connection::open(&bpath).unwrap();
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, key))",
        )
        .unwrap();
        let t = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        {
            let mut st = conn.prepare_cached("INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)").unwrap();
            for (i, (ns, key)) in names.iter().enumerate() {
                st.execute(params![ns, key, value(i)]).unwrap();
            }
        }
        conn.execute_batch("COMMIT").unwrap();
        drop(conn); // closing checkpoints the WAL, as the store's commit does
        base_write = base_write.min(t.elapsed());
    }
    let conn = Connection::open(&bpath).unwrap();
    let mut base_scan = Duration::MAX;
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        {
            let mut st = conn.prepare("SELECT namespace, key, value FROM kv ORDER BY namespace, key").unwrap();
            let mut rows = st.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                map.entry(r.get(0).unwrap()).or_default().insert(r.get(1).unwrap(), r.get(2).unwrap());
            }
        }
        base_scan = base_scan.min(t.elapsed());
        assert_eq!(map.values().map(|m| m.len()).sum::<usize>(), n);
    }
    let mut base_gets = Vec::with_capacity(GETS);
    {
        let mut st = conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2").unwrap();
        for &i in &picks {
            let (ns, key) = &names[i];
            let t = Instant::now();
            let v: String = st.query_row(params![ns, key], |r| r.get(0)).unwrap();
            base_gets.push(t.elapsed());
            assert!(!v.is_empty());
        }
    }

    let (sp50, sp99) = percentiles(store_gets);
    let (bp50, bp99) = percentiles(base_gets);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("kvform state store vs raw rusqlite, {n} keys in one transaction, {GETS} point gets");
    println!("{:<28} {:>12} {:>12} {:>8}", "", "store", "baseline", "ratio");
    println!(
        "{:<28} {:>12.3?} {:>12.3?} {:>7.2}x",
        "write (best of 3)",
        store_write,
        base_write,
        ratio(store_write, base_write)
    );
    println!(
        "{:<28} {:>12.3?} {:>12.3?} {:>7.2}x",
        "full scan (best of 3)",
        store_scan,
        base_scan,
        ratio(store_scan, base_scan)
    );
    println!("{:<28} {:>12.3?}", "  of which SQLite decode", store_decode);
    println!("{:<28} {:>12.3?} {:>12.3?} {:>7.2}x", "point get p50", sp50, bp50, ratio(sp50, bp50));
    println!("{:<28} {:>12.3?} {:>12.3?} {:>7.2}x", "point get p99", sp99, bp99, ratio(sp99, bp99));
    println!(
        "file size: store {} bytes, baseline {} bytes",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        std::fs::metadata(&bpath).map(|m| m.len()).unwrap_or(0)
    );
}
