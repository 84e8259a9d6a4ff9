//! Derived keys (SPEC §4 "Peer keys are derived, not stored"): `<label>_peers` in
//! `maand/worker/<host>` and `peer_workers` in `maand/job/<job>/worker/<host>`.
//!
//! Why: both are "a list without one of its items", so a fleet of n workers held n lists of
//! n items — O(n²) bytes, 92% of a 10,000-worker state. They are now computed when read,
//! from the one list they are cut from, and never stored: no version rows, never in a plan
//! (the plan shows the list). [`DERIVED_KEYS`] is the one table saying which keys these are;
//! every reader (hook API, `cat kv`, `kv get`/`keys`, `validate --print-desired`) goes
//! through [`Deriver`], and the state refuses to write them.
//!
//! A derived key exists when its namespace holds its *anchor* key (live) and the host of the
//! namespace is an item of the source list; its value is the list without that host.
//!
//! Decisions:
//! - `peer_workers` lists the job's other **non-removed** (active or disabled) workers, in
//!   fleet order, so its source is `maand/job/<job> placed_workers` (written by the plan;
//!   `workers` lists active allocations only and cannot be the source). Reading it from the
//!   job-level namespace, written before any batch, also means a hook of the first batch
//!   sees every peer, as when the lists were stored.
//! - A derived entry reports version 0 (it has no version rows), ttl 0, writer `derived`,
//!   and the `created_at`/`serial` of its source list's row.

use super::{Entry, KvMap, NamespaceKind, Value};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

/// How a derived key's name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// `<label>` + this suffix (the label is the rest of the name).
    Suffix(&'static str),
    /// Exactly this name.
    Exact(&'static str),
}

/// One row of the derived-keys table. In patterns `<host>` and `<job>` stand for the
/// namespace's segments, `<label>` for the label the key name carries.
#[derive(Debug, PartialEq, Eq)]
pub struct DerivedRule {
    /// The namespace pattern (a row of `NAMESPACE_RULES`).
    pub namespace: &'static str,
    pub key: KeyShape,
    /// The namespace and key of the list the value is cut from.
    pub source_namespace: &'static str,
    pub source_key: &'static str,
    /// The key of the same namespace that must be live for the derived key to exist.
    pub anchor: &'static str,
    /// Whether the key exists (as `""`) when the host is the list's only item.
    pub when_alone_empty: bool,
}

/// Every derived key (SPEC §4).
pub const DERIVED_KEYS: &[DerivedRule] = &[
    DerivedRule {
        namespace: "maand/worker/<host>",
        key: KeyShape::Suffix("_peers"),
        source_namespace: "maand/worker",
        source_key: "<label>_workers",
        anchor: "<label>_allocation_index",
        when_alone_empty: false,
    },
    DerivedRule {
        namespace: "maand/job/<job>/worker/<host>",
        key: KeyShape::Exact("peer_workers"),
        source_namespace: "maand/job/<job>",
        source_key: "placed_workers",
        anchor: "<job>_allocation_index",
        when_alone_empty: true,
    },
];

/// The writer derived entries report.
pub const DERIVED_WRITER: &str = "derived";

/// A derived key resolved against its namespace: where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    pub rule: &'static DerivedRule,
    pub host: String,
    pub source_namespace: String,
    pub source_key: String,
    pub anchor: String,
}

impl Derivation {
    /// `maand/worker api_workers`: what the key is derived from, for messages.
    pub fn source(&self) -> String {
        format!("{} {}", self.source_namespace, self.source_key)
    }
}

fn bind(pattern: &str, job: Option<&str>, host: &str, label: Option<&str>) -> String {
    let mut s = pattern.replace("<host>", host);
    if let Some(j) = job {
        s = s.replace("<job>", j);
    }
    if let Some(l) = label {
        s = s.replace("<label>", l);
    }
    s
}

fn rules_for(kind: &NamespaceKind) -> impl Iterator<Item = &'static DerivedRule> {
    let pattern = kind.rule().pattern;
    DERIVED_KEYS.iter().filter(move |r| r.namespace == pattern)
}

