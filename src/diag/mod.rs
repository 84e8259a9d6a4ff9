//! Diagnostics: source spans, a source map of every file read, and the rustc-style
//! renderer (`error: …`, `--> file:line:col`, the source line with a caret, `= help: …`).
//!
//! Every layer that reports problems with the workspace produces [`Diagnostic`]s and
//! collects them in [`Diagnostics`] instead of returning on the first error, so that one
//! run reports everything it can find (SPEC §2).

pub mod json;
pub mod suggest;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use codespan_reporting::term::{Styles, StylesWriter};
use std::ops::Range;

/// Index of a file in the [`SourceMap`].
pub type FileId = usize;

/// A byte range in one file of the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, range: Range<usize>) -> Self {
        Span { file, start: range.start, end: range.end }
    }
    pub fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// Every file read while loading a workspace, by display name (a path relative to the
/// bucket root, `/`-separated, so rendered diagnostics are identical on every machine).
///
/// It also carries the largest file the workspace reader may register
/// (`kvform.hcl` `limits { max_file_size }`), so every reader of the load sees one limit.
#[derive(Default)]
pub struct SourceMap {
    files: SimpleFiles<String, String>,
    names: Vec<String>,
    max_file_size: Option<u64>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, name: impl Into<String>, source: impl Into<String>) -> FileId {
        let name = name.into();
        self.names.push(name.clone());
        self.files.add(name, source.into())
    }
    /// The largest file the workspace reader reads (default 64 MiB).
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size.unwrap_or(crate::workspace::source::DEFAULT_MAX_FILE_SIZE)
    }
    pub fn set_max_file_size(&mut self, bytes: u64) {
        self.max_file_size = Some(bytes);
    }
    pub fn name(&self, file: FileId) -> &str {
        &self.names[file]
    }
    pub fn source(&self, file: FileId) -> &str {
        self.files.get(file).map(|f| f.source().as_str()).unwrap_or("")
    }
    /// 1-based (line, column) of a byte offset, columns counted in characters.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let src = self.source(file);
        let offset = offset.min(src.len());
        let before = &src[..floor_char_boundary(src, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem. `span` is the primary location (the caret); `labels` point at related
/// places (the other claimant of a port, the demands forming a cycle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Primary location; `None` for problems that belong to no file position.
    pub span: Option<Span>,
    /// Text under the primary caret.
    pub label: Option<String>,
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
    /// For span-less problems that still concern a file (e.g. a missing script directory).
    pub path: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            secondary: Vec::new(),
            help: None,
            path: None,
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Self::error(message) }
    }
    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn in_file(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// An ordered collection of diagnostics from one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Sort by file name, then position, then message; span-less ones last. Stable and
    /// total, so rendered output is byte-identical across runs.
    pub fn sort(&mut self, sources: &SourceMap) {
        self.0.sort_by(|a, b| sort_key(a, sources).cmp(&sort_key(b, sources)));
        self.0.dedup();
    }

    /// Render the diagnostics (sorted first): the first [`MAX_RENDERED`] in full, then one
    /// line counting the rest (as rustc and Terraform cap theirs); the caller prints the
    /// count line of all of them.
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        let mut out = String::new();
        for d in self.0.iter().take(MAX_RENDERED) {
            out.push_str(&render_one(d, sources, color));
        }
        let rest = &self.0[self.0.len().min(MAX_RENDERED)..];
        if !rest.is_empty() {
            let errors = rest.iter().filter(|d| d.is_error()).count();
            let warnings = rest.len() - errors;
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            let parts: Vec<String> = [(errors, "error"), (warnings, "warning")]
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| count(n, what))
                .collect();
            out.push_str(&format!(
                "... and {} more not shown ({}): fix the ones above and run again\n\n",
                rest.len(),
                parts.join(", ")
            ));
        }
        out
    }
}

/// Diagnostics rendered in full by [`Diagnostics::render`]; the rest are counted.
pub const MAX_RENDERED: usize = 50;

/// Source lines longer than this (bytes) are shown as a window around the caret (a
/// minified JSON file is one line: printing it whole under every diagnostic made the
/// output, and the time to write it, quadratic in the number of problems).
pub const LONG_LINE: usize = 200;

/// Bytes of context on each side of a caret in a long line.
const WINDOW_CONTEXT: usize = 60;

