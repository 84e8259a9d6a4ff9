//! The hook HTTP API: an axum server on 127.0.0.1 that lives for one command (the same
//! stack as `kvform serve`, [`crate::http`]).
//!
//! Life of a request: route (404 unknown path, 405 wrong method) → authenticate (401) →
//! body (413 too large, 415 not JSON, 400 malformed) → access table (403 + rule) → store.
//! Connections are kept alive; the handler runs on tokio's blocking pool, because
//! `POST /semaphore/acquire` may block for up to an hour and must not starve the hooks that
//! would release the slot. The exception is a `GET /kv` the store can answer without
//! waiting (SQLite, store not in use by the executor): it is answered on the runtime.
//!
//! Authentication is `Authorization: Bearer <KVFORM_TOKEN>`. A bearer request that also
//! sends the maand headers (`X-ALLOCATION-ID`, `EVENT`, `COMMAND`) must agree with the
//! token, so a token cannot be replayed under another event. With
//! [`ApiConfig::header_auth`] (on for a fixed `api_port`, for maand clients) a request
//! with no bearer token is accepted when those three headers name a hook that is running
//! right now.

use super::access::{self, Caller, Op};
use super::redact::SeenSecrets;
use super::routes;
use super::semaphore::Semaphores;
use super::store::HookStore;
use super::token::{HookIdentity, HookToken, TokenError, TokenId, TokenRegistry};
use crate::model::types::DesiredJob;
use crate::workspace::types::Event;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// The store as the server shares it with the apply executor.
pub type SharedStore = Arc<Mutex<dyn HookStore>>;

/// Largest accepted request body.
const MAX_BODY: usize = 1 << 20;

/// How the server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// 0 = an ephemeral port; otherwise a fixed port (e.g. 8080 for maand clients).
    pub port: u16,
    /// Accept the maand header form (`X-ALLOCATION-ID`, `EVENT`, `COMMAND`) without a token.
    pub header_auth: bool,
}

impl ApiConfig {
    /// `kvform.hcl` `hooks { api_port }`: header auth is on exactly for a fixed port, the
    /// setup existing maand clients expect.
    pub fn for_port(port: u16) -> ApiConfig {
        ApiConfig { port, header_auth: port != 0 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "cannot start the hook API on 127.0.0.1:{port}: {reason}\n  help: pick another `hooks {{ api_port }}` in kvform.hcl, or 0 for an ephemeral port"
    )]
    Bind { port: u16, reason: String },
}

/// One downstream command that demands a job+command (`GET /demands`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DemandEntry {
    pub job: String,
    pub command: String,
    pub demand_config: Value,
}

/// Who demands whom, derived once from the desired jobs.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// job -> jobs it demands (sorted).
    upstreams: BTreeMap<String, Vec<String>>,
    /// (job, command) -> downstream commands that demand it, sorted by job then command.
    downstream: BTreeMap<(String, String), Vec<DemandEntry>>,
    /// (namespace, key) -> where the workspace declares it (`workspace/jobs/<job>/vars.hcl:LINE`):
    /// a hook's write there is reverted by the next apply, and its answer says so.
    declared: BTreeMap<(String, String), String>,
}

impl Topology {
    pub fn from_jobs(jobs: &BTreeMap<String, DesiredJob>) -> Topology {
        let mut t = Topology::default();
        for (name, job) in jobs {
            t.upstreams.insert(name.clone(), job.upstreams.clone());
            for (cmd_name, cmd) in &job.commands {
                if let Some(d) = &cmd.demands {
                    let config = serde_json::from_str(&d.config_json).unwrap_or_else(|_| json!({}));
                    t.downstream.entry((d.job.clone(), d.command.clone())).or_default().push(DemandEntry {
                        job: name.clone(),
                        command: cmd_name.clone(),
                        demand_config: config,
                    });
                }
            }
        }
        for v in t.downstream.values_mut() {
            v.sort_by(|a, b| (&a.job, &a.command).cmp(&(&b.job, &b.command)));
        }
        t
    }