fn resolve(rule: &'static DerivedRule, kind: &NamespaceKind, label: Option<&str>) -> Option<Derivation> {
    let host = kind.host()?;
    let job = kind.job();
    Some(Derivation {
        rule,
        host: host.to_string(),
        source_namespace: bind(rule.source_namespace, job, host, label),
        source_key: bind(rule.source_key, job, host, label),
        anchor: bind(rule.anchor, job, host, label),
    })
}

/// The derivation of `ns key` when that key is a derived one (whether or not it exists).
pub fn derivation(ns: &str, key: &str) -> Option<Derivation> {
    // Cheap reject first: this runs on every write.
    if !ns.starts_with("maand/") {
        return None;
    }
    let kind = NamespaceKind::parse(ns)?;
    rules_for(&kind).find_map(|rule| match rule.key {
        KeyShape::Exact(name) if key == name => resolve(rule, &kind, None),
        KeyShape::Suffix(suffix) => {
            let label = key.strip_suffix(suffix).filter(|l| !l.is_empty())?;
            resolve(rule, &kind, Some(label))
        }
        KeyShape::Exact(_) => None,
    })
}

/// Whether `ns key` is a derived key (never stored, never written).
pub fn is_derived(ns: &str, key: &str) -> bool {
    derivation(ns, key).is_some()
}

/// The derived keys a namespace may hold given its live keys (their anchors): each with its
/// derivation. Whether each exists is decided by [`Deriver::value`].
pub fn candidates<'a>(ns: &str, live_keys: impl IntoIterator<Item = &'a str>) -> Vec<(String, Derivation)> {
    let Some(kind) = NamespaceKind::parse(ns).filter(|_| ns.starts_with("maand/")) else { return Vec::new() };
    let rules: Vec<&'static DerivedRule> = rules_for(&kind).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for key in live_keys {
        for rule in &rules {
            let (name, label) = match rule.key {
                KeyShape::Exact(name) => {
                    let anchor = bind(rule.anchor, kind.job(), kind.host().unwrap_or_default(), None);
                    if key != anchor {
                        continue;
                    }
                    (name.to_string(), None)
                }
                KeyShape::Suffix(suffix) => {
                    // The anchor is `<label>` + a fixed tail.
                    let tail = rule.anchor.strip_prefix("<label>").expect("suffix rules anchor on <label>");
                    let Some(label) = key.strip_suffix(tail).filter(|l| !l.is_empty()) else { continue };
                    (format!("{label}{suffix}"), Some(label))
                }
            };
            if let Some(d) = resolve(rule, &kind, label) {
                out.push((name, d));
            }
        }
    }
    out
}

/// A source list split into items, with each item's byte span (parsed once per list).
struct List {
    entry: Entry,
    text: Arc<str>,
    index: HashMap<String, (usize, usize)>,
    len: usize,
}

impl List {
    fn new(entry: Entry) -> List {
        let text: Arc<str> = entry.value.trim().into();
        let mut index = HashMap::new();
        let mut len = 0;
        if !text.is_empty() {
            let mut at = 0;
            for item in text.split(',') {
                index.entry(item.to_string()).or_insert((at, item.len()));
                at += item.len() + 1;
                len += 1;
            }
        }
        List { entry, text, index, len }
    }

    /// The list without `host`, `None` when `host` is not an item.
    fn without(&self, host: &str) -> Option<Value> {
        let (start, len) = *self.index.get(host)?;
        Some(Value::list_without(&self.text, start, len, self.len == 1))
    }
}

/// Computes derived keys from a source of live rows (`get(ns, key)` returns the latest row,
/// tombstones included or not — only live rows count). Source lists are parsed once and
/// cached, so listing every key of a large state stays linear per list.
pub struct Deriver<G> {
    get: G,
    lists: HashMap<(String, String), Option<Rc<List>>>,
}

impl<E, G: FnMut(&str, &str) -> Result<Option<Entry>, E>> Deriver<G> {
    pub fn new(get: G) -> Deriver<G> {
        Deriver { get, lists: HashMap::new() }
    }

    fn live(&mut self, ns: &str, key: &str) -> Result<Option<Entry>, E> {
        Ok((self.get)(ns, key)?.filter(Entry::is_live))
    }

    fn list(&mut self, ns: &str, key: &str) -> Result<Option<Rc<List>>, E> {
        let id = (ns.to_string(), key.to_string());
        if let Some(l) = self.lists.get(&id) {
            return Ok(l.clone());
        }
        let l = self.live(ns, key)?.map(|e| Rc::new(List::new(e)));
        self.lists.insert(id, l.clone());
        Ok(l)
    }

