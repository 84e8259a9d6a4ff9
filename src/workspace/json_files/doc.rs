//! A small positioned-JSON layer over jsonc-parser's AST: syntax errors as diagnostics,
//! and typed accessors that report wrong types, unknown and duplicate fields at the exact
//! key or value responsible. (Files are read by [`crate::workspace::source`].)
//!
//! The workspace files are strict JSON (no comments, no trailing commas, quoted property
//! names) so any other JSON tool reads them the same way kvform does.
//!
//! Message conventions (shared by every JSON file):
//! - lower-case, no trailing period, names in backticks, field paths dotted
//!   (`` `resources.memory.min` ``);
//! - type errors: "`<path>` must be <expected>, found <kind>", label "expected <expected>";
//! - unknown fields: "unknown field `<name>` in <context>", with a "did you mean" hint when
//!   one is close, else the list of accepted fields;
//! - duplicates: at the second occurrence, with a secondary label at the first.

use crate::diag::suggest::hint;
use crate::diag::{Diagnostic, Diagnostics, FileId, Span, Spanned};
use crate::workspace::units::{self, Quantity};
use jsonc_parser::ast::{Array, Object, ObjectProp, ObjectPropName, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

/// The deepest nesting of `[` / `{` a workspace JSON file may have (the HCL parser's limit
/// too). The parser recurses per level, so without a limit a file of `[[[[…` crashed kvform
/// with a stack overflow.
pub const MAX_DEPTH: usize = 64;

/// Parse strict JSON. Syntax errors become diagnostics at their position; `None` then.
pub fn parse<'t>(file: FileId, text: &'t str, diags: &mut Diagnostics) -> Option<Value<'t>> {
    if let Some(at) = too_deep(text) {
        diags.push(
            Diagnostic::error("arrays and objects nest too deeply")
                .at(Span::new(file, at..at + 1))
                .label(format!("more than {MAX_DEPTH} levels of `[` / `{{` here"))
                .help(format!("kvform reads at most {MAX_DEPTH} nested levels; flatten the document")),
        );
        return None;
    }
    let options =
        ParseOptions { allow_comments: false, allow_loose_object_property_names: false, allow_trailing_commas: false };
    match jsonc_parser::parse_to_ast(text, &CollectOptions::default(), &options) {
        Ok(result) => match result.value {
            Some(v) => Some(v),
            None => {
                let end = text.len();
                diags.push(
                    Diagnostic::error("file holds no JSON value")
                        .at(Span::new(file, end..end))
                        .label("expected a JSON value")
                        .help("delete the empty file, or write the expected JSON document"),
                );
                None
            }
        },
        Err(e) => {
            diags.push(syntax_error(file, text, &e));
            None
        }
    }
}

/// The offset of the first `[` or `{` (outside strings) that opens level `MAX_DEPTH + 1`.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// A parse error as a diagnostic. Spans are clipped to one line; for an unterminated
/// array or object the caret goes where the file ends, with the opener as a second label.
fn syntax_error(file: FileId, text: &str, e: &jsonc_parser::errors::ParseError) -> Diagnostic {
    use jsonc_parser::errors::ParseErrorKind as K;
    let r = e.range();
    let kind = e.kind().to_string();
    let mut chars = kind.chars();
    let kind = chars.next().map(|c| c.to_lowercase().chain(chars).collect::<String>()).unwrap_or_default();
    let start = r.start.min(text.len());
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let end = r.end.clamp(start, line_end);
    let d = Diagnostic::error(format!("invalid JSON: {kind}"))
        .help("workspace JSON files are strict JSON: no comments, no trailing commas, property names in double quotes");
    match e.kind() {
        K::UnterminatedArray | K::UnterminatedObject => {
            let what = if *e.kind() == K::UnterminatedArray { ("array", ']') } else { ("object", '}') };
            let eof = text.trim_end().len();
            d.at(Span::new(file, eof..eof))
                .label(format!("the file ends here, expected `{}`", what.1))
                .also(Span::new(file, start..(start + 1).min(text.len())), format!("this {} is never closed", what.0))
        }
        _ => d.at(Span::new(file, start..end)).label(kind),
    }
}

/// What kind of JSON value this is, for "found …" in messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

