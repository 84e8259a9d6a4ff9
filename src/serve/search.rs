//! `GET /api/v1/search?q=&limit=&cursor=` (issue 26): keys of every namespace the token may
//! read whose name, or whose non-sensitive value, contains `q` — the operation is
//! [`crate::ops::search`]; here the request is parsed and the hits shown as keys are
//! ([`super::keys::KeyRow`]), a sensitive value always as `(sensitive)`.

use super::App;
use super::access::{self, Action};
use super::keys::{self, KeyRow, Paging};
use super::rest::{Reply, Req};

/// Hits per page when `?limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 50;

/// One hit: the key as a listing shows it, and what matched.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct SearchHit {
    #[serde(flatten)]
    pub(crate) key: KeyRow,
    /// `key` (the key name) and/or `value` (the value's text).
    pub(crate) matched: Vec<&'static str>,
}

/// The answer of `GET /api/v1/search`.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct SearchPage {
    /// The search text, as received.
    pub(crate) q: String,
    /// In (namespace, key) order.
    pub(crate) matches: Vec<SearchHit>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// The hits of `req`'s `?q` (a 400 without one), paged.
pub(crate) fn find(app: &App, req: &Req) -> Result<SearchPage, Reply> {
    let q = req.query.get("q").map(|q| q.trim()).unwrap_or("");
    if q.is_empty() {
        return Err(Reply::error(
            400,
            "?q is missing or empty",
            "pass the text to look for in key names and values, e.g. ?q=database_url",
        ));
    }
    let paging = Paging::of(req)?;
    let limit = paging.limit.unwrap_or(DEFAULT_LIMIT);
    let after = paging.after.as_ref().map(|(n, k)| (n.as_str(), k.as_str()));
    let readable = |ns: &str| access::check(&req.token, Action::Read, ns).is_ok();
    let page = app.read(|r| crate::ops::search::search(r, q, after, limit, readable)).map_err(Reply::state)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut matches = Vec::with_capacity(page.hits.len());
    for h in &page.hits {
        let mut matched = Vec::new();
        if h.matched.key {
            matched.push("key");
        }
        if h.matched.value {
            matched.push("value");
        }
        matches.push(SearchHit { key: keys::key_row(app, req, &h.namespace, &h.listing, now, true)?, matched });
    }
    let next_cursor = page.next.map(|(n, k)| keys::encode_cursor(&n, &k));
    Ok(SearchPage { q: q.to_string(), matches, next_cursor })
}

pub(crate) fn search(app: &App, req: &Req) -> Result<Reply, Reply> {
    keys::json_reply(&find(app, req)?)
}
