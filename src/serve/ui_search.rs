//! The web UI's search page (`/ui/search?q=`, issue 26): the hits of
//! [`super::search::find`] grouped by namespace, each key linked to its page, with a clear
//! line when nothing matches. HTML through maud, which escapes every value by default.

use super::App;
use super::rest::{Reply, Req};
use super::search::{SearchHit, find};
use super::ui_pages::{self as pages, Ctx};
use maud::{Markup, html};

/// A value as the page shows it: its text, cut to a line's worth.
fn value_text(h: &SearchHit) -> String {
    let raw = h.key.value.get();
    let text = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string());
    match text.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn groups(hits: &[SearchHit]) -> Markup {
    let mut by_ns: Vec<(&str, Vec<&SearchHit>)> = Vec::new();
    for h in hits {
        match by_ns.last_mut() {
            Some((ns, list)) if *ns == h.key.namespace => list.push(h),
            _ => by_ns.push((&h.key.namespace, vec![h])),
        }
    }
    html! {
        @for (ns, list) in &by_ns {
            section.hits {
                h2 { a href=(pages::ns_url(ns)) { (ns) } " " span.muted { "(" (list.len()) ")" } }
                table style="table-layout:fixed" {
                    tr {
                        th style="width:32%" { "Key" } th style="width:10%" { "Type" }
                        th style="width:44%" { "Value" } th style="width:14%" { "Matched" }
                    }
                    @for h in list {
                        tr {
                            td.mono style="overflow-wrap:anywhere" { a href=(pages::key_url(ns, &h.key.key)) { (h.key.key) } }
                            td { span.pill { (h.key.kv_type) } }
                            td.mono style="overflow-wrap:anywhere" {
                                @if h.key.sensitive { span.muted { "(sensitive)" } } @else { (value_text(h)) }
                            }
                            td.muted { (h.matched.join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

/// The page for `req.query` (`q`, `cursor`): status and HTML.
pub(crate) fn page(app: &App, ctx: &Ctx<'_>, req: &Req) -> (u16, String) {
    let q = req.query.get("q").map(|q| q.trim()).unwrap_or("").to_string();
    let (status, results) = if q.is_empty() {
        (200, html! { p.muted { "Search key names in every namespace, and values that are not secret." } })
    } else {
        match find(app, req) {
            Err(Reply { status, body, .. }) => {
                let error = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or(body);
                (status, html! { div.err { (error) } })
            }
            Ok(found) if found.matches.is_empty() => (
                200,
                html! {
                    p.nomatch.card {
                        "No key name or value matches " code { (q) } "."
                        span.muted { " Secret values and certificate keys are matched by name only." }
                    }
                },
            ),
            Ok(found) => (
                200,
                html! {
                    (groups(&found.matches))
                    @if let Some(c) = &found.next_cursor {
                        p { a.next href={ "/ui/search?q=" (pages::enc(&q)) "&cursor=" (pages::enc(c)) } { "Next page →" } }
                    }
                },
            ),
        }
    };
    let body = html! {
        h1 { "Search" }
        form.card method="get" action="/ui/search" style="display:flex;gap:8px" {
            input name="q" value=(q) placeholder="A key name or a value (e.g. database_url)" style="flex:1" autofocus;
            button.p { "Search" }
        }
        (results)
    };
    (status, pages::layout(Some(ctx), "Search", body))
}
