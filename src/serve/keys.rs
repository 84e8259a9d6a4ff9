//! The key routes of the REST API: the namespace tree, a namespace's keys, one key (get,
//! put, delete) and its history. Split from [`super::rest`] (routing, authentication,
//! request parsing, watch, applies, plan, metrics), which dispatches here; the web UI
//! (`super::ui`) calls the same handlers, so both faces obey one set of rules.

use super::App;
use super::access::{self, Action};
use super::rest::{Reply, Req, rfc3339};
use crate::kv::{KvType, is_secret_key, rules};
use crate::state::StateError;
use crate::state::tokens::TokenRecord;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The value as this token may see it. Sensitive is one rule, [`is_secret_key`]: every key
/// of `secrets/*` and every certificate private key (`certs/<name>.key` in an allocation
/// namespace) is stored sealed and shown `(sensitive)` unless the token may reveal.
pub(crate) fn shown(
    app: &App,
    token: &TokenRecord,
    ns: &str,
    key: &str,
    version: u64,
    stored: &str,
) -> Result<(Value, bool), Reply> {
    if !is_secret_key(ns, key) || stored.is_empty() {
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
    Ok(Reply { status: 200, body, content_type: "application/json", index: None, etag: None })
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
            let mut r = json_reply(&key_row(app, &req.token, ns, &l, now)?)?;
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

/// `GET …?version=N`: one kept version, shown as this token may see it.
fn get_version(app: &App, req: &Req, ns: &str, key: &str, n: u64) -> Result<Reply, Reply> {
    let rows = app.read(|r| r.history(ns, key)).map_err(Reply::state)?;
    let Some(r) = crate::ops::version_of(rows, n) else {
        return Err(op_reply(crate::ops::OpError::NoVersion { ns: ns.into(), key: key.into(), version: n }));
    };
    let (value, sensitive) =
        if r.deleted { (Value::Null, false) } else { shown(app, &req.token, ns, key, r.version, &r.value)? };
    let mut v = json!({
        "namespace": ns, "key": key, "version": r.version, "value": value, "deleted": r.deleted,
        "type": r.kv_type, "description": r.description, "ttl": r.ttl,
        "updated_at": rfc3339(r.created_at), "serial": r.serial, "writer": r.writer,
    });
    if sensitive {
        v["sensitive"] = json!(true);
    }
    let mut reply = Reply::ok(v);
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

fn writer(req: &Req) -> String {
    format!("api:{}", req.token.name)
}

/// Who the audit trail (`/api/v1/applies`, `kvform state applies`) names for a serve write:
/// the token, not the OS user running `kvform serve`.
fn actor(req: &Req) -> String {
    format!("token:{}", req.token.name)
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
    if let Some(unknown) =
        body.keys().find(|k| !["value", "type", "ttl", "description", "overwrite", "cas"].contains(&k.as_str()))
    {
        return Err(Reply::error(
            400,
            format!("unknown field {unknown:?}"),
            "fields: value, type, ttl, description, cas, overwrite",
        ));
    }
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
    let outcome = match crate::ops::put(&mut txn, ns, key, &change, &writer(req), now) {
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
    let serial = txn.commit(crate::state::ApplyRecord::new("serve put", now).by(actor(req))).map_err(Reply::state)?;
    let status = if outcome.version() == 1 && outcome.changed() { 201 } else { 200 };
    let mut body = json!({
        "namespace": ns, "key": key, "version": outcome.version(), "changed": outcome.changed(),
        "type": outcome.kv_type, "serial": serial,
    });
    // A key the workspace declares: the write stands until the next apply writes it back.
    if let Some(at) = crate::workspace::declared_var(&app.bucket.root, ns, key) {
        body["warnings"] = json!([crate::workspace::declared_warning(ns, key, &at)]);
        body["managed_by"] = json!(at);
    }
    let mut r = Reply::json(status, body);
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
    let deleted = match crate::ops::delete(&mut txn, ns, key, cas, &writer(req), now) {
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
        return Ok(Reply::ok(json!({ "namespace": ns, "key": key, "deleted": false })));
    }
    let serial =
        txn.commit(crate::state::ApplyRecord::new("serve delete", now).by(actor(req))).map_err(Reply::state)?;
    let mut r = Reply::ok(json!({ "namespace": ns, "key": key, "deleted": true, "serial": serial }));
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
    let outcome = match crate::ops::restore(&mut txn, ns, key, version, cas, &writer(req), now) {
        Ok(o) => o,
        Err(e) => {
            let _ = txn.rollback();
            return Err(op_reply(e));
        }
    };
    let serial =
        txn.commit(crate::state::ApplyRecord::new("serve restore", now).by(actor(req))).map_err(Reply::state)?;
    let mut r = Reply::ok(json!({
        "namespace": ns, "key": key, "restored": version, "version": outcome.version(),
        "changed": outcome.changed(), "serial": serial,
    }));
    r.index = Some(serial);
    r.etag = Some(outcome.version());
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
