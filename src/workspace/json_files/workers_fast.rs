//! The quick path for a clean `workers.json`: serde_json instead of the positioned AST.
//!
//! A 10,000-worker file was most of a no-op plan: jsonc-parser builds a node (and a
//! vector) per value, and kvform then walks them. Most files have nothing to report, so
//! this path reads them with serde_json's borrowed types and only *accepts*: at the first
//! thing [`super::workers`] would report (or warn about), or anything it is not sure of,
//! it returns `None` and the file is read again by the positioned path, which produces the
//! diagnostics. It never reports anything itself, so the messages have one source.
//!
//! The positions a [`Worker`] keeps (its object's span) come from where serde_json's
//! borrowed [`RawValue`] lies in the text. `same_as_the_positioned_path` (tests) checks
//! that both paths give the same workers for every accepted file.

use super::workers::{WORKER_LABEL, bad_name_char};
use crate::diag::{FileId, Span};
use crate::workspace::types::Worker;
use crate::workspace::units::{self, Quantity};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

/// One worker object as written. Fields are raw so that `null` is not taken for absent
/// (serde's `Option` would); each is then read with the positioned path's rules.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<'a> {
    #[serde(borrow)]
    host: &'a RawValue,
    #[serde(borrow, default, deserialize_with = "present")]
    hostname: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    labels: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    memory: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    cpu: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    tags: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    position: Option<&'a RawValue>,
}

/// A field that is written, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The workers of a file the positioned path would accept without a word; `None` for
/// anything else.
pub fn load(file: FileId, text: &str) -> Option<Vec<Worker>> {
    let elements: Vec<&RawValue> = serde_json::from_str(text).ok()?;
    let mut hosts: HashSet<&str> = HashSet::with_capacity(elements.len());
    let mut workers = Vec::with_capacity(elements.len());
    for (index, el) in elements.iter().enumerate() {
        let raw: Raw = serde_json::from_str(el.get()).ok()?;
        let start = el.get().as_ptr() as usize - text.as_ptr() as usize;
        let w = worker(raw, index, Span::new(file, start..start + el.get().len()))?;
        workers.push(w);
    }
    for w in &workers {
        if !hosts.insert(w.host.as_str()) {
            return None;
        }
    }
    Some(workers)
}

fn worker(raw: Raw, index: usize, span: Span) -> Option<Worker> {
    let mut labels = match raw.labels {
        Some(v) => labels(v)?,
        None => Vec::new(),
    };
    if !labels.iter().any(|l| l == WORKER_LABEL) {
        labels.push(WORKER_LABEL.to_string());
    }
    Some(Worker {
        host: name(raw.host)?,
        hostname: optional(raw.hostname, nonempty)?,
        labels,
        memory_mb: optional(raw.memory, |v| quantity(v, Quantity::Memory))?,
        cpu_mhz: optional(raw.cpu, |v| quantity(v, Quantity::Cpu))?,
        tags: match raw.tags {
            Some(v) => tags(v)?,
            None => BTreeMap::new(),
        },
        position: optional(raw.position, |v| v.get().parse::<i64>().ok())?,
        index,
        span,
    })
}

/// An optional field read with `read`: `Some(None)` when it is not written, `None` when
/// what is written is not accepted.
fn optional<T>(v: Option<&RawValue>, read: impl FnOnce(&RawValue) -> Option<T>) -> Option<Option<T>> {
    match v {
        Some(v) => read(v).map(Some),
        None => Some(None),
    }
}

/// A string, trimmed, not empty.
fn nonempty(v: &RawValue) -> Option<String> {
    let s: Cow<str> = serde_json::from_str(v.get()).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A host or label: [`nonempty`] without the characters a namespace path cannot hold.
fn name(v: &RawValue) -> Option<String> {
    nonempty(v).filter(|s| bad_name_char(s).is_none())
}

fn labels(v: &RawValue) -> Option<Vec<String>> {
    let items: Vec<&RawValue> = serde_json::from_str(v.get()).ok()?;
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len() + 1);
    for item in items {
        let label = name(item)?.to_lowercase();
        if !seen.insert(label.clone()) {
            return None;
        }
        out.push(label);
    }
    Some(out)
}

/// A quantity: a string with an optional unit, or a bare number (its text as written, as
/// the positioned path passes it).
fn quantity(v: &RawValue, q: Quantity) -> Option<f64> {
    let text = v.get();
    match text.as_bytes().first()? {
        b'"' => units::parse(q, &serde_json::from_str::<Cow<str>>(text).ok()?).ok(),
        b'-' | b'0'..=b'9' => units::from_number(q, text, text.parse::<f64>().ok()?).ok(),
        _ => None,
    }
}

/// Tag names and values trimmed; a repeated name (as written or after trimming) is left to
/// the positioned path.
fn tags(v: &RawValue) -> Option<BTreeMap<String, String>> {
    let pairs: Pairs = serde_json::from_str(v.get()).ok()?;
    let mut out = BTreeMap::new();
    for (key, value) in pairs.0 {
        let key = key.trim();
        if key.is_empty() || out.insert(key.to_string(), value.trim().to_string()).is_some() {
            return None;
        }
    }
    Some(out)
}

