//! The key routes of the REST API: the namespace tree, a namespace's keys, one key (get,
//! put, delete) and its history. Split from [`super::rest`] (routing, authentication,
//! request parsing, watch, applies, plan, metrics), which dispatches here; the web UI
//! (`super::ui`) calls the same handlers, so both faces obey one set of rules.

use super::App;
use super::access::{self, Action};
use super::api_types::{
    Declared, Deleted, NamespaceNode, NamespaceTree, PutBody, RestoreBody, Restored, Written, refuse_unknown_fields,
};
use super::rest::{Reply, Req};
use crate::kv::{KvType, is_secret_key, rules};
use crate::state::StateError;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// A stored value as the API answers it (issue 26): a `number` is a JSON number, a
/// `boolean` true or false, a `json` value the document itself; every other type, and a row
/// that does not parse as its type (written before types were checked), is a string. The
/// stored text is passed through as it is (no float round trip: a number keeps its digits).
pub(crate) fn typed_value(kv_type: KvType, text: &str) -> Box<RawValue> {
    let typed = match kv_type {
        KvType::Number if serde_json::from_str::<serde_json::Number>(text).is_ok() => {
            RawValue::from_string(text.trim().to_string()).ok()
        }
        KvType::Boolean if matches!(text.trim(), "true" | "false") => {
            RawValue::from_string(text.trim().to_string()).ok()
        }
        KvType::Json => serde_json::from_str::<&RawValue>(text).ok().map(|r| r.to_owned()),
        _ => None,
    };
    typed.unwrap_or_else(|| string_value(text))
}

