//! Hook API latency: `GET /kv` from a keep-alive client (Rust, and Python's `http.client`)
//! and through the helper hooks really use (`kvform_hook.get`), against the store's own
//! point get on the same state, in the same run.
//! Prints p50/p99 and the ratio to the baseline; asserts nothing (timings are not tests).
//!
//! Run: `cargo bench --bench hook_api` (`cargo bench --bench fleet` runs it too). Target: API
//! p99 < 1 ms.

use kvform::hooks::api::{ApiConfig, ApiServer, SharedStore, Topology};
use kvform::hooks::token::HookIdentity;
use kvform::hooks::txn_store::ReadOnlyStore;
use kvform::state::{ApplyRecord, StateStore};
use kvform::workspace::types::Event;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/http.rs"]
mod http;
use http::read_response;

const KEYS: usize = 1_000;
const GETS: usize = 5_000;

fn percentiles(mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    (d[d.len() / 2], d[d.len() * 99 / 100])
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

const PY: &str = r#"
import http.client, json, sys, time
host, port, token, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection(host, port)
h = {"Authorization": "Bearer " + token}
out = []
for i in range(n):
    t = time.perf_counter_ns()
    c.request("GET", "/kv?namespace=vars%%2Fjob%%2Fapi&key=key_%04d" % ((i * 7919) % %KEYS%), headers=h)
    r = c.getresponse(); r.read()
    out.append(time.perf_counter_ns() - t)
    assert r.status == 200, r.status
print(json.dumps(out))
"#;

// What a hook really runs: the helper kvform puts on PYTHONPATH, `kv.get` per key.
const PY_HELPER: &str = r#"
import json, sys, time
import kvform_hook as kv
n = int(sys.argv[1])
out = []
for i in range(n):
    t = time.perf_counter_ns()
    assert kv.get("vars/job/api", "key_%04d" % ((i * 7919) % %KEYS%)) is not None
    out.append(time.perf_counter_ns() - t)
print(json.dumps(out))
"#;

/// One client's line: p50/p99 and their ratios to the store point get's.
fn client_line(label: &str, (p50, p99): (Duration, Duration), (b50, b99): (Duration, Duration)) {
    println!(
        "  {label:<27} p50 {:>8.1} µs  p99 {:>8.1} µs  ({:.1}x / {:.1}x baseline)",
        us(p50),
        us(p99),
        us(p50) / us(b50),
        us(p99) / us(b99)
    );
}

/// Run a Python client printing a JSON list of nanosecond timings; print its line.
fn python_line(label: &str, cmd: &mut std::process::Command, b50: Duration, b99: Duration) {
    match cmd.output() {
        Ok(out) if out.status.success() => {
            let ns: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
            let (p50, p99) = percentiles(ns.into_iter().skip(200).map(Duration::from_nanos).collect());
            client_line(label, (p50, p99), (b50, b99));
        }
        Ok(out) => println!("  {label:<27} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => println!("  {label:<27} skipped (no python3: {e})"),
    }
}

fn main() {
    run();
}

/// The whole measurement (also run by `benches/fleet`, whose table has this row).
pub fn run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/kvform.db");
    let (store, _) = StateStore::init(&path, 1_767_323_045).unwrap();
    let mut txn = store.begin_write("bench", Duration::ZERO, 1_767_323_045).unwrap();
    for i in 0..KEYS {
        txn.put(kvform::state::Write::new("vars/job/api", &format!("key_{i:04}"), &format!("value-{i}"), "bench", 0))
            .unwrap();
    }
    txn.commit(ApplyRecord::new("bench", 0)).unwrap();
    let key = |i: usize| format!("key_{:04}", (i * 7919) % KEYS);

    // Baseline: the store's point get.
    let store = StateStore::open(&path).unwrap();
    let mut base = Vec::with_capacity(GETS);
    for i in 0..GETS {
        let t = Instant::now();
        assert!(store.get("vars/job/api", &key(i)).unwrap().is_some());
        base.push(t.elapsed());
    }
    let (b50, b99) = percentiles(base);

    let shared: SharedStore = Arc::new(Mutex::new(ReadOnlyStore::new(StateStore::open(&path).unwrap(), 0)));
    let server = ApiServer::start(ApiConfig::for_port(0), shared, Topology::default()).unwrap();
    let identity = HookIdentity {
        alloc_id: uuid::Uuid::nil(),
        job: "api".into(),
        host: "10.0.0.1".into(),
        event: Event::PostDeploy,
        command: "command_x".into(),
    };
    let token = server.handle().issue(identity).unwrap();
    let addr = server.local_addr();

    // Rust keep-alive client.
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut rust = Vec::with_capacity(GETS);
    for i in 0..GETS + 200 {
        let req = format!(
            "GET /kv?namespace=vars%2Fjob%2Fapi&key={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            key(i),
            token.as_str()
        );
        let t = Instant::now();
        w.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_response(&mut reader), 200);
        if i >= 200 {
            rust.push(t.elapsed()); // the first 200 warm up the connection and caches
        }
    }
    let (r50, r99) = percentiles(rust);

    println!("hook API GET /kv, {KEYS} keys, {GETS} requests on one kept-alive connection");
    println!("  store point get (baseline)  p50 {:>8.1} µs  p99 {:>8.1} µs", us(b50), us(b99));
    client_line("Rust client", (r50, r99), (b50, b99));
    python_line(
        "Python http.client",
        std::process::Command::new("python3").arg("-c").arg(PY.replace("%KEYS%", &KEYS.to_string())).args([
            "127.0.0.1",
            &addr.port().to_string(),
            token.as_str(),
            &GETS.to_string(),
        ]),
        b50,
        b99,
    );
    python_line(
        "Python kvform_hook.get",
        std::process::Command::new("python3")
            .arg("-c")
            .arg(PY_HELPER.replace("%KEYS%", &KEYS.to_string()))
            .arg(GETS.to_string())
            .env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/src/hooks/python"))
            .env("KVFORM_API", server.base_url())
            .env("KVFORM_TOKEN", token.as_str())
            .env("JOB", "api"),
        b50,
        b99,
    );
    server.shutdown();
}
