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

/// Percent-encode one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
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
.pill{display:inline-block;padding:1px 8px;border-radius:999px;background:#eef2ff;color:#3730a3;font-size:12px}
.muted{color:var(--mute)}.crumbs{color:var(--mute);margin-bottom:6px}.crumbs a{text-decoration:none}
.err{background:#fef3f2;border:1px solid #fecdca;color:var(--bad);padding:8px 12px;border-radius:8px;margin-bottom:14px}
.note{background:#ecfdf3;border:1px solid #abefc6;color:var(--ok);padding:8px 12px;border-radius:8px;margin-bottom:14px}
input,select,textarea{font:inherit;padding:6px 8px;border:1px solid #cfd4dc;border-radius:6px;background:#fff}textarea{width:100%;min-height:70px;font-family:ui-monospace,monospace}
button.p{background:var(--acc);color:#fff;border:0;border-radius:6px;padding:7px 14px;cursor:pointer}button.d{background:#fff;color:var(--bad);border:1px solid #fecdca;border-radius:6px;padding:6px 12px;cursor:pointer}
.grid{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:10px}.grid label{display:flex;flex-direction:column;gap:3px;font-size:12px;color:var(--mute)}
.tree a{text-decoration:none}.diff .add{background:#ecfdf3;color:#05603a}.diff .del{background:#fef3f2;color:#912018}.diff div{padding:0 6px;white-space:pre-wrap}
.login{max-width:440px;margin:12vh auto}.login input{width:100%;margin:10px 0}
";

fn layout(ctx: Option<&Ctx<'_>>, title: &str, body: Markup) -> String {
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

fn put_form(ctx: &Ctx<'_>, ns: &str, key: Option<&str>, current: Option<&Value>) -> Markup {
    let live = current.filter(|c| !c.is_null());
    // A masked value is not in the page, so the box starts empty: left empty, the stored
    // value is kept (`keep_value`), never replaced by "".
    let masked = live.is_some_and(|c| c["sensitive"] == true);
    let value = match live {
        Some(c) if !masked => value_text(c),
        _ => String::new(),
    };
    let kv_type = live.map_or("string", |c| s(c, "type"));
    let desc = live.map_or("", |c| s(c, "description"));
    let ttl = live.and_then(|c| c["ttl"].as_u64()).unwrap_or(0);
    // The version this form was loaded at (0: create only) and the TTL shown, so a save can
    // tell a conflict and keep an untouched expiry.
    let loaded = live.and_then(|c| c["version"].as_u64()).unwrap_or(0);
    html! {
        form.card method="post" action="/ui/put" {
            h2 style="margin-top:0" { @if key.is_some() { "Edit" } @else { "Create a key" } }
            input type="hidden" name="csrf" value=(ctx.csrf);
            input type="hidden" name="namespace" value=(ns);
            div.grid {
                @if let Some(k) = key {
                    input type="hidden" name="key" value=(k);
                } @else {
                    label { "Key" input name="key" required placeholder="feature_x"; }
                }
                label { "Type" (type_select(kv_type)) }
                label {
                    "TTL (3600, 1h, P30D; 0 = never)"
                    input name="ttl" value=(ttl);
                    input type="hidden" name="ttl_was" value=(ttl);
                    input type="hidden" name="version" value=(loaded);
                }
                label { "Description" input name="description" value=(desc); }
            }
            label.muted style="display:block;margin-top:10px" {
                "Value"
                @if masked {
                    input type="hidden" name="keep_value" value="1";
                    textarea name="value" placeholder="(sensitive: leave empty to keep the current value)" {}
                } @else {
                    textarea name="value" { (value) }
                }
            }
            label style="display:inline-flex;gap:6px;align-items:center;margin:8px 0" {
                input type="checkbox" name="overwrite" checked[key.is_some()];
                " overwrite an existing key"
            }
            br;
            button.p { @if key.is_some() { "Save new version" } @else { "Create" } }
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

pub(crate) fn namespace(ctx: &Ctx<'_>, ns: &str, listing: &Value, query: &BTreeMap<String, String>) -> String {
    let keys: Vec<&Value> = listing["keys"].as_array().into_iter().flatten().collect();
    let body = html! {
        (crumbs(ns))
        h1.mono { (ns) }
        (flash(query))
        table {
            tr {
                th { "Key" } th { "Type" } th { "Value" } th { "Updated" } th { "Expires" }
                th.num { "Versions" } th { "Writer" }
            }
            @for k in &keys {
                @let key = s(k, "key");
                tr {
                    td { a href=(key_url(ns, key)) { (key) } }
                    td { span.pill { (s(k, "type")) } }
                    td { (preview(k)) }
                    td.mono { (s(k, "updated_at")) }
                    td.mono {
                        @if k["expires_at"].is_string() {
                            (s(k, "expires_at")) @if k["expired"] == true { " (expired)" }
                        } @else { "—" }
                    }
                    td.num { (k["versions"]) }
                    td.mono { (s(k, "writer")) }
                }
            }
            @if keys.is_empty() {
                tr { td colspan="7" class="muted" { "No live keys." } }
            }
        }
        @if writable(ctx, ns) { (put_form(ctx, ns, None, None)) }
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
        // A key the workspace declares: an edit here lasts until the next apply writes it back.
        @if let Some(at) = managed {
            div.note {
                span.pill { "managed by workspace (" (at.rsplit('/').next().unwrap_or(at)) ")" }
                " " (at) ": the next apply writes the workspace's value back; change it in "
                (at.split(':').next().unwrap_or(at)) " to keep it."
            }
        }
        @if current.is_null() {
            div.card { span.muted { "This key is deleted (its history is kept)." } }
        } @else {
            div.card {
                div style="display:flex;gap:10px;align-items:center" {
                    span.pill { (s(current, "type")) }
                    span.muted {
                        "version " (current["version"]) " · created " (s(current, "created_at"))
                        " · updated " (s(current, "updated_at")) " · expires "
                        @if current["expires_at"].is_string() { (s(current, "expires_at")) } @else { "never" }
                        " · by " (s(current, "writer"))
                    }
                    span.sp {}
                    @if secret && ctx.token.reveal && !revealed {
                        a href=(format!("{}?reveal=1", key_url(ns, key))) { "Reveal" }
                    } @else if secret && !ctx.token.reveal {
                        span.muted { "masked (this token has no --reveal)" }
                    }
                }
                p.muted { (s(current, "description")) }
                pre.mono { @if current["sensitive"] == true { "(sensitive)" } @else { (value_text(current)) } }
            }
        }
        h2 { "History" }
        table {
            tr {
                th.num { "Version" } th { "Updated" } th { "Type" } th { "Value" } th { "Writer" } th { "Description" }
                @if may_write { th {} }
            }
            @for v in versions.iter().rev() {
                @let version = v["version"].as_u64().unwrap_or(0);
                tr {
                    td.num { (v["version"]) }
                    td.mono { (s(v, "updated_at")) }
                    td { span.pill { (s(v, "type")) } }
                    td { @if v["deleted"] == true { span.muted { "(deleted)" } } @else { (preview(v)) } }
                    td.mono { (s(v, "writer")) }
                    td { (s(v, "description")) }
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
        @if may_write {
            (put_form(ctx, ns, Some(key), Some(current)))
            @if !current.is_null() {
                form method="post" action="/ui/delete" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    input type="hidden" name="namespace" value=(ns);
                    input type="hidden" name="key" value=(key);
                    button.d { "Delete this key" }
                }
            }
        }
    };
    layout(Some(ctx), key, body)
}

pub(crate) fn applies(ctx: &Ctx<'_>, a: &Value) -> String {
    let body = html! {
        h1 { "Applies" }
        table {
            tr {
                th.num { "Serial" } th { "Operation" } th { "Who" } th { "When" } th { "Counts" } th { "Status" } th { "Changes" }
            }
            @for r in a["applies"].as_array().into_iter().flatten() {
                @let c = &r["counts"];
                @let changes: Vec<&Value> = r["changes"].as_array().into_iter().flatten().collect();
                tr {
                    td.num { (r["serial"]) }
                    td { (s(r, "operation")) }
                    td.mono { (s(r, "actor")) }
                    td.mono { (s(r, "finished_at")) }
                    td { "+" (c["added"]) " ~" (c["changed"]) " −" (c["destroyed"]) }
                    td { (s(r, "status")) }
                    td.mono style="font-size:12px" {
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
