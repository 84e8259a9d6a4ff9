//! The one write validation (SPEC §4): every door — `kvform kv set`, the hook API
//! (`PUT /kv`, `DELETE /kv`, the secret routes), `kvform serve`'s REST API and web UI — calls
//! [`check_write`] (or [`check_delete`]) before a write reaches the state, so a write one door
//! accepts every door accepts, and both backends can hold it.
//!
//! The rules, each named by a `rule` a client can match on:
//! - the key rules of [`super::keys`] (`key-length`, `key-characters`, `key-segments`);
//! - no NUL byte in the namespace, key, value or description (`nul-byte`): PostgreSQL's
//!   `text` cannot hold one, so a value SQLite stored would be lost on `state migrate`;
//! - a value of at most [`super::keys::MAX_VALUE_LEN`] bytes (`value-length`), a description of at most
//!   [`MAX_DESCRIPTION_LEN`] bytes (`description-length`);
//! - a ttl of at most [`MAX_TTL`] seconds, 100 years (`ttl-range`): `created_at + ttl`
//!   then never overflows a signed 64-bit second count and always fits a PostgreSQL `BIGINT`
//!   (a ttl of 2^63 or more wrapped to a negative number and failed the state's CHECK);
//! - a value that fits its type (`value-type`, [`KvType::validate_for`]).
//!
//! A plain, pure function of `(namespace, key, value, type, ttl, description)`: no state,
//! no clock, so the operations layer can call it first whatever the door.

use super::KvType;
use super::keys::{KeyRuleError, check_key, check_value};

/// Longest ttl accepted: 100 years of 365 days, in seconds (3,153,600,000).
pub const MAX_TTL: u64 = 100 * 365 * 24 * 60 * 60;
/// Longest description accepted, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// A write the rules refuse: `rule` names the rule, the message says what and (after
/// `\n  help: `) what to do. Never quotes a value.
pub type WriteRuleError = KeyRuleError;

fn refuse(rule: &'static str, message: String) -> Result<(), WriteRuleError> {
    Err(KeyRuleError { rule, message })
}

/// `true` when every backend can store `text` (no NUL byte).
pub fn storable(text: &str) -> bool {
    !text.as_bytes().contains(&0)
}

fn no_nul(what: &str, ns: &str, key: &str, text: &str) -> Result<(), WriteRuleError> {
    if storable(text) {
        return Ok(());
    }
    refuse(
        "nul-byte",
        format!(
            "{what} of {ns} {key} contains a NUL byte (\\0), which the state cannot store\n  help: remove it, or encode binary data (e.g. base64) before writing it"
        ),
    )
}

/// The ttl rule alone (`--ttl` is checked before anything else is read).
pub fn check_ttl(ttl: u64) -> Result<(), WriteRuleError> {
    if ttl <= MAX_TTL {
        return Ok(());
    }
    refuse(
        "ttl-range",
        format!(
            "ttl {ttl} is more than {MAX_TTL} seconds (100 years)\n  help: use a ttl between 0 (never expires) and 100 years, e.g. 3600, 1h or P30D"
        ),
    )
}

/// A key the namespace or key rules refuse, for a delete (which has no value).
pub fn check_delete(ns: &str, key: &str) -> Result<(), WriteRuleError> {
    if !storable(ns) {
        return refuse("nul-byte", "the namespace contains a NUL byte (\\0)\n  help: remove it".to_string());
    }
    check_key(key)
}

/// Every rule above for a write of `value` (as sent; the state trims it) to `ns`/`key`.
pub fn check_write(
    ns: &str,
    key: &str,
    value: &str,
    kv_type: KvType,
    ttl: u64,
    description: &str,
) -> Result<(), WriteRuleError> {
    check_delete(ns, key)?;
    check_value(key, value)?;
    no_nul("the value", ns, key, value)?;
    if description.len() > MAX_DESCRIPTION_LEN {
        return refuse(
            "description-length",
            format!(
                "the description of {ns} {key} is {} bytes, more than {MAX_DESCRIPTION_LEN}\n  help: shorten the description",
                description.len()
            ),
        );
    }
    no_nul("the description", ns, key, description)?;
    check_ttl(ttl)?;
    kv_type.validate_for(ns, key, value.trim()).or_else(|e| {
        refuse(
            "value-type",
            format!("{ns} {key}: {e}\n  help: write a value of that type, or pick another type ({})", KvType::names()),
        )
    })
}

/// What the state itself re-checks on every write, whoever calls it (the workspace's
/// values included): the rules both backends need to store a row at all.
pub fn check_storable(ns: &str, key: &str, value: &str, ttl: u64, description: &str) -> Result<(), WriteRuleError> {
    no_nul("the value", ns, key, value)?;
    no_nul("the description", ns, key, description)?;
    check_ttl(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::keys::MAX_VALUE_LEN;

    fn rule(r: Result<(), WriteRuleError>) -> &'static str {
        r.unwrap_err().rule
    }

    #[test]
    fn one_rule_set_for_every_door() {
        let ok = |v: &str, ttl| check_write("vars/job/api", "k", v, KvType::String, ttl, "");
        assert_eq!(ok("v", 0), Ok(()));
        assert_eq!(ok("v", MAX_TTL), Ok(()));
        assert_eq!(rule(ok("a\0b", 0)), "nul-byte");
        assert_eq!(rule(ok("v", MAX_TTL + 1)), "ttl-range");
        assert_eq!(rule(ok("v", 1 << 63)), "ttl-range");
        assert_eq!(rule(ok("v", u64::MAX)), "ttl-range");
        assert_eq!(rule(ok(&"v".repeat(MAX_VALUE_LEN + 1), 0)), "value-length");
        assert_eq!(rule(check_write("vars/job/api", "k", "v", KvType::String, 0, "a\0")), "nul-byte");
        let long = "d".repeat(MAX_DESCRIPTION_LEN + 1);
        assert_eq!(rule(check_write("vars/job/api", "k", "v", KvType::String, 0, &long)), "description-length");
        assert_eq!(rule(check_write("vars/job/api", "k", "x", KvType::Number, 0, "")), "value-type");
        assert_eq!(rule(check_write("vars/job/api", "a\0", "v", KvType::String, 0, "")), "key-characters");
        assert_eq!(rule(check_write("vars/job/a\0", "k", "v", KvType::String, 0, "")), "nul-byte");
        assert_eq!(rule(check_delete("vars/job/api", "a/../x")), "key-segments");
        // created_at + ttl stays far inside i64 for any time this century and the next.
        assert!(4_102_444_800i64.checked_add(MAX_TTL as i64).is_some());
        // A secret's value is never quoted.
        let e = check_write("secrets/job/api", "pw", "hunter2\0", KvType::String, 0, "").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        let e = check_write("secrets/job/api", "pw", "hunter2", KvType::Number, 0, "").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