/// `text` as a JSON string.
pub(crate) fn string_value(text: &str) -> Box<RawValue> {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    RawValue::from_string(quoted).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The value as this request may see it. Sensitive is one rule, [`is_secret_key`]: every key
/// of `secrets/*` and every certificate private key (`certs/<name>.key` in an allocation
/// namespace) is stored sealed and shown `(sensitive)` unless the token may reveal; a
/// sensitive value is always a string. The API answers typed values ([`typed_value`]); the
/// web UI's forms ask for the stored text (`Req::typed_values` false).
pub(crate) fn shown(
    app: &App,
    req: &Req,
    ns: &str,
    key: &str,
    version: u64,
    stored: &str,
    kv_type: KvType,
) -> Result<(Box<RawValue>, bool), Reply> {
    if !is_secret_key(ns, key) || stored.is_empty() {
        let v = if req.typed_values { typed_value(kv_type, stored) } else { string_value(stored) };
        return Ok((v, false));
    }
    if access::check(&req.token, Action::Reveal, ns).is_err() {
        return Ok((string_value(SENSITIVE), true));
    }
    let r = app.reader();
    let Some(ring) = r.keyring() else {
        return Err(Reply::error(
            500,
            "the bucket key (secrets/kv.key) is missing",
            "restore secrets/kv.key to read secrets",
        ));
    };
    let plain = ring.open(ns, key, version, stored).map_err(|e| Reply::error(500, e.to_string(), ""))?;
    Ok((string_value(plain.as_str()), false))
}

/// What a sensitive value is shown as to a token that may not reveal it.
pub(crate) const SENSITIVE: &str = "(sensitive)";

/// The namespace tree (`GET /api/v1/namespaces`), paged like a listing (`?limit`, `?cursor`:
/// the cursor names the last node).
pub(crate) fn namespace_tree(app: &App, req: &Req) -> Result<Reply, Reply> {
    namespaces_paged(app, &Paging::of(req)?)
}

/// The whole tree (the web UI's first page).
pub(crate) fn namespaces(app: &App) -> Result<Reply, Reply> {
    namespaces_paged(app, &Paging { limit: None, after: None })
}

fn namespaces_paged(app: &App, paging: &Paging) -> Result<Reply, Reply> {
    let counts = app.read(|r| r.namespace_counts()).map_err(Reply::state)?;
    // A tree: every namespace with its own keys and the keys under it.
    let mut tree: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (ns, n) in &counts {
        let parts: Vec<&str> = ns.split('/').collect();
        for i in 1..=parts.len() {
            let e = tree.entry(parts[..i].join("/")).or_default();
            e.1 += n;
            if i == parts.len() {
                e.0 += n;
            }
        }
    }
    let mut namespaces = Vec::new();
    let mut next_cursor = None;
    for (p, (keys, total_keys)) in tree.into_iter().filter(|(p, _)| paging.wants(p, "")) {
        if paging.full(namespaces.len()) {
            let last: &NamespaceNode = &namespaces[namespaces.len() - 1];
            next_cursor = Some(encode_cursor(&last.namespace, ""));
            break;
        }
        namespaces.push(NamespaceNode { depth: p.matches('/').count(), namespace: p, keys, total_keys });
    }
    Ok(Reply::body(200, &NamespaceTree { namespaces, next_cursor }))
}

/// One key as the API shows it (a listing row, `GET` of a key, a search hit). Serialized
/// straight to text: a 1,000-key listing built as `serde_json::Value` trees spent most of
/// its time allocating maps. The OpenAPI document's `Key` schema is this type's.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct KeyRow {
    pub(crate) namespace: String,
    pub(crate) key: String,
    /// The value: a JSON number for `number`, true/false for `boolean`, the document for
    /// `json`, a string for every other type; `(sensitive)` for secrets (`secrets/*`) and
    /// certificate private keys (`certs/<name>.key` in `maand/job/<job>/worker/<host>`)
    /// unless the token has --reveal, which reads the plaintext (a string); never the stored
    /// ciphertext.
    #[schemars(with = "serde_json::Value")]
    pub(crate) value: Box<RawValue>,
    #[serde(rename = "type")]
    pub(crate) kv_type: KvType,
    pub(crate) description: String,
    /// The live version (the `ETag` of a read).
    pub(crate) version: u64,
    /// How many versions are kept.
    pub(crate) versions: u64,
    /// Seconds the version lives (0 = never expires).
    pub(crate) ttl: u64,
    /// RFC 3339: the key's first version.
    pub(crate) created_at: String,
    /// RFC 3339: the live version's write.
    pub(crate) updated_at: String,
    /// RFC 3339, when a ttl is set.
    pub(crate) expires_at: Option<String>,
    pub(crate) expired: bool,
    pub(crate) writer: String,
    /// The state serial of the live version's write.
    pub(crate) serial: u64,
    /// Present (true) when the value is hidden.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub(crate) sensitive: bool,
}

/// `hide`: show a sensitive value as `(sensitive)` even to a token that may reveal it
/// (search never shows one).
pub(crate) fn key_row(
    app: &App,
    req: &Req,
    ns: &str,
    l: &crate::state::listing::KeyListing,
    now: i64,
    hide: bool,
) -> Result<KeyRow, Reply> {
    let (value, sensitive) = if hide && is_secret_key(ns, &l.key) {
        (string_value(SENSITIVE), true)
    } else {
        shown(app, req, ns, &l.key, l.entry.version, &l.entry.value, l.meta.kv_type)?
    };
    let time = crate::clock::format_time;
    Ok(KeyRow {
        namespace: ns.to_string(),
        key: l.key.clone(),
        value,
        kv_type: l.meta.kv_type,
        description: l.meta.description.clone(),
        version: l.entry.version,
        versions: l.versions,
        ttl: l.entry.ttl,
        created_at: time(l.meta.key_created_at),
        updated_at: time(l.entry.created_at),
        expires_at: l.entry.expires_at().map(time),
        expired: l.entry.is_expired(now),
        writer: l.entry.writer.clone(),
        serial: l.entry.serial,
        sensitive,
    })
}

pub(crate) fn json_reply(v: &impl serde::Serialize) -> Result<Reply, Reply> {
    let body = serde_json::to_string(v).map_err(|e| Reply::error(500, e.to_string(), "this is a bug in kvform"))?;
    Ok(Reply::text(200, body, "application/json"))
}

