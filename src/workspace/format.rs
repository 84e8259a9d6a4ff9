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
//! JSON: two-space indent, keys in their original order (serde_json with `preserve_order`),
//! one final newline; refused unless, again, only whitespace changed (a number written
//! `1e3` or a `\u00e9` escape would be re-spelt, so such a file is left as it is).

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

/// The canonical form of a JSON file.
pub fn json(text: &str) -> Result<String, FormatError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FormatError::Syntax { kind: "JSON", message: e.to_string() })?;
    let mut out = serde_json::to_string_pretty(&value).expect("a JSON value serialises");
    out.push('\n');
    only_whitespace_changed(text, &out)?;
    Ok(out)
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
        assert_eq!(out, "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    \"x\"\n  ]\n}\n");
        assert_eq!(json(&out).unwrap(), out);
    }

    #[test]
    fn json_that_would_be_respelt_is_refused() {
        assert!(matches!(json("{\"n\": 1e3}"), Err(FormatError::Unsafe(_))));
        assert!(matches!(json("{\"s\": \"\\u00e9\"}"), Err(FormatError::Unsafe(_))));
        // A duplicate key would be collapsed by a Value: refused, nothing lost.
        assert!(matches!(json("{\"a\": 1, \"a\": 2}"), Err(FormatError::Unsafe(_))));
    }
}
