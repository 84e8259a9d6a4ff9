//! HCL files: `kvform.hcl`, `bucket.conf`, `bucket.jobs[.<env>].conf`, `jobs/<job>/vars.hcl`.
//!
//! Every file is parsed with `hcl::edit::parser::parse_body`, which keeps the byte span of
//! each attribute, block and expression, and registered in the [`SourceMap`] under its
//! bucket-relative `/` path (`kvform.hcl`, `workspace/bucket.conf`,
//! `workspace/jobs/api/vars.hcl`) so diagnostics render identically on every machine.
//! A syntax error becomes one diagnostic at the parser's position; the file then
//! contributes nothing else. Nothing here panics on any input (see `tests/no_panic_hcl.rs`).
//!
//! Values go through one conversion, [`value::literal_value`] (SPEC §2): strings as
//! written (trimmed), numbers as plain decimals, bools, lists/objects as canonical JSON.
//! kvform never evaluates HCL expressions; anything that is not a literal is an error.
//!
//! Decisions where the spec is silent:
//! - `bucket.conf` yields a [`Var`] for every attribute *written*, `port_min`/`port_max`
//!   included. When they are not written, the pool default (30000–39999) applies to
//!   [`PortPool`] only; no `port_min`/`port_max` vars are invented, so `vars/bucket`
//!   mirrors the file exactly.
//! - Duplicate attribute names are errors in every file (HCL itself forbids them), as are
//!   duplicate `job` blocks and duplicate `state`/`hooks` blocks.
//! - `job_config_selector` is a file-name fragment, so it is limited to letters, digits,
//!   `_` and `-` (no path separators).
//! - When the selected bucket.jobs file is missing: no job configs if no other
//!   `bucket.jobs*.conf` exists, an error naming the expected file otherwise (a selector
//!   typo must not silently drop every reservation).

// `Result<_, Diagnostic>` is the natural shape for "a value or the problem with it"; the
// error path is cold and boxing every diagnostic would only add noise.
#![allow(clippy::result_large_err)]

mod bucket;
mod settings;
mod syntax;
pub mod value;

use super::types::{JobConfig, PortPool, Settings, Var};
use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
use hcl::edit::Span as _;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body, Structure};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

/// `kvform.hcl` (optional; defaults when missing).
pub use settings::set_state_attributes;