/// Paging of a listing (`?limit=N&cursor=C`): rows in a stable order, at most `limit` of
/// them, after the row the cursor names. The cursor is opaque to clients (the last row's
/// sort key, base64url) and answered as `next_cursor`, null on the last page.
pub(crate) struct Paging {
    pub(crate) limit: Option<usize>,
    pub(crate) after: Option<(String, String)>,
}

/// The largest page.
pub(crate) const MAX_LIMIT: usize = 1000;

impl Paging {
    pub(crate) fn of(req: &Req) -> Result<Paging, Reply> {
        let limit = match req.query.get("limit") {
            None => None,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
                _ => {
                    return Err(Reply::error(
                        400,
                        format!("?limit={l} is not a page size"),
                        format!("use a whole number from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let after = match req.query.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                Reply::error(
                    400,
                    format!("?cursor={c} is not a cursor kvform gave out"),
                    "pass the next_cursor of the previous page unchanged (or no cursor for the first page)",
                )
            })?),
        };
        Ok(Paging { limit, after })
    }

    /// Is the row at `(ns, key)` after the cursor?
    pub(crate) fn wants(&self, ns: &str, key: &str) -> bool {
        self.after.as_ref().is_none_or(|(an, ak)| (ns, key) > (an.as_str(), ak.as_str()))
    }

    /// May a row of `ns` come after the cursor at all (namespaces are walked in order)?
    pub(crate) fn wants_namespace(&self, ns: &str) -> bool {
        self.after.as_ref().is_none_or(|(an, _)| ns >= an.as_str())
    }

    pub(crate) fn full(&self, rows: usize) -> bool {
        self.limit.is_some_and(|l| rows >= l)
    }
}

pub(crate) fn encode_cursor(ns: &str, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("k1\n{ns}\n{key}"))
}

fn decode_cursor(c: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.splitn(3, '\n');
    (parts.next()? == "k1").then_some(())?;
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

/// Is `ns` the namespace `root` or under it (`root` "" is the whole bucket)?
pub(crate) fn under(ns: &str, root: &str) -> bool {
    root.is_empty() || ns == root || ns.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
}

/// A namespace's keys (`GET /api/v1/kv/{namespace}/`), or with `recurse` (`?recurse`, or a
/// path that is a node of the tree rather than a namespace: `/api/v1/kv/vars/job/`) every
/// key of the namespaces under it too, in (namespace, key) order, paged.
pub(crate) fn list(app: &App, req: &Req, ns: &str) -> Result<Reply, Reply> {
    list_tree(app, req, ns, false)
}

/// [`list`], or with `subtree` the keys of `ns` (a node of the tree) and every namespace under it.
pub(crate) fn list_tree(app: &App, req: &Req, ns: &str, subtree: bool) -> Result<Reply, Reply> {
    let prefix = req.query.get("prefix").map_or("", String::as_str);
    let recurse = subtree || req.flag("recurse", false)?;
    let paging = Paging::of(req)?;
    let now = crate::clock::now().unwrap_or_default();
    let namespaces: Vec<String> = if recurse {
        let mut all: Vec<String> = app
            .read(|r| r.namespace_counts())
            .map_err(Reply::state)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| under(n, ns))
            .collect();
        all.sort();
        if all.is_empty() && subtree && !super::rest::known(ns) {
            return Err(Reply::error(
                404,
                format!("no namespace under {ns:?}"),
                "GET /api/v1/namespaces lists the namespace tree",
            ));
        }
        all
    } else {
        vec![ns.to_string()]
    };
    let mut keys = Vec::new();
    let mut next_cursor = None;
    'walk: for n in namespaces.iter().filter(|n| paging.wants_namespace(n)) {
        let mut rows = app.read(|r| r.list_keys(n, prefix)).map_err(Reply::state)?;
        // Byte order, never the database's collation: a cursor means the same on both backends.
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        for l in rows.iter().filter(|l| paging.wants(n, &l.key)) {
            if paging.full(keys.len()) {
                let last: &KeyRow = &keys[keys.len() - 1];
                next_cursor = Some(encode_cursor(&last.namespace, &last.key));
                break 'walk;
            }
            keys.push(key_row(app, req, n, l, now, false)?);
        }
    }
    json_reply(&Listing { namespace: ns.to_string(), prefix: prefix.to_string(), recurse, keys, next_cursor })
}

