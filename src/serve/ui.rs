//! The web UI at `/`: server-rendered HTML over the same handlers as the REST API
//! ([`super::rest`]), so a form write obeys exactly the access table and key rules of a
//! `PUT /api/v1/kv/...`.
//!
//! Login: paste a token; the server keeps a **session** (random id → the token's sha-256 and
//! a per-session CSRF token) and the browser gets only the session id, in an `HttpOnly;
//! SameSite=Strict` cookie. Why not the token in the cookie: a cookie leaks through logs,
//! proxies and browser profiles; a session id dies with the server and its logout, and the
//! token is re-checked on every request, so revoking it logs the session out at once.
//! Every form carries the session's CSRF token and is refused (403) without it.
//!
//! The login form has a CSRF token too, before any session exists: the page that shows the
//! form sets a random value both as a cookie (`kvform_login`, `Path=/login`, `HttpOnly`,
//! `SameSite=Strict`) and as a hidden field, and `POST /login` needs the two to match
//! (compared in constant time), so another site cannot log a browser in with a token of
//! its choosing. Failed logins are limited per client address ([`LOGIN_FAILURES`] per
//! [`LOGIN_WINDOW`]): past that, `/login` answers 429 with `Retry-After`, even for a good
//! token, until the oldest failure leaves the window.

use super::App;
use super::keys;
use super::rest::{self, Reply, Req};
use super::ui_pages as pages;
use crate::state::tokens::{TokenRecord, token_hash};
use axum::body::Body;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE: &str = "kvform_session";
/// The login form's pre-session CSRF cookie.
const LOGIN_COOKIE: &str = "kvform_login";
/// Failed logins allowed per client address within [`LOGIN_WINDOW`].
pub(crate) const LOGIN_FAILURES: usize = 10;
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Sessions last at most this long (the token's own expiry applies too).
const SESSION_SECS: i64 = 12 * 3600;
const MAX_FORM: usize = 1 << 20;

/// One logged-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) token_hash: String,
    pub(crate) csrf: String,
    created: i64,
}

/// session id -> session.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

/// Failed logins per client address, the times within the last [`LOGIN_WINDOW`].
#[derive(Default)]
pub struct LoginLimit(Mutex<HashMap<IpAddr, VecDeque<Instant>>>);

impl LoginLimit {
    /// `None` when `ip` may try to log in at `now`; else the seconds until it may.
    pub(crate) fn retry_after(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let times = map.get_mut(&ip)?;
        while times.front().is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW) {
            times.pop_front();
        }
        if times.len() < LOGIN_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        let wait = LOGIN_WINDOW.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }

    /// Count a failed login from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Addresses whose failures are all old are forgotten, so the table stays as small
        // as the set of addresses failing right now.
        if map.len() >= 4096 {
            map.retain(|_, t| t.back().is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW));
        }
        let times = map.entry(ip).or_default();
        times.push_back(now);
        while times.len() > LOGIN_FAILURES {
            times.pop_front();
        }
    }
}

/// Equal bytes, in time that depends only on the lengths.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn is_ui(path: &str) -> bool {
    path == "/" || path == "/login" || path == "/logout" || path.starts_with("/ui")
}

