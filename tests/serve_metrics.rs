//! `kvform serve`'s `/metrics` read as a scraper reads it: parsed by a Prometheus text
//! parser, every family `kvform_*`, and the figures checked against a bucket whose state is
//! known (an apply at a fixed time, its certificates and hook runs, a key past its TTL, a
//! token about to expire, a watch in flight); `--metrics-public` opens `/metrics` and only
//! `/metrics` to a scraper without a token.

mod quickstart_copy;
mod serve_support;
mod tf_support;

use serve_support::{Served, serve_with};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The apply's time, fixed (`KVFORM_NOW`), and the server's an hour later.
const APPLIED_AT: &str = "2030-01-01T00:00:00Z";
const APPLIED_UNIX: i64 = 1_893_456_000;
const SERVED_AT: &str = "2030-01-01T01:00:00Z";

fn kvform(dir: &Path, now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("KVFORM_NOW", now)
        .output()
        .unwrap()
}

fn ok(dir: &Path, now: &str, args: &[&str]) -> String {
    let o = kvform(dir, now, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn serve(dir: &Path, extra: &[&str]) -> Served {
    serve_with(dir, extra, &[("KVFORM_NOW", SERVED_AT)])
}

/// (status, content type, body)
fn get(url: &str, token: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, resp.into_body().read_to_string().unwrap())
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?} matches {} samples", found.len());
    found.first().copied()
}

#[test]
fn metrics_parse_are_all_kvform_and_match_the_state() {
    let dir = quickstart_copy::quickstart_copy();
    metrics_of_a_known_state(dir.path(), "sqlite");
}

/// The same on a PostgreSQL state: the quickstart with a `state` block of its own registry.
#[test]
fn metrics_parse_are_all_kvform_and_match_the_state_on_postgres() {
    if tf_support::pg_url("metrics_parse_are_all_kvform_and_match_the_state_on_postgres").is_none() {
        return;
    }
    let copy = quickstart_copy::quickstart_copy();
    let d = copy.path().to_path_buf();
    let block = tf_support::pg_state_block();
    let hcl = std::fs::read_to_string(d.join("kvform.hcl")).unwrap();
    let start = hcl.find("state {").unwrap();
    let end = start + hcl[start..].find('}').unwrap() + 1;
    std::fs::write(d.join("kvform.hcl"), format!("{}{block}{}", &hcl[..start], &hcl[end..])).unwrap();
    let dir = tf_support::BucketDir::on_postgres(copy, &tf_support::registry_of(&block));
    ok(dir.path(), APPLIED_AT, &["init"]);
    metrics_of_a_known_state(dir.path(), "postgres");
}