    /// The derived value (and the entry a reader sees) when the key exists.
    /// `anchor_live`: the caller already knows the anchor key is live.
    fn resolve(&mut self, ns: &str, d: &Derivation, anchor_live: bool) -> Result<Option<(Value, Entry)>, E> {
        if !anchor_live && self.live(ns, &d.anchor)?.is_none() {
            return Ok(None);
        }
        let Some(list) = self.list(&d.source_namespace, &d.source_key)? else { return Ok(None) };
        let Some(value) = list.without(&d.host) else { return Ok(None) };
        if value.is_empty() && !d.rule.when_alone_empty {
            return Ok(None);
        }
        let entry = Entry {
            value: String::new(),
            version: 0,
            deleted: false,
            ttl: 0,
            created_at: list.entry.created_at,
            serial: list.entry.serial,
            writer: DERIVED_WRITER.into(),
        };
        Ok(Some((value, entry)))
    }

    /// One key as readers see it: `Some` for a derived key that exists, `None` for a
    /// derived key that does not; only call for keys where [`derivation`] is `Some`.
    pub fn get(&mut self, ns: &str, d: &Derivation) -> Result<Option<Entry>, E> {
        Ok(self.resolve(ns, d, false)?.map(|(v, e)| Entry { value: v.into(), ..e }))
    }

