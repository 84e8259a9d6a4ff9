//! Keeping secret plaintext out of hook output (SPEC §4 Secrets: plaintext never appears in
//! logs). A hook that reads a secret through the API and prints it would otherwise leave
//! the plaintext in `logs/<serial>/…` and in the failure report. The API remembers, per
//! hook token, every secret plaintext it served or received ([`SeenSecrets`]); the runner
//! passes every captured line through [`SeenSecrets::redact`] before it is logged or kept.
//!
//! Decisions:
//! - Values of at least [`MIN_SUBSTRING_CHARS`] characters are replaced wherever they
//!   occur. Shorter ones (`"no"`, `"42"`) would otherwise turn every `no`/`42` in the output
//!   into `(sensitive)`; they are replaced only where they stand as a whole token, i.e.
//!   not next to a letter, digit or `_` (`pin=42` is redacted, `port 4242` is not).
//! - A multi-line value cannot occur on one captured line, so each of its non-blank lines
//!   is registered on its own (same length rule).
//! - The JSON-escaped form of a value (quotes, backslashes, control characters) is
//!   registered too, so a hook that prints `json.dumps(...)` of the secret is covered.
//! - Overlapping matches of different values merge into one `(sensitive)`, so a value
//!   that contains another is not left half visible.
//! - This is best effort against accidental leaks, not against a hook that encodes the
//!   value (base64, reversed, split across lines) on purpose.

use std::ops::Range;
use zeroize::Zeroizing;

/// What a redacted value is replaced with: the marker listings use for secrets.
pub const REDACTED: &str = "(sensitive)";

/// Values shorter than this (in characters) are redacted only as a whole token.
pub const MIN_SUBSTRING_CHARS: usize = 4;

/// The secret plaintexts one hook has seen through the API. Zeroed on drop.
#[derive(Default)]
pub struct SeenSecrets {
    /// Distinct forms to look for, longest first.
    forms: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for SeenSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeenSecrets({} forms)", self.forms.len())
    }
}

impl SeenSecrets {
    pub fn new() -> SeenSecrets {
        SeenSecrets::default()
    }

    /// Remember a plaintext the hook read or wrote.
    pub fn register(&mut self, plaintext: &str) {
        self.add(plaintext.trim());
        if plaintext.contains(['\n', '\r']) {
            for line in plaintext.lines() {
                self.add(line.trim());
            }
        }
        let json = Zeroizing::new(serde_json::Value::from(plaintext.trim()).to_string());
        if let Some(inner) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
            self.add(inner);
        }
    }

    fn add(&mut self, form: &str) {
        if form.is_empty() || self.forms.iter().any(|f| f.as_str() == form) {
            return;
        }
        let at = self.forms.partition_point(|f| f.len() >= form.len());
        self.forms.insert(at, Zeroizing::new(form.to_string()));
    }

    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `line` with every occurrence of a seen value replaced by [`REDACTED`].
    pub fn redact(&self, line: &str) -> String {
        let mut hits: Vec<Range<usize>> = Vec::new();
        for form in &self.forms {
            let whole_token_only = form.chars().count() < MIN_SUBSTRING_CHARS;
            for (at, m) in line.match_indices(form.as_str()) {
                let r = at..at + m.len();
                if !whole_token_only || stands_alone(line, &r) {
                    hits.push(r);
                }
            }
        }
        if hits.is_empty() {
            return line.to_string();
        }
        hits.sort_by_key(|r| (r.start, r.end));
        let mut out = String::with_capacity(line.len());
        let mut done = 0;
        let mut i = 0;
        while i < hits.len() {
            let start = hits[i].start;
            let mut end = hits[i].end;
            i += 1;
            while i < hits.len() && hits[i].start < end {
                end = end.max(hits[i].end);
                i += 1;
            }
            out.push_str(&line[done..start]);
            out.push_str(REDACTED);
            done = end;
        }
        out.push_str(&line[done..]);
        out
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the match at `r` is not glued to a word character on either side.
fn stands_alone(line: &str, r: &Range<usize>) -> bool {
    let before = line[..r.start].chars().next_back();
    let after = line[r.end..].chars().next();
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(values: &[&str]) -> SeenSecrets {
        let mut s = SeenSecrets::new();
        values.iter().for_each(|v| s.register(v));
        s
    }

    #[test]
    fn long_values_are_redacted_anywhere() {
        let s = seen(&["s3cr3t"]);
        assert_eq!(s.redact("pw=s3cr3t and xs3cr3ty"), "pw=(sensitive) and x(sensitive)y");
        assert_eq!(s.redact("nothing here"), "nothing here");
        assert_eq!(seen(&[]).redact("s3cr3t"), "s3cr3t");
    }

    #[test]
    fn short_values_only_as_whole_tokens() {
        let s = seen(&["42", "no"]);
        assert_eq!(s.redact("pin=42"), "pin=(sensitive)");
        assert_eq!(s.redact("42"), "(sensitive)");
        assert_eq!(s.redact("port 4242, node 1, 'no'"), "port 4242, node 1, '(sensitive)'");
        assert_eq!(s.redact("nobody knows x_no"), "nobody knows x_no");
    }

    #[test]
    fn overlapping_values_merge_and_longest_wins() {
        let s = seen(&["abcd", "abcdefgh", "efghij"]);
        assert_eq!(s.redact("<abcdefghij>"), "<(sensitive)>");
        assert_eq!(s.redact("abcd abcdefgh"), "(sensitive) (sensitive)");
        // The marker itself is never re-matched.
        assert_eq!(seen(&["sens", "tive"]).redact("sens"), "(sensitive)");
    }

    #[test]
    fn multi_line_and_json_forms() {
        let s = seen(&["line one\nline two", "quo\"te"]);
        assert_eq!(s.redact("got line two"), "got (sensitive)");
        assert_eq!(s.redact(r#"{"pw": "quo\"te"}"#), r#"{"pw": "(sensitive)"}"#);
        assert_eq!(s.redact("raw quo\"te"), "raw (sensitive)");
    }

    #[test]
    fn values_are_trimmed_and_deduplicated() {
        let s = seen(&["  pass word  ", "pass word"]);
        assert_eq!(s.forms.len(), 1);
        assert_eq!(s.redact("[pass word]"), "[(sensitive)]");
        assert!(format!("{s:?}").contains("1 forms") && !format!("{s:?}").contains("pass"));
    }
}