    /// The same, knowing the keys the workspace at `root` declares in `vars.hcl` of each job
    /// (the apply and `kvform run` pass their bucket root; read once, not per request).
    pub fn with_declared(mut self, root: &std::path::Path) -> Topology {
        for job in self.upstreams.keys() {
            for (key, at) in crate::workspace::declared_vars(root, job) {
                self.declared.insert((format!("vars/job/{job}"), key), at);
            }
        }
        self
    }

    /// Where the workspace declares `key` of `ns`, if it does.
    pub fn declared(&self, ns: &str, key: &str) -> Option<&str> {
        self.declared.get(&(ns.to_string(), key.to_string())).map(String::as_str)
    }

    /// Jobs `job` demands.
    pub fn upstreams(&self, job: &str) -> &[String] {
        self.upstreams.get(job).map(Vec::as_slice).unwrap_or_default()
    }

    /// Downstream commands that demand `job`/`command`.
    pub fn demands_of(&self, job: &str, command: &str) -> &[DemandEntry] {
        self.downstream.get(&(job.to_string(), command.to_string())).map(Vec::as_slice).unwrap_or_default()
    }
}

/// State shared by the request threads.
pub(crate) struct Shared {
    pub(crate) tokens: Mutex<TokenRegistry>,
    pub(crate) semaphores: Semaphores,
    pub(crate) store: SharedStore,
    pub(crate) topology: Topology,
    header_auth: bool,
}

impl Shared {
    pub(crate) fn tokens(&self) -> MutexGuard<'_, TokenRegistry> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn store(&self) -> MutexGuard<'_, dyn HookStore + 'static> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running server. Dropping it shuts it down.
pub struct ApiServer {
    handle: ApiHandle,
    addr: SocketAddr,
    running: Option<crate::http::Running>,
}

/// What hook runners need from the server: its URL, and issuing/revoking tokens. Cheap to
/// clone and `Send`, so batch threads each hold one.
#[derive(Clone)]
pub struct ApiHandle {
    base_url: String,
    shared: Arc<Shared>,
}

impl ApiHandle {
    /// `http://127.0.0.1:<port>`, handed to hooks as `KVFORM_API`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A token for a hook about to start.
    pub fn issue(&self, identity: HookIdentity) -> Result<HookToken, TokenError> {
        Ok(self.shared.tokens().issue(identity)?.0)
    }

    /// The hook exited: its token stops working and every semaphore it still holds is
    /// released. Returns how many holds it had forgotten.
    pub fn revoke(&self, token: &HookToken) -> usize {
        self.retire(token).0
    }

    /// [`ApiHandle::revoke`], also handing back the secrets the hook saw, for a last
    /// redaction pass over its output; they are zeroed when the caller drops them.
    pub fn retire(&self, token: &HookToken) -> (usize, SeenSecrets) {
        let revoked = self.shared.tokens().revoke(token);
        match revoked {
            Some((id, seen)) => (self.shared.semaphores.release_all(id), seen),
            None => (0, SeenSecrets::new()),
        }
    }

    /// `line` with every secret the token's hook has read or written so far replaced by
    /// `(sensitive)` (see [`super::redact`]).
    pub fn redact(&self, token: &HookToken, line: &str) -> String {
        self.shared.tokens().redact(token, line)
    }
}

impl ApiServer {
    /// Bind 127.0.0.1:`cfg.port` and serve until [`ApiServer::shutdown`].
    pub fn start(cfg: ApiConfig, store: SharedStore, topology: Topology) -> Result<ApiServer, ApiError> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", cfg.port))
            .map_err(|e| ApiError::Bind { port: cfg.port, reason: e.to_string() })?;
        let addr = listener.local_addr().map_err(|e| ApiError::Bind { port: cfg.port, reason: e.to_string() })?;
        let shared = Arc::new(Shared {
            tokens: Mutex::new(TokenRegistry::default()),
            semaphores: Semaphores::new(),
            store,
            topology,
            header_auth: cfg.header_auth,
        });
        let router = axum::Router::new().fallback(serve).with_state(shared.clone());
        let running = crate::http::Running::start("kvform-hook-api", listener, router)
            .map_err(|e| ApiError::Bind { port: cfg.port, reason: e.to_string() })?;
        let handle = ApiHandle { base_url: format!("http://{addr}"), shared };
        Ok(ApiServer { handle, addr, running: Some(running) })
    }