fn sort_key<'a>(d: &'a Diagnostic, sources: &'a SourceMap) -> (u8, &'a str, usize, usize, &'a str) {
    match d.span {
        Some(s) => (0, sources.name(s.file), s.start, s.end, d.message.as_str()),
        None => (1, d.path.as_deref().unwrap_or(""), 0, 0, d.message.as_str()),
    }
}

/// Render one diagnostic. Plain ASCII art (`-->`, `|`, `^`) so goldens stay readable.
pub fn render_one(d: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    if let Some(span) = d.span
        && let Some(window) = Window::around(sources, span)
    {
        return window.render(d, sources, color);
    }
    let mut cd = match d.severity {
        Severity::Error => cs::Diagnostic::error(),
        Severity::Warning => cs::Diagnostic::warning(),
    }
    .with_message(&d.message);
    let mut labels = Vec::new();
    if let Some(span) = d.span {
        labels.push(cs::Label::primary(span.file, span.range()).with_message(d.label.clone().unwrap_or_default()));
    }
    for (span, msg) in &d.secondary {
        labels.push(cs::Label::secondary(span.file, span.range()).with_message(msg));
    }
    cd = cd.with_labels(labels);
    let mut notes = Vec::new();
    if d.span.is_none()
        && let Some(p) = &d.path
    {
        notes.push(format!("in: {p}"));
    }
    if let Some(h) = &d.help {
        notes.push(format!("help: {h}"));
    }
    cd = cd.with_notes(notes);
    emit(&sources.files, &cd, color)
}

fn emit<'f, F: codespan_reporting::files::Files<'f>>(
    files: &'f F,
    cd: &cs::Diagnostic<F::FileId>,
    color: bool,
) -> String
where
    F::FileId: 'f,
{
    let config = term::Config { chars: term::Chars::ascii(), ..Default::default() };
    if color {
        let mut buf = term::termcolor::Buffer::ansi();
        let _ = term::emit_to_write_style(&mut StylesWriter::new(&mut buf, &Styles::default()), &config, files, cd);
        String::from_utf8_lossy(buf.as_slice()).into_owned()
    } else {
        term::emit_into_string(&config, files, cd).unwrap_or_default()
    }
}

/// A piece of one long source line around a diagnostic's caret, standing in for the file
/// in the renderer: line and column numbers are those of the real file, the text shown is
/// at most a few hundred bytes (`...` marks the cuts).
struct Window<'a> {
    name: &'a str,
    text: String,
    /// Where `text` (after its leading `...`) starts in the real file.
    start: usize,
    /// Bytes of the leading `...` (0 when the window starts the line).
    lead: usize,
    line_number: usize,
    /// The real column of `start`, 1-based.
    first_column: usize,
}

impl<'a> Window<'a> {
    /// `None` unless the line holding `span.start` is longer than [`LONG_LINE`].
    fn around(sources: &'a SourceMap, span: Span) -> Option<Window<'a>> {
        use codespan_reporting::files::Files;
        let files = &sources.files;
        let line = files.line_index(span.file, span.start).ok()?;
        let range = files.line_range(span.file, line).ok()?;
        if range.len() <= LONG_LINE {
            return None;
        }
        let src = sources.source(span.file);
        let line_end = src[range.clone()].trim_end_matches(['\n', '\r']).len() + range.start;
        let caret_end = span.end.min(span.start + LONG_LINE).min(line_end);
        let start = floor_char_boundary(src, span.start.saturating_sub(WINDOW_CONTEXT).max(range.start));
        let end = floor_char_boundary(src, (caret_end + WINDOW_CONTEXT).min(line_end));
        let lead = if start > range.start { "..." } else { "" };
        let tail = if end < line_end { "..." } else { "" };
        Some(Window {
            name: sources.name(span.file),
            text: format!("{lead}{}{tail}\n", &src[start..end]),
            start,
            lead: lead.len(),
            line_number: line + 1,
            first_column: src[range.start..start].chars().count() + 1,
        })
    }

    /// `offset` of the real file inside the window, if it is there.
    fn map(&self, offset: usize) -> Option<usize> {
        let len = self.text.len() - self.lead - 1;
        (offset >= self.start && offset <= self.start + len).then(|| offset - self.start + self.lead)
    }

    fn render(&self, d: &Diagnostic, sources: &SourceMap, color: bool) -> String {
        let span = d.span.expect("a window is made around a span");
        let mut cd = match d.severity {
            Severity::Error => cs::Diagnostic::error(),
            Severity::Warning => cs::Diagnostic::warning(),
        }
        .with_message(&d.message);
        let shown = self.text.len() - 1;
        let caret = |s: &Span| {
            let a = self.map(s.start).unwrap_or(shown);
            a..self.map(s.end).unwrap_or(shown).max(a)
        };
        let mut labels = vec![cs::Label::primary((), caret(&span)).with_message(d.label.clone().unwrap_or_default())];
        let mut notes = Vec::new();
        for (s, msg) in &d.secondary {
            if s.file == span.file && self.map(s.start).is_some() && self.map(s.end).is_some() {
                labels.push(cs::Label::secondary((), caret(s)).with_message(msg));
            } else {
                let (line, col) = sources.line_col(s.file, s.start);
                notes.push(format!("{msg}: {}:{line}:{col}", sources.name(s.file)));
            }
        }
        if let Some(h) = &d.help {
            notes.push(format!("help: {h}"));
        }
        cd = cd.with_labels(labels).with_notes(notes);
        emit(self, &cd, color)
    }
}

impl<'f> codespan_reporting::files::Files<'f> for Window<'_> {
    type FileId = ();
    type Name = &'f str;
    type Source = &'f str;

