//! The HTML of the web UI: one layout, inline CSS, no script, every string escaped with
//! [`esc`]. Pages take the JSON the REST handlers produce, so the UI shows exactly what the
//! API answers.

use crate::kv::KvType;
use crate::state::tokens::TokenRecord;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) struct Ctx<'a> {
    pub token: &'a TokenRecord,
    pub csrf: &'a str,
}

/// HTML-escape text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
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

pub(crate) fn layout(ctx: Option<&Ctx<'_>>, title: &str, body: &str) -> String {
    let nav = match ctx {
        Some(c) => format!(
            "<a href=\"/ui\">Namespaces</a><a href=\"/ui/search\">Search</a><a href=\"/ui/applies\">Applies</a><a href=\"/ui/plan\">Plan</a><span class=sp></span>\
<span class=muted>{} · {}{}</span><form method=post action=\"/logout\"><input type=hidden name=csrf value=\"{}\"><button>Log out</button></form>",
            esc(&c.token.name),
            esc(&c.token.role),
            if c.token.reveal { " · reveal" } else { "" },
            esc(c.csrf)
        ),
        None => "<span class=sp></span>".into(),
    };
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\">\
<title>{} · kvform</title><style>{CSS}</style></head><body><header><b>kvform</b>{nav}</header><main>{body}</main></body></html>",
        esc(title)
    )
}

pub(crate) fn message(title: &str, text: &str) -> String {
    layout(
        None,
        title,
        &format!("<h1>{}</h1><div class=err>{}</div><p><a href=\"/ui\">Back</a></p>", esc(title), esc(text)),
    )
}