fn metrics_of_a_known_state(d: &Path, backend: &str) {
    ok(d, APPLIED_AT, &["apply", "--auto-approve"]);
    // A key past its TTL an hour later, two tokens: one expiring within 7 days, one not.
    ok(d, APPLIED_AT, &["kv", "set", "--ttl", "60", "vars/job/api", "short_lived", "x"]);
    ok(d, APPLIED_AT, &["kv", "set", "vars/job/api", "long_lived", "y"]);
    let reader = ok(d, APPLIED_AT, &["token", "create", "prom", "--role", "reader"]).trim().to_string();
    ok(d, APPLIED_AT, &["token", "create", "soon", "--role", "reader", "--expires", "3d"]);
    ok(d, APPLIED_AT, &["token", "create", "later", "--role", "reader", "--expires", "30d"]);

    let s = serve(d, &[]);
    // Without a token (no --metrics-public): refused like the API.
    assert_eq!(get(&format!("{}/metrics", s.base), None).0, 401);
    // Traffic to count: a key read twice, a miss, and a watch held open while scraping.
    for path in
        ["/api/v1/kv/vars/job/api/long_lived", "/api/v1/kv/vars/job/api/long_lived", "/api/v1/kv/vars/job/api/nope"]
    {
        get(&format!("{}{path}", s.base), Some(&reader));
    }
    // An index no write reaches: the watch waits its whole 3 s.
    let watch_url = format!("{}/api/v1/kv/vars/job/api/?index=1000000&wait=3s", s.base);
    let watch_token = reader.clone();
    let watcher = std::thread::spawn(move || get(&watch_url, Some(&watch_token)).0);
    std::thread::sleep(Duration::from_millis(600));

    let (status, content_type, text) = get(&format!("{}/metrics", s.base), Some(&reader));
    assert_eq!(status, 200, "{text}");
    assert!(content_type.contains("charset=utf-8"), "{content_type}");
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    let m = scrape(&text);
    let families: std::collections::BTreeSet<&str> = m.samples.iter().map(|x| x.metric.as_str()).collect();
    for f in &families {
        assert!(f.starts_with("kvform_"), "family {f} is not kvform_*:\n{text}");
    }
    // The TYPE and HELP lines name kvform_* families too (nothing unprefixed anywhere).
    for l in text.lines().filter(|l| l.starts_with("# ") && !l.starts_with("# EOF")) {
        assert!(l.split_whitespace().nth(2).is_some_and(|n| n.starts_with("kvform_")), "{l}");
    }
    for name in [
        "kvform_storage_read_duration_seconds",
        "kvform_storage_operations_total",
        "kvform_storage_errors_total",
        "kvform_storage_db_size_bytes",
        "kvform_storage_keys",
        "kvform_applies_total",
        "kvform_serial",
        "kvform_lock_held",
        "kvform_build_info",
        "kvform_http_requests_total",
        "kvform_http_request_duration_seconds",
        "kvform_watches",
        "kvform_last_apply_timestamp_seconds",
        "kvform_hook_runs_total",
        "kvform_hook_duration_seconds",
        "kvform_certificate_expiry_timestamp_seconds",
        "kvform_keys_expired",
        "kvform_tokens_expiring",
    ] {
        assert!(families.contains(name), "{name} missing from {families:?}:\n{text}");
    }

    // The known state.
    assert_eq!(value(&m, "kvform_last_apply_timestamp_seconds", &[]), Some(APPLIED_UNIX as f64));
    assert_eq!(value(&m, "kvform_keys_expired", &[]), Some(1.0), "{text}");
    assert_eq!(value(&m, "kvform_tokens_expiring", &[]), Some(1.0), "{text}");
    assert_eq!(value(&m, "kvform_lock_held", &[]), Some(0.0));
    assert_eq!(value(&m, "kvform_watches", &[]), Some(1.0), "the watch in flight:\n{text}");
    assert_eq!(
        value(&m, "kvform_build_info", &[("version", env!("CARGO_PKG_VERSION")), ("backend", backend)]),
        Some(1.0)
    );
    // Requests by route template, never by raw path: no key name in any label.
    assert_eq!(
        value(&m, "kvform_http_requests_total", &[("method", "GET"), ("route", "/api/v1/kv/:path"), ("code", "200")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&m, "kvform_http_requests_total", &[("method", "GET"), ("route", "/metrics"), ("code", "401")]),
        Some(1.0)
    );
    assert!(!text.contains("long_lived"), "a key name in a label:\n{text}");

    // Every stored certificate, with the notAfter of the PEM the state holds.
    let certs: Vec<_> =
        m.samples.iter().filter(|x| x.metric == "kvform_certificate_expiry_timestamp_seconds").collect();
    assert!(!certs.is_empty(), "{text}");
    for c in &certs {
        let (job, host, name) = (&c.labels["job"], &c.labels["host"], &c.labels["name"]);
        let ns = format!("maand/job/{job}/worker/{host}");
        let pem = ok(d, SERVED_AT, &["kv", "get", &ns, &format!("certs/{name}.crt")]);
        let info = kvform::certs::inspect::read(&pem).unwrap();
        assert!(info.not_after > APPLIED_UNIX, "{ns}");
        assert_eq!(
            value(&m, "kvform_certificate_expiry_timestamp_seconds", &[("job", job), ("host", host), ("name", name)]),
            Some(info.not_after as f64)
        );
    }

    // Hook runs: what the runner recorded during the apply, by job, event and result.
    let recorded = std::fs::read_to_string(d.join("logs/hook-runs.jsonl")).unwrap();
    let mut expected: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for l in recorded.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let k = |f: &str| v[f].as_str().unwrap().to_string();
        *expected.entry((k("job"), k("event"), k("result"))).or_default() += 1.0;
    }
    assert!(!expected.is_empty(), "the quickstart's apply runs hooks");
    for ((job, event, result), n) in &expected {
        assert_eq!(
            value(&m, "kvform_hook_runs_total", &[("job", job), ("event", event), ("result", result)]),
            Some(*n),
            "{text}"
        );
    }

    // The watch ends (a timeout) and leaves the gauge.
    assert_eq!(watcher.join().unwrap(), 200);
    let m = scrape(&get(&format!("{}/metrics", s.base), Some(&reader)).2);
    assert_eq!(value(&m, "kvform_watches", &[]), Some(0.0));
}

#[test]
fn metrics_public_opens_metrics_only() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    ok(d, APPLIED_AT, &["apply", "--auto-approve"]);
    let s = serve(d, &["--metrics-public"]);
    let (status, _, text) = get(&format!("{}/metrics", s.base), None);
    assert_eq!(status, 200, "{text}");
    assert!(!scrape(&text).samples.is_empty());
    assert_eq!(get(&format!("{}/api/v1/namespaces", s.base), None).0, 401);
    assert_eq!(get(&format!("{}/api/v1/kv/vars/job/api/", s.base), None).0, 401);
    assert_eq!(get(&format!("{}/ui", s.base), None).0, 401);
}