    /// Every derived key of a namespace that exists, given its live keys, sorted by key.
    pub fn keys_of<'a>(
        &mut self,
        ns: &str,
        live_keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<(String, Entry)>, E> {
        let mut out = Vec::new();
        for (key, d) in candidates(ns, live_keys) {
            if let Some((v, e)) = self.resolve(ns, &d, true)? {
                out.push((key, Entry { value: v.into(), ..e }));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Like [`Self::keys_of`], values sharing their list's text (for the desired state).
    fn values_of<'a>(&mut self, ns: &str, keys: impl IntoIterator<Item = &'a str>) -> Result<Vec<(String, Value)>, E> {
        let mut out = Vec::new();
        for (key, d) in candidates(ns, keys) {
            if let Some((v, _)) = self.resolve(ns, &d, true)? {
                out.push((key, v));
            }
        }
        Ok(out)
    }
}

/// A one-key read: the derived entry of `ns key` through `get`, or `None` when the key is
/// derived but does not exist. `Err(())`-free callers use [`derivation`] first.
pub fn get_derived<E>(
    ns: &str,
    key: &str,
    get: impl FnMut(&str, &str) -> Result<Option<Entry>, E>,
) -> Result<Option<Entry>, E> {
    match derivation(ns, key) {
        Some(d) => Deriver::new(get).get(ns, &d),
        None => Ok(None),
    }
}

/// `entries` (namespace -> key -> latest row) with every derived key added, as readers of
/// the whole state see it (`cat kv`, `kv keys`).
pub fn add_to_entries(entries: &mut BTreeMap<String, BTreeMap<String, Entry>>) {
    let mut added: Vec<(String, Vec<(String, Entry)>)> = Vec::new();
    {
        let view = &*entries;
        let mut deriver = Deriver::new(|ns: &str, key: &str| {
            Ok::<_, std::convert::Infallible>(view.get(ns).and_then(|m| m.get(key)).cloned())
        });
        for (ns, keys) in view {
            let live = keys.iter().filter(|(_, e)| e.is_live()).map(|(k, _)| k.as_str());
            let Ok(derived) = deriver.keys_of(ns, live);
            if !derived.is_empty() {
                added.push((ns.clone(), derived));
            }
        }
    }
    for (ns, keys) in added {
        entries.entry(ns).or_default().extend(keys);
    }
}

/// The desired key-value state with its derived keys added (what `validate --print-desired`
/// shows: the keys as readers will see them after an apply).
pub fn complete(kv: &KvMap) -> KvMap {
    let mut out = kv.clone();
    let mut deriver = Deriver::new(|ns: &str, key: &str| {
        Ok::<_, std::convert::Infallible>(kv.get(ns).and_then(|m| m.get(key)).map(|v| Entry {
            value: v.to_string(),
            version: 1,
            deleted: false,
            ttl: 0,
            created_at: 0,
            serial: 0,
            writer: String::new(),
        }))
    });
    for (ns, keys) in kv {
        let Ok(derived) = deriver.values_of(ns, keys.keys().map(String::as_str));
        if !derived.is_empty() {
            out.entry(ns.clone()).or_default().extend(derived);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(rows: &[(&str, &str, &str)]) -> KvMap {
        let mut m = KvMap::new();
        for (ns, k, v) in rows {
            m.entry(ns.to_string()).or_default().insert(k.to_string(), Value::from(*v));
        }
        m
    }

    #[test]
    fn the_table_names_the_peer_keys_and_nothing_else() {
        assert!(is_derived("maand/worker/10.0.0.1", "api_peers"));
        assert!(is_derived("maand/job/api/worker/10.0.0.1", "peer_workers"));
        assert!(!is_derived("maand/worker/10.0.0.1", "_peers"));
        assert!(!is_derived("maand/worker/10.0.0.1/tags", "api_peers"));
        assert!(!is_derived("maand/worker", "api_peers"));
        assert!(!is_derived("vars/job/api", "peer_workers"));
        assert!(!is_derived("maand/job/api", "peer_workers"));
        let d = derivation("maand/worker/h1", "db_peers").unwrap();
        assert_eq!(d.source(), "maand/worker db_workers");
        assert_eq!(d.anchor, "db_allocation_index");
        let d = derivation("maand/job/api/worker/h1", "peer_workers").unwrap();
        assert_eq!(d.source(), "maand/job/api placed_workers");
        assert_eq!(d.anchor, "api_allocation_index");
    }

    #[test]
    fn peers_are_the_list_without_the_host_and_absent_when_alone() {
        let d = complete(&kv(&[
            ("maand/worker", "api_workers", "h1,h2,h3"),
            ("maand/worker", "db_workers", "h1"),
            ("maand/worker/h1", "api_allocation_index", "0"),
            ("maand/worker/h1", "db_allocation_index", "0"),
            ("maand/worker/h2", "api_allocation_index", "1"),
            ("maand/job/db", "placed_workers", "h1"),
            ("maand/job/db/worker/h1", "db_allocation_index", "0"),
            ("maand/job/api", "placed_workers", "h1,h2"),
            ("maand/job/api/worker/h2", "api_allocation_index", "1"),
        ]));
        let get = |ns: &str, k: &str| d.get(ns).and_then(|m| m.get(k)).map(|v| v.to_string());
        assert_eq!(get("maand/worker/h1", "api_peers").as_deref(), Some("h2,h3"));
        assert_eq!(get("maand/worker/h2", "api_peers").as_deref(), Some("h1,h3"));
        assert_eq!(get("maand/worker/h1", "db_peers"), None, "absent when the worker is the label's only one");
        assert_eq!(get("maand/job/db/worker/h1", "peer_workers").as_deref(), Some(""), "empty for a lone allocation");
        assert_eq!(get("maand/job/api/worker/h2", "peer_workers").as_deref(), Some("h1"));
    }

    #[test]
    fn a_point_read_needs_the_anchor_and_the_host_in_the_list() {
        let rows = kv(&[
            ("maand/worker", "api_workers", "h1,h2"),
            ("maand/worker/h1", "api_allocation_index", "0"),
            ("maand/worker/h3", "api_allocation_index", "0"),
        ]);
        let read = |ns: &str, key: &str| {
            get_derived(ns, key, |n: &str, k: &str| {
                Ok::<_, ()>(rows.get(n).and_then(|m| m.get(k)).map(|v| Entry {
                    value: v.to_string(),
                    version: 3,
                    deleted: false,
                    ttl: 0,
                    created_at: 5,
                    serial: 9,
                    writer: "apply".into(),
                }))
            })
            .unwrap()
        };
        let e = read("maand/worker/h1", "api_peers").unwrap();
        assert_eq!((e.value.as_str(), e.version, e.serial, e.writer.as_str()), ("h2", 0, 9, DERIVED_WRITER));
        assert_eq!(read("maand/worker/h2", "api_peers"), None, "no anchor");
        assert_eq!(read("maand/worker/h3", "api_peers"), None, "not in the list");
        assert_eq!(read("maand/worker/h1", "db_peers"), None, "no such list");
    }
}