/// A namespace listing (`GET /api/v1/kv/{namespace}/`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct Listing {
    /// The namespace listed, or the tree node whose subtree is listed.
    namespace: String,
    /// Only keys starting with this (`?prefix`).
    prefix: String,
    /// The namespaces under `namespace` are listed too.
    recurse: bool,
    /// In (namespace, key) order.
    keys: Vec<KeyRow>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
}

pub(crate) fn get(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    if let Some(v) = req.query.get("version") {
        let Ok(n) = v.parse::<u64>() else {
            return Err(Reply::error(
                400,
                "?version must be a key version (a whole number)",
                "see GET /api/v1/history/{namespace}/{key}",
            ));
        };
        return get_version(app, req, ns, key, n);
    }
    let now = crate::clock::now().unwrap_or_default();
    let found = app.read(|r| r.key_listing(ns, key)).map_err(Reply::state)?;
    match found {
        Some(l) => {
            let mut r = json_reply(&key_row(app, req, ns, &l, now, false)?)?;
            r.etag = Some(l.entry.version);
            Ok(r)
        }
        None if !req.flag("error_on_missing", true)? => Ok(Reply::ok(Value::Null)),
        None => Err(Reply::error(
            404,
            format!("{ns} {key} does not exist (or was deleted)"),
            "pass ?error_on_missing=false to get null instead",
        )),
    }
}

/// One kept version of a key (`GET …?version=N`, and each entry of its history).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct VersionView {
    /// `GET …?version=N` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    /// `GET …?version=N` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    version: u64,
    /// Typed like a key's value (see `Key`); null for a deletion.
    #[schemars(with = "serde_json::Value")]
    value: Box<RawValue>,
    deleted: bool,
    #[serde(rename = "type")]
    kv_type: KvType,
    description: String,
    ttl: u64,
    /// RFC 3339: when the version was written.
    updated_at: String,
    serial: u64,
    writer: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    sensitive: bool,
}

fn version_view(app: &App, req: &Req, ns: &str, key: &str, r: &crate::state::VersionRow) -> Result<VersionView, Reply> {
    let (value, sensitive) = if r.deleted {
        (RawValue::NULL.to_owned(), false)
    } else {
        shown(app, req, ns, key, r.version, &r.value, r.kv_type)?
    };
    Ok(VersionView {
        namespace: None,
        key: None,
        version: r.version,
        value,
        deleted: r.deleted,
        kv_type: r.kv_type,
        description: r.description.clone(),
        ttl: r.ttl,
        updated_at: crate::clock::format_time(r.created_at),
        serial: r.serial,
        writer: r.writer.clone(),
        sensitive,
    })
}

/// `GET …?version=N`: one kept version, shown as this token may see it.
fn get_version(app: &App, req: &Req, ns: &str, key: &str, n: u64) -> Result<Reply, Reply> {
    let rows = app.read(|r| r.history(ns, key)).map_err(Reply::state)?;
    let Some(r) = crate::ops::version_of(rows, n) else {
        return Err(op_reply(crate::ops::OpError::NoVersion { ns: ns.into(), key: key.into(), version: n }));
    };
    let view =
        VersionView { namespace: Some(ns.into()), key: Some(key.into()), ..version_view(app, req, ns, key, &r)? };
    let mut reply = json_reply(&view)?;
    reply.etag = Some(r.version);
    Ok(reply)
}

/// A refusal of the one write validation: 400 with its hint.
fn write_rule_reply(e: crate::kv::validate::WriteRuleError) -> Reply {
    let (msg, hint) = e.message.split_once("\n  help: ").unwrap_or((&e.message, ""));
    Reply::error(400, msg, hint)
}

