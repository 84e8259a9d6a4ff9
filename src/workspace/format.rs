//! Canonical text of the workspace's files, for `kvform fmt` (pure: text in, text out).
//!
//! No crate formats HCL and keeps its comments: hcl-rs's `hcl::format` prints an
//! `hcl::Body`, which has none, and `hcl::edit` keeps comments but has no formatter. So HCL
//! is formatted here by changing **whitespace only**, line by line, the way `terraform fmt`
//! lays files out: two spaces per nesting level, one space around `=` with the `=` of
//! consecutive one-line attributes aligned, no trailing blanks, one final newline. Heredoc
//! bodies and block comments are never touched.
//!
//! Two checks make a reformat safe, or it is refused (the file is then left as it is and
//! the caller says why): the result parses to the same `hcl::Body` as the original, and its
//! non-whitespace characters are the original's, in order — so no comment, value or token
//! is lost or moved.
//!
//! JSON: two-space indent, keys in their original order, every string and number spelt as
//! written (`1e3`, `\u00e9` stay), one final newline, and a line-width rule like `cargo
//! fmt`'s ([`JSON_WIDTH`] columns): an array of scalars goes on one line when it fits
//! (`"labels": ["web", "db"]`), and so does an object whose values are scalars, such arrays
//! or such objects (a worker per line in `workers.json`); anything else gets a line per item.
//! The file's outermost array or object always gets a line per item. The layout depends on
//! the values and the width only, never on how the file was laid out before, so there is one
//! canonical form. Refused unless, again, only whitespace changed.

/// Why a file was not formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not valid {kind}: {message}")]
    Syntax { kind: &'static str, message: String },
    /// The reformat would change more than whitespace.
    #[error("{0}")]
    Unsafe(String),
}

/// The canonical form of an HCL file.
pub fn hcl(text: &str) -> Result<String, FormatError> {
    let syntax = |e: hcl::Error| FormatError::Syntax { kind: "HCL", message: e.to_string().trim().to_string() };
    let before: hcl::Body = hcl::from_str(text).map_err(syntax)?;
    let out = hcl_layout(text);
    let after: hcl::Body = hcl::from_str(&out)
        .map_err(|e| FormatError::Unsafe(format!("the formatted text would not parse ({e}); left as it is")))?;
    if after != before {
        return Err(FormatError::Unsafe("formatting would change a value; left as it is".into()));
    }
    only_whitespace_changed(text, &out)?;
    Ok(out)
}

/// The line width JSON is laid out to (`cargo fmt`'s default `max_width`).
pub const JSON_WIDTH: usize = 100;

/// The canonical form of a JSON file.
pub fn json(text: &str) -> Result<String, FormatError> {
    // serde_json decides what is valid JSON (and says where it is not); the layout below
    // then works on the text's own tokens, so nothing is re-spelt.
    let text = text.trim_start_matches('\u{feff}');
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| FormatError::Syntax { kind: "JSON", message: e.to_string() })?;
    let mut p = JsonScan { chars: text.chars().collect(), at: 0 };
    let root = p.value();
    let mut out = String::new();
    json_layout(&root, 0, 0, 0, true, &mut out);
    out.push('\n');
    only_whitespace_changed(text, &out)?;
    Ok(out)
}

/// A JSON value with its tokens as written.
enum JsonNode {
    /// A string (quotes and escapes kept), number, `true`, `false` or `null`.
    Scalar(String),
    Array(Vec<JsonNode>),
    /// Members: the key with its quotes, the value.
    Object(Vec<(String, JsonNode)>),
}

/// A scanner over text serde_json already accepted (so it need not report errors).
struct JsonScan {
    chars: Vec<char>,
    at: usize,
}

