//! API tokens of `kvform serve` (SPEC §9): a token is shown once when created; the state
//! keeps only its sha-256, so a copied state file grants nothing.

use super::backend::{DbError, Row, vals};
use super::{StateError, StateStore, sql};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One token as the state records it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub name: String,
    /// `reader`, `writer` or `admin` (see `serve::access`).
    pub role: String,
    /// Namespace patterns a writer may write (`vars/job/*`); empty = every writable one.
    pub namespaces: Vec<String>,
    /// May read secret plaintext.
    pub reveal: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRecord {
    /// Usable at `now`: not revoked, not expired.
    pub fn usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }

    /// `active`, `revoked` or `expired` at `now` (`token list` and `GET /api/v1/tokens`).
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if !self.usable(now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// The hash the state keeps for `token`.
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh token: `kvf_` and 64 hex digits (256 random bits).
fn fresh_token() -> Result<zeroize::Zeroizing<String>, StateError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut())
        .map_err(|e| StateError::Io { path: "/dev/urandom".into(), source: std::io::Error::other(e.to_string()) })?;
    let mut s = zeroize::Zeroizing::new(String::from("kvf_"));
    for b in bytes.iter() {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    Ok(s)
}

const COLUMNS: &str = "name, role, namespaces, reveal, created_at, expires_at, revoked_at";

fn record(r: &Row<'_, '_>) -> Result<TokenRecord, DbError> {
    Ok(TokenRecord {
        name: r.text(0)?,
        role: r.text(1)?,
        namespaces: r.str(2)?.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        reveal: r.bool(3)?,
        created_at: r.i64(4)?,
        expires_at: r.opt_i64(5)?,
        revoked_at: r.opt_i64(6)?,
    })
}

impl StateStore {
    /// Record a new token and return it (the only time it exists in clear). A name in use
    /// by a token that is not revoked is refused; a revoked name is reused.
    pub fn create_token(&self, t: &TokenRecord) -> Result<zeroize::Zeroizing<String>, StateError> {
        let token = fresh_token()?;
        let p = self.path();
        let live = self
            .conn()
            .query_opt("SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL", vals![&t.name], |r| r.i64(0))
            .map_err(sql(p, "read tokens"))?;
        if live.is_some() {
            return Err(StateError::Invalid {
                what: "token name",
                value: t.name.clone(),
                reason: "a token with this name exists; revoke it first (`kvform token revoke NAME`)",
            });
        }
        let (hash, namespaces) = (token_hash(&token), t.namespaces.join(","));
        self.conn()
            .execute(
                "INSERT INTO api_tokens (name, hash, role, namespaces, reveal, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)
                 ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, role = excluded.role,
                    namespaces = excluded.namespaces, reveal = excluded.reveal, created_at = excluded.created_at,
                    expires_at = excluded.expires_at, revoked_at = NULL",
                vals![&t.name, &hash, &t.role, &namespaces, t.reveal, t.created_at, t.expires_at],
            )
            .map_err(sql(p, "write token"))?;
        Ok(token)
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StateError> {
        self.conn()
            .query_map(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY name"), &[], record)
            .map_err(sql(self.path(), "read tokens"))
    }

    /// The token whose hash is `hash`, if any (usable or not: the caller says why not).
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StateError> {
        self.conn()
            .query_opt(&format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = ?1"), vals![hash], record)
            .map_err(sql(self.path(), "read tokens"))
    }

    /// Revoke a token by name; `false` when there is no such live token.
    pub fn revoke_token(&self, name: &str, now: i64) -> Result<bool, StateError> {
        let n = self
            .conn()
            .execute("UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL", vals![name, now])
            .map_err(sql(self.path(), "revoke token"))?;
        Ok(n > 0)
    }
}
