//! `GET /metrics`, encoded by `prometheus-client` (OpenMetrics text, which Prometheus reads
//! natively): every family is `kvform_*`, the seed's storage names kept after the prefix
//! (`kvform_storage_read_duration_seconds`, …).
//!
//! Two kinds of figures:
//! - the server's own, kept in [`Metrics`] for its lifetime: storage latency and operations,
//!   HTTP requests by route template (never the raw path: a key name is no label) and code
//!   with their latency, watches in flight (a [`WatchGuard`] the watch holds);
//! - what the state and the bucket say at scrape time ([`StateFigures`], read by
//!   [`scrape`]): keys by class, applies by status, the serial and lock, the last successful
//!   apply, each stored certificate's expiry, keys past their TTL, tokens that expire within
//!   [`TOKEN_SOON`], and the hook runs the runner recorded in `logs/hook-runs.jsonl`
//!   (`crate::hooks::runner::record_run`; the state keeps no hook runs), read incrementally.

use super::App;
use super::rest::Reply;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Storage and HTTP latency bucket bounds, seconds.
const BOUNDS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];
/// Hook duration bucket bounds, seconds (hooks run for seconds to minutes).
const HOOK_BOUNDS: [f64; 9] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// `kvform_tokens_expiring` counts the usable tokens whose expiry is this close.
pub const TOKEN_SOON: i64 = 7 * 24 * 3600;
/// The media type of the answer (OpenMetrics 1.0 text, UTF-8).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The hook runs file under the bucket's `logs/`.
pub const HOOK_RUNS_FILE: &str = "hook-runs.jsonl";

type HistogramSorted<L> = Sorted<L, Histogram>;

/// A labelled family encoded in label order (`prometheus-client`'s `Family` keeps a hash
/// map, so its samples come out in a different order on each run): the same state scrapes
/// to the same text.
#[derive(Debug, Clone)]
struct Sorted<L, M> {
    metrics: std::sync::Arc<Mutex<BTreeMap<L, M>>>,
    make: fn() -> M,
}

impl<L: Ord + Clone, M: Clone + Default> Default for Sorted<L, M> {
    fn default() -> Self {
        Sorted::with(M::default)
    }
}

impl<L: Ord + Clone, M: Clone> Sorted<L, M> {
    fn with(make: fn() -> M) -> Self {
        Sorted { metrics: Default::default(), make }
    }

    /// The metric of `labels` (a handle sharing its value), created on first use.
    fn get_or_create(&self, labels: &L) -> M {
        let mut map = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(labels.clone()).or_insert_with(self.make).clone()
    }

