//! Who may do what through `kvform serve` — SPEC §9 as ONE table, [`ROLE_RULES`], plus the
//! key rules every writer obeys ([`crate::kv::rules`]: writes only where `kv set` may).
//!
//! A denial names the rule that denied it (403 `{"error", "rule", "hint"}`).

use crate::kv::rules;
use crate::state::tokens::TokenRecord;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read keys, history, applies, the plan, metrics.
    Read,
    /// Write or delete a key.
    Write,
    /// See sensitive plaintext (also needs the token's `--reveal`): every key for which
    /// [`crate::kv::is_secret_key`] holds — `secrets/*` and certificate private keys
    /// (`certs/<name>.key` in `maand/job/<job>/worker/<host>`). Not namespace-scoped:
    /// `--namespaces` limits writes only, and a reader may read every namespace.
    Reveal,
    /// List, create and revoke API tokens (`/api/v1/tokens`).
    ManageTokens,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Reveal => "see secrets",
            Action::ManageTokens => "manage tokens",
        }
    }
}

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    Writer,
    Admin,
}

/// role -> the actions it grants. Everything not listed is denied.
pub const ROLE_RULES: &[(Role, &str, &[Action])] = &[
    (Role::Reader, "reader", &[Action::Read, Action::Reveal]),
    (Role::Writer, "writer", &[Action::Read, Action::Reveal, Action::Write]),
    (Role::Admin, "admin", &[Action::Read, Action::Reveal, Action::Write, Action::ManageTokens]),
];

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        ROLE_RULES.iter().find(|(_, n, _)| *n == s).map(|(r, _, _)| *r)
    }
    pub fn as_str(self) -> &'static str {
        ROLE_RULES.iter().find(|(r, _, _)| *r == self).map_or("reader", |(_, n, _)| n)
    }
    fn grants(self, a: Action) -> bool {
        ROLE_RULES.iter().any(|(r, _, acts)| *r == self && acts.contains(&a))
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub message: String,
    pub hint: String,
}

/// `pattern` matches `ns` segment by segment; `*` matches one whole segment, a trailing
/// `*` also matches deeper ones (`vars/job/*` matches `vars/job/api`).
pub fn pattern_matches(pattern: &str, ns: &str) -> bool {
    let (p, n): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), ns.split('/').collect());
    if p.last() == Some(&"*") && n.len() >= p.len() {
        return p.iter().zip(&n).all(|(a, b)| *a == "*" || a == b);
    }
    p.len() == n.len() && p.iter().zip(&n).all(|(a, b)| *a == "*" || a == b)
}

/// May `token` do `action` on `ns`?
pub fn check(token: &TokenRecord, action: Action, ns: &str) -> Result<(), Denial> {
    let role = Role::parse(&token.role).unwrap_or(Role::Reader);
    let name = &token.name;
    if !role.grants(action) {
        return Err(Denial {
            rule: "role",
            message: format!("token `{name}` has role {}, which cannot {}", role.as_str(), action.verb()),
            hint: match action {
                Action::ManageTokens => "use an admin token: kvform token create NAME --role admin".into(),
                _ => "create a writer token: kvform token create NAME --role writer --namespaces 'vars/job/*'".into(),
            },
        });
    }
    match action {
        Action::Read | Action::ManageTokens => Ok(()),
        Action::Reveal if token.reveal => Ok(()),
        Action::Reveal => Err(Denial {
            rule: "reveal",
            message: format!("token `{name}` may not see secret values or certificate private keys"),
            hint: "create a token with --reveal to read secrets and certificate private keys".into(),
        }),
        Action::Write => {
            if let Err(e) = rules::writable(ns) {
                let message = e.to_string();
                let (message, hint) = message.split_once("\n  help: ").unwrap_or((&message, ""));
                return Err(Denial { rule: "kv-set-namespaces", message: message.into(), hint: hint.into() });
            }
            if !token.namespaces.is_empty() && !token.namespaces.iter().any(|p| pattern_matches(p, ns)) {
                return Err(Denial {
                    rule: "token-namespaces",
                    message: format!("token `{name}` may write only {}, not {ns}", token.namespaces.join(", ")),
                    hint: "use a token whose --namespaces cover this namespace".into(),
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(role: &str, ns: &[&str], reveal: bool) -> TokenRecord {
        TokenRecord {
            name: "t".into(),
            role: role.into(),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            reveal,
            created_at: 0,
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn the_table_decides() {
        let r = token("reader", &[], false);
        assert!(check(&r, Action::Read, "maand/bucket").is_ok());
        assert_eq!(check(&r, Action::Write, "vars/job/api").unwrap_err().rule, "role");
        assert_eq!(check(&r, Action::Reveal, "secrets/job/api").unwrap_err().rule, "reveal");
        let w = token("writer", &["vars/job/api", "secrets/job/*"], true);
        assert!(check(&w, Action::Write, "vars/job/api").is_ok());
        assert!(check(&w, Action::Write, "secrets/job/db").is_ok());
        assert_eq!(check(&w, Action::Write, "vars/job/db").unwrap_err().rule, "token-namespaces");
        assert_eq!(check(&w, Action::Write, "maand/job/api").unwrap_err().rule, "kv-set-namespaces");
        assert!(check(&w, Action::Reveal, "secrets/job/api").is_ok());
        assert!(check(&token("admin", &[], false), Action::Write, "vars/job/x").is_ok());
        assert!(check(&token("admin", &[], false), Action::ManageTokens, "").is_ok());
        assert_eq!(check(&w, Action::ManageTokens, "").unwrap_err().rule, "role");
    }

    #[test]
    fn patterns_match_whole_segments() {
        assert!(pattern_matches("vars/job/*", "vars/job/api"));
        assert!(pattern_matches("vars/job/api", "vars/job/api"));
        assert!(!pattern_matches("vars/job/api", "vars/job/api2"));
        assert!(!pattern_matches("vars/job/a*", "vars/job/api"));
        assert!(!pattern_matches("vars/*", "secrets/job/api"));
    }
}
