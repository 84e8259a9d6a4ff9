//! The HTML of the web UI: one layout, inline CSS, no script, written as maud templates,
//! which escape every interpolated string at compile time (only the plan's SVG, escaped
//! where it is drawn, goes in as markup). Pages take the JSON the REST handlers produce, so
//! the UI shows exactly what the API answers.

use crate::kv::KvType;
use crate::state::tokens::TokenRecord;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) struct Ctx<'a> {
    pub token: &'a TokenRecord,
    pub csrf: &'a str,
}

/// What [`enc`] escapes: everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _
/// ~`), so `database_url` stays `database_url` in the address bar, not `database%5Furl`.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn path_of(ns: &str) -> String {
    ns.split('/').map(enc).collect::<Vec<_>>().join("/")
}

pub(crate) fn ns_url(ns: &str) -> String {
    format!("/ui/ns/{}/", path_of(ns))
}

pub(crate) fn key_url(ns: &str, key: &str) -> String {
    format!("/ui/key/{}/{}", path_of(ns), enc(key))
}

const CSS: &str = "
:root{--bg:#f6f7f9;--fg:#1c2330;--mute:#667085;--line:#e3e6eb;--acc:#3559e0;--ok:#0f7b45;--bad:#b42318;--card:#fff}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;align-items:center;gap:18px;padding:10px 24px;background:#111827;color:#e5e7eb}
header b{font-size:15px;letter-spacing:.3px}header a{color:#cbd5e1;text-decoration:none}header a:hover{color:#fff}
header .sp{flex:1}header form{margin:0}header button{background:none;border:1px solid #475569;color:#cbd5e1;border-radius:6px;padding:3px 10px;cursor:pointer}
main{max-width:1180px;margin:0 auto;padding:20px 24px}h1{font-size:20px;margin:4px 0 14px}h2{font-size:15px;margin:22px 0 8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin-bottom:16px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}th{background:#f0f2f5;font-weight:600;font-size:12px;color:var(--mute);text-transform:uppercase;letter-spacing:.4px}
tr:last-child td{border-bottom:0}td.num{text-align:right;font-variant-numeric:tabular-nums}a{color:var(--acc)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}pre{white-space:pre-wrap;margin:0}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;background:#eef2ff;color:#3730a3;font-size:12px;white-space:nowrap}.ts{white-space:nowrap}
.muted{color:var(--mute)}.crumbs{color:var(--mute);margin-bottom:6px}.crumbs a{text-decoration:none}
.err{background:#fef3f2;border:1px solid #fecdca;color:var(--bad);padding:8px 12px;border-radius:8px;margin-bottom:14px}
.note{background:#ecfdf3;border:1px solid #abefc6;color:var(--ok);padding:8px 12px;border-radius:8px;margin-bottom:14px}
input,select,textarea{font:inherit;padding:6px 8px;border:1px solid #cfd4dc;border-radius:6px;background:#fff}textarea{width:100%;min-height:70px;font-family:ui-monospace,monospace}
button.p{background:var(--acc);color:#fff;border:0;border-radius:6px;padding:7px 14px;cursor:pointer}button.d{background:#fff;color:var(--bad);border:1px solid #fecdca;border-radius:6px;padding:6px 12px;cursor:pointer}
.grid{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:10px}.grid label{display:flex;flex-direction:column;gap:3px;font-size:12px;color:var(--mute)}
.tree a{text-decoration:none}.diff .add{background:#ecfdf3;color:#05603a}.diff .del{background:#fef3f2;color:#912018}.diff div{padding:0 6px;white-space:pre-wrap}
.login{max-width:440px;margin:12vh auto}.login input{width:100%;margin:10px 0}
h1.mono{font-size:20px;overflow-wrap:anywhere}table{margin-bottom:16px}td{overflow-wrap:anywhere}
.ferr{color:var(--bad);font-size:12px}.bad{border-color:var(--bad)!important}
a.btn{display:inline-block;padding:6px 12px;border-radius:6px;border:1px solid var(--line);background:#fff;text-decoration:none}
.warn{background:#fffaeb;border:1px solid #fedf89;padding:10px 14px;border-radius:8px;margin-bottom:14px}
@media (max-width:640px){main{padding:12px}header{gap:10px;padding:8px 12px;flex-wrap:wrap}.wide{display:none}
.grid{grid-template-columns:1fr}th,td{padding:6px}}
";

pub(crate) fn layout(ctx: Option<&Ctx<'_>>, title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · kvform" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    b { "kvform" }
                    @if let Some(c) = ctx {
                        a href="/ui" { "Namespaces" }
                        a href="/ui/search" { "Search" }
                        a href="/ui/applies" { "Applies" }
                        a href="/ui/plan" { "Plan" }
                        span.sp {}
                        span.muted { (c.token.name) " · " (c.token.role) @if c.token.reveal { " · reveal" } }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(c.csrf);
                            button { "Log out" }
                        }
                    } @else {
                        span.sp {}
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

pub(crate) fn message(title: &str, text: &str) -> String {
    layout(
        None,
        title,
        html! {
            h1 { (title) }
            div.err { (text) }
            p { a href="/ui" { "Back" } }
        },
    )
}

/// The login form; `csrf` is the pre-session value also set as the `/login` cookie.
pub(crate) fn login(error: Option<&str>, csrf: &str) -> String {
    layout(
        None,
        "Log in",
        html! {
            div.card.login {
                h1 { "Log in" }
                @if let Some(e) = error { div.err { (e) } }
                p.muted { "Paste an API token (" code { "kvform token create NAME --role reader" } ")." }
                form method="post" action="/login" {
                    input type="hidden" name="login_csrf" value=(csrf);
                    input type="password" name="token" autocomplete="off" placeholder="kvf_…" autofocus;
                    button.p { "Log in" }
                }
            }
        },
    )
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// A value as text: a string as it is; a typed value the API answers as JSON (a number, a
/// boolean, a JSON document) in its JSON text.
fn value_text(v: &Value) -> String {
    match &v["value"] {
        Value::String(t) => t.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn crumbs(ns: &str) -> Markup {
    let parts: Vec<&str> = ns.split('/').collect();
    html! {
        div.crumbs {
            a href="/ui" { "namespaces" }
            @for i in 1..=parts.len() {
                @let p = parts[..i].join("/");
                " / "
                @if crate::kv::rules::namespace(&p).is_ok() {
                    a href=(ns_url(&p)) { (parts[i - 1]) }
                } @else {
                    (parts[i - 1])
                }
            }
        }
    }
}

pub(crate) fn tree(ctx: &Ctx<'_>, nss: &Value, q: &str) -> String {
    let q_lower = q.to_lowercase();
    let rows: Vec<&Value> = nss["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| q.is_empty() || s(n, "namespace").to_lowercase().contains(&q_lower))
        .collect();
    let body = html! {
        h1 { "Namespaces" }
        form.card method="get" action="/ui" style="display:flex;gap:8px" {
            input name="q" value=(q) placeholder="Search namespaces (e.g. api, vars/job)" style="flex:1";
            button.p { "Search" }
        }
        table.tree {
            tr { th { "Namespace" } th.num { "Keys" } th.num { "Keys below" } }
            @for n in rows {
                @let ns = s(n, "namespace");
                @let depth = n["depth"].as_u64().unwrap_or(0) as usize;
                @let label = if q.is_empty() { ns.rsplit('/').next().unwrap_or(ns) } else { ns };
                @let pad = if q.is_empty() { depth * 18 } else { 0 };
                tr {
                    td style=(format!("padding-left:{}px", 10 + pad)) {
                        @if crate::kv::rules::namespace(ns).is_ok() {
                            a href=(ns_url(ns)) { (label) }
                        } @else {
                            span.muted { (label) }
                        }
                    }
                    td.num { (n["keys"]) }
                    td.num { (n["total_keys"]) }
                }
            }
        }
    };
    layout(Some(ctx), "Namespaces", body)
}

fn writable(ctx: &Ctx<'_>, ns: &str) -> bool {
    super::access::check(ctx.token, super::access::Action::Write, ns).is_ok()
}

fn type_select(selected: &str) -> Markup {
    html! {
        select name="type" {
            @for (_, name, _) in KvType::ALL {
                option selected[name == selected] { (name) }
            }
        }
    }
}

/// What an edit form shows: the key as loaded, or what the user typed (a failed save or a
/// conflict shows the input again, never loses it).
#[derive(Debug, Clone, Default)]
pub(crate) struct FormInput {
    pub key: String,
    pub kv_type: String,
    pub ttl: String,
    /// The TTL as the form showed it when loaded (unchanged: the key keeps its expiry).
    pub ttl_was: String,
    pub description: String,
    pub value: String,
    /// The value box of a masked secret: left empty, the stored value is kept.
    pub keep_value: bool,
    pub overwrite: bool,
    /// The version the form was loaded at (0: create only).
    pub version: u64,
}

impl FormInput {
    /// A key as the API answers it (`null`: none yet).
    pub(crate) fn loaded(key: &str, current: &Value) -> FormInput {
        if current.is_null() {
            return FormInput {
                key: key.into(),
                kv_type: "string".into(),
                ttl: "0".into(),
                ttl_was: "0".into(),
                ..Default::default()
            };
        }
        let masked = current["sensitive"] == true;
        let ttl = duration_text(current["ttl"].as_u64().unwrap_or(0));
        FormInput {
            key: key.into(),
            kv_type: s(current, "type").into(),
            ttl: ttl.clone(),
            ttl_was: ttl,
            description: s(current, "description").into(),
            value: if masked { String::new() } else { value_text(current) },
            keep_value: masked,
            overwrite: true,
            version: current["version"].as_u64().unwrap_or(0),
        }
    }

    /// What a posted form carried.
    pub(crate) fn posted(form: &BTreeMap<String, String>) -> FormInput {
        let f = |k: &str| form.get(k).cloned().unwrap_or_default();
        FormInput {
            key: f("key").trim().to_string(),
            kv_type: form.get("type").cloned().unwrap_or_else(|| "string".into()),
            ttl: f("ttl"),
            ttl_was: f("ttl_was"),
            description: f("description"),
            value: f("value"),
            keep_value: form.get("keep_value").is_some_and(|v| v == "1"),
            overwrite: form.get("overwrite").is_some_and(|v| v == "on"),
            version: form.get("version").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        }
    }
}

/// Seconds in the largest whole unit the TTL field takes back (`3600` → `1h`).
pub(crate) fn duration_text(secs: u64) -> String {
    match secs {
        0 => "0".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => s.to_string(),
    }
}

/// A refused save, shown at the field it is about.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    /// `key`, `ttl`, `description`, `value` (the box) or `form` (above the form).
    pub field: &'static str,
    pub message: String,
}

fn field_error(err: Option<&FieldError>, field: &str) -> Markup {
    html! {
        @if let Some(e) = err.filter(|e| e.field == field) {
            span.ferr role="alert" { (e.message) }
        }
    }
}

/// The create form (`key` `None`) or the edit form of `key`.
fn put_form(ctx: &Ctx<'_>, ns: &str, key: Option<&str>, input: &FormInput, err: Option<&FieldError>) -> Markup {
    let bad = |f: &str| err.is_some_and(|e| e.field == f);
    html! {
        form.card #edit method="post" action="/ui/put" {
            h2 style="margin-top:0" { @if key.is_some() { "Edit" } @else { "Create a key" } }
            (field_error(err, "form"))
            input type="hidden" name="csrf" value=(ctx.csrf);
            input type="hidden" name="namespace" value=(ns);
            div.grid {
                @if let Some(k) = key {
                    input type="hidden" name="key" value=(k);
                    input type="hidden" name="origin" value="key";
                } @else {
                    label { "Key" input class=[bad("key").then_some("bad")] name="key" required placeholder="feature_x" value=(input.key); (field_error(err, "key")) }
                }
                label { "Type" (type_select(&input.kv_type)) }
                label {
                    "TTL (3600, 1h, P30D; 0 = never)"
                    input class=[bad("ttl").then_some("bad")] name="ttl" value=(input.ttl);
                    input type="hidden" name="ttl_was" value=(input.ttl_was);
                    input type="hidden" name="version" value=(input.version);
                    (field_error(err, "ttl"))
                }
                label { "Description" input class=[bad("description").then_some("bad")] name="description" value=(input.description); (field_error(err, "description")) }
            }
            label.muted style="display:block;margin-top:10px" {
                "Value"
                @if input.keep_value {
                    input type="hidden" name="keep_value" value="1";
                    textarea class=[bad("value").then_some("bad")] name="value" placeholder="(sensitive: leave empty to keep the current value)" { (input.value) }
                } @else {
                    textarea class=[bad("value").then_some("bad")] name="value" { (input.value) }
                }
                (field_error(err, "value"))
            }
            label style="display:inline-flex;gap:6px;align-items:center;margin:8px 0" {
                input type="checkbox" name="overwrite" checked[input.overwrite];
                " overwrite an existing key"
            }
            br;
            button.p { @if key.is_some() { "Save new version" } @else { "Create" } }
            @if let Some(k) = key {
                " " a.btn href=(key_url(ns, k)) { "Cancel" }
            }
        }
    }
}

fn preview(v: &Value) -> Markup {
    if v["sensitive"] == true {
        return html! { span.muted { "(sensitive)" } };
    }
    let t = value_text(v);
    let short: String = t.chars().take(60).collect();
    html! { code { (short) } @if t.chars().count() > 60 { "…" } }
}

fn flash(query: &BTreeMap<String, String>) -> Markup {
    html! {
        @if let Some(e) = query.get("error") { div.err { (e) } }
        @if let Some(n) = query.get("notice") { div.note { (n) } }
    }
}

pub(crate) fn namespace(
    ctx: &Ctx<'_>,
    ns: &str,
    listing: &Value,
    query: &BTreeMap<String, String>,
    failed: Option<(&FormInput, &FieldError)>,
) -> String {
    let keys: Vec<&Value> = listing["keys"].as_array().into_iter().flatten().collect();
    let body = html! {
        (crumbs(ns))
        h1.mono { (ns) }
        (flash(query))
        table {
            tr {
                th { "Key" } th { "Type" } th { "Value" } th.wide { "Updated" } th.wide { "Expires" }
                th.num.wide { "Versions" } th.wide { "Writer" }
            }
            @for k in &keys {
                @let key = s(k, "key");
                tr {
                    td { a href=(key_url(ns, key)) { (key) } }
                    td { span.pill { (s(k, "type")) } }
                    td { (preview(k)) }
                    td.mono.wide.ts { (s(k, "updated_at")) }
                    td.mono.wide.ts {
                        @if k["expires_at"].is_string() {
                            (s(k, "expires_at")) @if k["expired"] == true { " (expired)" }
                        } @else { "—" }
                    }
                    td.num.wide { (k["versions"]) }
                    td.mono.wide { (s(k, "writer")) }
                }
            }
            @if keys.is_empty() {
                tr { td colspan="7" class="muted" { "No live keys." } }
            }
        }
        @if writable(ctx, ns) {
            @match failed {
                Some((input, err)) => (put_form(ctx, ns, None, input, Some(err))),
                None => (put_form(ctx, ns, None, &FormInput::loaded("", &Value::Null), None)),
            }
        }
    };
    layout(Some(ctx), ns, body)
}

/// The line diff of two texts, `-`/`+`/` ` per line.
fn diff_lines(x: &str, y: &str) -> Markup {
    html! {
        div.card.diff.mono {
            @for change in similar::TextDiff::from_lines(x, y).iter_all_changes() {
                @let (class, sign) = match change.tag() {
                    similar::ChangeTag::Delete => ("del", "-"),
                    similar::ChangeTag::Insert => ("add", "+"),
                    similar::ChangeTag::Equal => ("", " "),
                };
                div class=(class) { (sign) " " (change.value().trim_end_matches('\n')) }
            }
        }
    }
}

/// What the key page shows besides the key: nothing more (the read view), the edit form
/// (with a failed save's input and error), or the delete confirmation.
pub(crate) enum KeyMode<'a> {
    Read,
    Edit(Option<(&'a FormInput, &'a FieldError)>),
    ConfirmDelete,
}

#[allow(clippy::too_many_arguments)] // one page's inputs, each from its own read
pub(crate) fn key(
    ctx: &Ctx<'_>,
    ns: &str,
    key: &str,
    current: &Value,
    history: &Value,
    query: &BTreeMap<String, String>,
    revealed: bool,
    managed: Option<&str>,
    mode: KeyMode<'_>,
) -> String {
    let versions: Vec<&Value> = history["versions"].as_array().into_iter().flatten().collect();
    let may_write = writable(ctx, ns);
    // The live version the page was loaded at (0: deleted or absent): a restore sends it as
    // `cas`, so restoring over a change made meanwhile is a conflict, not a silent overwrite.
    let live = current["version"].as_u64().unwrap_or(0);
    let nums: Vec<u64> = versions.iter().filter_map(|v| v["version"].as_u64()).collect();
    let pick = |name: &str, default: Option<u64>| query.get(name).and_then(|v| v.parse().ok()).or(default);
    let (a, b) = (pick("a", nums.iter().rev().nth(1).copied()), pick("b", nums.last().copied()));
    let text_of = |n: Option<u64>| -> Option<String> {
        let v = versions.iter().find(|v| v["version"].as_u64() == n)?;
        Some(if v["deleted"] == true { String::new() } else { value_text(v) })
    };
    let secret = crate::kv::is_secret_key(ns, key);
    let body = html! {
        (crumbs(ns))
        h1.mono { (key) }
        @if may_write && !current.is_null() && matches!(mode, KeyMode::ConfirmDelete) {
            div.warn {
                p style="margin-top:0" {
                    "Delete " code { (key) } " from " code { (ns) } "? This writes a deletion as version "
                    (live + 1) "; the history is kept, and Restore on an earlier version brings the value back."
                }
                form method="post" action="/ui/delete" style="display:inline" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="namespace" value=(ns);
                    input type="hidden" name="key" value=(key);
                    input type="hidden" name="confirmed" value="1";
                    button.d { "Delete " (key) }
                }
                " " a.btn href=(key_url(ns, key)) { "Cancel" }
            }
        }
        // A key the workspace declares: an edit here lasts until the next apply writes it back.
        @if let Some(at) = managed {
            div.warn {
                span.pill { "managed by workspace (" (at.rsplit('/').next().unwrap_or(at)) ")" }
                " " (at) ": the next apply writes the workspace's value back; change it in "
                (at.split(':').next().unwrap_or(at)) " to keep it."
            }
        }
        @if current.is_null() {
            div.card {
                span.muted { "This key is deleted (its history is kept)." }
                @if may_write && matches!(mode, KeyMode::Read) {
                    " " a.btn href=(format!("{}?edit=1#edit", key_url(ns, key))) { "Write a new value" }
                }
            }
        } @else {
            div.card {
                div style="display:flex;gap:10px;align-items:center;flex-wrap:wrap" {
                    span.pill { (s(current, "type")) }
                    span.muted {
                        "version " (current["version"]) " · created " (s(current, "created_at"))
                        " · updated " (s(current, "updated_at")) " · expires "
                        @if current["expires_at"].is_string() { (s(current, "expires_at")) } @else { "never" }
                        " · by " (s(current, "writer"))
                    }
                    @if secret && ctx.token.reveal && !revealed {
                        a href=(format!("{}?reveal=1", key_url(ns, key))) { "Reveal" }
                    } @else if secret && !ctx.token.reveal {
                        span.muted { "masked (this token has no --reveal)" }
                    }
                }
                p.muted { (s(current, "description")) }
                pre.mono { @if current["sensitive"] == true { "(sensitive)" } @else { (value_text(current)) } }
                @if may_write && matches!(mode, KeyMode::Read) {
                    div style="display:flex;gap:8px;margin-top:12px" {
                        a.btn href=(format!("{}?edit=1#edit", key_url(ns, key))) { "Edit" }
                        a.btn href=(format!("{}?delete=1", key_url(ns, key))) { "Delete…" }
                    }
                }
            }
        }
        h2 { "History" }
        table {
            tr {
                th.num { "Version" } th.wide { "Updated" } th { "Type" } th { "Value" } th.wide { "Writer" } th.wide { "Description" }
                @if may_write { th {} }
            }
            @for v in versions.iter().rev() {
                @let version = v["version"].as_u64().unwrap_or(0);
                tr {
                    td.num { (v["version"]) }
                    td.mono.wide.ts { (s(v, "updated_at")) }
                    td { span.pill { (s(v, "type")) } }
                    td { @if v["deleted"] == true { span.muted { "(deleted)" } } @else { (preview(v)) } }
                    td.mono.wide { (s(v, "writer")) }
                    td.wide { (s(v, "description")) }
                    @if may_write {
                        td {
                            @if v["deleted"] != true && version != live {
                                form method="post" action="/ui/restore" {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    input type="hidden" name="namespace" value=(ns);
                                    input type="hidden" name="key" value=(key);
                                    input type="hidden" name="version" value=(version);
                                    input type="hidden" name="cas" value=(live);
                                    button { "Restore" }
                                }
                            }
                        }
                    }
                }
            }
        }
        // A diff needs two kept versions: with one, there is nothing to compare.
        @if nums.len() > 1 {
            h2 { "Diff" }
            form.card method="get" style="display:flex;gap:8px;align-items:center" {
                "Compare version "
                select name="a" { @for n in &nums { option selected[Some(*n) == a] { (n) } } }
                " with "
                select name="b" { @for n in &nums { option selected[Some(*n) == b] { (n) } } }
                @if revealed { input type="hidden" name="reveal" value="1"; }
                button.p { "Diff" }
            }
            @match (text_of(a), text_of(b)) {
                (Some(x), Some(y)) => (diff_lines(&x, &y)),
                _ => p.muted { "Pick two versions to compare." },
            }
        }
        @if may_write {
            @match mode {
                KeyMode::Edit(Some((input, err))) => (put_form(ctx, ns, Some(key), input, Some(err))),
                KeyMode::Edit(None) => (put_form(ctx, ns, Some(key), &FormInput::loaded(key, current), None)),
                _ => {}
            }
        }
    };
    layout(Some(ctx), key, body)
}

/// A save refused because the key moved on since the form was loaded (compare-and-set): the
/// newer version (masked when sensitive), a line diff from it to what the user typed, and
/// the form again with the input, now based on the newer version, so saving again is a
/// deliberate overwrite.
pub(crate) fn conflict(ctx: &Ctx<'_>, ns: &str, key: &str, current: &Value, typed: &FormInput) -> String {
    let now_at = current["version"].as_u64().unwrap_or(0);
    let mut input = typed.clone();
    input.version = now_at;
    let sensitive = current["sensitive"] == true;
    let body = html! {
        (crumbs(ns))
        h1.mono { (key) }
        div.warn {
            strong { "Conflict: your edit was not saved." }
            " You loaded version " (typed.version) "; "
            @if current.is_null() {
                "since then the key was deleted."
            } @else {
                "since then " (s(current, "writer")) " saved version " (now_at) " (" (s(current, "updated_at")) ")."
            }
            " Compare, then save again to replace it, or "
            a href=(key_url(ns, key)) { "discard your edit" } "."
        }
        @if !current.is_null() {
            h2 { "The newer version " (now_at) }
            div.card {
                span.pill { (s(current, "type")) }
                " " span.muted { (s(current, "description")) }
                pre.mono { @if sensitive { "(sensitive)" } @else { (value_text(current)) } }
            }
            h2 { "From version " (now_at) " to your input" }
            @if sensitive {
                p.muted { "The value is sensitive: no diff is shown." }
            } @else if typed.keep_value && typed.value.is_empty() {
                p.muted { "You kept the value; only the other fields differ." }
            } @else {
                (diff_lines(&value_text(current), &typed.value))
            }
        }
        (put_form(ctx, ns, Some(key), &input, None))
    };
    layout(Some(ctx), key, body)
}

pub(crate) fn applies(ctx: &Ctx<'_>, a: &Value) -> String {
    let body = html! {
        h1 { "Applies" }
        table {
            tr {
                th.num { "Serial" } th { "Operation" } th.wide { "Who" } th { "When" } th.wide { "Counts" } th { "Status" } th.wide { "Changes" }
            }
            @for r in a["applies"].as_array().into_iter().flatten() {
                @let c = &r["counts"];
                @let changes: Vec<&Value> = r["changes"].as_array().into_iter().flatten().collect();
                tr {
                    td.num { (r["serial"]) }
                    td { (s(r, "operation")) }
                    td.mono.wide { (s(r, "actor")) }
                    td.mono.ts { (s(r, "finished_at")) }
                    td.wide { "+" (c["added"]) " ~" (c["changed"]) " −" (c["destroyed"]) }
                    td { (s(r, "status")) }
                    td.mono.wide style="font-size:12px" {
                        @for (i, ch) in changes.iter().take(12).enumerate() {
                            @if i > 0 { br; }
                            @if ch["deleted"] == true { "−" }
                            (s(ch, "namespace")) " " (s(ch, "key"))
                        }
                        @if changes.len() > 12 {
                            br;
                            span.muted { "… " (changes.len() - 12) " more" }
                        }
                    }
                }
            }
        }
    };
    layout(Some(ctx), "Applies", body)
}

/// The pending plan: its rollout as a picture (`plan::graph::rollout_svg`, the same waves,
/// demands and batches as `kvform graph --rollout`; its text is escaped there), then the text.
pub(crate) fn plan(ctx: &Ctx<'_>, text: &Result<String, String>, picture: Option<&str>) -> String {
    let body = html! {
        h1 { "Pending plan" }
        @match text {
            Ok(t) => {
                @if let Some(svg) = picture {
                    h2 { "Rollout" }
                    div.card style="overflow-x:auto" { (PreEscaped(svg)) }
                }
                div.card { pre.mono { (t) } }
            }
            Err(e) => div.err { (e) },
        }
    };
    layout(Some(ctx), "Plan", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_show_in_their_largest_whole_unit_and_read_back() {
        for (secs, text) in
            [(0, "0"), (59, "59"), (60, "1m"), (3600, "1h"), (5400, "90m"), (86_400, "1d"), (3599, "3599")]
        {
            assert_eq!(duration_text(secs), text);
            assert_eq!(crate::clock::parse_duration(text), Some(secs), "{text}");
        }
    }

    #[test]
    fn urls_keep_unreserved_characters() {
        assert_eq!(key_url("vars/job/api", "database_url"), "/ui/key/vars/job/api/database_url");
        assert_eq!(key_url("vars/job/api", "a/b c~d.e-f"), "/ui/key/vars/job/api/a%2Fb%20c~d.e-f");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let page = message("<b>", "\"><script>alert(1)</script>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("<h1>&lt;b&gt;</h1>") && page.contains("&quot;&gt;&lt;script&gt;"), "{page}");
    }
}
