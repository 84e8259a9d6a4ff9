//! The rules every key written from outside the workspace obeys — `kvform kv set` and hook
//! writes (`PUT /kv`, `PUT /kv/secret`) alike, so a key one door accepts the other does too.
//!
//! A key starts with a letter or digit and uses only letters, digits, `.`, `_`, `/`, `-`;
//! `/` separates segments, none of which is empty, `.` or `..` (a key is never a path that
//! climbs out of its namespace when a template or script uses it as one); at most
//! [`MAX_KEY_LEN`] bytes. A value is at most [`MAX_VALUE_LEN`] bytes.

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest value accepted, in bytes (the hook API's request body limit).
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// A refused key or value: `rule` names the rule, the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyRuleError {
    pub rule: &'static str,
    pub message: String,
}

/// The key as messages show it: long keys are cut (the whole key can be a megabyte).
fn shown(key: &str) -> String {
    const SHOWN: usize = 48;
    match key.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{:?}… ({} bytes)", &key[..at], key.len()),
        None => format!("{key:?}"),
    }
}

/// Check a key against the rules above.
pub fn check_key(key: &str) -> Result<(), KeyRuleError> {
    let err = |rule: &'static str, why: String| Err(KeyRuleError { rule, message: why });
    if key.len() > MAX_KEY_LEN {
        return err(
            "key-length",
            format!("key {} is longer than {MAX_KEY_LEN} bytes\n  help: use a shorter key", shown(key)),
        );
    }
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if !ok {
        return err(
            "key-characters",
            format!(
                "invalid key {}\n  help: a key starts with a letter or digit and uses only letters, digits, `.`, `_`, `/`, `-`",
                shown(key)
            ),
        );
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return err(
            "key-segments",
            format!(
                "invalid key {}: a `/`-separated part is empty, `.` or `..`\n  help: name the key without empty, `.` or `..` parts, e.g. `tls/cert`",
                shown(key)
            ),
        );
    }
    Ok(())
}

/// Check a value's length.
pub fn check_value(key: &str, value: &str) -> Result<(), KeyRuleError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(KeyRuleError {
            rule: "value-length",
            message: format!(
                "the value of {} is {} bytes, more than {MAX_VALUE_LEN}\n  help: store large data elsewhere and keep a reference here",
                shown(key),
                value.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "worker_ip", "tls/cert.pem", "A-1.b_c", &"k".repeat(MAX_KEY_LEN)] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        let rule = |k: &str| check_key(k).unwrap_err().rule;
        assert_eq!(rule(""), "key-characters");
        assert_eq!(rule("_a"), "key-characters");
        assert_eq!(rule("a b"), "key-characters");
        assert_eq!(rule("a/../../x"), "key-segments");
        assert_eq!(rule("a/./x"), "key-segments");
        assert_eq!(rule("a//x"), "key-segments");
        assert_eq!(rule("a/"), "key-segments");
        assert_eq!(rule(&"k".repeat(MAX_KEY_LEN + 1)), "key-length");
        let long = check_key(&"x".repeat(1_000_000)).unwrap_err().message;
        assert!(long.len() < 200, "the message does not echo a megabyte: {}", long.len());
        assert!(check_value("k", &"v".repeat(MAX_VALUE_LEN)).is_ok());
        assert_eq!(check_value("k", &"v".repeat(MAX_VALUE_LEN + 1)).unwrap_err().rule, "value-length");
    }
}
