//! The hook HTTP API: a tiny_http server on 127.0.0.1 that lives for one command.
//!
//! Life of a request: route (404 unknown path, 405 wrong method) → authenticate (401) →
//! body (415 not JSON, 400 malformed) → access table (403 + rule) → store. Every request
//! is handled on its own thread, because `POST /semaphore/acquire` may block for up to an
//! hour and must not starve the hooks that would release the slot.
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
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use uuid::Uuid;

/// The store as the server shares it with the apply executor.
pub type SharedStore = Arc<Mutex<dyn HookStore>>;

/// Largest accepted request body.
const MAX_BODY: u64 = 1 << 20;

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
    server: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
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
        let server = tiny_http::Server::http(("127.0.0.1", cfg.port))
            .map_err(|e| ApiError::Bind { port: cfg.port, reason: e.to_string() })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| ApiError::Bind { port: cfg.port, reason: "not an IP listener".into() })?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            tokens: Mutex::new(TokenRegistry::default()),
            semaphores: Semaphores::new(),
            store,
            topology,
            header_auth: cfg.header_auth,
        });
        let acceptor = {
            let (server, shared) = (server.clone(), shared.clone());
            std::thread::Builder::new()
                .name("kvform-hook-api".into())
                .spawn(move || accept_loop(&server, &shared))
                .map_err(|e| ApiError::Bind { port: cfg.port, reason: e.to_string() })?
        };
        let handle = ApiHandle { base_url: format!("http://{addr}"), shared };
        Ok(ApiServer { handle, addr, server, acceptor: Some(acceptor) })
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

    /// Stop accepting, wake semaphore waiters and join every request thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.handle.shared.semaphores.close();
            self.server.unblock();
            let _ = acceptor.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(server: &tiny_http::Server, shared: &Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for request in server.incoming_requests() {
        workers.retain(|w| !w.is_finished());
        let shared = shared.clone();
        match std::thread::Builder::new().name("kvform-hook-req".into()).spawn(move || serve(request, &shared)) {
            Ok(w) => workers.push(w),
            Err(_) => continue, // out of threads: the client sees a reset connection and may retry
        }
    }
    shared.semaphores.close();
    for w in workers {
        let _ = w.join();
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

fn serve(mut request: tiny_http::Request, shared: &Shared) {
    let reply = handle(&mut request, shared);
    let mut response = tiny_http::Response::from_string(reply.body.to_string()).with_status_code(reply.status);
    response.add_header(header("Content-Type", "application/json"));
    if let Some(allow) = reply.allow {
        response.add_header(header("Allow", allow));
    }
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn header_value<'a>(request: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    request.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

fn handle(request: &mut tiny_http::Request, shared: &Shared) -> Reply {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().as_str().to_ascii_uppercase();
    let Some((_, methods, allow)) = ROUTES.iter().find(|(p, _, _)| *p == path) else {
        let known: Vec<&str> = ROUTES.iter().map(|r| r.0).collect();
        return Reply::error(404, format!("no route {path}; the hook API serves {}", known.join(", ")));
    };
    if !methods.contains(&method.as_str()) {
        let mut r = Reply::error(405, format!("{method} is not allowed on {path}; use {allow}"));
        r.allow = Some(allow);
        return r;
    }
    let authed = match authenticate(request, shared) {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let params = match read_params(request, query) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    routes::dispatch(shared, &authed, &method, path, &params)
}

fn unauthorized(why: &str) -> Reply {
    Reply::error(401, format!("{why}: send `Authorization: Bearer $KVFORM_TOKEN` (tokens expire when the hook exits)"))
}

fn authenticate(request: &tiny_http::Request, shared: &Shared) -> Result<Authed, Reply> {
    let alloc = header_value(request, "X-ALLOCATION-ID").map(str::trim);
    let event = header_value(request, "EVENT").map(str::trim);
    let command = header_value(request, "COMMAND").map(str::trim);
    let tokens = shared.tokens();
    let (token, identity) = if let Some(auth) = header_value(request, "Authorization") {
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

fn read_params(request: &mut tiny_http::Request, query: &str) -> Result<Params, Reply> {
    let mut body = Vec::new();
    let read = request.as_reader().take(MAX_BODY + 1).read_to_end(&mut body);
    if read.is_err() {
        return Err(Reply::error(400, "could not read the request body"));
    }
    if body.len() as u64 > MAX_BODY {
        return Err(Reply::error(400, format!("request body is larger than {MAX_BODY} bytes")));
    }
    let mut params = Map::new();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let ct = header_value(request, "Content-Type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(Reply::error(
                415,
                format!("request bodies must be JSON: send `Content-Type: application/json` (got {ct:?})"),
            ));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => params = m,
            Ok(_) => return Err(Reply::error(400, "the request body must be a JSON object")),
            Err(e) => return Err(Reply::error(400, format!("the request body is not valid JSON: {e}"))),
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        params.entry(k).or_insert(Value::String(v));
    }
    Ok(params)
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        assert_eq!(percent_decode("maand%2Fjob%2Fapi"), "maand/job/api");
        assert_eq!(percent_decode("a+b%"), "a b%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
