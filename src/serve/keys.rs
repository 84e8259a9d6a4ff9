//! The key routes of the REST API: the namespace tree, a namespace's keys, one key (get,
//! put, delete) and its history. Split from [`super::rest`] (routing, authentication,
//! request parsing, watch, applies, plan, metrics), which dispatches here; the web UI
//! (`super::ui`) calls the same handlers, so both faces obey one set of rules.

use super::App;
use super::access::{self, Action};
use super::rest::{Reply, Req, rfc3339};
use crate::kv::{KvType, Typed, is_secret_namespace, rules};
use crate::state::StateError;
use crate::state::tokens::TokenRecord;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The value as this token may see it.
pub(crate) fn shown(
    app: &App,
    token: &TokenRecord,
    ns: &str,
    key: &str,
    version: u64,
    stored: &str,
) -> Result<(Value, bool), Reply> {
    if !is_secret_namespace(ns) || stored.is_empty() {
        return Ok((json!(stored), false));
    }
    if access::check(token, Action::Reveal, ns).is_err() {
        return Ok((json!("(sensitive)"), true));
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
    Ok((json!(plain.as_str()), false))
}

pub(crate) fn namespaces(app: &App) -> Result<Reply, Reply> {
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
    let list: Vec<Value> = tree
        .iter()
        .map(|(p, (own, total))| json!({ "namespace": p, "depth": p.matches('/').count(), "keys": own, "total_keys": total }))
        .collect();
    Ok(Reply::ok(json!({ "namespaces": list })))
}

/// One key as the API shows it. A typed struct, serialized straight to text: a 1,000-key
/// listing built as `serde_json::Value` trees spent most of its time allocating maps.
#[derive(serde::Serialize)]
struct KeyRow<'a> {
    namespace: &'a str,
    key: &'a str,
    value: Value,
    #[serde(rename = "type")]
    kv_type: KvType,
    description: &'a str,
    version: u64,
    versions: u64,
    ttl: u64,
    created_at: String,
    updated_at: String,
    expires_at: Option<String>,
    expired: bool,
    writer: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sensitive: bool,
}

fn key_row<'a>(
    app: &App,
    token: &TokenRecord,
    ns: &'a str,
    l: &'a crate::state::listing::KeyListing,
    now: i64,
) -> Result<KeyRow<'a>, Reply> {
    let (value, sensitive) = shown(app, token, ns, &l.key, l.entry.version, &l.entry.value)?;
    let time = crate::clock::format_time;
    Ok(KeyRow {
        namespace: ns,
        key: &l.key,
        value,
        kv_type: l.meta.kv_type,
        description: &l.meta.description,
        version: l.entry.version,
        versions: l.versions,
        ttl: l.entry.ttl,
        created_at: time(l.meta.key_created_at),
        updated_at: time(l.entry.created_at),
        expires_at: l.entry.expires_at().map(time),
        expired: l.entry.is_expired(now),
        writer: &l.entry.writer,
        serial: l.entry.serial,
        sensitive,
    })
}

fn json_reply(v: &impl serde::Serialize) -> Result<Reply, Reply> {
    let body = serde_json::to_string(v).map_err(|e| Reply::error(500, e.to_string(), "this is a bug in kvform"))?;
    Ok(Reply { status: 200, body, content_type: "application/json", index: None })
}

pub(crate) fn list(app: &App, req: &Req, ns: &str) -> Result<Reply, Reply> {
    let prefix = req.query.get("prefix").map_or("", String::as_str);
    let now = crate::clock::now().unwrap_or_default();
    let rows = app.read(|r| r.list_keys(ns, prefix)).map_err(Reply::state)?;
    let keys = rows.iter().map(|l| key_row(app, &req.token, ns, l, now)).collect::<Result<Vec<_>, _>>()?;
    #[derive(serde::Serialize)]
    struct Listing<'a> {
        namespace: &'a str,
        prefix: &'a str,
        keys: Vec<KeyRow<'a>>,
    }
    json_reply(&Listing { namespace: ns, prefix, keys })
}

