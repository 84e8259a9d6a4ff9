//! One place that decides what goes where: results to stdout, progress and diagnostics
//! to stderr; colour only when allowed and the stream is a terminal.
//!
//! A closed pipe is not an error: `kvform cat kv | head -1` closes stdout early, and like
//! other CLIs kvform then stops printing quietly instead of panicking (`println!` does) or
//! reporting "Broken pipe". Every write here ignores its result for that reason; the
//! command itself still finishes (an apply is never cut short because a reader went away).

use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};

pub struct Printer {
    color_allowed: bool,
    pub verbose: bool,
    pub quiet: bool,
}

impl Printer {
    pub fn new(color_allowed: bool, verbose: bool, quiet: bool) -> Self {
        Printer { color_allowed, verbose, quiet }
    }

    /// Colour on stdout: allowed by flags/env and stdout is a terminal.
    pub fn color_stdout(&self) -> bool {
        self.color_allowed && std::io::stdout().is_terminal()
    }
    /// Colour on stderr: allowed by flags/env and stderr is a terminal.
    pub fn color_stderr(&self) -> bool {
        self.color_allowed && std::io::stderr().is_terminal()
    }
    pub fn stderr_is_tty(&self) -> bool {
        std::io::stderr().is_terminal()
    }

    /// A result: always printed, to stdout.
    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        if !text.ends_with('\n') && !text.is_empty() {
            let _ = o.write_all(b"\n");
        }
        let _ = o.flush();
    }
    /// A status line to stderr, hidden by `--quiet`.
    pub fn info(&self, text: &str) {
        if !self.quiet {
            stderr_line(text);
        }
    }
    /// Detail to stderr, shown only with `--verbose`.
    pub fn detail(&self, text: &str) {
        if self.verbose {
            stderr_line(text);
        }
    }
    pub fn warn(&self, text: &str) {
        stderr_line(&format!("{}: {text}", self.paint_stderr("warning", AnsiColor::Yellow)));
    }
    pub fn error(&self, text: &str) {
        stderr_line(&format!("{}: {text}", self.paint_stderr("error", AnsiColor::Red)));
    }
    /// Pre-rendered text (diagnostics) to stderr, as is.
    pub fn raw_stderr(&self, text: &str) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
    }

    fn paint_stderr(&self, word: &str, color: AnsiColor) -> String {
        if self.color_stderr() { painted(word, color) } else { word.to_string() }
    }
}

/// `word` in bold `color`, reset after.
fn painted(word: &str, color: AnsiColor) -> String {
    let style = Style::new().bold().fg_color(Some(color.into()));
    format!("{style}{word}{style:#}")
}

/// One line to stderr; a closed stderr is ignored (see the module docs), where `eprintln!`
/// would panic.
pub fn stderr_line(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.write_all(b"\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_warning_words_are_bold_red_and_yellow() {
        assert_eq!(painted("error", AnsiColor::Red), "\x1b[1m\x1b[31merror\x1b[0m");
        assert_eq!(painted("warning", AnsiColor::Yellow), "\x1b[1m\x1b[33mwarning\x1b[0m");
    }
}