fn html(status: u16, body: String) -> Response {
    let s = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        s,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (axum::http::StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The attributes every cookie of the UI carries (`Secure` when served over TLS).
fn cookie_flags(app: &App) -> &'static str {
    if app.tls { "Path=/; HttpOnly; SameSite=Strict; Secure" } else { "Path=/; HttpOnly; SameSite=Strict" }
}

/// The login form with a fresh pre-session CSRF value, set as the `/login` cookie too.
fn login_page(app: &App, status: u16, error: Option<&str>) -> Response {
    let csrf = random_hex();
    let mut r = html(status, pages::login(error, &csrf));
    let secure = if app.tls { "; Secure" } else { "" };
    let set = format!("{LOGIN_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}");
    if let Ok(v) = axum::http::HeaderValue::from_str(&set) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn session(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = cookie_session(headers)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut map = app.sessions.0.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, s| now - s.created < SESSION_SECS);
    map.get(&id).cloned().map(|s| (id, s))
}

pub(crate) async fn serve(
    app: Arc<App>,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let form: BTreeMap<String, String> = if method == "POST" {
        match crate::http::read_body(headers, body, MAX_FORM).await {
            Ok(b) => form_urlencoded::parse(&b).into_owned().collect(),
            Err(e) => return html(e.status(), pages::message("Request refused", &e.to_string())),
        }
    } else {
        BTreeMap::new()
    };
    if path == "/login" && method == "POST" {
        let ip = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        return login(&app, headers, &form, ip);
    }
    let Some((id, s)) = session(&app, headers) else {
        return if path == "/" || method == "GET" {
            login_page(&app, if path == "/" { 200 } else { 401 }, None)
        } else {
            login_page(&app, 401, Some("your session has ended; log in again"))
        };
    };
    let token = match rest::token_for(&app, &s.token_hash) {
        Ok(t) => t,
        Err(r) => {
            app.sessions.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return login_page(&app, 401, Some(&error_of(&r)));
        }
    };
    if method == "POST" && !form.get("csrf").is_some_and(|c| same(c, &s.csrf)) {
        return html(
            403,
            pages::message(
                "Request refused",
                "the form's CSRF token is missing or wrong; reload the page and try again",
            ),
        );
    }
    if path == "/logout" && method == "POST" {
        app.sessions.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        return (
            axum::http::StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, format!("{COOKIE}=; {}; Max-Age=0", cookie_flags(&app))),
            ],
        )
            .into_response();
    }
    if path == "/" {
        return redirect("/ui");
    }
    let method = method.to_string();
    tokio::task::spawn_blocking(move || page(&app, &method, &path, &query, &form, token, &s.csrf))
        .await
        .unwrap_or_else(|_| html(500, pages::message("Error", "the page handler panicked")))
}

