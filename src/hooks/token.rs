//! Hook tokens: one random bearer token per running hook, bound to who the hook is.
//!
//! A token is issued when a hook process starts and revoked when it exits, so a leaked
//! `KVFORM_TOKEN` is useless after the hook ends. The registry keys tokens by their
//! SHA-256 digest: lookups never compare the secret itself byte by byte, and the table
//! holds nothing that could be replayed if dumped.
//!
//! Each live token also carries the secret plaintexts its hook has seen through the API
//! ([`SeenSecrets`]), so the runner can redact them from the hook's output; they are
//! zeroed when the token is revoked.

use super::redact::SeenSecrets;
use crate::ops::Actor;
use crate::workspace::types::Event;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Who a running hook is: the allocation, and which command for which event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HookIdentity {
    pub alloc_id: Uuid,
    pub job: String,
    pub host: String,
    pub event: Event,
    pub command: String,
}

impl HookIdentity {
    /// Who this hook's writes are by: `<job>:<allocation>/<event>/<command>`, the allocation
    /// named as maand names it, by its worker's address.
    pub fn actor(&self) -> Actor {
        Actor::hook(&self.job, &self.host, self.event, &self.command)
    }
    /// `<job>/<command>@<host>`, the prefix of its log lines.
    pub fn label(&self) -> String {
        format!("{}/{}@{}", self.job, self.command, self.host)
    }
}

/// A bearer token (64 hex characters from 32 random bytes). Zeroed on drop.
#[derive(Clone)]
pub struct HookToken(Zeroizing<String>);

impl HookToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HookToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookToken(..)")
    }
}

/// A registry-internal handle for a live token (its digest), used to key semaphore holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; 32]);

fn digest(token: &str) -> TokenId {
    TokenId(Sha256::digest(token.as_bytes()).into())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot generate a hook token: the OS random source failed: {0}")]
pub struct TokenError(String);

/// One live token: whose it is and which secrets it has seen.
#[derive(Debug)]
struct Live {
    identity: HookIdentity,
    seen: SeenSecrets,
}

/// Live tokens.
#[derive(Debug, Default)]
pub struct TokenRegistry {
    live: HashMap<TokenId, Live>,
}

impl TokenRegistry {
    /// Issue a fresh token for a hook that is about to start.
    pub fn issue(&mut self, identity: HookIdentity) -> Result<(HookToken, TokenId), TokenError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| TokenError(e.to_string()))?;
        let mut hex = Zeroizing::new(String::with_capacity(64));
        for b in bytes.iter() {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
        }
        let id = digest(&hex);
        self.live.insert(id, Live { identity, seen: SeenSecrets::new() });
        Ok((HookToken(hex), id))
    }

    /// Forget a token; later requests carrying it get 401. Returns its id and the secrets
    /// its hook saw if it was live (the caller's last chance to redact with them).
    pub fn revoke(&mut self, token: &HookToken) -> Option<(TokenId, SeenSecrets)> {
        let id = digest(token.as_str());
        self.live.remove(&id).map(|l| (id, l.seen))
    }

    /// The hook a presented bearer token belongs to.
    pub fn lookup(&self, presented: &str) -> Option<(TokenId, &HookIdentity)> {
        let id = digest(presented);
        self.live.get(&id).map(|l| (id, &l.identity))
    }

    /// Remember a secret plaintext served to or received from the hook of `id` (no-op for
    /// a token revoked meanwhile: its hook has exited and prints nothing more).
    pub fn remember_secret(&mut self, id: TokenId, plaintext: &str) {
        if let Some(l) = self.live.get_mut(&id) {
            l.seen.register(plaintext);
        }
    }

    /// `line` with the secrets the token's hook has seen so far redacted.
    pub fn redact(&self, token: &HookToken, line: &str) -> String {
        match self.live.get(&digest(token.as_str())) {
            Some(l) if !l.seen.is_empty() => l.seen.redact(line),
            _ => line.to_string(),
        }
    }

    /// Whether a token id is still live.
    pub fn is_live(&self, id: TokenId) -> bool {
        self.live.contains_key(&id)
    }

    /// The running hook with this allocation, event and command (the fixed-port header form).
    pub fn find_running(&self, alloc_id: Uuid, event: Event, command: &str) -> Option<(TokenId, &HookIdentity)> {
        let mut found: Vec<_> = self
            .live
            .iter()
            .map(|(id, l)| (id, &l.identity))
            .filter(|(_, i)| i.alloc_id == alloc_id && i.event == event && i.command == command)
            .collect();
        // Deterministic pick if the same hook somehow runs twice at once.
        found.sort_by_key(|(id, _)| **id);
        found.first().map(|(id, i)| (**id, *i))
    }
}
