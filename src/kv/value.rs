//! Values of the desired state ([`Value`]) and the formats written to the store: decimals
//! without exponents.
//!
//! Why [`Value`] is not a `String`: `<label>_peers` and `peer_workers` (SPEC §4) are "every
//! item of a list but one", so a fleet of n workers holds n of them, each n items long —
//! O(n²) bytes (1 GB for 10,000 workers). A [`Value`] can instead share the joined list and
//! name the one item cut out of it; the text is only materialised when it is written to the
//! store or rendered. Comparisons, length and `Display` work on the two pieces directly.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// One value of the desired state: an owned string, or a shared comma-joined list without
/// one of its items. Compares, prints and serialises as the text it stands for.
#[derive(Clone)]
pub struct Value(Repr);

#[derive(Clone)]
enum Repr {
    Owned(String),
    /// `list` without the bytes `cut.0..cut.1` (one item and one of its commas).
    Cut {
        list: Arc<str>,
        cut: (usize, usize),
    },
}

impl Value {
    /// A comma-joined `list` without the item at byte `start`, `len` bytes long (`only`:
    /// it is the list's only item): the same text as joining the other items with `,`.
    pub fn list_without(list: &Arc<str>, start: usize, len: usize, only: bool) -> Value {
        let end = start + len;
        let cut = if only {
            (0, list.len())
        } else if start == 0 {
            // The first item: drop it and the comma after it.
            (0, end + 1)
        } else {
            // Any other item: drop the comma before it.
            (start - 1, end)
        };
        Value(Repr::Cut { list: Arc::clone(list), cut })
    }

    /// The text as (at most) two pieces, in order.
    pub fn parts(&self) -> [&str; 2] {
        match &self.0 {
            Repr::Owned(s) => [s.as_str(), ""],
            Repr::Cut { list, cut } => [&list[..cut.0], &list[cut.1..]],
        }
    }

    /// The text with leading and trailing whitespace removed, as two pieces.
    pub fn trimmed_parts(&self) -> [&str; 2] {
        let [mut a, mut b] = self.parts();
        a = a.trim_start();
        if a.is_empty() {
            b = b.trim_start();
        }
        b = b.trim_end();
        if b.is_empty() {
            a = a.trim_end();
        }
        [a, b]
    }

    pub fn len(&self) -> usize {
        let [a, b] = self.parts();
        a.len() + b.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text; borrowed when the value is one piece.
    pub fn to_cow(&self) -> Cow<'_, str> {
        match self.parts() {
            [a, ""] => Cow::Borrowed(a),
            ["", b] => Cow::Borrowed(b),
            [a, b] => Cow::Owned([a, b].concat()),
        }
    }

    /// The trimmed text; borrowed when it is one piece.
    pub fn trimmed(&self) -> Cow<'_, str> {
        match self.trimmed_parts() {
            [a, ""] => Cow::Borrowed(a),
            ["", b] => Cow::Borrowed(b),
            [a, b] => Cow::Owned([a, b].concat()),
        }
    }

    /// The value trimmed, sharing the list when trimming changes nothing (the usual case).
    pub fn trimmed_value(&self) -> Value {
        let [a, b] = self.trimmed_parts();
        if a.len() + b.len() == self.len() { self.clone() } else { Value::from([a, b].concat()) }
    }

    /// Whether the trimmed text equals `other` trimmed (how the plan compares values),
    /// without materialising either.
    pub fn eq_trimmed(&self, other: &str) -> bool {
        let other = other.trim();
        let [a, b] = self.trimmed_parts();
        a.len() + b.len() == other.len()
            && other.as_bytes()[..a.len()] == *a.as_bytes()
            && other.as_bytes()[a.len()..] == *b.as_bytes()
    }

    /// Whether the text equals `other` exactly.
    fn eq_str(&self, other: &str) -> bool {
        let [a, b] = self.parts();
        a.len() + b.len() == other.len()
            && other.as_bytes()[..a.len()] == *a.as_bytes()
            && other.as_bytes()[a.len()..] == *b.as_bytes()
    }
}

impl Default for Value {
    fn default() -> Value {
        Value(Repr::Owned(String::new()))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value(Repr::Owned(s))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value(Repr::Owned(s.to_string()))
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value(Repr::Owned(s.clone()))
    }
}

impl From<Value> for String {
    fn from(v: Value) -> String {
        match v.0 {
            Repr::Owned(s) => s,
            Repr::Cut { .. } => v.to_cow().into_owned(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts() {
            [a, ""] => f.pad(a),
            [a, b] => {
                f.write_str(a)?;
                f.write_str(b)
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.to_cow(), f)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        let [a, b] = other.parts();
        if b.is_empty() { self.eq_str(a) } else { self.eq_str(&other.to_cow()) }
    }
}

impl Eq for Value {}

impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<String> for Value {
    fn eq(&self, other: &String) -> bool {
        self.eq_str(other)
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_cow())
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        String::deserialize(d).map(Value::from)
    }
}

impl schemars::JsonSchema for Value {
    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(g)
    }
    fn inline_schema() -> bool {
        true
    }
}

/// A number as the store writes it: integers without a fraction (`24576`), fractions
/// minimal (`1.5`), never in exponent form (SPEC §2).
pub fn decimal(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        return format!("{}", n as i128);
    }
    // Rust's `Display` for f64 never uses exponent form and prints the shortest
    // representation that round-trips.
    let s = format!("{n}");
    s
}

#[cfg(test)]
mod tests {
    use super::{Value, decimal};
    use std::sync::Arc;

    #[test]
    fn a_list_without_one_item_is_the_others_joined() {
        for items in [vec!["a"], vec!["a", "bb"], vec!["10.0.0.1", "10.0.0.22", "h", "10.0.0.4"]] {
            let list: Arc<str> = items.join(",").into();
            let mut start = 0;
            for (i, item) in items.iter().enumerate() {
                let v = Value::list_without(&list, start, item.len(), items.len() == 1);
                start += item.len() + 1;
                let others: Vec<&str> = items.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, s)| *s).collect();
                let want = others.join(",");
                assert_eq!(v.to_string(), want, "{items:?} without {i}");
                assert_eq!(v, want.as_str());
                assert_eq!(v.len(), want.len());
                assert!(v.eq_trimmed(&format!(" {want}\n")));
                assert_eq!(v, Value::from(want.clone()));
                assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&want).unwrap());
            }
        }
    }

    #[test]
    fn trimming_spans_both_pieces() {
        let list: Arc<str> = " a, ,b ".into();
        // " a, ,b " without " " (the middle item) is " a,b ".
        let v = Value::list_without(&list, 4, 1, false);
        assert_eq!(v.to_string(), " a,b ");
        assert_eq!(v.trimmed(), "a,b");
        assert!(v.eq_trimmed("a,b"));
        assert!(!v.eq_trimmed("a,c"));
        let spaces: Arc<str> = " , ".into();
        let v = Value::list_without(&spaces, 0, 1, false);
        assert_eq!(v.to_string(), " ");
        assert_eq!(v.trimmed(), "");
        assert!(v.eq_trimmed(""));
    }

    #[test]
    fn decimals_are_plain() {
        assert_eq!(decimal(24576.0), "24576");
        assert_eq!(decimal(1.5), "1.5");
        assert_eq!(decimal(0.1), "0.1");
        assert_eq!(decimal(-3.0), "-3");
        assert_eq!(decimal(1e20), "100000000000000000000");
        assert_eq!(decimal(2457.6), "2457.6");
    }
}