fn rule_reply(e: rules::RuleError) -> Reply {
    let text = e.to_string();
    let (msg, hint) = text.split_once("\n  help: ").unwrap_or((&text, ""));
    Reply::error(400, msg, hint)
}

/// Who a serve write is by: the token (`token:<name>`), the version's writer and the audit
/// trail's actor alike — not the OS user running `kvform serve`.
/// What a write, delete or restore of (`ns`, `key`) answers when the workspace declares the
/// key (`warning` words it for the operation): the next apply writes the value back.
fn declared(app: &App, ns: &str, key: &str, warning: fn(&str, &str, &str) -> String) -> Declared {
    match crate::workspace::declared_var(&app.bucket.root, ns, key) {
        Some(at) => Declared { warnings: Some(vec![warning(ns, key, &at)]), managed_by: Some(at) },
        None => Declared::default(),
    }
}

fn actor(req: &Req) -> crate::ops::Actor {
    crate::ops::Actor::token(&req.token.name)
}

fn open_for_write(app: &App, op: &str) -> Result<crate::state::WriteTxn, Reply> {
    let mut store = app.location.open().map_err(Reply::state)?;
    if let Ok(ring) = crate::secrets::Keyring::load(&app.bucket) {
        store = store.with_keyring(ring);
    }
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = store.begin_write(op, super::WRITE_LOCK_TIMEOUT, now).map_err(Reply::state)?;
    txn.set_max_versions(app.max_versions);
    Ok(txn)
}

/// 405 for a write of a derived key (read-only: computed when read, never stored), before
/// the access table, which would only say that the namespace is not writable.
fn refuse_derived(ns: &str, key: &str) -> Result<(), Reply> {
    let Some(d) = crate::kv::derived::derivation(ns, key) else { return Ok(()) };
    let e = StateError::Derived { ns: ns.into(), key: key.into(), from: d.source() };
    let text = e.to_string();
    let (msg, hint) = text.split_once("\n  help: ").unwrap_or((&text, ""));
    Err(Reply::error(405, msg, hint))
}

/// The version a write expects: `If-Match: "N"`, else a `cas` body field or query parameter
/// (`"overwrite": false` means 0, create only).
fn expected_version(req: &Req) -> Result<Option<u64>, Reply> {
    let bad = |what: &str| {
        Reply::error(
            400,
            format!("{what} must be a key version (a whole number)"),
            "send the version from the ETag, e.g. If-Match: \"3\"",
        )
    };
    if let Some(m) = &req.if_match {
        let v = m.trim().trim_start_matches("W/").trim_matches('"');
        return v.parse::<u64>().map(Some).map_err(|_| bad("If-Match"));
    }
    match req.body.as_ref().and_then(|b| b.get("cas")) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => return n.as_u64().map(Some).ok_or_else(|| bad("\"cas\"")),
        Some(_) => return Err(bad("\"cas\"")),
    }
    if let Some(q) = req.query.get("cas") {
        return q.parse::<u64>().map(Some).map_err(|_| bad("?cas"));
    }
    match req.body.as_ref().and_then(|b| b.get("overwrite")) {
        None | Some(Value::Null) | Some(Value::Bool(true)) => Ok(None),
        Some(Value::Bool(false)) => Ok(Some(0)),
        Some(_) => Err(Reply::error(400, "\"overwrite\" must be true or false", "")),
    }
}

/// An operation's refusal as the API answers it (412 for a compare-and-set mismatch).
fn op_reply(e: crate::ops::OpError) -> Reply {
    if let crate::ops::OpError::State(s) = e {
        return Reply::state(s);
    }
    let status = e.status();
    let text = e.to_string();
    let (msg, hint) = text.split_once("\n  help: ").unwrap_or((&text, ""));
    let mut r = Reply::error(status, msg, hint);
    if let crate::ops::OpError::Conflict { current, .. } = &e {
        r.etag = Some(*current);
    }
    r
}