    fn clear(&self) {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl<L, M> prometheus_client::encoding::EncodeMetric for Sorted<L, M>
where
    L: EncodeLabelSet + Ord + std::fmt::Debug + Send + 'static,
    M: prometheus_client::encoding::EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        let map = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        for (labels, m) in map.iter() {
            m.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        M::TYPE
    }
}

fn latency() -> Histogram {
    Histogram::new(BOUNDS)
}

fn hook_latency() -> Histogram {
    Histogram::new(HOOK_BOUNDS)
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct HookLabels {
    job: String,
    event: String,
    result: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct HookJobLabels {
    job: String,
    event: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct CertLabels {
    job: String,
    host: String,
    name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ClassLabels {
    class: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// The hook runs read so far from `logs/hook-runs.jsonl`: counters that only grow while the
/// file does (a file that shrank was replaced: the figures are read again from its start).
struct HookRuns {
    file: PathBuf,
    /// Bytes consumed (up to the last complete line).
    offset: Mutex<u64>,
    runs: Sorted<HookLabels, Counter>,
    duration: HistogramSorted<HookJobLabels>,
}

impl HookRuns {
    fn new(file: PathBuf) -> HookRuns {
        HookRuns { file, offset: Mutex::new(0), runs: Sorted::default(), duration: Sorted::with(hook_latency) }
    }

    /// Read the lines appended since the last scrape. A missing file is no runs yet; an
    /// unreadable one leaves the figures as they were.
    fn refresh(&self) {
        let mut offset = self.offset.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(mut f) = std::fs::File::open(&self.file) else { return };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < *offset {
            self.runs.clear();
            self.duration.clear();
            *offset = 0;
        }
        let mut fresh = Vec::new();
        if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_end(&mut fresh).is_err() {
            return;
        }
        // Only complete lines: a run being appended right now is read next time.
        let Some(end) = fresh.iter().rposition(|b| *b == b'\n') else { return };
        for line in fresh[..end].split(|b| *b == b'\n') {
            let Ok(run) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
            let text = |k: &str| run[k].as_str().unwrap_or("").to_string();
            let (job, event) = (text("job"), text("event"));
            if job.is_empty() {
                continue;
            }
            self.runs
                .get_or_create(&HookLabels { job: job.clone(), event: event.clone(), result: text("result") })
                .inc();
            if let Some(secs) = run["duration_seconds"].as_f64() {
                self.duration.get_or_create(&HookJobLabels { job, event }).observe(secs);
            }
        }
        *offset += end as u64 + 1;
    }
}

/// The server's own counters (what the state cannot tell afterwards).
pub struct Metrics {
    read: Histogram,
    write: Histogram,
    ops: Sorted<OpLabels, Counter>,
    errors: Counter,
    http: Sorted<HttpLabels, Counter>,
    http_latency: HistogramSorted<RouteLabels>,
    watches: Gauge,
    hooks: HookRuns,
}

/// Held by a watch while it waits: `kvform_watches` counts the live guards.
pub struct WatchGuard(Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One stored certificate's expiry.
pub struct CertExpiry {
    pub job: String,
    pub host: String,
    /// `certs/<name>.crt` → `<name>`.
    pub name: String,
    /// Unix seconds.
    pub not_after: i64,
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
    pub backend: &'static str,
    /// When the last successful `apply` finished (unix seconds).
    pub last_apply: Option<i64>,
    pub certificates: Vec<CertExpiry>,
    pub expired_keys: u64,
    pub tokens_expiring: u64,
}

/// The route template of a request path, for labels: a bounded set, never the raw path.
pub fn route(path: &str) -> &'static str {
    const EXACT: &[&str] = &[
        "/",
        "/login",
        "/logout",
        "/ui",
        "/ui/applies",
        "/ui/plan",
        "/ui/put",
        "/ui/delete",
        "/ui/restore",
        "/ui/search",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/namespaces",
        "/api/v1/applies",
        "/api/v1/plan",
        "/api/v1/tokens",
        "/api/v1/search",
    ];
    const PREFIXED: &[(&str, &str)] = &[
        ("/ui/ns/", "/ui/ns/:namespace"),
        ("/ui/key/", "/ui/key/:namespace/:key"),
        ("/api/v1/tokens/", "/api/v1/tokens/:name"),
        ("/api/v1/kv/", "/api/v1/kv/:path"),
        ("/api/v1/history/", "/api/v1/history/:namespace/:key"),
        ("/api/v1/restore/", "/api/v1/restore/:namespace/:key"),
    ];
    if let Some(r) = EXACT.iter().find(|r| **r == path) {
        return r;
    }
    PREFIXED.iter().find(|(p, _)| path.starts_with(p)).map_or("other", |(_, r)| r)
}

fn method_label(m: &str) -> &'static str {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].into_iter().find(|x| *x == m).unwrap_or("other")
}

impl Metrics {
    /// `logs`: the bucket's log directory, where the hook runner records its runs.
    pub fn new(logs: &Path) -> Metrics {
        Metrics {
            read: latency(),
            write: latency(),
            ops: Sorted::default(),
            errors: Counter::default(),
            http: Sorted::default(),
            http_latency: Sorted::with(latency),
            watches: Gauge::default(),
            hooks: HookRuns::new(logs.join(HOOK_RUNS_FILE)),
        }
    }

    /// Record one storage operation.
    pub fn observe(&self, op: &'static str, write: bool, took: Duration, ok: bool) {
        let h = if write { &self.write } else { &self.read };
        h.observe(took.as_secs_f64());
        self.ops.get_or_create(&OpLabels { op }).inc();
        if !ok {
            self.errors.inc();
        }
    }

    /// Record one HTTP answer (API, UI, metrics, errors alike).
    pub fn observe_http(&self, method: &str, path: &str, code: u16, took: Duration) {
        let route = route(path);
        self.http.get_or_create(&HttpLabels { method: method_label(method), route, code }).inc();
        self.http_latency.get_or_create(&RouteLabels { route }).observe(took.as_secs_f64());
    }

    /// A watch starts waiting; it counts until the guard drops.
    pub fn watch_started(&self) -> WatchGuard {
        self.watches.inc();
        WatchGuard(self.watches.clone())
    }

    pub fn render(&self, s: &StateFigures) -> String {
        self.hooks.refresh();
        let mut reg = Registry::with_prefix("kvform");
        reg.register("storage_read_duration_seconds", "Time of state reads", self.read.clone());
        reg.register("storage_write_duration_seconds", "Time of state writes (lock + commit)", self.write.clone());
        reg.register("storage_operations", "State operations by kind", self.ops.clone());
        reg.register("storage_errors", "Failed state operations", self.errors.clone());
        let size = Gauge::<i64>::default();
        size.set(i64::try_from(s.db_size_bytes).unwrap_or(i64::MAX));
        reg.register("storage_db_size_bytes", "Size of the state (SQLite file and WAL, or PostgreSQL tables)", size);
        let keys = Sorted::<ClassLabels, Gauge>::default();
        for (class, n) in &s.keys {
            keys.get_or_create(&ClassLabels { class: class.clone() }).set(*n as i64);
        }
        reg.register("storage_keys", "Live keys by namespace class", keys);
        let applies = Sorted::<StatusLabels, Counter>::default();
        for (status, n) in &s.applies {
            applies.get_or_create(&StatusLabels { status: status.clone() }).inc_by(*n);
        }
        reg.register("applies", "Recorded change sets (apply, kv set, serve writes, …) by status", applies);
        let gauge = |v: i64| {
            let g = Gauge::<i64>::default();
            g.set(v);
            g
        };
        reg.register("serial", "The state's serial", gauge(s.serial as i64));
        reg.register("lock_held", "1 while a kvform process holds the write lock", gauge(i64::from(s.lock_held)));
        reg.register(
            "build",
            "The running kvform",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("backend", s.backend),
                ("os", std::env::consts::OS),
                ("arch", std::env::consts::ARCH),
            ]),
        );
        reg.register("http_requests", "HTTP answers by method, route template and status code", self.http.clone());
        reg.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            self.http_latency.clone(),
        );
        reg.register("watches", "Watches (?index=N&wait=…) waiting right now", self.watches.clone());
        if let Some(t) = s.last_apply {
            reg.register(
                "last_apply_timestamp_seconds",
                "When the last successful apply finished (unix seconds)",
                gauge(t),
            );
        }
        reg.register("hook_runs", "Hook runs by job, event and result (success, failure)", self.hooks.runs.clone());
        reg.register("hook_duration_seconds", "Time of hook runs, by job and event", self.hooks.duration.clone());
        let certs = Sorted::<CertLabels, Gauge>::default();
        for c in &s.certificates {
            certs
                .get_or_create(&CertLabels { job: c.job.clone(), host: c.host.clone(), name: c.name.clone() })
                .set(c.not_after);
        }
        reg.register(
            "certificate_expiry_timestamp_seconds",
            "When each stored certificate expires (its notAfter, unix seconds)",
            certs,
        );
        reg.register(
            "keys_expired",
            "Live keys past their TTL (not served; kvform gc removes them)",
            gauge(s.expired_keys as i64),
        );
        reg.register("tokens_expiring", "Usable API tokens that expire within 7 days", gauge(s.tokens_expiring as i64));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

/// `maand/job/<job>/worker/<host>` + `certs/<name>.crt` → (job, host, name).
fn cert_labels(ns: &str, key: &str) -> Option<(String, String, String)> {
    let rest = ns.strip_prefix("maand/job/")?;
    let (job, host) = rest.split_once("/worker/")?;
    let name = key.strip_prefix(crate::kv::CERTS_PREFIX)?.strip_suffix(".crt")?;
    Some((job.to_string(), host.to_string(), name.to_string()))
}

/// `GET /metrics`: the state's figures read on the read connection, then the encoding.
pub(crate) fn scrape(app: &App) -> Result<Reply, Reply> {
    let now = crate::clock::now().unwrap_or_default();
    let r = app.reader();
    let meta = r.meta().map_err(Reply::state)?;
    let mut keys: BTreeMap<String, u64> = ["maand", "secrets", "vars"].iter().map(|c| (c.to_string(), 0)).collect();
    for (ns, n) in r.namespace_counts().map_err(Reply::state)? {
        *keys.entry(ns.split('/').next().unwrap_or("").to_string()).or_default() += n;
    }
    // A PostgreSQL state has no file: the size of its tables; SQLite's the file and its WAL.
    let db_size_bytes = match r.storage_bytes().map_err(Reply::state)? {
        Some(n) => n,
        None => {
            let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            let mut wal = r.path().as_os_str().to_owned();
            wal.push("-wal");
            size(r.path()) + size(Path::new(&wal))
        }
    };
    // A stored certificate that does not parse has no expiry to show (`state check` and the
    // plan report it); it is left out rather than shown as 0.
    let certificates = r
        .stored_certificates()
        .map_err(Reply::state)?
        .into_iter()
        .filter_map(|c| {
            let (job, host, name) = cert_labels(&c.namespace, &c.key)?;
            let info = crate::certs::inspect::read(&c.pem).ok()?;
            Some(CertExpiry { job, host, name, not_after: info.not_after })
        })
        .collect();
    let tokens_expiring = r
        .tokens()
        .map_err(Reply::state)?
        .iter()
        .filter(|t| t.usable(now) && t.expires_at.is_some_and(|e| e - now <= TOKEN_SOON))
        .count() as u64;
    let figures = StateFigures {
        db_size_bytes,
        keys: keys.into_iter().collect(),
        applies: r.apply_counts().map_err(Reply::state)?,
        serial: meta.serial,
        lock_held: matches!(r.lock_status(), Ok((Some(_), _))),
        backend: r.backend(),
        last_apply: r.last_successful_apply().map_err(Reply::state)?,
        certificates,
        expired_keys: r.expired_key_count(now).map_err(Reply::state)?,
        tokens_expiring,
    };
    drop(r);
    let mut reply = Reply::text(200, app.metrics.render(&figures), CONTENT_TYPE);
    reply.index = Some(meta.serial);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates() {
        assert_eq!(route("/api/v1/kv/vars/job/api/database_url"), "/api/v1/kv/:path");
        assert_eq!(route("/ui/key/vars/job/api/x"), "/ui/key/:namespace/:key");
        assert_eq!(route("/api/v1/namespaces"), "/api/v1/namespaces");
        assert_eq!(route("/wp-login.php"), "other");
        assert_eq!(
            cert_labels("maand/job/api/worker/10.0.0.1", "certs/server.crt"),
            Some(("api".into(), "10.0.0.1".into(), "server".into()))
        );
        assert_eq!(cert_labels("maand/job/api", "certs/server.crt"), None);
    }

    #[test]
    fn hook_runs_are_read_incrementally_and_only_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metrics::new(dir.path());
        let file = dir.path().join(HOOK_RUNS_FILE);
        let line = |r: &str| {
            format!(
                "{{\"job\":\"api\",\"event\":\"post_deploy\",\"command\":\"c\",\"host\":\"h\",\"result\":\"{r}\",\"duration_seconds\":0.2}}\n"
            )
        };
        std::fs::write(&file, line("success") + &line("failure") + "{\"job\":\"api\"").unwrap();
        let figures = StateFigures {
            db_size_bytes: 0,
            keys: vec![],
            applies: vec![],
            serial: 0,
            lock_held: false,
            backend: "sqlite",
            last_apply: None,
            certificates: vec![],
            expired_keys: 0,
            tokens_expiring: 0,
        };
        let out = m.render(&figures);
        assert!(
            out.contains("kvform_hook_runs_total{job=\"api\",event=\"post_deploy\",result=\"success\"} 1"),
            "{out}"
        );
        assert!(out.contains("kvform_hook_duration_seconds_count{job=\"api\",event=\"post_deploy\"} 2"), "{out}");
        // The half line completes; the next scrape counts it once.
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        std::io::Write::write_all(&mut f, b",\"event\":\"post_deploy\",\"result\":\"success\"}\n").unwrap();
        let out = m.render(&figures);
        assert!(
            out.contains("kvform_hook_runs_total{job=\"api\",event=\"post_deploy\",result=\"success\"} 2"),
            "{out}"
        );
        assert!(out.contains("kvform_hook_duration_seconds_count{job=\"api\",event=\"post_deploy\"} 2"), "{out}");
    }
}
