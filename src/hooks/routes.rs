//! The handlers behind each hook API route, after authentication and body parsing
//! (`api.rs`). Each one checks the access table before touching the store.

use super::access::Op;
use super::api::{Authed, Params, Reply, Shared};
use super::semaphore::{SemaphoreError, normalize_capacity, normalize_timeout};
use super::store::{HookStoreError, HookValue};
use crate::kv::{KvType, NamespaceKind, Typed};
use serde_json::{Value, json};
use std::sync::TryLockError;

pub(crate) fn dispatch(shared: &Shared, who: &Authed, method: &str, path: &str, p: &Params) -> Reply {
    let result = match (method, path) {
        ("GET", "/kv") => get(shared, who, p),
        ("PUT", "/kv") => put(shared, who, p, Op::Put),
        ("DELETE", "/kv") => delete(shared, who, p, Op::Delete),
        ("PUT", "/kv/secret") => put(shared, who, p, Op::PutSecret),
        ("DELETE", "/kv/secret") => delete(shared, who, p, Op::DeleteSecret),
        ("GET", "/kv/keys") => keys(shared, who, p),
        ("GET", "/demands") => {
            let d = shared.topology.demands_of(&who.identity.job, &who.identity.command);
            Ok(Reply::ok(serde_json::to_value(d).unwrap_or_else(|_| json!([]))))
        }
        ("POST", "/semaphore/acquire") => acquire(shared, who, p),
        ("POST", "/semaphore/release") => release(shared, who, p),
        ("GET", "/semaphore/status") => status(shared, who, p),
        _ => Err(Reply::error(404, format!("no route {method} {path}"))),
    };
    result.unwrap_or_else(|r| r)
}

/// A required string field.
fn string<'a>(p: &'a Params, name: &str) -> Result<&'a str, Reply> {
    match p.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None => Err(Reply::error(400, format!("missing field {name:?}"))),
        Some(_) => Err(Reply::error(400, format!("field {name:?} must be a string"))),
    }
}

/// An optional unsigned integer field (a JSON number, or a decimal string from a query).
fn number(p: &Params, name: &str, default: u64) -> Result<u64, Reply> {
    let bad = || Reply::error(400, format!("field {name:?} must be a non-negative integer"));
    match p.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// The optional `ttl` of a write: seconds (a JSON number or a decimal string, as maand sends
/// it) or a duration in the one grammar of every door (`"1h"`, `"30m"`, `"P30D"`, as `kv set
/// --ttl` and the REST API take it); absent or 0: never expires.
fn ttl(p: &Params) -> Result<u64, Reply> {
    let bad = || {
        Reply::error(
            400,
            "field \"ttl\" must be seconds or a duration such as \"1h\", \"30m\", \"P30D\"\n  help: 0 (or no ttl) = never expires",
        )
    };
    match p.get("ttl") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad),
        Some(Value::String(s)) => crate::clock::parse_duration(s.trim()).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// The optional `cas` of a write or delete (as the REST API's): the live version the hook
/// expects, `0` = the key must not be live. A mismatch is 412 with the current `version`.
fn cas(p: &Params) -> Result<Option<u64>, Reply> {
    match p.get("cas") {
        None | Some(Value::Null) => Ok(None),
        Some(_) => number(p, "cas", 0).map(Some),
    }
}

/// An optional integer field, any sign (a JSON number, or a decimal string from a query).
fn integer(p: &Params, name: &str) -> Result<Option<i64>, Reply> {
    let bad = || Reply::error(400, format!("field {name:?} must be an integer"));
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// The optional `type` and `description` of a write (SPEC §9; additive to maand's
/// `{namespace, key, value, ttl}`). `None` when the hook sent neither: maand's untyped
/// write, which keeps the key's description.
fn typed(p: &Params) -> Result<Option<Typed>, Reply> {
    let kv_type = match p.get("type") {
        None | Some(Value::Null) => None,
        // The CLI's text for an unknown `--type`.
        Some(Value::String(s)) => Some(
            KvType::parse(s)
                .ok_or_else(|| Reply::error(400, format!("unknown type {s:?}; use one of {}", KvType::names())))?,
        ),
        Some(_) => return Err(Reply::error(400, format!("field \"type\" must be one of {}", KvType::names()))),
    };
    let description = match p.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Reply::error(400, "field \"description\" must be a string")),
    };
    if kv_type.is_none() && description.is_none() {
        return Ok(None);
    }
    Ok(Some(Typed::new(kv_type.unwrap_or_default(), description.unwrap_or(""))))
}

/// The value of a write: a string, or a number/bool written as its JSON text (a list or
/// object too when the write says `"type": "json"`).
fn value(p: &Params, kv_type: Option<KvType>) -> Result<String, Reply> {
    match p.get("value") {
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(v @ (Value::Array(_) | Value::Object(_))) if kv_type == Some(KvType::Json) => Ok(v.to_string()),
        None | Some(Value::Null) => Err(Reply::error(400, "missing field \"value\"")),
        Some(_) => Err(Reply::error(
            400,
            "field \"value\" must be a string, number or boolean (lists and objects need \"type\": \"json\")",
        )),
    }
}

