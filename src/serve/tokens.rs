//! Admin routes for API tokens: `GET/POST /api/v1/tokens`, `DELETE /api/v1/tokens/{name}`.
//! The same store functions as `kvform token` (`state::tokens`): the state keeps a hash
//! only, the plaintext token is in the POST answer once, and listings never carry hashes
//! (a [`TokenRecord`] has none).

use super::App;
use super::access::{self, Action, Role};
use super::api_types::{Revoked, TokenCreateBody, TokenCreated, TokenList, TokenView, refuse_unknown_fields};
use super::rest::{Reply, Req};
use crate::state::tokens::TokenRecord;
use serde_json::Value;

fn record_json(t: &TokenRecord, now: i64) -> TokenView {
    let time = crate::clock::format_time;
    TokenView {
        name: t.name.clone(),
        role: t.role.clone(),
        namespaces: t.namespaces.clone(),
        reveal: t.reveal,
        created_at: time(t.created_at),
        expires_at: t.expires_at.map(time),
        revoked_at: t.revoked_at.map(time),
        state: t.state(now).to_string(),
    }
}

fn admin(req: &Req) -> Result<(), Reply> {
    access::check(&req.token, Action::ManageTokens, "").map_err(Reply::denied)
}

/// A writable connection: the server's reader is read-only, and token writes are rare.
fn writable(app: &App) -> Result<crate::state::StateStore, Reply> {
    app.location.open().map_err(Reply::state)
}

pub(crate) fn list(app: &App, req: &Req) -> Result<Reply, Reply> {
    admin(req)?;
    let now = crate::clock::now().unwrap_or_default();
    let tokens = app.read(|r| r.tokens()).map_err(Reply::state)?;
    Ok(Reply::body(200, &TokenList { tokens: tokens.iter().map(|t| record_json(t, now)).collect() }))
}

/// `{name, role, namespaces?, reveal?, expires?}`, the flags of `kvform token create`.
pub(crate) fn create(app: &App, req: &Req) -> Result<Reply, Reply> {
    admin(req)?;
    let hint = "send {\"name\": \"ci\", \"role\": \"reader|writer|admin\", \"namespaces\"?: [\"vars/job/*\"], \"reveal\"?: false, \"expires\"?: \"30d\"}";
    let body = req.body.as_ref().ok_or_else(|| Reply::error(400, "missing request body", hint))?;
    refuse_unknown_fields::<TokenCreateBody>(Some(body))?;
    let text = |f: &str| match body.get(f) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(Reply::error(400, format!("\"{f}\" must be a non-empty string"), hint)),
    };
    let name = text("name")?.ok_or_else(|| Reply::error(400, "missing field \"name\"", hint))?;
    crate::kv::keys::check_key(&name).map_err(|e| Reply::error(400, format!("token name: {}", e.message), hint))?;
    let role = text("role")?.ok_or_else(|| Reply::error(400, "missing field \"role\"", hint))?;
    if Role::parse(&role).is_none() {
        return Err(Reply::error(400, format!("unknown role {role:?}"), "use reader, writer or admin"));
    }
    let namespaces: Vec<String> = match body.get("namespaces") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        }
        Some(_) => return Err(Reply::error(400, "\"namespaces\" must be a list of patterns", hint)),
    };
    let reveal = match body.get("reveal") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Reply::error(400, "\"reveal\" must be true or false", hint)),
    };
    // A token may not hand out more than it has: without --reveal itself, an admin could
    // otherwise mint a --reveal token and read every secret through it.
    if reveal && !req.token.reveal {
        return Err(Reply::denied(access::Denial {
            rule: "reveal",
            message: format!(
                "token `{}` may not see secret values, so it cannot create a token that may",
                req.token.name
            ),
            hint: "create --reveal tokens with an admin token that has --reveal itself (kvform token create NAME --role admin --reveal)".into(),
        }));
    }
    let now = crate::clock::now().unwrap_or_default();
    let expires_at = match text("expires")? {
        None => None,
        Some(d) => match crate::clock::parse_duration(&d) {
            Some(secs) if secs > 0 => Some(now + secs as i64),
            _ => {
                return Err(Reply::error(
                    400,
                    format!("\"expires\" {d:?} is not a duration"),
                    "such as 3600, 12h or 30d",
                ));
            }
        },
    };
    let rec = TokenRecord { name, role, namespaces, reveal, created_at: now, expires_at, revoked_at: None };
    let token = writable(app)?.create_token(&rec).map_err(|e| match e {
        crate::state::StateError::Invalid { .. } => {
            Reply::error(409, e.to_string(), "revoke it first, or pick another name")
        }
        e => Reply::state(e),
    })?;
    // The only time the token exists in clear; the state keeps its hash.
    Ok(Reply::body(201, &TokenCreated { record: record_json(&rec, now), token: token.as_str().to_string() }))
}

pub(crate) fn revoke(app: &App, req: &Req, name: &str) -> Result<Reply, Reply> {
    admin(req)?;
    let now = crate::clock::now().unwrap_or_default();
    if !writable(app)?.revoke_token(name, now).map_err(Reply::state)? {
        return Err(Reply::error(404, format!("no active token named `{name}`"), "GET /api/v1/tokens lists them"));
    }
    Ok(Reply::body(200, &Revoked { name: name.to_string(), revoked: true }))
}