/// The login form; `csrf` is the pre-session value also set as the `/login` cookie.
pub(crate) fn login(error: Option<&str>, csrf: &str) -> String {
    let err = error.map(|e| format!("<div class=err>{}</div>", esc(e))).unwrap_or_default();
    layout(
        None,
        "Log in",
        &format!(
            "<div class=\"card login\"><h1>Log in</h1>{err}<p class=muted>Paste an API token (<code>kvform token create NAME --role reader</code>).</p>\
<form method=post action=\"/login\"><input type=hidden name=login_csrf value=\"{csrf}\"><input type=password name=token autocomplete=off placeholder=\"kvf_…\" autofocus>\
<button class=p>Log in</button></form></div>",
            csrf = esc(csrf)
        ),
    )
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn crumbs(ns: &str) -> String {
    let mut out = String::from("<div class=crumbs><a href=\"/ui\">namespaces</a>");
    let parts: Vec<&str> = ns.split('/').collect();
    for i in 1..=parts.len() {
        let p = parts[..i].join("/");
        let label = esc(parts[i - 1]);
        if crate::kv::rules::namespace(&p).is_ok() {
            out.push_str(&format!(" / <a href=\"{}\">{label}</a>", ns_url(&p)));
        } else {
            out.push_str(&format!(" / {label}"));
        }
    }
    out + "</div>"
}

pub(crate) fn tree(ctx: &Ctx<'_>, nss: &Value, q: &str) -> String {
    let mut rows = String::new();
    let q_lower = q.to_lowercase();
    for n in nss["namespaces"].as_array().into_iter().flatten() {
        let ns = s(n, "namespace");
        if !q.is_empty() && !ns.to_lowercase().contains(&q_lower) {
            continue;
        }
        let depth = n["depth"].as_u64().unwrap_or(0) as usize;
        let leaf = ns.rsplit('/').next().unwrap_or(ns);
        let name = if crate::kv::rules::namespace(ns).is_ok() {
            format!("<a href=\"{}\">{}</a>", ns_url(ns), esc(if q.is_empty() { leaf } else { ns }))
        } else {
            format!("<span class=muted>{}</span>", esc(if q.is_empty() { leaf } else { ns }))
        };
        let pad = if q.is_empty() { depth * 18 } else { 0 };
        rows.push_str(&format!(
            "<tr><td style=\"padding-left:{}px\">{name}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            10 + pad,
            n["keys"],
            n["total_keys"]
        ));
    }
    let body = format!(
        "<h1>Namespaces</h1><form method=get action=\"/ui\" class=card style=\"display:flex;gap:8px\">\
<input name=q value=\"{}\" placeholder=\"Search namespaces (e.g. api, vars/job)\" style=\"flex:1\"><button class=p>Search</button></form>\
<table class=tree><tr><th>Namespace</th><th class=num>Keys</th><th class=num>Keys below</th></tr>{rows}</table>",
        esc(q)
    );
    layout(Some(ctx), "Namespaces", &body)
}

fn writable(ctx: &Ctx<'_>, ns: &str) -> bool {
    super::access::check(ctx.token, super::access::Action::Write, ns).is_ok()
}

fn type_select(selected: &str) -> String {
    let mut o = String::from("<select name=type>");
    for (_, name, _) in KvType::ALL {
        o.push_str(&format!("<option{}>{name}</option>", if name == selected { " selected" } else { "" }));
    }
    o + "</select>"
}

fn put_form(ctx: &Ctx<'_>, ns: &str, key: Option<&str>, current: Option<&Value>) -> String {
    let (value, kv_type, desc, ttl) = match current {
        Some(c) if !c.is_null() && c["sensitive"] != true => (
            s(c, "value").to_string(),
            s(c, "type").to_string(),
            s(c, "description").to_string(),
            c["ttl"].as_u64().unwrap_or(0),
        ),
        Some(c) if !c.is_null() => {
            (String::new(), s(c, "type").to_string(), s(c, "description").to_string(), c["ttl"].as_u64().unwrap_or(0))
        }
        _ => (String::new(), "string".into(), String::new(), 0),
    };
    // A masked value is not in the page, so the box starts empty: left empty, the stored
    // value is kept (`keep_value`), never replaced by "".
    let masked = current.is_some_and(|c| !c.is_null() && c["sensitive"] == true);
    let (keep, placeholder) = if masked {
        (
            "<input type=hidden name=keep_value value=1>",
            " placeholder=\"(sensitive: leave empty to keep the current value)\"",
        )
    } else {
        ("", "")
    };
    // The version this form was loaded at (0: create only) and the TTL shown, so a save can
    // tell a conflict and keep an untouched expiry.
    let loaded = current.filter(|c| !c.is_null()).and_then(|c| c["version"].as_u64()).unwrap_or(0);
    let key_field = match key {
        Some(k) => format!("<input type=hidden name=key value=\"{}\">", esc(k)),
        None => "<label>Key<input name=key required placeholder=\"feature_x\"></label>".into(),
    };
    format!(
        "<form method=post action=\"/ui/put\" class=card><h2 style=\"margin-top:0\">{}</h2>\
<input type=hidden name=csrf value=\"{}\"><input type=hidden name=namespace value=\"{}\">\
<div class=grid>{key_field}<label>Type{}</label><label>TTL (3600, 1h, P30D; 0 = never)<input name=ttl value=\"{ttl}\"><input type=hidden name=ttl_was value=\"{ttl}\"><input type=hidden name=version value=\"{loaded}\"></label>\
<label>Description<input name=description value=\"{}\"></label></div>\
<label class=muted style=\"display:block;margin-top:10px\">Value{keep}<textarea name=value{placeholder}>{}</textarea></label>\
<label style=\"display:inline-flex;gap:6px;align-items:center;margin:8px 0\"><input type=checkbox name=overwrite{}> overwrite an existing key</label><br>\
<button class=p>{}</button></form>",
        if key.is_some() { "Edit" } else { "Create a key" },
        esc(ctx.csrf),
        esc(ns),
        type_select(&kv_type),
        esc(&desc),
        esc(&value),
        if key.is_some() { " checked" } else { "" },
        if key.is_some() { "Save new version" } else { "Create" }
    )
}

fn preview(v: &Value) -> String {
    if v["sensitive"] == true {
        return "<span class=muted>(sensitive)</span>".into();
    }
    let t = s(v, "value");
    let short: String = t.chars().take(60).collect();
    format!("<code>{}</code>{}", esc(&short), if t.chars().count() > 60 { "…" } else { "" })
}

fn flash(query: &BTreeMap<String, String>) -> String {
    let mut o = String::new();
    if let Some(e) = query.get("error") {
        o.push_str(&format!("<div class=err>{}</div>", esc(e)));
    }
    if let Some(n) = query.get("notice") {
        o.push_str(&format!("<div class=note>{}</div>", esc(n)));
    }
    o
}

pub(crate) fn namespace(ctx: &Ctx<'_>, ns: &str, listing: &Value, query: &BTreeMap<String, String>) -> String {
    let mut rows = String::new();
    for k in listing["keys"].as_array().into_iter().flatten() {
        let key = s(k, "key");
        rows.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td><span class=pill>{}</span></td><td>{}</td><td class=mono>{}</td><td class=mono>{}</td><td class=num>{}</td><td class=mono>{}</td></tr>",
            key_url(ns, key),
            esc(key),
            esc(s(k, "type")),
            preview(k),
            esc(s(k, "updated_at")),
            if k["expires_at"].is_string() { format!("{}{}", esc(s(k, "expires_at")), if k["expired"] == true { " (expired)" } else { "" }) } else { "—".into() },
            k["versions"],
            esc(s(k, "writer"))
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=7 class=muted>No live keys.</td></tr>".into();
    }
    let form = if writable(ctx, ns) { put_form(ctx, ns, None, None) } else { String::new() };
    let body = format!(
        "{}<h1 class=mono>{}</h1>{}<table><tr><th>Key</th><th>Type</th><th>Value</th><th>Updated</th><th>Expires</th><th class=num>Versions</th><th>Writer</th></tr>{rows}</table>{form}",
        crumbs(ns),
        esc(ns),
        flash(query)
    );
    layout(Some(ctx), ns, &body)
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
    let mut rows = String::new();
    for v in versions.iter().rev() {
        let version = v["version"].as_u64().unwrap_or(0);
        let restore = if !may_write {
            String::new()
        } else if v["deleted"] == true || version == live {
            "<td></td>".to_string()
        } else {
            format!(
                "<td><form method=post action=\"/ui/restore\"><input type=hidden name=csrf value=\"{}\"><input type=hidden name=namespace value=\"{}\"><input type=hidden name=key value=\"{}\"><input type=hidden name=version value={version}><input type=hidden name=cas value={live}><button>Restore</button></form></td>",
                esc(ctx.csrf),
                esc(ns),
                esc(key)
            )
        };
        rows.push_str(&format!(
            "<tr><td class=num>{}</td><td class=mono>{}</td><td><span class=pill>{}</span></td><td>{}</td><td class=mono>{}</td><td>{}</td>{restore}</tr>",
            v["version"],
            esc(s(v, "updated_at")),
            esc(s(v, "type")),
            if v["deleted"] == true { "<span class=muted>(deleted)</span>".into() } else { preview(v) },
            esc(s(v, "writer")),
            esc(s(v, "description"))
        ));
    }
    let nums: Vec<u64> = versions.iter().filter_map(|v| v["version"].as_u64()).collect();
    let pick = |name: &str, default: Option<u64>| query.get(name).and_then(|v| v.parse().ok()).or(default);
    let (a, b) = (pick("a", nums.iter().rev().nth(1).copied()), pick("b", nums.last().copied()));
    let text_of = |n: Option<u64>| -> Option<String> {
        let v = versions.iter().find(|v| v["version"].as_u64() == n)?;
        Some(if v["deleted"] == true { String::new() } else { s(v, "value").to_string() })
    };
    let diff = match (text_of(a), text_of(b)) {
        (Some(x), Some(y)) => {
            let mut o = String::from("<div class=\"card diff mono\">");
            for change in similar::TextDiff::from_lines(&x, &y).iter_all_changes() {
                let (class, sign) = match change.tag() {
                    similar::ChangeTag::Delete => ("del", "-"),
                    similar::ChangeTag::Insert => ("add", "+"),
                    similar::ChangeTag::Equal => ("", " "),
                };
                let line = change.value().trim_end_matches('\n');
                o.push_str(&format!("<div class=\"{class}\">{sign} {}</div>", esc(line)));
            }
            o + "</div>"
        }
        _ => "<p class=muted>Pick two versions to compare.</p>".into(),
    };
    let options = |sel: Option<u64>| {
        nums.iter()
            .map(|n| format!("<option{}>{n}</option>", if Some(*n) == sel { " selected" } else { "" }))
            .collect::<String>()
    };
    let diff_form = format!(
        "<form method=get class=card style=\"display:flex;gap:8px;align-items:center\">Compare version <select name=a>{}</select> with <select name=b>{}</select>{}<button class=p>Diff</button></form>",
        options(a),
        options(b),
        if revealed { "<input type=hidden name=reveal value=1>" } else { "" }
    );
    let secret = crate::kv::is_secret_key(ns, key);
    let reveal = if secret && ctx.token.reveal && !revealed {
        format!("<a href=\"{}?reveal=1\">Reveal</a>", key_url(ns, key))
    } else if secret && !ctx.token.reveal {
        "<span class=muted>masked (this token has no --reveal)</span>".into()
    } else {
        String::new()
    };
    let summary = if current.is_null() {
        "<div class=card><span class=muted>This key is deleted (its history is kept).</span></div>".to_string()
    } else {
        format!(
            "<div class=card><div style=\"display:flex;gap:10px;align-items:center\"><span class=pill>{}</span><span class=muted>version {} · created {} · updated {} · expires {} · by {}</span><span class=sp></span>{reveal}</div>\
<p class=muted>{}</p><pre class=mono>{}</pre></div>",
            esc(s(current, "type")),
            current["version"],
            esc(s(current, "created_at")),
            esc(s(current, "updated_at")),
            if current["expires_at"].is_string() { esc(s(current, "expires_at")) } else { "never".into() },
            esc(s(current, "writer")),
            esc(s(current, "description")),
            if current["sensitive"] == true { "(sensitive)".into() } else { esc(s(current, "value")) }
        )
    };
    let edit = if may_write {
        let del = if current.is_null() {
            String::new()
        } else {
            format!(
                "<form method=post action=\"/ui/delete\"><input type=hidden name=csrf value=\"{}\"><input type=hidden name=namespace value=\"{}\"><input type=hidden name=key value=\"{}\"><button class=d>Delete this key</button></form>",
                esc(ctx.csrf),
                esc(ns),
                esc(key)
            )
        };
        format!("{}{del}", put_form(ctx, ns, Some(key), Some(current)))
    } else {
        String::new()
    };
    // A key the workspace declares: an edit here lasts until the next apply writes it back.
    let managed = managed
        .map(|at| {
            let short = at.rsplit('/').next().unwrap_or(at);
            format!(
                "<div class=note><span class=pill>managed by workspace ({})</span> {}: the next apply writes the workspace's value back; change it in {} to keep it.</div>",
                esc(short),
                esc(at),
                esc(at.split(':').next().unwrap_or(at))
            )
        })
        .unwrap_or_default();
    let body = format!(
        "{}<h1 class=mono>{}</h1>{managed}{summary}<h2>History</h2><table><tr><th class=num>Version</th><th>Updated</th><th>Type</th><th>Value</th><th>Writer</th><th>Description</th>{}</tr>{rows}</table>\
<h2>Diff</h2>{diff_form}{diff}{edit}",
        crumbs(ns),
        esc(key),
        if may_write { "<th></th>" } else { "" }
    );
    layout(Some(ctx), key, &body)
}

pub(crate) fn applies(ctx: &Ctx<'_>, a: &Value) -> String {
    let mut rows = String::new();
    for r in a["applies"].as_array().into_iter().flatten() {
        let c = &r["counts"];
        let changes: Vec<String> = r["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .take(12)
            .map(|ch| {
                format!(
                    "{}{} {}",
                    if ch["deleted"] == true { "−" } else { "" },
                    esc(s(ch, "namespace")),
                    esc(s(ch, "key"))
                )
            })
            .collect();
        let more = r["changes"].as_array().map_or(0, Vec::len).saturating_sub(12);
        rows.push_str(&format!(
            "<tr><td class=num>{}</td><td>{}</td><td class=mono>{}</td><td class=mono>{}</td><td>+{} ~{} −{}</td><td>{}</td><td class=mono style=\"font-size:12px\">{}{}</td></tr>",
            r["serial"],
            esc(s(r, "operation")),
            esc(s(r, "actor")),
            esc(s(r, "finished_at")),
            c["added"],
            c["changed"],
            c["destroyed"],
            esc(s(r, "status")),
            changes.join("<br>"),
            if more > 0 { format!("<br><span class=muted>… {more} more</span>") } else { String::new() }
        ));
    }
    layout(
        Some(ctx),
        "Applies",
        &format!(
            "<h1>Applies</h1><table><tr><th class=num>Serial</th><th>Operation</th><th>Who</th><th>When</th><th>Counts</th><th>Status</th><th>Changes</th></tr>{rows}</table>"
        ),
    )
}

/// The pending plan: its rollout as a picture (`plan::graph::rollout_svg`, the same waves,
/// demands and batches as `kvform graph --rollout`; its text is escaped there), then the text.
pub(crate) fn plan(ctx: &Ctx<'_>, text: &Result<String, String>, picture: Option<&str>) -> String {
    let picture = picture
        .map(|svg| format!("<h2>Rollout</h2><div class=card style=\"overflow-x:auto\">{svg}</div>"))
        .unwrap_or_default();
    let body = match text {
        Ok(t) => format!("<h1>Pending plan</h1>{picture}<div class=card><pre class=mono>{}</pre></div>", esc(t)),
        Err(e) => format!("<h1>Pending plan</h1><div class=err>{}</div>", esc(e)),
    };
    layout(Some(ctx), "Plan", &body)
}
