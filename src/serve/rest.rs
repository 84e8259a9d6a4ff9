//! The REST API (`/api/v1`) and `/metrics`.
//!
//! Life of a request: route (404) → authenticate (401: no, bad, expired or revoked token)
//! → body (413 over [`MAX_BODY`], 415 not JSON, 400 malformed) → the access table (403 with
//! the rule) → the key rules of `kv set` (400) → the state. Handlers run on the blocking
//! pool (SQLite is synchronous); a watch (`?index=N&wait=30s`) waits on the runtime.
//!
//! Paths: a namespace contains `/`, so in `/api/v1/kv/{namespace}/{key}` the **last**
//! segment is the key (percent-encode a `/` inside a key as `%2F`). `/api/v1/kv/{namespace}/`
//! (trailing slash) always lists; without it, a path whose namespace part is not a known
//! namespace but which is one as a whole lists too (`/api/v1/kv/vars/job/api`). History is
//! `/api/v1/history/{namespace}/{key}`.
//!
//! This file routes, authenticates and parses, and serves the watch, applies, plan and
//! metrics; the key handlers are in [`super::keys`], the admin token routes in
//! `super::tokens`.

use super::App;
use super::access::Denial;
use crate::kv::rules;
use crate::state::StateError;
use crate::state::tokens::{TokenRecord, token_hash};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest accepted request body.
pub const MAX_BODY: usize = 1 << 20;
/// Longest a watch may block.
const MAX_WAIT: Duration = Duration::from_secs(600);

pub(crate) fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(serve).with_state(app)
}

/// An answer: status, body, content type.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) content_type: &'static str,
    pub(crate) index: Option<u64>,
    /// The key version this answer is about: sent as `ETag: "N"` (for `If-Match`).
    pub(crate) etag: Option<u64>,
}

impl Reply {
    pub(crate) fn json(status: u16, v: Value) -> Reply {
        Reply { status, body: v.to_string(), content_type: "application/json", index: None, etag: None }
    }
    pub(crate) fn ok(v: Value) -> Reply {
        Reply::json(200, v)
    }
    pub(crate) fn error(status: u16, error: impl Into<String>, hint: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "error": error.into(), "hint": hint.into() }))
    }
    pub(crate) fn denied(d: Denial) -> Reply {
        Reply::json(403, json!({ "error": d.message, "rule": d.rule, "hint": d.hint }))
    }
    /// A state error: locked or the database unreachable → 503 (retry later), a typed value
    /// that does not fit → 400, else 500.
    pub(crate) fn state(e: StateError) -> Reply {
        let text = e.to_string();
        let (msg, hint) = text.split_once("\n  help: ").unwrap_or((&text, ""));
        if e.is_unavailable() {
            let hint = "the state's PostgreSQL server cannot be reached; retry once it is back (kvform serve reconnects by itself)";
            return Reply::error(503, msg, hint);
        }
        let status = match e {
            StateError::Locked { .. } => 503,
            StateError::WrongType { .. } | StateError::Invalid { .. } | StateError::Derived { .. } => 400,
            _ => 500,
        };
        Reply::error(status, msg, hint)
    }
}

/// A parsed request.
pub(crate) struct Req {
    pub(crate) method: String,
    /// Path segments after the leading `/`, percent-decoded.
    pub(crate) segments: Vec<String>,
    pub(crate) trailing_slash: bool,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) body: Option<Map<String, Value>>,
    pub(crate) token: TokenRecord,
    /// `If-Match: "N"`: the key version a write expects (compare-and-set).
    pub(crate) if_match: Option<String>,
}

impl Req {
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, Reply> {
        match self.query.get(name).map(String::as_str) {
            None => Ok(default),
            Some("true" | "1" | "") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(Reply::error(400, format!("?{name}={v} is not true or false"), "use true or false")),
        }
    }
}

