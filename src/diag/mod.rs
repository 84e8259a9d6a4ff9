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

    /// Render all diagnostics (sorted first) followed by a count line when there are errors.
    pub fn render(&self, sources: &SourceMap, color: bool) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&render_one(d, sources, color));
        }
        out
    }
}

fn sort_key<'a>(d: &'a Diagnostic, sources: &'a SourceMap) -> (u8, &'a str, usize, usize, &'a str) {
    match d.span {
        Some(s) => (0, sources.name(s.file), s.start, s.end, d.message.as_str()),
        None => (1, d.path.as_deref().unwrap_or(""), 0, 0, d.message.as_str()),
    }
}

/// Render one diagnostic. Plain ASCII art (`-->`, `|`, `^`) so goldens stay readable.
pub fn render_one(d: &Diagnostic, sources: &SourceMap, color: bool) -> String {
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
    let config = term::Config { chars: term::Chars::ascii(), ..Default::default() };
    if color {
        let mut buf = term::termcolor::Buffer::ansi();
        let _ = term::emit_to_write_style(
            &mut StylesWriter::new(&mut buf, &Styles::default()),
            &config,
            &sources.files,
            &cd,
        );
        String::from_utf8_lossy(buf.as_slice()).into_owned()
    } else {
        term::emit_into_string(&config, &sources.files, &cd).unwrap_or_default()
    }
}