/// An object's members in order, repeats kept (a map would keep one silently).
struct Pairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Pairs<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
                    out.push(pair);
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::workers::positioned;
    use crate::diag::Diagnostics;

    /// Both paths on `text`: the quick one must accept exactly what the positioned one reads
    /// without a diagnostic, and give the same workers (spans included).
    fn agree(text: &str) -> bool {
        let mut diags = Diagnostics::default();
        let slow = positioned(0, text, &mut diags);
        let fast = super::load(0, text);
        if diags.is_empty() {
            assert_eq!(fast.as_ref(), Some(&slow), "the quick path must read this clean file the same way:\n{text}");
        } else {
            assert!(fast.is_none(), "the quick path accepted a file the positioned path reports:\n{text}");
        }
        fast.is_some()
    }

    #[test]
    fn same_as_the_positioned_path() {
        let clean = [
            "[]",
            " \n[ ]\n",
            r#"[{"host": "10.0.0.1"}]"#,
            "[\n  {\"host\": \" 10.0.0.1 \", \"hostname\": \" api-1 \", \"labels\": [\" API \", \"Worker\", \"edge\"],\n   \"memory\": \"4 GB\", \"cpu\": \"2.4 ghz\", \"tags\": {\" rack \": \" R1 \", \"az\": \"\"}, \"position\": -7},\n\t{ \"host\":\"10.0.0.2\",\"memory\":512,\"cpu\":1500.5e0, \"labels\": [] }\n]",
            r#"[{"host": "h\u00e9\"x", "tags": {"k\n": "v"}, "position": 0}, {"host": "b", "memory": 0}]"#,
        ];
        for text in clean {
            assert!(agree(text), "a clean file must take the quick path:\n{text}");
        }
        let reported = [
            "",
            "{}",
            "[1]",
            "[{}]",
            r#"[{"host": null}]"#,
            r#"[{"host": "a", "hostname": null}]"#,
            r#"[{"host": "a", "labels": null}]"#,
            r#"[{"host": "a", "position": null}]"#,
            r#"[{"host": "a", "tags": null}]"#,
            r#"[{"host": "a", "memory": null}]"#,
            r#"[{"host": "  "}]"#,
            r#"[{"host": "a/b"}]"#,
            r#"[{"host": "a b"}]"#,
            r#"[{"host": "a", "hostname": " "}]"#,
            r#"[{"host": "a", "host": "b"}]"#,
            r#"[{"host": "a", "extra": 1}]"#,
            r#"[{"host": "a", "labels": ["x", "X"]}]"#,
            r#"[{"host": "a", "labels": ["worker", "worker"]}]"#,
            r#"[{"host": "a", "labels": [""]}]"#,
            r#"[{"host": "a", "labels": ["a/b"]}]"#,
            r#"[{"host": "a", "labels": "api"}]"#,
            r#"[{"host": "a", "labels": [1]}]"#,
            r#"[{"host": "a", "memory": "4 parsecs"}]"#,
            r#"[{"host": "a", "memory": -1}]"#,
            r#"[{"host": "a", "cpu": true}]"#,
            r#"[{"host": "a", "cpu": "1e400"}]"#,
            r#"[{"host": "a", "memory": 1e400}]"#,
            r#"[{"host": "a", "position": 1.5}]"#,
            r#"[{"host": "a", "position": "1"}]"#,
            r#"[{"host": "a", "position": 1e3}]"#,
            r#"[{"host": "a", "position": 99999999999999999999}]"#,
            r#"[{"host": "a", "tags": {"k": 1}}]"#,
            r#"[{"host": "a", "tags": {" ": "v"}}]"#,
            r#"[{"host": "a", "tags": {"k": "v", "k": "w"}}]"#,
            r#"[{"host": "a", "tags": {"k": "v", " k ": "w"}}]"#,
            r#"[{"host": "a", "tags": []}]"#,
            r#"[{"host": "a"}, {"host": " a "}]"#,
            r#"[{"host": "a"},]"#,
            "[{\"host\": \"a\"} // note\n]",
            r#"[{"host": "a"}] x"#,
            "[{\"host\": \"a\tb\"}]",
            r#"[{"host": "\ud800"}]"#,
        ];
        for text in reported {
            assert!(!agree(text), "the positioned path must read this one:\n{text}");
        }
    }

    /// Every `workers.json` the golden corpus holds reads the same both ways.
    #[test]
    fn the_corpus_reads_the_same_both_ways() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("testdata"), root.join("examples")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.file_name().is_some_and(|n| n == "workers.json") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() > 100, "found only {} workers.json files", files.len());
        let quick = files.iter().filter(|p| agree(&std::fs::read_to_string(p).unwrap())).count();
        assert!(quick > files.len() / 2, "only {quick} of {} corpus files took the quick path", files.len());
    }
}
