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
use super::api_types::{Applies, ApplyCounts, ApplyView, ChangeView, ErrorBody};
use crate::kv::rules;
use crate::state::StateError;
use crate::state::tokens::{TokenRecord, token_hash};
use crate::state::watch::WatchScope;
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
    /// More headers (`Allow`, `WWW-Authenticate`).
    pub(crate) headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    pub(crate) fn text(status: u16, body: String, content_type: &'static str) -> Reply {
        Reply { status, body, content_type, index: None, etag: None, headers: Vec::new() }
    }
    pub(crate) fn json(status: u16, v: Value) -> Reply {
        Reply::text(status, v.to_string(), "application/json")
    }
    pub(crate) fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    pub(crate) fn ok(v: Value) -> Reply {
        Reply::json(200, v)
    }
    pub(crate) fn error(status: u16, error: impl Into<String>, hint: impl Into<String>) -> Reply {
        Reply::body(status, &ErrorBody { error: error.into(), hint: hint.into(), rule: None })
    }
    pub(crate) fn denied(d: Denial) -> Reply {
        Reply::body(403, &ErrorBody { error: d.message, hint: d.hint, rule: Some(d.rule.to_string()) })
    }
    /// `v` (one of the API's body types, [`super::api_types`]) as JSON.
    pub(crate) fn body(status: u16, v: &impl serde::Serialize) -> Reply {
        match serde_json::to_string(v) {
            Ok(text) => Reply::text(status, text, "application/json"),
            Err(e) => Reply::json(500, json!({ "error": e.to_string(), "hint": "this is a bug in kvform" })),
        }
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
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) body: Option<Map<String, Value>>,
    pub(crate) token: TokenRecord,
    /// `If-Match: "N"`: the key version a write expects (compare-and-set).
    pub(crate) if_match: Option<String>,
    /// Answer `number`, `boolean` and `json` values as JSON (the API); the web UI's forms
    /// take the stored text (`false`).
    pub(crate) typed_values: bool,
}

impl Req {
    /// A request of the web UI to the same handlers: its forms show and send the stored
    /// text of a value, not the typed JSON.
    pub(crate) fn for_ui(
        token: &TokenRecord,
        query: &BTreeMap<String, String>,
        body: Option<Map<String, Value>>,
    ) -> Req {
        Req {
            method: String::new(),
            query: query.clone(),
            body,
            token: token.clone(),
            if_match: None,
            typed_values: false,
        }
    }

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
    let raw = uri.path();
    let trailing_slash = raw.ends_with('/');
    let segments: Vec<String> = raw
        .trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let route = match Route::resolve(&segments, trailing_slash) {
        Ok(r) => r,
        Err(reply) => return respond(reply),
    };
    // The methods a route takes are no secret: OPTIONS and a 405 answer before the token.
    let allow = route.allow();
    if method == "OPTIONS" {
        let reply = Reply::text(204, String::new(), "text/plain; charset=utf-8").with_header(header::ALLOW, allow);
        return respond(reply);
    }
    let head = method == "HEAD";
    let method = if head { "GET".to_string() } else { method };
    if !route.methods().contains(&method.as_str()) {
        let reply = Reply::error(405, format!("{method} is not allowed on {path}"), format!("this path takes {allow}"))
            .with_header(header::ALLOW, allow);
        return respond(reply);
    }
    if matches!(route, Route::OpenApi) {
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
    let req = match prepare(&app, method, &uri, &headers, body).await {
        Ok(r) => r,
        Err(reply) => return respond(reply),
    };
    let accepted = route.params(&req.method);
    let unknown: Vec<&str> = req.query.keys().map(String::as_str).filter(|k| !accepted.contains(k)).collect();
    if !unknown.is_empty() {
        let names = unknown.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        let hint = if accepted.is_empty() {
            format!("{} {path} takes no query parameters", req.method)
        } else {
            format!(
                "{} {path} takes {}",
                req.method,
                accepted.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            )
        };
        return respond(Reply::error(400, format!("unknown query parameter {names}"), hint));
    }
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
        watch(&app, &route.scope(&req), index, wait.min(MAX_WAIT)).await;
    }
    let app2 = app.clone();
    let scope = route.scope(&req);
    let reply = tokio::task::spawn_blocking(move || dispatch(&app2, &route, &req))
        .await
        .unwrap_or_else(|_| Reply::error(500, "the request handler panicked", "this is a bug in kvform"));
    let mut reply = reply;
    // `X-Kvform-Index`: what a watch of this path waits on (a write's answer: its serial).
    if reply.index.is_none() {
        reply.index = app.read(|r| r.watch_index(&scope)).ok();
    }
    // HEAD: the GET answer's status and headers (Content-Length too); hyper sends no body.
    respond(reply)
}

