//! Value types (SPEC §9, Kestra's seven): every version row says how its value is meant to
//! be read, and a typed write is validated before anything is written.
//!
//! The value itself stays the trimmed string it always was (hooks, templates and plans read
//! strings); the type is metadata next to it. [`KvType::ALL`] is the one table of types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// namespace -> key -> type, for the keys that are not `string` (sparse: most keys are).
pub type KvTypes = BTreeMap<String, BTreeMap<String, KvType>>;

/// The type of `ns`/`key` in a sparse [`KvTypes`].
pub fn type_of(types: &KvTypes, ns: &str, key: &str) -> KvType {
    types.get(ns).and_then(|m| m.get(key)).copied().unwrap_or_default()
}

/// How a value is meant to be read.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    #[default]
    String,
    /// A JSON number (`42`, `-1.5`, `1e3`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// An RFC 3339 timestamp with an offset (`2026-12-01T21:00:00Z`).
    Datetime,
    /// A calendar date (`2026-12-01`).
    Date,
    /// An ISO 8601 duration (`PT1H30M`, `P30D`).
    Duration,
    /// Any JSON document (lists and objects from HCL are stored as JSON).
    Json,
}

/// A value that does not fit its type (the message says what would).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind}: {expect}")]
pub struct TypeError {
    pub kind: KvType,
    pub value: String,
    pub expect: &'static str,
}

impl KvType {
    pub fn is_string(&self) -> bool {
        *self == KvType::String
    }

    /// Every type with its name and what a valid value looks like (used by `--help`, the
    /// OpenAPI document and error messages).
    pub const ALL: [(KvType, &'static str, &'static str); 7] = [
        (KvType::String, "string", "any text"),
        (KvType::Number, "number", "a JSON number such as 42 or -1.5"),
        (KvType::Boolean, "boolean", "true or false"),
        (KvType::Datetime, "datetime", "an RFC 3339 timestamp such as 2026-12-01T21:00:00Z"),
        (KvType::Date, "date", "a date such as 2026-12-01"),
        (KvType::Duration, "duration", "an ISO 8601 duration such as PT1H30M or P30D"),
        (KvType::Json, "json", "a JSON document such as [\"a\",\"b\"] or {\"k\":1}"),
    ];

    pub fn as_str(self) -> &'static str {
        KvType::ALL.iter().find(|(t, _, _)| *t == self).map_or("string", |(_, n, _)| n)
    }

    fn expect(self) -> &'static str {
        KvType::ALL.iter().find(|(t, _, _)| *t == self).map_or("", |(_, _, e)| e)
    }

    /// The type named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<KvType> {
        KvType::ALL.iter().find(|(_, n, _)| n.eq_ignore_ascii_case(name.trim())).map(|(t, _, _)| *t)
    }

    /// The names, comma-joined, for "expected one of" messages.
    pub fn names() -> String {
        KvType::ALL.iter().map(|(_, n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// Check that `value` (already trimmed) is a valid value of this type.
    pub fn validate(self, value: &str) -> Result<(), TypeError> {
        let ok = match self {
            KvType::String => true,
            KvType::Number => serde_json::from_str::<serde_json::Number>(value).is_ok(),
            KvType::Boolean => matches!(value, "true" | "false"),
            KvType::Datetime => value.parse::<jiff::Timestamp>().is_ok(),
            KvType::Date => value.len() == 10 && value.parse::<jiff::civil::Date>().is_ok(),
            KvType::Duration => value.starts_with(['P', 'p', '-', '+']) && value.parse::<jiff::Span>().is_ok(),
            KvType::Json => serde_json::from_str::<serde_json::Value>(value).is_ok(),
        };
        if ok { Ok(()) } else { Err(TypeError { kind: self, value: value.to_string(), expect: self.expect() }) }
    }

    /// [`Self::validate`] for a write of `ns`/`key`: a secret's error does not quote the
    /// value, because the error ends up in terminals, HTTP responses and logs.
    pub fn validate_for(self, ns: &str, key: &str, value: &str) -> Result<(), TypeError> {
        self.validate(value).map_err(|mut e| {
            if super::is_secret_key(ns, key) {
                e.value = "(sensitive)".to_string();
            }
            e
        })
    }
}

impl std::fmt::Display for KvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The metadata a writer sets along with a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Typed {
    pub kv_type: KvType,
    pub description: String,
}

impl Typed {
    pub fn new(kv_type: KvType, description: &str) -> Typed {
        Typed { kv_type, description: description.trim().to_string() }
    }
}

/// Metadata of a key's latest row, beside its [`super::Entry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyMeta {
    #[serde(rename = "type")]
    pub kv_type: KvType,
    pub description: String,
    /// Unix seconds of the key's first version (kept when older versions are trimmed).
    pub key_created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_accepts_its_values_and_refuses_others() {
        let cases: &[(KvType, &[&str], &[&str])] = &[
            (KvType::String, &["", "abc", "1"], &[]),
            (KvType::Number, &["42", "-1.5", "1e3", "0"], &["abc", "1,5", "", "NaN", "0x10"]),
            (KvType::Boolean, &["true", "false"], &["TRUE", "yes", "1", ""]),
            (KvType::Datetime, &["2026-12-01T21:00:00Z", "2026-12-01T21:00:00+02:00"], &["2026-12-01", "now"]),
            (KvType::Date, &["2026-12-01"], &["2026-13-01", "2026-12-01T00:00:00Z", "1 dec"]),
            (KvType::Duration, &["PT1H30M", "P30D", "P1Y2M"], &["1h", "30", "P", ""]),
            (KvType::Json, &["[1,2]", "{\"a\":1}", "\"s\"", "3"], &["[1,", "{a:1}", ""]),
        ];
        for (t, good, bad) in cases {
            for v in *good {
                assert_eq!(t.validate(v), Ok(()), "{t} {v:?}");
            }
            for v in *bad {
                assert!(t.validate(v).is_err(), "{t} accepted {v:?}");
            }
        }
        let e = KvType::Number.validate("abc").unwrap_err();
        assert_eq!(e.to_string(), "\"abc\" is not a number: a JSON number such as 42 or -1.5");
        let e = KvType::Number.validate_for("secrets/job/api", "pw", "hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(KvType::Number.validate_for("vars/job/api", "n", "abc").unwrap_err().to_string().contains("abc"));
    }

    #[test]
    fn names_round_trip() {
        for (t, name, _) in KvType::ALL {
            assert_eq!(KvType::parse(name), Some(t));
            assert_eq!(t.as_str(), name);
        }
        assert_eq!(KvType::parse("NUMBER"), Some(KvType::Number));
        assert_eq!(KvType::parse("int"), None);
    }
}
