//! Search across namespaces (issue 26): by key name, and by value where the value may be
//! read and is not sensitive. One operation for every door (the REST API's
//! `GET /api/v1/search`, the web UI's search page).
//!
//! - **Matching**: `q` is a case-insensitive substring of the key name, or of the value's
//!   stored text.
//! - **Sensitive values** ([`is_secret_key`]: `secrets/*` and certificate private keys) are
//!   never matched by value — they are sealed, and a match would leak what they contain —
//!   and a door never shows them (a key name still matches).
//! - **Access**: only namespaces `readable` admits are searched (the door's token rules).
//! - **Order and paging**: hits in (namespace, key) byte order (never the database's
//!   collation, so a page boundary means the same on SQLite and PostgreSQL), at most `limit`
//!   after the `after` row; `next` is the last hit when more follow.

use crate::kv::is_secret_key;
use crate::state::listing::KeyListing;
use crate::state::{StateError, StateStore};

/// What matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub key: bool,
    pub value: bool,
}

/// One key that matched.
#[derive(Debug, Clone)]
pub struct Hit {
    pub namespace: String,
    pub listing: KeyListing,
    pub matched: Matched,
}

/// One page of hits.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// The (namespace, key) of the last hit when more follow (the next page's `after`).
    pub next: Option<(String, String)>,
}

/// Does the key `ns`/`l` match `needle` (already lower-case)?
pub fn matches(ns: &str, l: &KeyListing, needle: &str) -> Matched {
    let key = l.key.to_lowercase().contains(needle);
    let value = !is_secret_key(ns, &l.key) && l.entry.value.to_lowercase().contains(needle);
    Matched { key, value }
}

/// The hits for `q` (not empty) after `after`, at most `limit`.
pub fn search(
    store: &StateStore,
    q: &str,
    after: Option<(&str, &str)>,
    limit: usize,
    readable: impl Fn(&str) -> bool,
) -> Result<Page, StateError> {
    let needle = q.to_lowercase();
    let mut namespaces: Vec<String> = store.namespace_counts()?.into_iter().map(|(n, _)| n).collect();
    namespaces.sort();
    let mut page = Page::default();
    for ns in namespaces.iter().filter(|n| readable(n)) {
        if after.is_some_and(|(an, _)| ns.as_str() < an) {
            continue;
        }
        let mut rows = store.list_keys(ns, "")?;
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        for l in rows {
            if after.is_some_and(|(an, ak)| (ns.as_str(), l.key.as_str()) <= (an, ak)) {
                continue;
            }
            let matched = matches(ns, &l, &needle);
            if !(matched.key || matched.value) {
                continue;
            }
            if page.hits.len() >= limit {
                page.next = page.hits.last().map(|h| (h.namespace.clone(), h.listing.key.clone()));
                return Ok(page);
            }
            page.hits.push(Hit { namespace: ns.clone(), listing: l, matched });
        }
    }
    Ok(page)
}