/// What a path names, before the method or the token is looked at.
pub(crate) enum Route {
    Metrics,
    OpenApi,
    Namespaces,
    Applies,
    Plan,
    Search,
    Tokens,
    Token(String),
    History(String, String),
    Restore(String, String),
    /// A namespace's keys.
    Namespace(String),
    /// A node of the namespace tree that is not a namespace (`vars/job`, or "" for the whole
    /// bucket): its subtree's keys.
    Subtree(String),
    Key(String, String),
}

/// Every route of the API: its path template (as the OpenAPI document names it) and a path
/// that resolves to it. [`routes`] resolves these, so the document and its test see exactly
/// what the router answers.
const ROUTES: &[(&str, &str)] = &[
    ("/api/v1/namespaces", "/api/v1/namespaces"),
    ("/api/v1/kv/{namespace}/", "/api/v1/kv/vars/job/api/"),
    ("/api/v1/kv/{namespace}/{key}", "/api/v1/kv/vars/job/api/k"),
    ("/api/v1/history/{namespace}/{key}", "/api/v1/history/vars/job/api/k"),
    ("/api/v1/restore/{namespace}/{key}", "/api/v1/restore/vars/job/api/k"),
    ("/api/v1/search", "/api/v1/search"),
    ("/api/v1/applies", "/api/v1/applies"),
    ("/api/v1/plan", "/api/v1/plan"),
    ("/api/v1/tokens", "/api/v1/tokens"),
    ("/api/v1/tokens/{name}", "/api/v1/tokens/ci"),
    ("/api/v1/openapi.json", "/api/v1/openapi.json"),
    ("/metrics", "/metrics"),
];

/// One route as the router answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub template: &'static str,
    /// The methods, without the HEAD and OPTIONS every route adds.
    pub methods: Vec<&'static str>,
    /// Per method, the query parameters it accepts.
    pub params: Vec<(&'static str, &'static [&'static str])>,
}

/// Every route, resolved through the router's own [`Route::resolve`] (a sample path that
/// resolves to another template than its own is a bug, which the OpenAPI test reports).
pub fn routes() -> Vec<RouteInfo> {
    ROUTES
        .iter()
        .map(|(template, sample)| {
            let segments: Vec<String> = sample.trim_matches('/').split('/').map(str::to_string).collect();
            match Route::resolve(&segments, sample.ends_with('/')) {
                Ok(r) => RouteInfo {
                    template: r.template(),
                    methods: r.methods().to_vec(),
                    params: r.methods().iter().map(|m| (*m, r.params(m))).collect(),
                },
                Err(_) => RouteInfo { template, methods: Vec::new(), params: Vec::new() },
            }
        })
        .collect()
}

/// The watch parameters, accepted on the reads that can block.
const WATCH: [&str; 2] = ["index", "wait"];

impl Route {
    fn resolve(segments: &[String], trailing_slash: bool) -> Result<Route, Reply> {
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        Ok(match segs.as_slice() {
            ["metrics"] => Route::Metrics,
            ["api", "v1", "openapi.json"] => Route::OpenApi,
            ["api", "v1", "namespaces"] => Route::Namespaces,
            ["api", "v1", "applies"] => Route::Applies,
            ["api", "v1", "plan"] => Route::Plan,
            ["api", "v1", "search"] => Route::Search,
            ["api", "v1", "tokens"] => Route::Tokens,
            ["api", "v1", "tokens", name] => Route::Token(name.to_string()),
            ["api", "v1", "history", rest @ ..] => {
                let (ns, key) = split_key(rest)?;
                Route::History(ns, key.to_string())
            }
            ["api", "v1", "restore", rest @ ..] => {
                let (ns, key) = split_key(rest)?;
                Route::Restore(ns, key.to_string())
            }
            ["api", "v1", "kv", rest @ ..] => target(rest, trailing_slash)?,
            _ => {
                return Err(Reply::error(
                    404,
                    format!("no route /{}", segments.join("/")),
                    "the API is under /api/v1 (see /api/v1/openapi.json); metrics are at /metrics",
                ));
            }
        })
    }

    /// The path template the OpenAPI document names this route by.
    fn template(&self) -> &'static str {
        match self {
            Route::Metrics => "/metrics",
            Route::OpenApi => "/api/v1/openapi.json",
            Route::Namespaces => "/api/v1/namespaces",
            Route::Applies => "/api/v1/applies",
            Route::Plan => "/api/v1/plan",
            Route::Search => "/api/v1/search",
            Route::Tokens => "/api/v1/tokens",
            Route::Token(_) => "/api/v1/tokens/{name}",
            Route::History(..) => "/api/v1/history/{namespace}/{key}",
            Route::Restore(..) => "/api/v1/restore/{namespace}/{key}",
            Route::Namespace(_) | Route::Subtree(_) => "/api/v1/kv/{namespace}/",
            Route::Key(..) => "/api/v1/kv/{namespace}/{key}",
        }
    }

    /// The methods this route answers (HEAD wherever GET, OPTIONS everywhere, are added by
    /// [`Route::allow`]).
    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Tokens => &["GET", "POST"],
            Route::Token(_) => &["DELETE"],
            Route::Restore(..) => &["POST"],
            Route::Key(..) => &["GET", "PUT", "PATCH", "DELETE"],
            _ => &["GET"],
        }
    }

    /// The `Allow` header: the methods, HEAD after GET, and OPTIONS.
    pub(crate) fn allow(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        for m in self.methods() {
            out.push(m);
            if *m == "GET" {
                out.push("HEAD");
            }
        }
        out.push("OPTIONS");
        out.join(", ")
    }

    /// What a watch of this route (`?index=N&wait=`) waits on, and its answer's
    /// `X-Kvform-Index`: a key's, a namespace's (with `?prefix`, `?recurse`) or a subtree's
    /// own index; the bucket's serial for the rest.
    fn scope(&self, req: &Req) -> WatchScope {
        let prefix = req.query.get("prefix").cloned().unwrap_or_default();
        let recurse = req.flag("recurse", false).unwrap_or(false);
        match self {
            Route::Key(ns, key) | Route::History(ns, key) => WatchScope::Key { ns: ns.clone(), key: key.clone() },
            Route::Namespace(ns) if recurse => WatchScope::Subtree { root: ns.clone(), prefix },
            Route::Namespace(ns) => WatchScope::Namespace { ns: ns.clone(), prefix },
            Route::Subtree(root) => WatchScope::Subtree { root: root.clone(), prefix },
            _ => WatchScope::Bucket,
        }
    }

    /// The query parameters `method` takes here; any other is a 400 naming it.
    pub(crate) fn params(&self, method: &str) -> &'static [&'static str] {
        match (self, method) {
            (Route::Namespace(_) | Route::Subtree(_), "GET") => {
                &["prefix", "recurse", "limit", "cursor", WATCH[0], WATCH[1]]
            }
            (Route::Key(..), "GET") => &["error_on_missing", "version", WATCH[0], WATCH[1]],
            (Route::Key(..), "PUT" | "PATCH") | (Route::Restore(..), _) => &["cas"],
            (Route::Key(..), "DELETE") => &["cas", "error_on_missing"],
            (Route::Applies, _) => &["limit", WATCH[0], WATCH[1]],
            (Route::Search, _) => &["q", "limit", "cursor"],
            (Route::Namespaces, _) => &["limit", "cursor", WATCH[0], WATCH[1]],
            (Route::Plan | Route::History(..), _) => &WATCH,
            _ => &[],
        }
    }
}

