//! How one value (or a before/after pair) is shown: quoted with escapes on one line, as a
//! line diff with context for multi-line values (similar), or as a key-level diff when both
//! sides are JSON objects.

use super::Line;
use similar::{ChangeTag, TextDiff};
use std::collections::BTreeSet;

/// Context lines kept around each changed run of a multi-line value.
const CONTEXT: usize = 2;
/// Indent of value-diff lines under their key row.
const INDENT: usize = 4;

/// A certificate (the bucket CA, or one of an allocation) as its SHA-256 fingerprint (of the
/// DER, as `openssl x509 -fingerprint -sha256` computes it), subject and not-after, never
/// its PEM: `<certificate sha256:… CN=api, not after 2026-05-01T00:00:00Z>`. `None` for a
/// value that is not one PEM certificate.
pub(crate) fn cert_summary(value: &str) -> Option<String> {
    use sha2::{Digest as _, Sha256};
    let v = value.trim();
    if !v.starts_with("-----BEGIN CERTIFICATE-----") || v.matches("-----BEGIN").count() != 1 {
        return None;
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(v.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let fingerprint: String = Sha256::digest(&pem.contents).iter().map(|b| format!("{b:02x}")).collect();
    let not_after = crate::clock::format_time(cert.validity().not_after.timestamp());
    Some(format!("<certificate sha256:{fingerprint} {}, not after {not_after}>", cert.subject()))
}

/// A value in double quotes, control characters and quotes escaped (never raw escape bytes
/// on the terminal).
pub(crate) fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// One line of a multi-line value, control characters escaped.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// `Some((label, lines))` when the value needs more than one line: the label follows the
/// key on the row, the lines go below it. `None`: show `key = "v"` (or `"a" -> "b"`).
pub(crate) fn detail_lines(before: Option<&str>, after: &str) -> Option<(String, Vec<Line>)> {
    if let Some(before) = before
        && let Some(lines) = json_object_diff(before, after)
    {
        return Some((" (JSON)".into(), lines));
    }
    if !after.contains('\n') && !before.is_some_and(|b| b.contains('\n')) {
        return None;
    }
    let line = |sym, text: &str| Line { sym, indent: INDENT, text: clean(text) };
    let Some(before) = before else {
        return Some((String::new(), after.lines().map(|l| line('+', l)).collect()));
    };
    // Both sides end with a newline, so a last line that gains a successor is not shown as
    // changed just because it gained a line ending.
    let (before, after) = (format!("{before}\n"), format!("{after}\n"));
    let diff = TextDiff::from_lines(&before, &after);
    let mut out = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            out.push(line(' ', "..."));
        }
        for op in group {
            for ch in diff.iter_changes(op) {
                let sym = match ch.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push(line(sym, ch.value().trim_end_matches(['\n', '\r'])));
            }
        }
    }
    Some((String::new(), out))
}

/// Key-level diff of two JSON objects; `None` unless both sides parse as objects.
fn json_object_diff(before: &str, after: &str) -> Option<Vec<Line>> {
    let (serde_json::Value::Object(b), serde_json::Value::Object(a)) =
        (serde_json::from_str(before).ok()?, serde_json::from_str(after).ok()?)
    else {
        return None;
    };
    let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    let compact = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let key = |k: &str| serde_json::to_string(k).unwrap_or_default();
    let mut out = Vec::new();
    for k in keys {
        let (sym, text) = match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(x), Some(y)) => ('~', format!("{}: {} -> {}", key(k), compact(x), compact(y))),
            (Some(x), None) => ('-', format!("{}: {}", key(k), compact(x))),
            (None, Some(y)) => ('+', format!("{}: {}", key(k), compact(y))),
            (None, None) => continue,
        };
        out.push(Line { sym, indent: INDENT, text });
    }
    if out.is_empty() {
        out.push(Line { sym: ' ', indent: INDENT, text: "(same keys and values; formatting changed)".into() });
    }
    Some(out)
}