pub(crate) fn get(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    let now = crate::clock::now().unwrap_or_default();
    let found = app.read(|r| r.key_listing(ns, key)).map_err(Reply::state)?;
    match found {
        Some(l) => json_reply(&key_row(app, &req.token, ns, &l, now)?),
        None if !req.flag("error_on_missing", true)? => Ok(Reply::ok(Value::Null)),
        None => Err(Reply::error(
            404,
            format!("{ns} {key} does not exist (or was deleted)"),
            "pass ?error_on_missing=false to get null instead",
        )),
    }
}

fn rule_reply(e: rules::RuleError) -> Reply {
    let text = e.to_string();
    let (msg, hint) = text.split_once("\n  help: ").unwrap_or((&text, ""));
    Reply::error(400, msg, hint)
}

fn writer(req: &Req) -> String {
    format!("api:{}", req.token.name)
}

fn open_for_write(app: &App, op: &str) -> Result<crate::state::WriteTxn, Reply> {
    let mut store = crate::state::StateStore::open_at(&app.location).map_err(Reply::state)?;
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

pub(crate) fn put(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    refuse_derived(ns, key)?;
    access::check(&req.token, Action::Write, ns).map_err(Reply::denied)?;
    rules::job_in_workspace(&app.bucket, ns).map_err(rule_reply)?;
    let Some(body) = &req.body else {
        return Err(Reply::error(
            400,
            "missing request body",
            "send {\"value\": ..., \"type\"?, \"ttl\"?, \"description\"?, \"overwrite\"?}",
        ));
    };
    let kv_type = match body.get("type") {
        None | Some(Value::Null) => KvType::String,
        Some(Value::String(s)) => KvType::parse(s).ok_or_else(|| {
            Reply::error(400, format!("unknown type {s:?}"), format!("use one of {}", KvType::names()))
        })?,
        Some(_) => {
            return Err(Reply::error(400, "\"type\" must be a string", format!("use one of {}", KvType::names())));
        }
    };
    let value = match body.get("value") {
        Some(Value::String(s)) => zeroize::Zeroizing::new(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => zeroize::Zeroizing::new(v.to_string()),
        Some(v @ (Value::Array(_) | Value::Object(_))) if kv_type == KvType::Json => {
            zeroize::Zeroizing::new(v.to_string())
        }
        // No value: keep the current one (the web UI's form for a masked secret has no
        // value to send back; writing "" there wiped the secret). Resolved under the lock.
        None | Some(Value::Null) => zeroize::Zeroizing::new(String::new()),
        Some(_) => {
            return Err(Reply::error(
                400,
                "\"value\" must be a string, number or boolean",
                "lists and objects need \"type\": \"json\"",
            ));
        }
    };
    let ttl = match body.get("ttl") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(_) => {
            return Err(Reply::error(400, "\"ttl\" must be a non-negative number of seconds", "0 = never expires"));
        }
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Reply::error(400, "\"description\" must be a string", "")),
    };
    let overwrite = match body.get("overwrite") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Reply::error(400, "\"overwrite\" must be true or false", "")),
    };
    let keep_value = matches!(body.get("value"), None | Some(Value::Null));
    // The one write validation (SPEC §4, as `kv set` and the hook API), before taking the
    // lock: a bad value never waits for an apply. A write keeping the current value checks
    // the rest (that value passed when it was written).
    let checked = if keep_value { ("", KvType::String) } else { (value.as_str(), kv_type) };
    crate::kv::validate::check_write(ns, key, checked.0, checked.1, ttl, description).map_err(|e| {
        let (msg, hint) = e.message.split_once("\n  help: ").unwrap_or((&e.message, ""));
        Reply::error(400, msg, hint)
    })?;
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = open_for_write(app, "serve put")?;
    let value = if keep_value {
        match current_value(&mut txn, ns, key) {
            Ok(v) => v,
            Err(r) => {
                let _ = txn.rollback();
                return Err(r);
            }
        }
    } else {
        value
    };
    if !overwrite && let Some(e) = txn.get(ns, key).map_err(Reply::state)?.filter(|e| e.is_live()) {
        let _ = txn.rollback();
        return Err(Reply::error(
            409,
            format!("{ns} {key} already exists (version {})", e.version),
            "send \"overwrite\": true to replace it",
        ));
    }
    let typed = Typed::new(kv_type, description);
    let outcome = match txn.put_typed(ns, key, &value, ttl, &writer(req), now, &typed) {
        Ok(o) => o,
        Err(e) => {
            let _ = txn.rollback();
            return Err(Reply::state(e));
        }
    };
    let serial = txn.commit(crate::state::ApplyRecord::new("serve put", now)).map_err(Reply::state)?;
    let status = if outcome.version() == 1 && outcome.changed() { 201 } else { 200 };
    let mut r = Reply::json(
        status,
        json!({ "namespace": ns, "key": key, "version": outcome.version(), "changed": outcome.changed(), "type": kv_type, "serial": serial }),
    );
    r.index = Some(serial);
    Ok(r)
}