    pub fn base_url(&self) -> &str {
        &self.handle.base_url
    }

    /// The bound address (always 127.0.0.1).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> ApiHandle {
        self.handle.clone()
    }

    /// Stop accepting, wake semaphore waiters and wait for every request in flight.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            // Waiters first: an acquire blocked for an hour would otherwise hold shutdown.
            self.handle.shared.semaphores.close();
            running.stop();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub allow: Option<&'static str>,
}

impl Reply {
    pub(crate) fn ok(body: Value) -> Reply {
        Reply { status: 200, body, allow: None }
    }
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply { status, body: json!({ "error": message.into() }), allow: None }
    }
    /// A refusal naming the rule that refused it (like a 403's `rule`).
    pub(crate) fn rule(status: u16, message: impl Into<String>, rule: &str) -> Reply {
        Reply { status, body: json!({ "error": message.into(), "rule": rule }), allow: None }
    }
    pub(crate) fn denied(d: access::Denial) -> Reply {
        Reply { status: 403, body: json!({ "error": d.message, "rule": d.rule }), allow: None }
    }
}

/// The routes: (path, methods). Used for 404 vs 405 and the `Allow` header.
const ROUTES: &[(&str, &[&str], &str)] = &[
    ("/kv", &["GET", "PUT", "DELETE"], "GET, PUT, DELETE"),
    ("/kv/secret", &["PUT", "DELETE"], "PUT, DELETE"),
    ("/kv/keys", &["GET"], "GET"),
    ("/demands", &["GET"], "GET"),
    ("/semaphore/acquire", &["POST"], "POST"),
    ("/semaphore/release", &["POST"], "POST"),
    ("/semaphore/status", &["GET"], "GET"),
];

/// The authenticated caller of a request.
pub(crate) struct Authed {
    pub token: TokenId,
    pub identity: HookIdentity,
    pub upstreams: Vec<String>,
}

impl Authed {
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller { job: &self.identity.job, host: &self.identity.host, upstreams: &self.upstreams }
    }
    pub(crate) fn event(&self) -> Event {
        self.identity.event
    }
    pub(crate) fn op_check(&self, op: Op, ns: &str, key: Option<&str>) -> Result<(), Reply> {
        access::check(&self.caller(), self.event(), op, ns, key).map_err(Reply::denied)
    }
}

/// Every request: route, authenticate and parse on the runtime (cheap, never blocks), then
/// run the handler on the blocking pool, because the store mutex is shared with the apply
/// executor and `POST /semaphore/acquire` may wait for up to an hour — unless it is a
/// `GET /kv` that can be answered without waiting ([`routes::get_now`]).
async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let method = method.as_str().to_ascii_uppercase();
    let reply = match prepare(&shared, &method, &uri, &headers, body).await {
        Err(reply) => reply,
        Ok((authed, params)) => {
            // The common read skips the hop to the blocking pool (a thread wake-up per
            // request, the API's tail latency under load) when the store can answer now.
            if method == "GET"
                && path == "/kv"
                && let Some(reply) = routes::get_now(&shared, &authed, &params)
            {
                return respond(reply);
            }
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || routes::dispatch(&shared, &authed, &method, &path, &params))
                .await
                .unwrap_or_else(|_| Reply::error(500, "the request handler panicked"))
        }
    };
    respond(reply)
}