fn is_secret(ns: &str) -> bool {
    NamespaceKind::parse(ns).is_some_and(|k| k.is_secret())
}

fn store_error(e: HookStoreError) -> Reply {
    match e {
        HookStoreError::Rejected(m) => Reply::error(400, m),
        e @ HookStoreError::Backend(_) => Reply::error(500, e.to_string()),
        HookStoreError::Conflict { message, current } => {
            let mut r = Reply::error(412, message);
            r.body["version"] = json!(current);
            r
        }
    }
}

fn get(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let (ns, key) = get_args(who, p)?;
    let found = shared.store().get(ns, key);
    answer_get(shared, who, ns, key, found)
}

/// `GET /kv` answered on the calling (runtime) thread when neither the store mutex nor the
/// store itself would make it wait ([`HookStore::try_get`]); `None` sends the request to
/// the blocking pool as before. Same checks, same reply as [`get`].
pub(crate) fn get_now(shared: &Shared, who: &Authed, p: &Params) -> Option<Reply> {
    let (ns, key) = match get_args(who, p) {
        Ok(args) => args,
        Err(refused) => return Some(refused),
    };
    let found = {
        let mut store = match shared.store.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        store.try_get(ns, key)?
    };
    Some(answer_get(shared, who, ns, key, found).unwrap_or_else(|r| r))
}

fn get_args<'a>(who: &Authed, p: &'a Params) -> Result<(&'a str, &'a str), Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    who.op_check(Op::Get, ns, Some(key))?;
    Ok((ns, key))
}

fn answer_get(
    shared: &Shared,
    who: &Authed,
    ns: &str,
    key: &str,
    found: Result<Option<HookValue>, HookStoreError>,
) -> Result<Reply, Reply> {
    let Some(v) = found.map_err(store_error)? else {
        return Err(Reply::error(404, format!("key {key:?} not found in {ns}")));
    };
    if crate::kv::is_secret_key(ns, key) {
        // Before the reply leaves: the hook cannot print what it has not received yet.
        shared.tokens().remember_secret(who.token, &v.value);
    }
    let mut body = json!({ "namespace": ns, "key": key, "value": v.value.as_str(), "version": v.version });
    if let Some(t) = v.expired_at {
        // Still readable until the next plan tombstones it; say so (SPEC §4 TTL).
        body["expired"] = json!(true);
        body["expired_at"] = json!(t);
    }
    Ok(Reply::ok(body))
}

fn put(shared: &Shared, who: &Authed, p: &Params, op: Op) -> Result<Reply, Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    let typed = typed(p)?;
    let value = zeroize::Zeroizing::new(value(p, typed.as_ref().map(|t| t.kv_type))?);
    if op == Op::PutSecret || is_secret(ns) {
        // Meant as a secret even if the write is then refused (403, 400).
        shared.tokens().remember_secret(who.token, &value);
    }
    let ttl = ttl(p)?;
    let cas = cas(p)?;
    who.op_check(op, ns, Some(key))?;
    // The one write validation of `kvform kv set` and the REST API (SPEC §4: NUL bytes,
    // sizes, the ttl range, the type), checked before the store is locked: a write the
    // database would refuse is the hook's 400, never a failed statement in the apply.
    let (kv_type, description) = typed.as_ref().map_or((KvType::String, ""), |t| (t.kv_type, t.description.as_str()));
    crate::kv::validate::check_write(ns, key, &value, kv_type, ttl, description)
        .map_err(|e| Reply::rule(400, e.message, e.rule))?;
    if NamespaceKind::parse(ns).is_some_and(|k| matches!(k, NamespaceKind::Job(_))) && key == "rollout_order" {
        check_rollout_order(shared, who, ns, &value)?;
    }
    shared.store().put(ns, key, &value, ttl, &who.identity.actor(), typed.as_ref(), cas).map_err(store_error)?;
    let mut body = json!({ "namespace": ns, "key": key, "ttl": ttl });
    if let Some(t) = &typed {
        body["type"] = json!(t.kv_type);
    }
    if op == Op::Put {
        // Secret values are never echoed.
        body["value"] = json!(value.as_str());
    }
    if let Some(at) = shared.topology.declared(ns, key) {
        // As the REST API answers: the next apply writes the workspace's value back.
        body["warnings"] = json!([crate::workspace::declared_warning(ns, key, at)]);
        body["managed_by"] = json!(at);
    }
    Ok(Reply::ok(body))
}