/// `ttl`: seconds, or a duration in the one grammar of every door (`1h`, `30m`, `P30D`).
fn ttl_of(v: &Value) -> Result<u64, Reply> {
    let bad = || {
        Reply::error(
            400,
            "\"ttl\" must be seconds or a duration such as \"1h\", \"30m\", \"P30D\"",
            "0 = never expires",
        )
    };
    let ttl = match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => crate::clock::parse_duration(s.trim()).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    crate::kv::validate::check_ttl(ttl).map_err(write_rule_reply)?;
    Ok(ttl)
}

/// PUT and PATCH: an edit of what the body names; the rest is kept (SPEC §9).
pub(crate) fn put(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    refuse_derived(ns, key)?;
    access::check(&req.token, Action::Write, ns).map_err(Reply::denied)?;
    rules::job_in_workspace(&app.bucket, ns).map_err(rule_reply)?;
    let Some(body) = &req.body else {
        return Err(Reply::error(
            400,
            "missing request body",
            "send {\"value\"?, \"type\"?, \"ttl\"?, \"description\"?, \"cas\"?}",
        ));
    };
    refuse_unknown_fields::<PutBody>(Some(body))?;
    let kv_type = match body.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(KvType::parse(s).ok_or_else(|| {
            Reply::error(400, format!("unknown type {s:?}"), format!("use one of {}", KvType::names()))
        })?),
        Some(_) => {
            return Err(Reply::error(400, "\"type\" must be a string", format!("use one of {}", KvType::names())));
        }
    };
    let value = match body.get("value") {
        Some(Value::String(s)) => Some(zeroize::Zeroizing::new(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(zeroize::Zeroizing::new(v.to_string())),
        Some(v @ (Value::Array(_) | Value::Object(_))) if kv_type == Some(KvType::Json) => {
            Some(zeroize::Zeroizing::new(v.to_string()))
        }
        // No value: keep the current one (the web UI's form for a masked secret has no
        // value to send back; writing "" there wiped the secret).
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(Reply::error(
                400,
                "\"value\" must be a string, number or boolean",
                "lists and objects need \"type\": \"json\"",
            ));
        }
    };
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => None,
        Some(v) => Some(ttl_of(v)?),
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Reply::error(400, "\"description\" must be a string", "")),
    };
    let cas = expected_version(req)?;
    // `"overwrite": false` predates compare-and-set and answers 409, as it always did.
    let legacy = cas == Some(0) && body.get("overwrite") == Some(&Value::Bool(false)) && !body.contains_key("cas");
    // The one write validation before the lock, on what the request names: a bad value
    // never waits for an apply (the operation checks again with what the key keeps).
    if let Some(v) = &value {
        crate::kv::validate::check_write(
            ns,
            key,
            v,
            kv_type.unwrap_or_default(),
            ttl.unwrap_or(0),
            description.as_deref().unwrap_or(""),
        )
        .map_err(write_rule_reply)?;
    }
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = open_for_write(app, "serve put")?;
    let change = crate::ops::Change { value, kv_type, description, ttl, cas };
    let outcome = match crate::ops::put(&mut txn, ns, key, &change, &actor(req), now) {
        Ok(o) => o,
        Err(crate::ops::OpError::Conflict { current, .. }) if legacy && req.if_match.is_none() => {
            let _ = txn.rollback();
            return Err(Reply::error(
                409,
                format!("{ns} {key} already exists (version {current})"),
                "send \"overwrite\": true to replace it, or \"cas\": N to replace version N",
            ));
        }
        Err(e) => {
            let _ = txn.rollback();
            return Err(op_reply(e));
        }
    };
    let serial = txn.commit(actor(req).record("serve put", now)).map_err(Reply::state)?;
    app.changes.bump();
    let status = if outcome.version() == 1 && outcome.changed() { 201 } else { 200 };
    let body = Written {
        namespace: ns.into(),
        key: key.into(),
        version: outcome.version(),
        changed: outcome.changed(),
        kv_type: outcome.kv_type,
        serial,
        declared: declared(app, ns, key, crate::workspace::declared_warning),
    };
    let mut r = Reply::body(status, &body);
    r.index = Some(serial);
    r.etag = Some(outcome.version());
    Ok(r)
}