/// A one-line fix for the common type mistakes (unquoted value, quoted number, a single
/// value where a list is expected).
fn type_help(v: &Value, expected: &str) -> Option<String> {
    let literal = match v {
        Value::NumberLit(n) => Some(n.value.to_string()),
        Value::BooleanLit(b) => Some(b.value.to_string()),
        _ => None,
    };
    match (expected, v) {
        ("a string", _) if literal.is_some() => Some(format!("put the value in double quotes: \"{}\"", literal?)),
        ("an array", Value::StringLit(s)) => {
            Some(format!("write a list: [{}]", serde_json::to_string(s.value.as_ref()).ok()?))
        }
        ("an integer", Value::StringLit(s)) if s.value.trim().parse::<i64>().is_ok() => {
            Some(format!("remove the quotes: {}", s.value.trim()))
        }
        ("an object", _) => Some("write a JSON object: { ... }".to_string()),
        _ => None,
    }
}

/// The span of a property's name (the key, quotes included).
pub fn key_range(p: &ObjectProp) -> std::ops::Range<usize> {
    let r = match &p.name {
        ObjectPropName::String(s) => s.range,
        ObjectPropName::Word(w) => w.range,
    };
    r.start..r.end
}

/// The diagnostics sink for one file, with span helpers.
pub struct Ctx<'d> {
    pub file: FileId,
    pub diags: &'d mut Diagnostics,
}

impl<'d> Ctx<'d> {
    pub fn new(file: FileId, diags: &'d mut Diagnostics) -> Self {
        Ctx { file, diags }
    }

    pub fn span(&self, r: &impl Ranged) -> Span {
        let r = r.range();
        Span::new(self.file, r.start..r.end)
    }

    pub fn key_span(&self, p: &ObjectProp) -> Span {
        Span::new(self.file, key_range(p))
    }

