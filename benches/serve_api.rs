//! `kvform serve` latency: `GET /api/v1/kv/{ns}/{key}` and a 1,000-key listing from a
//! keep-alive client, against the store's point get on the same state, in the same run.
//! Prints p50/p99 and ratios; asserts nothing.
//!
//! Run: `cargo bench --bench serve_api`.

use kvform::bucket::Bucket;
use kvform::serve::{Planner, ServeConfig, Server};
use kvform::state::tokens::TokenRecord;
use kvform::state::{ApplyRecord, StateStore};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/http.rs"]
mod http;
use http::read_response;

const KEYS: usize = 1_000;

fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(d[d.len() / 2]), us(d[d.len() * 99 / 100]))
}

fn timed(addr: std::net::SocketAddr, token: &str, paths: &[String], warmup: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let req = format!("GET {p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
        let t = Instant::now();
        w.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_response(&mut reader), 200, "{p}");
        if i >= warmup {
            out.push(t.elapsed());
        }
    }
    out
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::at(dir.path());
    let path = bucket.default_state_file();
    let (store, _) = StateStore::init(&path, 1_767_323_045).unwrap();
    let mut txn = store.begin_write("bench", Duration::ZERO, 1_767_323_045).unwrap();
    for i in 0..KEYS {
        txn.put(kvform::state::Write::new("vars/job/api", &format!("key_{i:04}"), &format!("value-{i}"), "bench", 0))
            .unwrap();
    }
    txn.commit(ApplyRecord::new("bench", 0)).unwrap();
    let store = StateStore::open(&path).unwrap();
    let rec = TokenRecord {
        name: "bench".into(),
        role: "reader".into(),
        namespaces: vec![],
        reveal: false,
        created_at: 0,
        expires_at: None,
        revoked_at: None,
    };
    let token = store.create_token(&rec).unwrap();
    let key = |i: usize| format!("key_{:04}", (i * 7919) % KEYS);

    let mut base = Vec::new();
    for i in 0..5_000 {
        let t = Instant::now();
        assert!(store.get("vars/job/api", &key(i)).unwrap().is_some());
        base.push(t.elapsed());
    }
    let (b50, b99) = percentiles(base);

    let planner: Planner = Arc::new(|| Err("no workspace in the bench".into()));
    let cfg = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bucket,
        location: kvform::state::Location::Sqlite(path),
        max_versions: 10,
        planner,
        tls: None,
        metrics_public: false,
    };
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let gets: Vec<String> = (0..5_200).map(|i| format!("/api/v1/kv/vars/job/api/{}", key(i))).collect();
    let (g50, g99) = percentiles(timed(addr, &token, &gets, 200));
    let lists: Vec<String> = (0..320).map(|_| "/api/v1/kv/vars/job/api/".to_string()).collect();
    let (l50, l99) = percentiles(timed(addr, &token, &lists, 20));
    println!("kvform serve, {KEYS} keys in vars/job/api, one kept-alive connection");
    println!("  store point get (baseline)   p50 {b50:>9.1} µs  p99 {b99:>9.1} µs");
    println!(
        "  GET one key                  p50 {g50:>9.1} µs  p99 {g99:>9.1} µs  ({:.1}x / {:.1}x baseline)",
        g50 / b50,
        g99 / b99
    );
    println!(
        "  GET 1,000-key listing        p50 {l50:>9.1} µs  p99 {l99:>9.1} µs  ({:.1}x / {:.1}x baseline)",
        l50 / b50,
        l99 / b99
    );
    server.stop();
}