pub(crate) fn delete(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    refuse_derived(ns, key)?;
    access::check(&req.token, Action::Write, ns).map_err(Reply::denied)?;
    let cas = expected_version(req)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = open_for_write(app, "serve delete")?;
    let deleted = match crate::ops::delete(&mut txn, ns, key, cas, &actor(req), now) {
        Ok(d) => d,
        Err(e) => {
            let _ = txn.rollback();
            return Err(op_reply(e));
        }
    };
    if !deleted {
        let _ = txn.rollback();
        if req.flag("error_on_missing", true)? {
            return Err(Reply::error(
                404,
                format!("{ns} {key} does not exist (or was already deleted)"),
                "pass ?error_on_missing=false to ignore",
            ));
        }
        return Ok(Reply::body(
            200,
            &Deleted {
                namespace: ns.into(),
                key: key.into(),
                deleted: false,
                serial: None,
                declared: Declared::default(),
            },
        ));
    }
    let serial = txn.commit(actor(req).record("serve delete", now)).map_err(Reply::state)?;
    app.changes.bump();
    let body = Deleted {
        namespace: ns.into(),
        key: key.into(),
        deleted: true,
        serial: Some(serial),
        declared: declared(app, ns, key, crate::workspace::declared_delete_warning),
    };
    let mut r = Reply::body(200, &body);
    r.index = Some(serial);
    Ok(r)
}

/// `POST /api/v1/restore/{namespace}/{key}` with `{"version": N, "cas"?}`: version N's value,
/// type and description written as a new version (undeleting a deleted key).
pub(crate) fn restore(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    refuse_derived(ns, key)?;
    access::check(&req.token, Action::Write, ns).map_err(Reply::denied)?;
    rules::job_in_workspace(&app.bucket, ns).map_err(rule_reply)?;
    refuse_unknown_fields::<RestoreBody>(req.body.as_ref())?;
    let version = match req.body.as_ref().and_then(|b| b.get("version")) {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v > 0) => n.as_u64().unwrap_or(0),
        _ => {
            return Err(Reply::error(
                400,
                "send {\"version\": N}",
                "GET /api/v1/history/{namespace}/{key} lists the versions",
            ));
        }
    };
    let cas = expected_version(req)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = open_for_write(app, "serve restore")?;
    let outcome = match crate::ops::restore(&mut txn, ns, key, version, cas, &actor(req), now) {
        Ok(o) => o,
        Err(e) => {
            let _ = txn.rollback();
            return Err(op_reply(e));
        }
    };
    let serial = txn.commit(actor(req).record("serve restore", now)).map_err(Reply::state)?;
    app.changes.bump();
    let body = Restored {
        namespace: ns.into(),
        key: key.into(),
        restored: version,
        version: outcome.version(),
        changed: outcome.changed(),
        serial,
        declared: declared(app, ns, key, crate::workspace::declared_warning),
    };
    let mut r = Reply::body(200, &body);
    r.index = Some(serial);
    r.etag = Some(outcome.version());
    Ok(r)
}

/// Every kept version of a key, oldest first (`GET /api/v1/history/{namespace}/{key}`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct History {
    namespace: String,
    key: String,
    versions: Vec<VersionView>,
}

pub(crate) fn history(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    let rows = app.read(|r| r.history(ns, key)).map_err(Reply::state)?;
    if rows.is_empty() {
        return Err(Reply::error(404, format!("{ns} {key} has no versions"), "check the namespace and key"));
    }
    let versions = rows.iter().map(|r| version_view(app, req, ns, key, r)).collect::<Result<Vec<_>, _>>()?;
    json_reply(&History { namespace: ns.into(), key: key.into(), versions })
}