/// Every answer (API, UI, metrics, errors) goes out with `X-Content-Type-Options: nosniff`,
/// so a browser never runs a stored value served as text or JSON as something else.
async fn serve(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    let peer = extensions.get::<axum::extract::ConnectInfo<crate::http::Peer>>().map(|c| c.0.0.ip());
    let started = Instant::now();
    let (m, path) = (method.as_str().to_string(), uri.path().to_string());
    let mut response = answer(app.clone(), method, uri, headers, peer, body).await;
    app.metrics.observe_http(&m, &path, response.status().as_u16(), started.elapsed());
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, axum::http::HeaderValue::from_static("nosniff"));
    response
}

async fn answer(
    app: Arc<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
    body: Body,
) -> Response {
    let method = method.as_str().to_string();
    let path = uri.path();
    if super::ui::is_ui(path) {
        return super::ui::serve(app, &method, &uri, &headers, peer, body).await;
    }
    if method == "GET" && path == "/api/v1/openapi.json" {
        return respond(Reply::ok(super::openapi::document()));
    }
    // `--metrics-public`: scrapers read /metrics without a token; everything else still needs one.
    if app.metrics_public && method == "GET" && path == "/metrics" {
        let app2 = app.clone();
        let reply = tokio::task::spawn_blocking(move || super::metrics::scrape(&app2).unwrap_or_else(|r| r))
            .await
            .unwrap_or_else(|_| Reply::error(500, "the request handler panicked", "this is a bug in kvform"));
        return respond(reply);
    }
    if !known_route(path) {
        return respond(Reply::error(
            404,
            format!("no route {path}"),
            "the API is under /api/v1 (see /api/v1/openapi.json); metrics are at /metrics",
        ));
    }
    let req = match prepare(&app, method, &uri, &headers, body).await {
        Ok(r) => r,
        Err(reply) => return respond(reply),
    };
    if let Some(index) = req.query.get("index") {
        let Ok(index) = index.parse::<u64>() else {
            return respond(Reply::error(
                400,
                format!("?index={index} is not a serial"),
                "pass the X-Kvform-Index of a previous answer",
            ));
        };
        let wait = match req.query.get("wait").map(|w| parse_wait(w)) {
            None => Ok(Duration::from_secs(300)),
            Some(w) => w,
        };
        let Ok(wait) = wait else {
            return respond(Reply::error(
                400,
                "?wait is not a duration",
                "use seconds or a duration such as 30s or 5m",
            ));
        };
        watch(&app, index, wait.min(MAX_WAIT)).await;
    }
    let app2 = app.clone();
    let reply = tokio::task::spawn_blocking(move || dispatch(&app2, &req))
        .await
        .unwrap_or_else(|_| Reply::error(500, "the request handler panicked", "this is a bug in kvform"));
    let mut reply = reply;
    if reply.index.is_none() {
        reply.index = app.read(|r| r.serial()).ok();
    }
    respond(reply)
}

fn known_route(path: &str) -> bool {
    path == "/metrics"
        || ["/api/v1/namespaces", "/api/v1/applies", "/api/v1/plan", "/api/v1/tokens"].contains(&path)
        || path.starts_with("/api/v1/tokens/")
        || path.starts_with("/api/v1/kv/")
        || path.starts_with("/api/v1/history/")
        || path.starts_with("/api/v1/restore/")
}

/// `wait` in the one duration grammar of every door (`30`, `30s`, `5m`, `1h`, `PT1M`).
fn parse_wait(s: &str) -> Result<Duration, ()> {
    crate::clock::parse_duration(s).map(Duration::from_secs).ok_or(())
}