/// `wait` in the one duration grammar of every door (`30`, `30s`, `5m`, `1h`, `PT1M`).
fn parse_wait(s: &str) -> Result<Duration, ()> {
    crate::clock::parse_duration(s).map(Duration::from_secs).ok_or(())
}

/// After a notification, a commit may not be visible to the read connection yet: SQLite
/// updates its WAL index just after writing the frames a file event is about, and the
/// kernel merges a commit's write event into an earlier one still queued. Look again after
/// each of these (milliseconds, counted from the last look) before going back to sleep.
const FOLLOW_UPS: [Duration; 8] = [
    Duration::from_millis(1),
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(3),
    Duration::from_millis(5),
    Duration::from_millis(8),
    Duration::from_millis(15),
    Duration::from_millis(30),
];

/// Block (on the runtime, not a thread) until the index of `scope` passes `index` or `wait`
/// is over; woken by commits ([`super::watch::Changes`]), not by polling.
async fn watch(app: &Arc<App>, scope: &WatchScope, index: u64, wait: Duration) {
    let _in_flight = app.metrics.watch_started();
    let mut rx = app.changes.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    let mut follow_up = FOLLOW_UPS.len();
    loop {
        rx.borrow_and_update();
        let now_index = app.read(|r| r.watch_index(scope)).unwrap_or(u64::MAX);
        let now = tokio::time::Instant::now();
        if now_index > index || now >= deadline {
            break;
        }
        let next = FOLLOW_UPS.get(follow_up).copied().unwrap_or(super::watch::BACKSTOP);
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                }
                follow_up = 0;
            }
            _ = tokio::time::sleep_until(deadline.min(now + next)) => follow_up += 1,
        }
    }
}