    fn name(&'f self, (): ()) -> Result<&'f str, codespan_reporting::files::Error> {
        Ok(self.name)
    }
    fn source(&'f self, (): ()) -> Result<&'f str, codespan_reporting::files::Error> {
        Ok(&self.text)
    }
    fn line_index(&'f self, (): (), _byte: usize) -> Result<usize, codespan_reporting::files::Error> {
        Ok(0)
    }
    fn line_number(&'f self, (): (), _line: usize) -> Result<usize, codespan_reporting::files::Error> {
        Ok(self.line_number)
    }
    fn column_number(&'f self, (): (), _line: usize, byte: usize) -> Result<usize, codespan_reporting::files::Error> {
        let byte = floor_char_boundary(&self.text, byte.max(self.lead));
        Ok(self.first_column + self.text[self.lead..byte].chars().count())
    }
    fn line_range(&'f self, (): (), _line: usize) -> Result<Range<usize>, codespan_reporting::files::Error> {
        Ok(0..self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_as_a_window_with_real_positions() {
        let mut sources = SourceMap::new();
        let line = format!("{{\"a\": 1,{}\"a\": 2}}\n", " ".repeat(500));
        let file = sources.add("w.json", line.clone());
        let second = line.rfind("\"a\"").unwrap();
        let d = Diagnostic::error("duplicate field `a`")
            .at(Span::new(file, second..second + 3))
            .label("written a second time here")
            .also(Span::new(file, 1..4), "first written here")
            .help("keep one of the two");
        let out = render_one(&d, &sources, false);
        assert!(out.contains(&format!("--> w.json:1:{}", second + 1)), "{out}");
        // The first occurrence is far outside the window: named, not drawn.
        assert!(out.contains("= first written here: w.json:1:2"), "{out}");
        assert!(out.lines().all(|l| l.len() < 200), "{out}");
        assert!(out.contains("1 | ...") && out.contains("^^^ written a second time here"), "{out}");
        // A short line renders as before, in full.
        let short = sources.add("s.json", "{\"a\": 1, \"a\": 2}\n");
        let d = Diagnostic::error("x").at(Span::new(short, 9..12)).also(Span::new(short, 1..4), "first");
        let out = render_one(&d, &sources, false);
        assert!(out.contains("1 | {\"a\": 1, \"a\": 2}") && out.contains("first"), "{out}");
    }

    #[test]
    fn rendering_stops_after_the_cap_and_counts_the_rest() {
        let mut sources = SourceMap::new();
        let file = sources.add("f", "x\n");
        let mut diags = Diagnostics::new();
        for i in 0..MAX_RENDERED + 7 {
            let d = if i % 2 == 0 { Diagnostic::error(format!("e{i}")) } else { Diagnostic::warning(format!("w{i}")) };
            diags.push(d.at(Span::new(file, 0..1)));
        }
        let out = diags.render(&sources, false);
        assert_eq!(out.matches("\n  --> f:1:1").count(), MAX_RENDERED, "{out}");
        assert!(
            out.ends_with("... and 7 more not shown (4 errors, 3 warnings): fix the ones above and run again\n\n"),
            "{out}"
        );
    }
}
