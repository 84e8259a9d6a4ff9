//! The handlers behind each hook API route, after authentication and body parsing
//! (`api.rs`). Each one checks the access table before touching the store.

use super::access::Op;
use super::api::{Authed, Params, Reply, Shared};
use super::semaphore::{MAX_CAPACITY, MAX_TIMEOUT_SECS, SemaphoreError};
use super::store::HookStoreError;
use crate::kv::NamespaceKind;
use serde_json::{Value, json};
use std::time::Duration;

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

/// The value of a write: a string, or a number/bool written as its JSON text.
fn value(p: &Params) -> Result<String, Reply> {
    match p.get("value") {
        Some(Value::String(s)) => Ok(s.trim().to_string()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        None | Some(Value::Null) => Err(Reply::error(400, "missing field \"value\"")),
        Some(_) => Err(Reply::error(400, "field \"value\" must be a string, number or boolean")),
    }
}

fn is_secret(ns: &str) -> bool {
    NamespaceKind::parse(ns).is_some_and(|k| k.is_secret())
}

fn store_error(e: HookStoreError) -> Reply {
    match e {
        HookStoreError::Rejected(m) => Reply::error(400, m),
        e @ HookStoreError::Backend(_) => Reply::error(500, e.to_string()),
    }
}

fn get(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    who.op_check(Op::Get, ns, Some(key))?;
    let found = shared.store().get(ns, key).map_err(store_error)?;
    let Some(v) = found else {
        return Err(Reply::error(404, format!("key {key:?} not found in {ns}")));
    };
    if crate::kv::is_secret_key(ns, key) {
        // Before the reply leaves: the hook cannot print what it has not received yet.
        shared.tokens().remember_secret(who.token, &v.value);
    }
    let mut body = json!({ "namespace": ns, "key": key, "value": v.value.as_str() });
    if let Some(t) = v.expired_at {
        // Still readable until the next plan tombstones it; say so (SPEC §4 TTL).
        body["expired"] = json!(true);
        body["expired_at"] = json!(t);
    }
    Ok(Reply::ok(body))
}

fn put(shared: &Shared, who: &Authed, p: &Params, op: Op) -> Result<Reply, Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    let value = zeroize::Zeroizing::new(value(p)?);
    if op == Op::PutSecret || is_secret(ns) {
        // Meant as a secret even if the write is then refused (403, 400).
        shared.tokens().remember_secret(who.token, &value);
    }
    let ttl = number(p, "ttl", 0)?;
    who.op_check(op, ns, Some(key))?;
    shared.store().put(ns, key, &value, ttl, &who.identity.writer()).map_err(store_error)?;
    let mut body = json!({ "namespace": ns, "key": key, "ttl": ttl });
    if op == Op::Put {
        // Secret values are never echoed.
        body["value"] = json!(value.as_str());
    }
    Ok(Reply::ok(body))
}

fn delete(shared: &Shared, who: &Authed, p: &Params, op: Op) -> Result<Reply, Reply> {
    let (ns, key) = (string(p, "namespace")?, string(p, "key")?);
    who.op_check(op, ns, Some(key))?;
    if shared.store().delete(ns, key, &who.identity.writer()).map_err(store_error)? {
        Ok(Reply::ok(json!({ "namespace": ns, "key": key, "deleted": true })))
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
    let status = match e {
        SemaphoreError::Timeout { .. } => 408,
        SemaphoreError::CapacityChanged { .. }
        | SemaphoreError::AlreadyHeld { .. }
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

fn acquire(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = semaphore_name(p)?;
    let capacity = number(p, "capacity", 1)?;
    if !(1..=MAX_CAPACITY as u64).contains(&capacity) {
        return Err(Reply::error(400, format!("capacity must be between 1 and {MAX_CAPACITY}, not {capacity}")));
    }
    let timeout = number(p, "timeout", 60)?;
    if timeout > MAX_TIMEOUT_SECS {
        return Err(Reply::error(400, format!("timeout must be at most {MAX_TIMEOUT_SECS} seconds, not {timeout}")));
    }
    let (job, event) = (&who.identity.job, who.event());
    shared
        .semaphores
        .acquire(who.token, job, event, name, capacity as u32, Duration::from_secs(timeout))
        .map_err(semaphore_reply)?;
    Ok(Reply::ok(json!({ "name": name, "capacity": capacity, "acquired": true })))
}

fn release(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = semaphore_name(p)?;
    shared.semaphores.release(who.token, &who.identity.job, who.event(), name).map_err(semaphore_reply)?;
    Ok(Reply::ok(json!({ "name": name, "released": true })))
}

fn status(shared: &Shared, who: &Authed, p: &Params) -> Result<Reply, Reply> {
    let name = match p.get("name") {
        Some(_) => Some(semaphore_name(p)?),
        None => None,
    };
    let list = shared.semaphores.status(who.token, &who.identity.job, who.event(), name);
    Ok(Reply::ok(json!({ "semaphores": list })))
}