pub fn settings(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Settings {
    settings::load(root, sources, diags)
}

/// `workspace/bucket.conf`: every attribute (in file order, converted) and the port pool.
pub fn bucket_conf(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> (Vec<Var>, PortPool) {
    bucket::bucket_conf(root, sources, diags)
}

/// The bucket.jobs file chosen by `selector` ("" -> `bucket.jobs.conf`).
pub fn bucket_jobs(
    root: &Path,
    selector: &str,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> BTreeMap<String, JobConfig> {
    bucket::bucket_jobs(root, selector, sources, diags)
}

/// `workspace/jobs/<job>/vars.hcl` (optional).
pub fn job_vars(root: &Path, job: &str, sources: &mut SourceMap, diags: &mut Diagnostics) -> Vec<Var> {
    bucket::job_vars(root, job, sources, diags)
}

/// A parsed HCL file.
struct HclFile {
    file: FileId,
    body: Body,
}

/// Read, register and parse `root/<rel>`. `None` when the file does not exist (no
/// diagnostic) or could not be read or parsed (with a diagnostic).
fn read_hcl(root: &Path, rel: &str, sources: &mut SourceMap, diags: &mut Diagnostics) -> Option<HclFile> {
    let (file, text) = super::source::read(root, rel, sources, diags)?;
    match hcl::edit::parser::parse_body(&text) {
        Ok(body) => Some(HclFile { file, body }),
        Err(e) => {
            diags.push(syntax_error(&e, &text, file));
            None
        }
    }
}

fn syntax_error(e: &hcl::edit::parser::Error, text: &str, file: FileId) -> Diagnostic {
    let mut at = e.location().offset().min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    let msg = e.message();
    // hcl-edit reports a repeated attribute or object key as a parse error at the second
    // occurrence; say it in the operator's words.
    for (needle, what) in [("redefined attribute", "attribute"), ("redefined object key", "object key")] {
        if msg.contains(needle) {
            let name: String =
                text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-').collect();
            let end = at + name.len().max(end - at);
            return Diagnostic::error(format!("duplicate {what} `{name}`"))
                .at(Span::new(file, at..end))
                .label("written again here")
                .help(format!("each {what} may appear only once; remove one of them"));
        }
    }
    if let Some(d) = number_out_of_range(text, at, file) {
        return d;
    }
    if msg.contains("nesting depth") {
        return Diagnostic::error("lists and objects nest too deeply")
            .at(Span::new(file, at..end))
            .label("more than 64 levels of `[` / `{` here")
            .help("kvform reads at most 64 nested levels; flatten the value");
    }
    if let Some(u) = syntax::unbalanced(text) {
        let mut d = Diagnostic::error(u.message).at(Span::new(file, u.range)).label(u.label).help(u.help);
        if let Some(opened) = u.opened {
            d = d.also(Span::new(file, opened), "opened here");
        }
        return d;
    }
    let help = if at >= text.trim_end().len() {
        "the file ends early: check for an unclosed `{`, `[`, `(` or string"
    } else {
        "attributes are written `name = value`, blocks `name { … }`; strings need double quotes"
    };
    Diagnostic::error("invalid HCL syntax")
        .at(Span::new(file, at..end))
        .label(if msg.is_empty() { "unexpected input".to_string() } else { msg.to_string() })
        .help(help)
}

/// hcl-edit cannot represent a number beyond a double's range (`1e400`) and stops at its
/// exponent with "expected newline or eof"; name the real cause.
fn number_out_of_range(text: &str, at: usize, file: FileId) -> Option<Diagnostic> {
    let bytes = text.as_bytes();
    if at == 0 || !bytes[at - 1].is_ascii_digit() || !matches!(bytes.get(at), Some(b'e' | b'E')) {
        return None;
    }
    let start = text[..at].rfind(|c: char| !(c.is_ascii_digit() || c == '.')).map_or(0, |i| i + 1);
    let mut end = at + 1;
    if matches!(bytes.get(end), Some(b'+' | b'-')) {
        end += 1;
    }
    let digits = text[end..].find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len() - end);
    if digits == 0 {
        return None;
    }
    let number = &text[start..end + digits];
    let why = value::exact_decimal(number).err()?;
    Some(
        Diagnostic::error(format!("the number `{number}` {why}"))
            .at(Span::new(file, start..end + digits))
            .label(why)
            .help("numbers are stored as plain decimals; write one within ±1.7e308, or quote it to store the text as written"),
    )
}

/// The diagnostic span of a range reported by hcl-edit (always present for parsed input).
fn range_span(range: Option<Range<usize>>, file: FileId) -> Span {
    Span::new(file, range.unwrap_or(0..0))
}

fn span_of(expr: &Expression, file: FileId) -> Span {
    range_span(expr.span(), file)
}

fn key_span(attr: &Attribute, file: FileId) -> Span {
    range_span(attr.key.span(), file)
}

fn attr_span(attr: &Attribute, file: FileId) -> Span {
    range_span(attr.span(), file)
}

/// `job "api"`: the block identifier through its last label.
fn block_header_span(block: &Block, file: FileId) -> Span {
    let start = block.ident.span().map_or(0, |r| r.start);
    let end = block.labels.last().and_then(|l| l.span()).or_else(|| block.ident.span()).map_or(start, |r| r.end);
    Span::new(file, start..end)
}

/// The attributes of a body that must be flat (bucket.conf, vars.hcl, a job block),
/// each with its converted [`Var`]. Blocks and non-literal values are reported and
/// skipped. (Duplicate names never get here: the parser rejects them, see
/// [`syntax_error`].)
fn flat_vars<'b>(body: &'b Body, file: FileId, what: &str, diags: &mut Diagnostics) -> Vec<(Var, &'b Attribute)> {
    let mut out: Vec<(Var, &Attribute)> = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Block(block) => diags.push(
                Diagnostic::error(format!("blocks are not allowed in {what}"))
                    .at(block_header_span(block, file))
                    .label("this is a block")
                    .help(format!(
                        "{what} holds flat attributes only (`name = value`); to store an object write `{} = {{ … }}`",
                        block.ident.value().as_str()
                    )),
            ),
            Structure::Attribute(attr) => {
                let name = attr.key.value().as_str();
                match value::literal_value(&attr.value, file) {
                    Ok(v) => {
                        let kv_type = value::literal_type(&attr.value);
                        out.push((Var { name: name.to_string(), value: v, kv_type, span: attr_span(attr, file) }, attr))
                    }
                    Err(d) => diags.push(d),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_span_the_whole_attribute_and_keep_file_order() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("workspace")).unwrap();
        let text = "# pool\nport_max = 31000\n\nlog_level   = \"info\" # trailing\n";
        std::fs::write(tmp.path().join("workspace/bucket.conf"), text).unwrap();
        let (mut sources, mut diags) = (SourceMap::new(), Diagnostics::new());
        let (vars, pool) = bucket_conf(tmp.path(), &mut sources, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(sources.name(0), "workspace/bucket.conf");
        let spanned: Vec<&str> = vars.iter().map(|v| &text[v.span.range()]).collect();
        assert_eq!(spanned, ["port_max = 31000", "log_level   = \"info\""]);
        // Only what is written becomes a var; the unwritten bound keeps its default.
        assert_eq!(vars.len(), 2);
        assert_eq!(pool, PortPool { min: 30000, max: 31000 });
    }
}