/// Block (on the runtime, not a thread) until the serial passes `index` or `wait` is over.
async fn watch(app: &Arc<App>, index: u64, wait: Duration) {
    let _in_flight = app.metrics.watch_started();
    let deadline = Instant::now() + wait;
    loop {
        let serial = app.read(|r| r.serial()).unwrap_or(u64::MAX);
        if serial > index || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response();
    if let Some(i) = reply.index
        && let Ok(v) = i.to_string().parse()
    {
        r.headers_mut().insert("x-kvform-index", v);
    }
    if let Some(v) = reply.etag
        && let Ok(v) = format!("\"{v}\"").parse()
    {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn unauthorized(why: &str) -> Reply {
    Reply::error(
        401,
        why,
        "send `Authorization: Bearer <token>` (create one with `kvform token create NAME --role reader`)",
    )
}

/// The usable token with this hash (401 when unknown, revoked or expired). Checked on every
/// request, so a revocation takes effect at once (web sessions too).
pub(crate) fn token_for(app: &App, hash: &str) -> Result<TokenRecord, Reply> {
    let now = crate::clock::now().unwrap_or_default();
    match app.read(|r| r.token_by_hash(hash)).map_err(Reply::state)? {
        None => Err(unauthorized("unknown token")),
        Some(t) if t.revoked_at.is_some() => Err(unauthorized(&format!("token `{}` was revoked", t.name))),
        Some(t) if !t.usable(now) => Err(unauthorized(&format!("token `{}` has expired", t.name))),
        Some(t) => Ok(t),
    }
}

async fn prepare(app: &Arc<App>, method: String, uri: &Uri, headers: &HeaderMap, body: Body) -> Result<Req, Reply> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(auth) = auth else { return Err(unauthorized("no credentials")) };
    let Some(presented) = auth.trim().strip_prefix("Bearer ").map(str::trim) else {
        return Err(unauthorized("the Authorization header is not a bearer token"));
    };
    let token = token_for(app, &token_hash(presented))?;
    let bytes = crate::http::read_body(headers, body, MAX_BODY)
        .await
        .map_err(|e| Reply::error(e.status(), e.to_string(), format!("send at most {MAX_BODY} bytes")))?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(Reply::error(
                415,
                format!("request bodies must be JSON (got {ct:?})"),
                "send `Content-Type: application/json`",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Some(m),
            Ok(_) => return Err(Reply::error(400, "the request body must be a JSON object", "send {\"value\": ...}")),
            Err(e) => {
                return Err(Reply::error(
                    400,
                    format!("the request body is not valid JSON: {e}"),
                    "check the JSON syntax",
                ));
            }
        }
    };
    let raw = uri.path();
    let trailing_slash = raw.ends_with('/');
    let segments = raw
        .trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Req { method, segments, trailing_slash, query, body, token, if_match })
}

fn dispatch(app: &App, req: &Req) -> Reply {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let result = match (m, segs.as_slice()) {
        ("GET", ["metrics"]) => super::metrics::scrape(app),
        ("GET", ["api", "v1", "namespaces"]) => timed(app, "namespaces", false, || super::keys::namespaces(app)),
        ("GET", ["api", "v1", "applies"]) => timed(app, "applies", false, || applies(app, req)),
        ("GET", ["api", "v1", "plan"]) => plan(app),
        ("GET", ["api", "v1", "tokens"]) => super::tokens::list(app, req),
        ("POST", ["api", "v1", "tokens"]) => super::tokens::create(app, req),
        ("DELETE", ["api", "v1", "tokens", name]) => super::tokens::revoke(app, req, name),
        ("GET", ["api", "v1", "history", rest @ ..]) => split_key(rest)
            .and_then(|(ns, key)| timed(app, "history", false, || super::keys::history(app, req, &ns, key))),
        ("POST", ["api", "v1", "restore", rest @ ..]) => split_key(rest)
            .and_then(|(ns, key)| timed(app, "restore", true, || super::keys::restore(app, req, &ns, key))),
        (_, ["api", "v1", "kv", rest @ ..]) => match target(rest, req.trailing_slash) {
            Err(r) => Err(r),
            Ok(Target::Namespace(ns)) if m == "GET" => timed(app, "list", false, || super::keys::list(app, req, &ns)),
            Ok(Target::Namespace(ns)) => Err(Reply::error(
                405,
                format!("{m} is not allowed on the namespace {ns}"),
                "GET lists it; PUT/DELETE take a key",
            )),
            Ok(Target::Key(ns, key)) => match m {
                "GET" => timed(app, "get", false, || super::keys::get(app, req, &ns, &key)),
                // PUT and PATCH are the same edit: what the body omits is kept.
                "PUT" | "PATCH" => timed(app, "put", true, || super::keys::put(app, req, &ns, &key)),
                "DELETE" => timed(app, "delete", true, || super::keys::delete(app, req, &ns, &key)),
                _ => Err(Reply::error(405, format!("{m} is not allowed on a key"), "use GET, PUT, PATCH or DELETE")),
            },
        },
        _ => Err(Reply::error(404, format!("no route {m} /{}", req.segments.join("/")), "see /api/v1/openapi.json")),
    };
    result.unwrap_or_else(|r| r)
}

/// Run a storage operation and record it in the metrics (a 5xx counts as an error).
fn timed(app: &App, op: &'static str, write: bool, f: impl FnOnce() -> Result<Reply, Reply>) -> Result<Reply, Reply> {
    let t = Instant::now();
    let r = f();
    let failed = matches!(&r, Err(e) | Ok(e) if e.status >= 500);
    app.metrics.observe(op, write, t.elapsed(), !failed);
    r
}

enum Target {
    Namespace(String),
    Key(String, String),
}

pub(crate) fn known(ns: &str) -> bool {
    rules::namespace(ns).is_ok()
}

fn target(segs: &[&str], trailing_slash: bool) -> Result<Target, Reply> {
    let whole = segs.join("/");
    if trailing_slash || segs.len() < 2 {
        return if known(&whole) { Ok(Target::Namespace(whole)) } else { Err(unknown_ns(&whole)) };
    }
    match split_key(segs) {
        Ok((ns, key)) => Ok(Target::Key(ns, key.to_string())),
        Err(_) if known(&whole) => Ok(Target::Namespace(whole)),
        Err(r) => Err(r),
    }
}

fn unknown_ns(ns: &str) -> Reply {
    Reply::error(
        404,
        format!("unknown namespace {ns:?}"),
        "namespaces follow the layout (maand/job/<job>, vars/job/<job>, …); GET /api/v1/namespaces lists them",
    )
}

/// The last segment is the key, the rest the namespace.
fn split_key<'a>(segs: &[&'a str]) -> Result<(String, &'a str), Reply> {
    let Some((key, ns)) = segs.split_last() else { return Err(unknown_ns("")) };
    let ns = ns.join("/");
    if !known(&ns) {
        return Err(unknown_ns(&ns));
    }
    Ok((ns, key))
}