impl JsonScan {
    fn blank(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> String {
        let start = self.at;
        self.at += 1;
        while let Some(&c) = self.chars.get(self.at) {
            self.at += 1;
            match c {
                '\\' => self.at += 1,
                '"' => break,
                _ => {}
            }
        }
        self.chars[start..self.at.min(self.chars.len())].iter().collect()
    }

    fn value(&mut self) -> JsonNode {
        self.blank();
        match self.chars.get(self.at) {
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.blank();
                    match self.chars.get(self.at) {
                        Some(']') | None => break,
                        Some(',') => self.at += 1,
                        _ => items.push(self.value()),
                    }
                }
                self.at += 1;
                JsonNode::Array(items)
            }
            Some('{') => {
                self.at += 1;
                let mut members = Vec::new();
                loop {
                    self.blank();
                    match self.chars.get(self.at) {
                        Some('}') | None => break,
                        Some(',') => self.at += 1,
                        _ => {
                            let key = self.string();
                            self.blank();
                            self.at += 1; // the `:`
                            members.push((key, self.value()));
                        }
                    }
                }
                self.at += 1;
                JsonNode::Object(members)
            }
            Some('"') => JsonNode::Scalar(self.string()),
            _ => {
                let start = self.at;
                while self.chars.get(self.at).is_some_and(|c| !(c.is_whitespace() || matches!(c, ',' | ']' | '}'))) {
                    self.at += 1;
                }
                JsonNode::Scalar(self.chars[start..self.at].iter().collect())
            }
        }
    }
}