/// `POST /login`: the address's failed-login budget, then the form's CSRF pair, then the token.
fn login(app: &App, headers: &HeaderMap, form: &BTreeMap<String, String>, ip: IpAddr) -> Response {
    if let Some(secs) = app.logins.retry_after(ip, Instant::now()) {
        let mut r = login_page(
            app,
            429,
            Some(&format!(
                "too many failed logins from {ip} (at most {LOGIN_FAILURES} a minute); try again in {secs} s"
            )),
        );
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        return r;
    }
    let sent = form.get("login_csrf").map_or("", String::as_str);
    let expected = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    if sent.is_empty() || !same(sent, &expected) {
        return login_page(
            app,
            403,
            Some("the login form expired or did not come from this server; log in again from this page"),
        );
    }
    let presented = form.get("token").map_or("", String::as_str);
    let hash = token_hash(presented.trim());
    if let Err(r) = rest::token_for(app, &hash) {
        app.logins.failed(ip, Instant::now());
        return login_page(app, 401, Some(&error_of(&r)));
    }
    let id = random_hex();
    let s = Session { token_hash: hash, csrf: random_hex(), created: crate::clock::now().unwrap_or_default() };
    app.sessions.0.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), s);
    let mut r = redirect("/ui");
    let secure = if app.tls { "; Secure" } else { "" };
    for set in [
        format!("{COOKIE}={id}; {}; Max-Age={SESSION_SECS}", cookie_flags(app)),
        format!("{LOGIN_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&set) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

fn error_of(r: &Reply) -> String {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let e = v["error"].as_str().unwrap_or("request failed");
    match v["hint"].as_str().filter(|h| !h.is_empty()) {
        Some(h) => format!("{e} — {h}"),
        None => e.to_string(),
    }
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn req(token: &TokenRecord, query: &BTreeMap<String, String>, body: Option<Map<String, Value>>) -> Req {
    Req::for_ui(token, query, body)
}

/// `/ui/ns/vars/job/api` -> namespace; `/ui/key/vars/job/api/k` -> (namespace, key).
fn segments(rest: &str) -> Vec<String> {
    rest.trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

fn unwrap(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

fn page(
    app: &App,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    form: &BTreeMap<String, String>,
    token: TokenRecord,
    csrf: &str,
) -> Response {
    let ctx = pages::Ctx { token: &token, csrf };
    let r = req(&token, query, None);
    match (method, path) {
        ("GET", "/ui") => {
            let nss = json_of(&unwrap(keys::namespaces(app)));
            html(200, pages::tree(&ctx, &nss, query.get("q").map_or("", String::as_str)))
        }
        ("GET", "/ui/search") => {
            let (status, body) = super::ui_search::page(app, &ctx, &r);
            html(status, body)
        }
        ("GET", "/ui/applies") => html(200, pages::applies(&ctx, &json_of(&unwrap(rest::applies(app, &r))))),
        ("GET", "/ui/plan") => {
            let (text, picture) = match (app.planner)() {
                Ok(plan) => (
                    Ok(crate::plan::render_text(&plan, crate::plan::TextOptions { color: false, detail: false })),
                    crate::plan::graph::rollout_svg(&plan),
                ),
                Err(e) => (Err(e), None),
            };
            html(200, pages::plan(&ctx, &text, picture.as_deref()))
        }
        ("GET", p) if p.starts_with("/ui/ns/") => {
            let ns = segments(&p["/ui/ns/".len()..]).join("/");
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            ns_page(app, &ctx, &ns, query, None, 200)
        }
        ("GET", p) if p.starts_with("/ui/key/") => {
            let mut segs = segments(&p["/ui/key/".len()..]);
            let key = segs.pop().unwrap_or_default();
            let ns = segs.join("/");
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let mode = if query.get("delete").is_some_and(|v| v == "1") {
                pages::KeyMode::ConfirmDelete
            } else if query.get("edit").is_some_and(|v| v == "1") {
                pages::KeyMode::Edit(None)
            } else {
                pages::KeyMode::Read
            };
            key_page(app, &ctx, &ns, &key, query, mode, 200)
        }
        ("POST", "/ui/put") => {
            let ns = form.get("namespace").cloned().unwrap_or_default();
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let input = pages::FormInput::posted(form);
            let key = input.key.clone();
            // Refused: the same page again, with what was typed and the error at its field.
            let refused = |field: &'static str, message: String, status: u16| {
                let err = pages::FieldError { field, message };
                if form.get("origin").is_some_and(|o| o == "key") {
                    key_page(app, &ctx, &ns, &key, &BTreeMap::new(), pages::KeyMode::Edit(Some((&input, &err))), status)
                } else {
                    ns_page(app, &ctx, &ns, &BTreeMap::new(), Some((&input, &err)), status)
                }
            };
            // The TTL in the one duration grammar of every door (`3600`, `1h`, `P30D`); left
            // as loaded, it is not sent, so the key keeps its expiry instead of restarting it.
            let ttl_text = Some(input.ttl.trim()).filter(|t| !t.is_empty()).unwrap_or("0");
            let Some(ttl) = crate::clock::parse_duration(ttl_text) else {
                return refused(
                    "ttl",
                    format!("`{ttl_text}` is not a duration: use seconds (3600), 30m, 1h, 7d or P30D; 0 = never"),
                    400,
                );
            };
            let mut body = Map::new();
            // A masked secret's form has an empty box: left empty, the value is kept.
            if !(input.value.is_empty() && input.keep_value) {
                body.insert("value".into(), json!(input.value));
            }
            body.insert("type".into(), json!(input.kv_type));
            body.insert("description".into(), json!(input.description));
            if crate::clock::parse_duration(&input.ttl_was) != Some(ttl) {
                body.insert("ttl".into(), json!(ttl));
            }
            // The version the form was loaded at: a save over a newer version is a conflict
            // (412), never a silent overwrite.
            if !input.overwrite || input.version > 0 {
                body.insert("cas".into(), json!(input.version));
            } else {
                body.insert("overwrite".into(), json!(true));
            }
            let reply = unwrap(keys::put(app, &req(&token, &BTreeMap::new(), Some(body)), &ns, &key));
            if reply.status == 412 && input.version > 0 {
                let current = json_of(&unwrap(keys::get(app, &masked_req(&token), &ns, &key)));
                return html(409, pages::conflict(&ctx, &ns, &key, &current, &input));
            }
            if reply.status >= 400 {
                let message = error_of(&reply);
                // Create only (version 0) and the key exists: the key field is what to change.
                let field = if reply.status == 412 { "key" } else { field_of(&message) };
                return refused(field, message, reply.status);
            }
            redirect(&pages::key_url(&ns, &key))
        }
        ("POST", "/ui/delete") => {
            let ns = form.get("namespace").cloned().unwrap_or_default();
            let key = form.get("key").cloned().unwrap_or_default();
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            // One click never deletes: the key page's Delete… asks first, and only its
            // confirmation form carries `confirmed`.
            if form.get("confirmed").is_none_or(|c| c != "1") {
                return redirect(&format!("{}?delete=1", pages::key_url(&ns, &key)));
            }
            let reply = unwrap(keys::delete(app, &r, &ns, &key));
            if reply.status >= 400 {
                return back(&ns, &key, &error_of(&reply));
            }
            // A key the workspace declares: the notice says the next apply writes it back.
            let warning = json_of(&reply)["warnings"][0].as_str().map(|w| format!(" — {w}")).unwrap_or_default();
            redirect(&format!("{}?notice={}", pages::ns_url(&ns), pages::enc(&format!("deleted {key}{warning}"))))
        }
        ("POST", "/ui/restore") => {
            let ns = form.get("namespace").cloned().unwrap_or_default();
            let key = form.get("key").cloned().unwrap_or_default();
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            // The version to restore, and the live version the page was loaded at as `cas`.
            let number = |name: &str| form.get(name).and_then(|v| v.trim().parse::<u64>().ok());
            let mut body = Map::new();
            body.insert("version".into(), json!(number("version").unwrap_or(0)));
            if let Some(cas) = number("cas") {
                body.insert("cas".into(), json!(cas));
            }
            let reply = unwrap(keys::restore(app, &req(&token, &BTreeMap::new(), Some(body)), &ns, &key));
            if reply.status >= 400 {
                return back(&ns, &key, &error_of(&reply));
            }
            redirect(&pages::key_url(&ns, &key))
        }
        _ => html(404, pages::message("Not found", &format!("no page {path}"))),
    }
}

/// A request as `token` would make it without `--reveal` (pages mask secrets unless asked),
/// answering `null` for a missing key.
fn masked_req(token: &TokenRecord) -> Req {
    req(
        &TokenRecord { reveal: false, ..token.clone() },
        &BTreeMap::from([("error_on_missing".into(), "false".into())]),
        None,
    )
}

/// The field a refused save's message is about (the message names it), else the value box.
fn field_of(message: &str) -> &'static str {
    let m = message.to_lowercase();
    if m.contains("ttl") {
        "ttl"
    } else if m.contains("description") {
        "description"
    } else if m.contains("already exists") || m.contains("key name") || m.contains("not a valid key") {
        "key"
    } else {
        "value"
    }
}

fn ns_page(
    app: &App,
    ctx: &pages::Ctx<'_>,
    ns: &str,
    query: &BTreeMap<String, String>,
    failed: Option<(&pages::FormInput, &pages::FieldError)>,
    status: u16,
) -> Response {
    let listing = json_of(&unwrap(keys::list(app, &req(ctx.token, query, None), ns)));
    html(status, pages::namespace(ctx, ns, &listing, query, failed))
}

fn key_page(
    app: &App,
    ctx: &pages::Ctx<'_>,
    ns: &str,
    key: &str,
    query: &BTreeMap<String, String>,
    mode: pages::KeyMode<'_>,
    status: u16,
) -> Response {
    let reveal = query.get("reveal").is_some_and(|v| v == "1");
    let shown = if reveal { ctx.token.clone() } else { TokenRecord { reveal: false, ..ctx.token.clone() } };
    let current = json_of(&unwrap(keys::get(
        app,
        &req(&shown, &BTreeMap::from([("error_on_missing".into(), "false".into())]), None),
        ns,
        key,
    )));
    let history = json_of(&unwrap(keys::history(app, &req(&shown, query, None), ns, key)));
    let managed = crate::workspace::declared_var(&app.bucket.root, ns, key);
    html(status, pages::key(ctx, ns, key, &current, &history, query, reveal, managed.as_deref(), mode))
}

/// Back to the namespace page with the error shown.
fn back(ns: &str, _key: &str, error: &str) -> Response {
    redirect(&format!("{}?error={}", pages::ns_url(ns), pages::enc(error)))
}