pub(crate) fn rfc3339(t: i64) -> Value {
    json!(crate::clock::format_time(t))
}

pub(crate) fn applies(app: &App, req: &Req) -> Result<Reply, Reply> {
    let limit = req.query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).min(1000);
    let r = app.reader();
    let records = r.audit(limit).map_err(Reply::state)?;
    let mut out = Vec::with_capacity(records.len());
    for a in records {
        let changes = r.changes_at(a.serial).map_err(Reply::state)?;
        out.push(json!({
            "serial": a.serial, "operation": a.operation, "actor": a.actor, "tool_version": a.tool_version,
            "started_at": rfc3339(a.started_at), "finished_at": rfc3339(a.finished_at), "duration_ms": a.duration_ms,
            "counts": { "added": a.added, "changed": a.changed, "destroyed": a.destroyed, "removed": a.removed, "resealed": a.resealed },
            "status": a.status, "changes": changes,
        }));
    }
    Ok(Reply::ok(json!({ "applies": out })))
}

pub(crate) fn plan(app: &App) -> Result<Reply, Reply> {
    let plan = (app.planner)().map_err(|e| {
        let (msg, hint) = e.split_once("\n  help: ").map_or((e.as_str(), ""), |(a, b)| (a, b));
        Reply::error(422, msg, hint)
    })?;
    Ok(Reply {
        status: 200,
        body: crate::plan::render_json(&plan),
        content_type: "application/json",
        index: None,
        etag: None,
    })
}