/// The value on one line: `[1, 2]`, `{"a": 1}`.
fn json_flat(node: &JsonNode) -> String {
    match node {
        JsonNode::Scalar(s) => s.clone(),
        JsonNode::Array(items) => format!("[{}]", items.iter().map(json_flat).collect::<Vec<_>>().join(", ")),
        JsonNode::Object(members) => format!(
            "{{{}}}",
            members.iter().map(|(k, v)| format!("{k}: {}", json_flat(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// May the value go on one line (when it fits)? Arrays of scalars, and objects whose values
/// may too.
fn json_may_be_flat(node: &JsonNode) -> bool {
    match node {
        JsonNode::Scalar(_) => true,
        JsonNode::Array(items) => items.iter().all(|i| matches!(i, JsonNode::Scalar(_))),
        JsonNode::Object(members) => members.iter().all(|(_, v)| json_may_be_flat(v)),
    }
}

/// Append `node` at nesting `depth`, after `before` columns of its line (indent excluded)
/// and with `after` columns still to come on it (a comma).
fn json_layout(node: &JsonNode, depth: usize, before: usize, after: usize, root: bool, out: &mut String) {
    let empty = match node {
        JsonNode::Scalar(_) => true,
        JsonNode::Array(items) => items.is_empty(),
        JsonNode::Object(members) => members.is_empty(),
    };
    if empty || !root && json_may_be_flat(node) {
        let flat = json_flat(node);
        if empty || 2 * depth + before + flat.chars().count() + after <= JSON_WIDTH {
            out.push_str(&flat);
            return;
        }
    }
    let pad = "  ".repeat(depth + 1);
    match node {
        JsonNode::Scalar(s) => out.push_str(s),
        JsonNode::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                let comma = usize::from(i + 1 < items.len());
                out.push_str(&pad);
                json_layout(item, depth + 1, 0, comma, false, out);
                out.push_str(if comma == 1 { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(depth));
            out.push(']');
        }
        JsonNode::Object(members) => {
            out.push_str("{\n");
            for (i, (key, value)) in members.iter().enumerate() {
                let comma = usize::from(i + 1 < members.len());
                out.push_str(&pad);
                out.push_str(key);
                out.push_str(": ");
                json_layout(value, depth + 1, key.chars().count() + 2, comma, false, out);
                out.push_str(if comma == 1 { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
    }
}

/// Refuse a result whose non-whitespace characters differ from the original's. (For JSON
/// this also catches duplicate keys, which a `Value` would silently collapse.)
fn only_whitespace_changed(before: &str, after: &str) -> Result<(), FormatError> {
    let ink = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if ink(before) == ink(after) {
        Ok(())
    } else {
        Err(FormatError::Unsafe(
            "the canonical form would spell something differently (not only whitespace); left as it is".into(),
        ))
    }
}

/// Lexer state carried from one line to the next.
#[derive(Default)]
struct Scan {
    depth: usize,
    block_comment: bool,
    /// The closing word of an open heredoc.
    heredoc: Option<String>,
}

/// What one line does to the nesting, outside strings and comments.
struct LineScan {
    /// Closing brackets before the first other token (the line is dedented by these).
    leading_closers: usize,
    /// Depth change over the whole line.
    delta: isize,
    /// A heredoc starts at the end of this line.
    heredoc: Option<String>,
    /// The line ends inside a block comment.
    in_comment: bool,
}

fn scan_line(line: &str, in_comment: bool) -> LineScan {
    let b: Vec<char> = line.chars().collect();
    let (mut i, mut delta, mut leading, mut seen) = (0, 0isize, 0, false);
    let mut comment = in_comment;
    let mut heredoc = None;
    while i < b.len() {
        let c = b[i];
        if comment {
            if c == '*' && b.get(i + 1) == Some(&'/') {
                comment = false;
                i += 1;
            }
            i += 1;
            continue;
        }
        match c {
            '#' => break,
            '/' if b.get(i + 1) == Some(&'/') => break,
            '/' if b.get(i + 1) == Some(&'*') => {
                comment = true;
                i += 1;
            }
            '"' => {
                seen = true;
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '<' if b.get(i + 1) == Some(&'<') => {
                let rest: String = b[i + 2..].iter().collect();
                let word = rest.trim_start_matches('-').trim_end();
                if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    heredoc = Some(word.to_string());
                    break;
                }
                seen = true;
                i += 1;
            }
            '{' | '[' | '(' => {
                seen = true;
                delta += 1;
            }
            '}' | ']' | ')' => {
                if !seen {
                    leading += 1;
                }
                delta -= 1;
            }
            c if c.is_whitespace() => {}
            _ => seen = true,
        }
        i += 1;
    }
    LineScan { leading_closers: leading, delta, heredoc, in_comment: comment }
}

/// `name = rest` of a one-line attribute (or object entry), if the line is one.
fn attribute(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let (name, rest) = t.split_at(end);
    let rest = rest.trim_start();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let value = rest.strip_prefix('=')?;
    if value.starts_with('=') {
        return None;
    }
    Some((name, value.trim_start()))
}

/// One line after layout: its text and, for an aligned attribute, (indent, name, value).
enum Out {
    Fixed(String),
    Attr { indent: usize, name: String, value: String },
}

fn hcl_layout(text: &str) -> String {
    let mut st = Scan::default();
    let mut lines: Vec<Out> = Vec::new();
    for raw in text.lines() {
        if let Some(word) = &st.heredoc {
            if raw.trim() == word {
                st.heredoc = None;
            }
            lines.push(Out::Fixed(raw.to_string()));
            continue;
        }
        if st.block_comment {
            let s = scan_line(raw, true);
            st.block_comment = s.in_comment;
            lines.push(Out::Fixed(raw.trim_end().to_string()));
            continue;
        }
        let s = scan_line(raw, false);
        let depth = st.depth.saturating_sub(s.leading_closers);
        let trimmed = raw.trim();
        let one_line = s.delta == 0 && s.heredoc.is_none() && !s.in_comment;
        match attribute(trimmed) {
            Some((name, value)) if one_line => {
                lines.push(Out::Attr { indent: depth, name: name.to_string(), value: value.trim_end().to_string() })
            }
            Some((name, value)) => {
                lines.push(Out::Fixed(format!("{}{name} = {}", "  ".repeat(depth), value.trim_end())))
            }
            None if trimmed.is_empty() => lines.push(Out::Fixed(String::new())),
            None => lines.push(Out::Fixed(format!("{}{trimmed}", "  ".repeat(depth)))),
        }
        st.depth = (st.depth as isize + s.delta).max(0) as usize;
        st.block_comment = s.in_comment;
        st.heredoc = s.heredoc;
    }
    // Align `=` within runs of consecutive one-line attributes at one indent.
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        match &lines[i] {
            Out::Fixed(t) => {
                out.push_str(t);
                out.push('\n');
                i += 1;
            }
            Out::Attr { indent, .. } => {
                let run_indent = *indent;
                let end = (i..lines.len())
                    .find(|&j| !matches!(&lines[j], Out::Attr { indent, .. } if *indent == run_indent))
                    .unwrap_or(lines.len());
                let width = lines[i..end]
                    .iter()
                    .map(|l| if let Out::Attr { name, .. } = l { name.len() } else { 0 })
                    .max()
                    .unwrap_or(0);
                for l in &lines[i..end] {
                    if let Out::Attr { indent, name, value } = l {
                        out.push_str(&format!("{}{name:<width$} = {value}\n", "  ".repeat(*indent)));
                    }
                }
                i = end;
            }
        }
    }
    let trimmed = out.trim_end_matches('\n');
    if trimmed.is_empty() { String::new() } else { format!("{trimmed}\n") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_is_indented_and_aligned_with_comments_kept() {
        let input = "# header comment\nport_min=30000   \n  port_max    = 39999 # inline\n\n\njob \"web\" {\n memory = \"1 gb\"\n      replicas_hint = 2\n  /* a block\n     comment */\n}\nlimits = {\nburst = 20\n  rps = 100\n}\n";
        let want = "# header comment\nport_min = 30000\nport_max = 39999 # inline\n\n\njob \"web\" {\n  memory        = \"1 gb\"\n  replicas_hint = 2\n  /* a block\n     comment */\n}\nlimits = {\n  burst = 20\n  rps   = 100\n}\n";
        assert_eq!(hcl(input).unwrap(), want);
        // Canonical text is a fixed point.
        assert_eq!(hcl(want).unwrap(), want);
    }

    #[test]
    fn heredocs_are_left_alone() {
        let input = "motd = <<EOT\n   keep   this  \n EOT\nx=1\n";
        let out = hcl(input).unwrap();
        assert!(out.contains("   keep   this  \n"), "{out}");
        assert!(out.ends_with("x = 1\n"), "{out}");
    }

    #[test]
    fn invalid_hcl_is_a_syntax_error() {
        assert!(matches!(hcl("x = {\n"), Err(FormatError::Syntax { .. })));
    }

    #[test]
    fn json_is_two_space_indented_in_original_key_order() {
        let out = json("{\"z\":1,\"a\":[true,  \"x\"]}").unwrap();
        assert_eq!(out, "{\n  \"z\": 1,\n  \"a\": [true, \"x\"]\n}\n");
        assert_eq!(json(&out).unwrap(), out);
    }

    #[test]
    fn json_keeps_every_spelling() {
        // Numbers and escapes as written; a duplicate key stays for `validate` to report.
        assert_eq!(json("{\"n\": 1e3}").unwrap(), "{\n  \"n\": 1e3\n}\n");
        assert_eq!(json("{\"s\":\"\\u00e9\\\"\"}").unwrap(), "{\n  \"s\": \"\\u00e9\\\"\"\n}\n");
        assert_eq!(json("{\"a\": 1, \"a\": 2}").unwrap(), "{\n  \"a\": 1,\n  \"a\": 2\n}\n");
        assert!(matches!(json("{\"a\": 1,}"), Err(FormatError::Syntax { .. })));
    }

    /// A worker per line stays a worker per line (3 workers: 5 lines, not 31); short arrays
    /// of scalars go on one line; what does not fit in JSON_WIDTH columns is broken up.
    #[test]
    fn json_keeps_short_items_on_one_line() {
        let workers = "[\n  {\"host\": \"10.0.0.1\", \"labels\": [\"database\", \"api\"], \"memory\": \"4 gb\"},\n  \
{\"host\": \"10.0.0.2\", \"labels\": [\"api\", \"frontend\"]},\n  {\"host\": \"10.0.0.3\", \"labels\": [\"frontend\"]}\n]\n";
        assert_eq!(json(workers).unwrap(), workers);
        assert_eq!(workers.lines().count(), 5);
        // The outermost object gets a line per member; a short array is joined.
        let manifest = "{\n\"version\": \"1.0.0\",\n\"selectors\": [\n  \"api\",\n  \"web\"\n]\n}";
        assert_eq!(json(manifest).unwrap(), "{\n  \"version\": \"1.0.0\",\n  \"selectors\": [\"api\", \"web\"]\n}\n");
        // Too long for one line: an item per line, and that is a fixed point.
        let hosts: Vec<String> = (0..12).map(|i| format!("\"10.0.0.{i}\"")).collect();
        let long = format!("{{\"workers\": [{}]}}", hosts.join(","));
        let out = json(&long).unwrap();
        assert!(out.lines().all(|l| l.chars().count() <= JSON_WIDTH), "{out}");
        assert_eq!(out.lines().count(), 2 + 12 + 2, "{out}");
        assert_eq!(json(&out).unwrap(), out);
        // Exactly at the width: kept; one more column: broken.
        let fit = |n: usize| format!("{{\n  \"k\": [\"{}\"]\n}}\n", "x".repeat(n));
        let at = JSON_WIDTH - "  \"k\": [\"\"]".len();
        assert_eq!(json(&fit(at)).unwrap(), fit(at));
        assert_eq!(json(&fit(at + 1)).unwrap().lines().count(), 5);
        // Empty containers stay `[]` and `{}`.
        assert_eq!(json("{\"a\":[],\"b\":{}}").unwrap(), "{\n  \"a\": [],\n  \"b\": {}\n}\n");
        assert_eq!(json("[]").unwrap(), "[]\n");
    }
}