    /// The first character of a value (an object's `{`): a one-caret location for
    /// problems about the value as a whole, such as a missing field.
    pub fn open_span(&self, r: &impl Ranged) -> Span {
        let s = r.start();
        Span::new(self.file, s..s + 1)
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Report a wrong type at `v`, with a fix derived from what was written.
    pub fn type_error(&mut self, v: &Value, path: &str, expected: &str) {
        let help = type_help(v, expected);
        self.type_error_with(v, path, expected, help);
    }

    pub fn type_error_with(&mut self, v: &Value, path: &str, expected: &str, help: Option<String>) {
        let mut d = Diagnostic::error(format!("`{path}` must be {expected}, found {}", kind(v)))
            .at(self.span(v))
            .label(format!("expected {expected}"));
        if let Some(h) = help {
            d = d.help(h);
        }
        self.push(d);
    }

    /// The properties of `obj` whose names are in `known` (first occurrence each, in
    /// file order). Unknown names and repeated names are reported.
    pub fn fields<'a, 'b>(&mut self, obj: &'b Object<'a>, context: &str, known: &[&str]) -> Vec<&'b ObjectProp<'a>> {
        let mut seen: Vec<&'b ObjectProp<'a>> = Vec::new();
        for p in &obj.properties {
            let name = p.name.as_str();
            if let Some(first) = seen.iter().find(|f| f.name.as_str() == name) {
                let d = Diagnostic::error(format!("duplicate field `{name}` in {context}"))
                    .at(self.key_span(p))
                    .label("written a second time here")
                    .also(self.key_span(first), "first written here")
                    .help("keep one of the two");
                self.push(d);
            } else if known.contains(&name) {
                seen.push(p);
            } else {
                let help = hint(name, known).unwrap_or_else(|| format!("accepted fields: {}", known.join(", ")));
                let d = Diagnostic::error(format!("unknown field `{name}` in {context}"))
                    .at(self.key_span(p))
                    .label("unknown field")
                    .help(help);
                self.push(d);
            }
        }
        seen
    }

    /// Distinct keys of a free-form object (tags, ports, commands); repeated keys reported.
    pub fn unique_props<'a, 'b>(&mut self, obj: &'b Object<'a>, context: &str) -> Vec<&'b ObjectProp<'a>> {
        let mut seen: Vec<&'b ObjectProp<'a>> = Vec::new();
        for p in &obj.properties {
            let name = p.name.as_str();
            if let Some(first) = seen.iter().find(|f| f.name.as_str() == name) {
                let d = Diagnostic::error(format!("duplicate key `{name}` in {context}"))
                    .at(self.key_span(p))
                    .label("written a second time here")
                    .also(self.key_span(first), "first written here")
                    .help("keep one of the two");
                self.push(d);
            } else {
                seen.push(p);
            }
        }
        seen
    }

    pub fn string(&mut self, v: &Value, path: &str) -> Option<Spanned<String>> {
        match v {
            Value::StringLit(s) => Some(Spanned::new(s.value.to_string(), self.span(v))),
            _ => {
                self.type_error(v, path, "a string");
                None
            }
        }
    }

    /// A string, trimmed, that must not be empty.
    pub fn nonempty_string(&mut self, v: &Value, path: &str) -> Option<Spanned<String>> {
        let s = self.string(v, path)?;
        let trimmed = s.value.trim();
        if trimmed.is_empty() {
            let d = Diagnostic::error(format!("`{path}` must not be empty"))
                .at(s.span)
                .label("empty string")
                .help(format!("write a value or remove `{}`", path.rsplit('.').next().unwrap_or(path)));
            self.push(d);
            return None;
        }
        Some(Spanned::new(trimmed.to_string(), s.span))
    }

    pub fn object<'a, 'b>(&mut self, v: &'b Value<'a>, path: &str) -> Option<&'b Object<'a>> {
        match v {
            Value::Object(o) => Some(o),
            _ => {
                self.type_error(v, path, "an object");
                None
            }
        }
    }

    pub fn array<'a, 'b>(&mut self, v: &'b Value<'a>, path: &str) -> Option<&'b Array<'a>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.type_error(v, path, "an array");
                None
            }
        }
    }

    /// Every element of an array of strings, trimmed; non-strings and empty strings reported.
    pub fn string_list(&mut self, v: &Value, path: &str) -> Option<Vec<Spanned<String>>> {
        let arr = self.array(v, path)?;
        let mut out = Vec::new();
        for (i, el) in arr.elements.iter().enumerate() {
            if let Some(s) = self.nonempty_string(el, &format!("{path}[{i}]")) {
                out.push(s);
            }
        }
        Some(out)
    }

    /// An integer in `min..=max`; `range_help` explains the range when it is violated.
    pub fn integer(&mut self, v: &Value, path: &str, min: i64, max: i64, range_help: &str) -> Option<i64> {
        let Value::NumberLit(n) = v else {
            self.type_error(v, path, "an integer");
            return None;
        };
        let Ok(i) = n.value.parse::<i64>() else {
            let d = Diagnostic::error(format!("`{path}` must be an integer, found `{}`", n.value))
                .at(self.span(v))
                .label("not an integer")
                .help("write a whole number without a fraction or exponent");
            self.push(d);
            return None;
        };
        if i < min || i > max {
            let range =
                if max >= i64::from(u32::MAX) { format!("at least {min}") } else { format!("between {min} and {max}") };
            let d = Diagnostic::error(format!("`{path}` must be {range}, found {i}"))
                .at(self.span(v))
                .label("out of range")
                .help(range_help);
            self.push(d);
            return None;
        }
        Some(i)
    }

    /// A count field (`u32`, at least `min`).
    pub fn count(&mut self, v: &Value, path: &str, min: u32, range_help: &str) -> Option<u32> {
        self.integer(v, path, i64::from(min), i64::from(u32::MAX), range_help).map(|i| i as u32)
    }

    /// A memory or CPU quantity: a string with an optional unit, or a bare JSON number.
    pub fn quantity(&mut self, v: &Value, path: &str, q: Quantity) -> Option<Spanned<f64>> {
        let result = match v {
            Value::StringLit(s) => units::parse(q, &s.value),
            Value::NumberLit(n) => match n.value.parse::<f64>() {
                Ok(f) => units::from_number(q, n.value, f),
                Err(_) => Err(units::UnitError::BadNumber(n.value.to_string())),
            },
            _ => {
                let example = match q {
                    Quantity::Memory => r#""4 gb" or 4096"#,
                    Quantity::Cpu => r#""2.4 ghz" or 2400"#,
                };
                self.type_error_with(
                    v,
                    path,
                    "a string or a number",
                    Some(format!("write a quantity such as {example}")),
                );
                return None;
            }
        };
        match result {
            Ok(x) => Some(Spanned::new(x, self.span(v))),
            Err(e) => {
                let d = units::diagnostic(q, path, &e, self.span(v));
                self.push(d);
                None
            }
        }
    }
}