/// A `rollout_order` override names only the job's active allocations (the `workers` of its
/// catalog as this command sees it), each once (maand's `validateRolloutOrderList`, which
/// maand applies at deploy time and kvform at the write, where the hook can be told).
fn check_rollout_order(shared: &Shared, who: &Authed, ns: &str, order: &str) -> Result<(), Reply> {
    let workers = shared.store().get(ns, "workers").map_err(store_error)?.map(|v| v.value.to_string());
    let active: Vec<&str> =
        workers.as_deref().unwrap_or("").split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    let mut seen: Vec<&str> = Vec::new();
    for host in order.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        if !active.contains(&host) {
            return Err(Reply::rule(
                400,
                format!(
                    "rollout_order names {host}, which is not an active allocation of job `{}` (workers: {})\n  help: list only hosts of maand/job/{} workers",
                    who.identity.job,
                    if active.is_empty() { "none".to_string() } else { active.join(",") },
                    who.identity.job
                ),
                "rollout-order-hosts",
            ));
        }
        if seen.contains(&host) {
            return Err(Reply::rule(
                400,
                format!("rollout_order names {host} twice\n  help: list each allocation once"),
                "rollout-order-hosts",
            ));
        }
        seen.push(host);
    }
    Ok(())
}

fn delete(shared: &Shared, who: &Authed, p: &Params, op: Op) -> Result<Reply, Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    let cas = cas(p)?;
    who.op_check(op, ns, Some(key))?;
    crate::kv::validate::check_delete(ns, key).map_err(|e| Reply::rule(400, e.message, e.rule))?;
    if shared.store().delete(ns, key, &who.identity.actor(), cas).map_err(store_error)? {
        let mut body = json!({ "namespace": ns, "key": key, "deleted": true });
        if let Some(at) = shared.topology.declared(ns, key) {
            // As the REST API answers: the next apply writes the workspace's value back.
            body["warnings"] = json!([crate::workspace::declared_delete_warning(ns, key, at)]);
            body["managed_by"] = json!(at);
        }
        Ok(Reply::ok(body))
    } else {
        Err(Reply::error(404, format!("key {key:?} not found in {ns}")))
    }
}

fn keys(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let job = &who.identity.job;
    let namespaces = match p.get("namespace") {
        Some(_) => vec![string(p, "namespace")?.to_string()],
        None => vec![format!("vars/job/{job}"), format!("secrets/job/{job}")],
    };
    let mut out = serde_json::Map::new();
    for ns in namespaces {
        who.op_check(Op::Keys, &ns, None)?;
        let keys = shared.store().keys(&ns).map_err(store_error)?;
        out.insert(ns, json!(keys));
    }
    Ok(Reply::ok(json!({ "namespaces": out })))
}

fn semaphore_reply(e: SemaphoreError) -> Reply {
    // maand: 408 on timeout, 409 for any other acquire/release failure.
    let status = match e {
        SemaphoreError::Timeout { .. } => 408,
        SemaphoreError::CapacityChanged { .. }
        | SemaphoreError::CapacityTooLarge { .. }
        | SemaphoreError::NotHeld { .. } => 409,
        SemaphoreError::Revoked { .. } => 401,
        SemaphoreError::ShuttingDown => 503,
    };
    Reply::error(status, e.to_string())
}

fn semaphore_name(p: &Params) -> Result<&str, Reply> {
    let name = string(p, "name")?;
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(Reply::error(400, "semaphore names are at most 128 printable characters"));
    }
    Ok(name)
}

/// `{name, capacity?, timeout_seconds?}` (maand's payload; `timeout` is kvform's older
/// name for the same field). Blocks this request's thread while it waits.
fn acquire(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = semaphore_name(p)?;
    let capacity = normalize_capacity(name, integer(p, "capacity")?.unwrap_or(1)).map_err(semaphore_reply)?;
    let seconds = match integer(p, "timeout_seconds")? {
        Some(s) => Some(s),
        None => integer(p, "timeout")?,
    };
    let (job, event, alloc) = (&who.identity.job, who.event(), who.identity.alloc_id);
    shared
        .semaphores
        .acquire(who.token, alloc, job, event, name, capacity, normalize_timeout(seconds))
        .map_err(semaphore_reply)?;
    Ok(Reply::ok(json!({
        "name": name,
        "allocation_id": alloc.to_string(),
        "capacity": capacity,
        "acquired": true,
    })))
}

fn release(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = semaphore_name(p)?;
    let alloc = who.identity.alloc_id;
    shared.semaphores.release(alloc, &who.identity.job, who.event(), name).map_err(semaphore_reply)?;
    Ok(Reply::ok(json!({ "name": name, "allocation_id": alloc.to_string(), "released": true })))
}

/// `?name=` (required, as in maand): `{name, capacity, holders, waiting, available}`.
fn status(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = semaphore_name(p)?;
    let st = shared.semaphores.status(&who.identity.job, who.event(), name);
    Ok(Reply::ok(serde_json::to_value(st).unwrap_or_else(|_| json!({}))))
}