/// Route, authenticate, then read the body (only for a request that will be served).
async fn prepare(
    shared: &Shared,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Authed, Params), Reply> {
    route(method, uri.path())?;
    let authed = authenticate(headers, shared)?;
    let body = crate::http::read_body(headers, body, MAX_BODY).await.map_err(|e| {
        let mut r = Reply::error(e.status(), e.to_string());
        if let crate::http::BodyError::TooLarge(_) = e {
            r.body["hint"] = json!(
                "send at most 1 MiB per request; a larger value (a file, an archive) belongs in the job's files, not in the KV store"
            );
        }
        r
    })?;
    let params = read_params(headers, uri.query().unwrap_or(""), &body)?;
    Ok((authed, params))
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], reply.body.to_string()).into_response();
    if let Some(allow) = reply.allow {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 404 for an unknown path, 405 (with `Allow`) for a known path and another method.
fn route(method: &str, path: &str) -> Result<(), Reply> {
    let Some((_, methods, allow)) = ROUTES.iter().find(|(p, _, _)| *p == path) else {
        let known: Vec<&str> = ROUTES.iter().map(|r| r.0).collect();
        return Err(Reply::error(404, format!("no route {path}; the hook API serves {}", known.join(", "))));
    };
    if !methods.contains(&method) {
        let mut r = Reply::error(405, format!("{method} is not allowed on {path}; use {allow}"));
        r.allow = Some(allow);
        return Err(r);
    }
    Ok(())
}

fn unauthorized(why: &str) -> Reply {
    Reply::error(401, format!("{why}: send `Authorization: Bearer $KVFORM_TOKEN` (tokens expire when the hook exits)"))
}

fn authenticate(headers: &HeaderMap, shared: &Shared) -> Result<Authed, Reply> {
    let alloc = header_value(headers, "X-ALLOCATION-ID").map(str::trim);
    let event = header_value(headers, "EVENT").map(str::trim);
    let command = header_value(headers, "COMMAND").map(str::trim);
    let tokens = shared.tokens();
    let (token, identity) = if let Some(auth) = header_value(headers, "Authorization") {
        let Some(presented) = auth.trim().strip_prefix("Bearer ").map(str::trim) else {
            return Err(unauthorized("the Authorization header is not a bearer token"));
        };
        let Some((id, ident)) = tokens.lookup(presented) else {
            return Err(unauthorized("unknown or expired token"));
        };
        // maand-style headers next to a token must describe the same hook.
        let agrees = alloc.is_none_or(|a| Uuid::parse_str(a).ok() == Some(ident.alloc_id))
            && event.is_none_or(|e| e == ident.event.as_str())
            && command.is_none_or(|c| c == ident.command);
        if !agrees {
            return Err(unauthorized("the X-ALLOCATION-ID/EVENT/COMMAND headers do not match the token's hook"));
        }
        (id, ident.clone())
    } else if shared.header_auth {
        let (Some(a), Some(e), Some(c)) = (alloc, event, command) else {
            return Err(unauthorized("no credentials (token, or X-ALLOCATION-ID + EVENT + COMMAND headers)"));
        };
        let found = Uuid::parse_str(a)
            .ok()
            .zip(Event::parse(e))
            .and_then(|(a, e)| tokens.find_running(a, e, c).map(|(id, i)| (id, i.clone())));
        found.ok_or_else(|| unauthorized("no hook with that X-ALLOCATION-ID, EVENT and COMMAND is running"))?
    } else {
        return Err(unauthorized("no credentials"));
    };
    drop(tokens);
    let upstreams = shared.topology.upstreams(&identity.job).to_vec();
    Ok(Authed { token, identity, upstreams })
}

/// Request fields: the JSON body object, with query-string fields filling in what the body
/// does not set (so `GET /kv?namespace=..&key=..` works too).
pub(crate) type Params = Map<String, Value>;

fn read_params(headers: &HeaderMap, query: &str, body: &[u8]) -> Result<Params, Reply> {
    let mut params = Map::new();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let ct = header_value(headers, "Content-Type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(Reply::error(
                415,
                format!("request bodies must be JSON: send `Content-Type: application/json` (got {ct:?})"),
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => params = m,
            Ok(_) => return Err(Reply::error(400, "the request body must be a JSON object")),
            Err(e) => return Err(Reply::error(400, format!("the request body is not valid JSON: {e}"))),
        }
    }
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        params.entry(k.into_owned()).or_insert(Value::String(v.into_owned()));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_fill_in_what_the_body_does_not_set() {
        let h = HeaderMap::new();
        let p = read_params(&h, "namespace=maand%2Fjob%2Fapi&key=a+b&key=ignored", b"").unwrap();
        assert_eq!(p["namespace"], "maand/job/api");
        assert_eq!(p["key"], "a b");
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let p = read_params(&h, "key=q", br#"{"key": "body"}"#).unwrap();
        assert_eq!(p["key"], "body");
    }
}
