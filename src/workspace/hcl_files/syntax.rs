//! Friendlier syntax errors. hcl-edit reports where its parser gave up, which for an
//! unclosed `{` or string is the start of the enclosing attribute or block, with a generic
//! "unexpected token". After a failed parse we scan the text for unbalanced brackets and
//! unterminated strings and, when we find one, point at the opening character instead.
//! The scan only runs on text the parser already rejected, so it refines messages and
//! never decides validity.

use std::ops::Range;

/// A bracket or string problem: where, what, and how to fix it.
pub(super) struct Unbalanced {
    pub range: Range<usize>,
    pub message: String,
    pub label: String,
    pub help: String,
    /// The bracket a mismatched closer should have matched.
    pub opened: Option<Range<usize>>,
}

#[derive(Clone, Copy)]
enum Mode {
    /// Expression or structure text, waiting for the closing char (or none at top level).
    Code(Option<(char, usize)>),
    /// Inside a quoted string that opened at this offset.
    Quoted(usize),
}

pub(super) fn unbalanced(text: &str) -> Option<Unbalanced> {
    let mut stack = vec![Mode::Code(None)];
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let mode = *stack.last()?;
        match mode {
            Mode::Quoted(open) => match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    stack.pop();
                }
                '\n' => return Some(unterminated_string(open)),
                '$' | '%' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    let (j, _) = chars.next()?;
                    stack.push(Mode::Code(Some(('}', j))));
                }
                _ => {}
            },
            Mode::Code(_) => match c {
                '"' => stack.push(Mode::Quoted(i)),
                '#' => skip_line(&mut chars),
                '/' if chars.peek().map(|(_, c)| *c) == Some('/') => skip_line(&mut chars),
                '/' if chars.peek().map(|(_, c)| *c) == Some('*') => {
                    chars.next();
                    let mut prev = ' ';
                    for (_, c) in chars.by_ref() {
                        if prev == '*' && c == '/' {
                            break;
                        }
                        prev = c;
                    }
                }
                '<' if text[i..].starts_with("<<") => skip_heredoc(text, i, &mut chars),
                '{' => stack.push(Mode::Code(Some(('}', i)))),
                '[' => stack.push(Mode::Code(Some((']', i)))),
                '(' => stack.push(Mode::Code(Some((')', i)))),
                '}' | ']' | ')' => match mode {
                    Mode::Code(Some((want, _))) if want == c => {
                        stack.pop();
                    }
                    Mode::Code(Some((want, open))) => {
                        return Some(Unbalanced {
                            range: i..i + 1,
                            message: format!("mismatched `{c}`"),
                            label: format!("expected `{want}`"),
                            help: format!("close the inner bracket with `{want}` first"),
                            opened: Some(open..open + 1),
                        });
                    }
                    _ => {
                        return Some(Unbalanced {
                            range: i..i + 1,
                            message: format!("unexpected `{c}`"),
                            label: "nothing to close here".into(),
                            help: "remove it, or add the opening bracket it belongs to".into(),
                            opened: None,
                        });
                    }
                },
                _ => {}
            },
        }
    }
    match stack.pop()? {
        Mode::Quoted(open) => Some(unterminated_string(open)),
        Mode::Code(Some((want, open))) => {
            let opened = text[open..].chars().next().unwrap_or('{');
            Some(Unbalanced {
                range: open..open + opened.len_utf8(),
                message: format!("unclosed `{opened}`"),
                label: "opened here".into(),
                help: format!("add the matching `{want}`"),
                opened: None,
            })
        }
        Mode::Code(None) => None,
    }
}

fn unterminated_string(open: usize) -> Unbalanced {
    Unbalanced {
        range: open..open + 1,
        message: "unterminated string".into(),
        label: "this string is never closed".into(),
        help: "close it with `\"` on the same line (use a heredoc `<<EOT … EOT` for multi-line text)".into(),
        opened: None,
    }
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    for (_, c) in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

/// Skip `<<EOT … EOT` / `<<-EOT … EOT` up to and including the closing delimiter line.
fn skip_heredoc(text: &str, at: usize, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    let rest = &text[at + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let delim: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if delim.is_empty() {
        return;
    }
    skip_line(chars);
    while let Some(&(i, _)) = chars.peek() {
        let line = text[i..].lines().next().unwrap_or("");
        skip_line(chars);
        if line.trim() == delim {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unbalanced;

    fn msg(s: &str) -> Option<(String, usize)> {
        unbalanced(s).map(|u| (u.message, u.range.start))
    }

    #[test]
    fn finds_the_opening_char() {
        assert_eq!(msg("a = 1\nb = {\n  c = 1\n"), Some(("unclosed `{`".into(), 10)));
        assert_eq!(msg("a = \"x\nb = 1\n"), Some(("unterminated string".into(), 4)));
        assert_eq!(msg("a = [1, 2}\n"), Some(("mismatched `}`".into(), 9)));
        assert_eq!(msg("a = 1 }\n"), Some(("unexpected `}`".into(), 6)));
    }

    #[test]
    fn ignores_brackets_in_strings_comments_heredocs() {
        assert_eq!(msg("a = \"{ ${x} [\" # {\n// (\n/* [ */ b = 1\n"), None);
        assert_eq!(msg("a = <<EOT\n{ [\nEOT\nb = {}\n"), None);
        assert_eq!(msg("a = \"\\\"{\"\n"), None);
    }
}