pub(crate) fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response()
    };
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
    for (name, value) in reply.headers {
        if let Ok(v) = value.parse() {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// 401, with `WWW-Authenticate: Bearer` (RFC 6750: `invalid_token` when one was sent).
fn unauthorized(why: &str) -> Reply {
    let challenge = if why == NO_CREDENTIALS {
        "Bearer realm=\"kvform\"".to_string()
    } else {
        format!("Bearer realm=\"kvform\", error=\"invalid_token\", error_description=\"{}\"", why.replace('"', "'"))
    };
    Reply::error(
        401,
        why,
        "send `Authorization: Bearer <token>` (create one with `kvform token create NAME --role reader`)",
    )
    .with_header(header::WWW_AUTHENTICATE, challenge)
}

const NO_CREDENTIALS: &str = "no credentials";

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
    let Some(auth) = auth else { return Err(unauthorized(NO_CREDENTIALS)) };
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
    let query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok(Req { method, query, body, token, if_match, typed_values: true })
}

fn dispatch(app: &App, route: &Route, req: &Req) -> Reply {
    let m = req.method.as_str();
    let result = match (route, m) {
        (Route::Metrics, _) => super::metrics::scrape(app),
        (Route::Namespaces, _) => timed(app, "namespaces", false, || super::keys::namespace_tree(app, req)),
        (Route::Applies, _) => timed(app, "applies", false, || applies(app, req)),
        (Route::Plan, _) => plan(app),
        (Route::Search, _) => timed(app, "search", false, || super::search::search(app, req)),
        (Route::Tokens, "POST") => super::tokens::create(app, req),
        (Route::Tokens, _) => super::tokens::list(app, req),
        (Route::Token(name), _) => super::tokens::revoke(app, req, name),
        (Route::History(ns, key), _) => timed(app, "history", false, || super::keys::history(app, req, ns, key)),
        (Route::Restore(ns, key), _) => timed(app, "restore", true, || super::keys::restore(app, req, ns, key)),
        (Route::Namespace(ns), _) => timed(app, "list", false, || super::keys::list(app, req, ns)),
        (Route::Subtree(ns), _) => timed(app, "list", false, || super::keys::list_tree(app, req, ns, true)),
        (Route::Key(ns, key), "GET") => timed(app, "get", false, || super::keys::get(app, req, ns, key)),
        // PUT and PATCH are the same edit: what the body omits is kept.
        (Route::Key(ns, key), "PUT" | "PATCH") => timed(app, "put", true, || super::keys::put(app, req, ns, key)),
        (Route::Key(ns, key), _) => timed(app, "delete", true, || super::keys::delete(app, req, ns, key)),
        (Route::OpenApi, _) => Ok(Reply::ok(super::openapi::document())),
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

pub(crate) fn known(ns: &str) -> bool {
    rules::namespace(ns).is_ok()
}

/// `/api/v1/kv/…`: a key, a namespace, or (a trailing slash, or a path that names no
/// namespace) a node of the tree whose subtree is listed.
fn target(segs: &[&str], trailing_slash: bool) -> Result<Route, Reply> {
    let whole = segs.join("/");
    if trailing_slash || segs.len() < 2 {
        return Ok(if known(&whole) { Route::Namespace(whole) } else { Route::Subtree(whole) });
    }
    match split_key(segs) {
        Ok((ns, key)) => Ok(Route::Key(ns, key.to_string())),
        Err(_) if known(&whole) => Ok(Route::Namespace(whole)),
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

pub(crate) fn applies(app: &App, req: &Req) -> Result<Reply, Reply> {
    let limit = req.query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).min(1000);
    let r = app.reader();
    let records = r.audit(limit).map_err(Reply::state)?;
    let mut out = Vec::with_capacity(records.len());
    let time = crate::clock::format_time;
    for a in records {
        let changes = r.changes_at(a.serial).map_err(Reply::state)?;
        out.push(ApplyView {
            serial: a.serial,
            operation: a.operation,
            actor: a.actor,
            tool_version: a.tool_version,
            started_at: time(a.started_at),
            finished_at: time(a.finished_at),
            duration_ms: a.duration_ms,
            counts: ApplyCounts {
                added: a.added,
                changed: a.changed,
                destroyed: a.destroyed,
                removed: a.removed,
                resealed: a.resealed,
            },
            status: a.status,
            changes: changes
                .into_iter()
                .map(|c| ChangeView {
                    namespace: c.namespace,
                    key: c.key,
                    version: c.version,
                    deleted: c.deleted,
                    writer: c.writer,
                })
                .collect(),
        });
    }
    Ok(Reply::body(200, &Applies { applies: out }))
}

pub(crate) fn plan(app: &App) -> Result<Reply, Reply> {
    let plan = (app.planner)().map_err(|e| {
        let (msg, hint) = e.split_once("\n  help: ").map_or((e.as_str(), ""), |(a, b)| (a, b));
        Reply::error(422, msg, hint)
    })?;
    Ok(Reply::text(200, crate::plan::render_json(&plan), "application/json"))
}