/// The live value of a key, opened when sealed: what a write without `value` keeps.
fn current_value(txn: &mut crate::state::WriteTxn, ns: &str, key: &str) -> Result<zeroize::Zeroizing<String>, Reply> {
    let Some(e) = txn.get(ns, key).map_err(Reply::state)?.filter(|e| e.is_live()) else {
        return Err(Reply::error(
            400,
            format!("missing field \"value\" ({ns} {key} has no current value to keep)"),
            "send {\"value\": \"...\"}",
        ));
    };
    if !crate::kv::is_secret_key(ns, key) || e.value.is_empty() {
        return Ok(zeroize::Zeroizing::new(e.value));
    }
    let Some(ring) = txn.keyring() else {
        return Err(Reply::error(
            500,
            "the bucket key (secrets/kv.key) is missing",
            "restore secrets/kv.key, or send the value",
        ));
    };
    ring.open(ns, key, e.version, &e.value).map_err(|e| Reply::error(500, e.to_string(), ""))
}

pub(crate) fn delete(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    refuse_derived(ns, key)?;
    access::check(&req.token, Action::Write, ns).map_err(Reply::denied)?;
    let now = crate::clock::now().unwrap_or_default();
    let mut txn = open_for_write(app, "serve delete")?;
    let deleted = match txn.tombstone(ns, key, &writer(req), now) {
        Ok(d) => d,
        Err(e) => {
            let _ = txn.rollback();
            return Err(Reply::state(e));
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
        return Ok(Reply::ok(json!({ "namespace": ns, "key": key, "deleted": false })));
    }
    let serial = txn.commit(crate::state::ApplyRecord::new("serve delete", now)).map_err(Reply::state)?;
    let mut r = Reply::ok(json!({ "namespace": ns, "key": key, "deleted": true, "serial": serial }));
    r.index = Some(serial);
    Ok(r)
}

pub(crate) fn history(app: &App, req: &Req, ns: &str, key: &str) -> Result<Reply, Reply> {
    rules::check_key(key).map_err(rule_reply)?;
    let rows = app.read(|r| r.history(ns, key)).map_err(Reply::state)?;
    if rows.is_empty() {
        return Err(Reply::error(404, format!("{ns} {key} has no versions"), "check the namespace and key"));
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (value, sensitive) =
            if r.deleted { (Value::Null, false) } else { shown(app, &req.token, ns, key, r.version, &r.value)? };
        let mut v = json!({
            "version": r.version, "value": value, "deleted": r.deleted, "type": r.kv_type,
            "description": r.description, "ttl": r.ttl, "updated_at": rfc3339(r.created_at),
            "serial": r.serial, "writer": r.writer,
        });
        if sensitive {
            v["sensitive"] = json!(true);
        }
        out.push(v);
    }
    Ok(Reply::ok(json!({ "namespace": ns, "key": key, "versions": out })))
}
