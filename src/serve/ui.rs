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

use super::App;
use super::keys;
use super::rest::{self, Reply, Req};
use super::ui_pages as pages;
use crate::state::tokens::{TokenRecord, token_hash};
use axum::body::Body;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

const COOKIE: &str = "kvform_session";
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

fn cookie_session(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

fn session(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = cookie_session(headers)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut map = app.sessions.0.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, s| now - s.created < SESSION_SECS);
    map.get(&id).cloned().map(|s| (id, s))
}

pub(crate) async fn serve(app: Arc<App>, method: &str, uri: &Uri, headers: &HeaderMap, body: Body) -> Response {
    let path = uri.path().to_string();
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let form: BTreeMap<String, String> = if method == "POST" {
        match crate::http::read_body(body, MAX_FORM).await {
            Ok(b) => form_urlencoded::parse(&b).into_owned().collect(),
            Err(e) => return html(e.status(), pages::message("Request refused", &e.to_string())),
        }
    } else {
        BTreeMap::new()
    };
    if path == "/login" && method == "POST" {
        return login(&app, form.get("token").map_or("", String::as_str));
    }
    let Some((id, s)) = session(&app, headers) else {
        return if path == "/" || method == "GET" {
            html(if path == "/" { 200 } else { 401 }, pages::login(None))
        } else {
            html(401, pages::login(Some("your session has ended; log in again")))
        };
    };
    let token = match rest::token_for(&app, &s.token_hash) {
        Ok(t) => t,
        Err(r) => {
            app.sessions.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            return html(401, pages::login(Some(&error_of(&r))));
        }
    };
    if method == "POST" && form.get("csrf") != Some(&s.csrf) {
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
                (header::SET_COOKIE, format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")),
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

fn login(app: &App, presented: &str) -> Response {
    let hash = token_hash(presented.trim());
    if let Err(r) = rest::token_for(app, &hash) {
        return html(401, pages::login(Some(&error_of(&r))));
    }
    let id = random_hex();
    let s = Session { token_hash: hash, csrf: random_hex(), created: crate::clock::now().unwrap_or_default() };
    app.sessions.0.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), s);
    (
        axum::http::StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/ui".to_string()),
            (header::SET_COOKIE, format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}")),
        ],
    )
        .into_response()
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
    Req {
        method: String::new(),
        segments: vec![],
        trailing_slash: false,
        query: query.clone(),
        body,
        token: token.clone(),
        if_match: None,
    }
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
        ("GET", "/ui/applies") => html(200, pages::applies(&ctx, &json_of(&unwrap(rest::applies(app, &r))))),
        ("GET", "/ui/plan") => {
            let text = match (app.planner)() {
                Ok(plan) => {
                    Ok(crate::plan::render_text(&plan, crate::plan::TextOptions { color: false, detail: false }))
                }
                Err(e) => Err(e),
            };
            html(200, pages::plan(&ctx, &text))
        }
        ("GET", p) if p.starts_with("/ui/ns/") => {
            let ns = segments(&p["/ui/ns/".len()..]).join("/");
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let listing = json_of(&unwrap(keys::list(app, &r, &ns)));
            html(200, pages::namespace(&ctx, &ns, &listing, query))
        }
        ("GET", p) if p.starts_with("/ui/key/") => {
            let mut segs = segments(&p["/ui/key/".len()..]);
            let key = segs.pop().unwrap_or_default();
            let ns = segs.join("/");
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let reveal = query.get("reveal").is_some_and(|v| v == "1");
            let shown_req = if reveal { r } else { req(&TokenRecord { reveal: false, ..token.clone() }, query, None) };
            let current = json_of(&unwrap(keys::get(
                app,
                &req(&shown_req.token, &BTreeMap::from([("error_on_missing".into(), "false".into())]), None),
                &ns,
                &key,
            )));
            let history = json_of(&unwrap(keys::history(app, &shown_req, &ns, &key)));
            html(200, pages::key(&ctx, &ns, &key, &current, &history, query, reveal))
        }
        ("POST", "/ui/put") => {
            let ns = form.get("namespace").cloned().unwrap_or_default();
            let key = form.get("key").cloned().unwrap_or_default().trim().to_string();
            let mut body = Map::new();
            let value = form.get("value").cloned().unwrap_or_default();
            // A masked secret's form has an empty box: left empty, the value is kept.
            if !(value.is_empty() && form.get("keep_value").is_some_and(|v| v == "1")) {
                body.insert("value".into(), json!(value));
            }
            body.insert("type".into(), json!(form.get("type").cloned().unwrap_or_else(|| "string".into())));
            body.insert("description".into(), json!(form.get("description").cloned().unwrap_or_default()));
            // The TTL in the one duration grammar (`3600`, `1h`, `P30D`); left as loaded, it
            // is not sent, so the key keeps its expiry instead of restarting it from now.
            let ttl = form.get("ttl").map(|t| t.trim()).filter(|t| !t.is_empty()).unwrap_or("0");
            if form.get("ttl_was").is_none_or(|was| was.trim() != ttl) {
                body.insert("ttl".into(), json!(ttl));
            }
            // The version the form was loaded at: a save over a newer version is a conflict
            // (412), never a silent overwrite.
            match form.get("version").and_then(|v| v.parse::<u64>().ok()) {
                Some(v) if form.get("overwrite").is_none_or(|o| o != "on") || v > 0 => {
                    body.insert("cas".into(), json!(v));
                }
                _ => {
                    body.insert("overwrite".into(), json!(form.get("overwrite").is_some_and(|v| v == "on")));
                }
            }
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let reply = unwrap(keys::put(app, &req(&token, &BTreeMap::new(), Some(body)), &ns, &key));
            if reply.status >= 400 {
                return back(&ns, &key, &error_of(&reply));
            }
            redirect(&pages::key_url(&ns, &key))
        }
        ("POST", "/ui/delete") => {
            let ns = form.get("namespace").cloned().unwrap_or_default();
            let key = form.get("key").cloned().unwrap_or_default();
            if !rest::known(&ns) {
                return html(404, pages::message("Not found", &format!("unknown namespace {ns:?}")));
            }
            let reply = unwrap(keys::delete(app, &r, &ns, &key));
            if reply.status >= 400 {
                return back(&ns, &key, &error_of(&reply));
            }
            redirect(&format!("{}?notice={}", pages::ns_url(&ns), pages::enc(&format!("deleted {key}"))))
        }
        _ => html(404, pages::message("Not found", &format!("no page {path}"))),
    }
}

/// Back to the namespace page with the error shown.
fn back(ns: &str, _key: &str, error: &str) -> Response {
    redirect(&format!("{}?error={}", pages::ns_url(ns), pages::enc(error)))
}
