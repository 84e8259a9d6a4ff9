//! The one conversion from an HCL expression to the string the store keeps (SPEC §2):
//!
//! | HCL | store value |
//! |---|---|
//! | string (quoted or heredoc, no interpolation) | the text as written, trimmed |
//! | number (`-` allowed) | plain decimal: `24576`, `1.5`, never exponent form |
//! | `true` / `false` | `true` / `false` |
//! | list / object | compact canonical JSON, object keys sorted at every level |
//!
//! The store type of each ([`literal_type`]): `string`, `number`, `boolean`, `json`.
//!
//! kvform does not *evaluate* HCL: references, function calls, operators, conditionals,
//! `for` expressions and `${…}` interpolation are errors at the expression, so what the
//! operator reads in the file is exactly what lands in the store. A top-level `null` is an
//! error too (there is no "no value" key); inside a list or object it is JSON `null`.
//! Strings nested in lists and objects are kept verbatim (only the top level is trimmed).

use super::span_of;
use crate::diag::{Diagnostic, FileId};
use crate::kv::KvType;
use crate::kv::value::decimal;
use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::template::Element;
use hcl::edit::{Formatted, Number, Span as _};
use std::collections::BTreeMap;

/// Convert an attribute value to its store string. The error points at the offending
/// (sub-)expression.
pub fn literal_value(expr: &Expression, file: FileId) -> Result<String, Diagnostic> {
    match expr {
        Expression::Null(_) => Err(Diagnostic::error("`null` is not a value kvform can store")
            .at(span_of(expr, file))
            .label("null")
            .help("remove the attribute, or write an empty string \"\"")),
        Expression::String(s) => Ok(s.value().trim().to_string()),
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            Ok(template_text(expr, file)?.trim().to_string())
        }
        Expression::Array(_) | Expression::Object(_) => {
            let mut out = String::new();
            write_json(expr, file, &mut out)?;
            Ok(out)
        }
        _ => Ok(scalar(expr, file)?),
    }
}

/// The store type of an attribute value (SPEC §9 "workspace keys are typed from HCL"): what
/// the HCL literal is, not what its text looks like (`"42"` stays a string). Only called on
/// expressions [`literal_value`] accepted.
pub fn literal_type(expr: &Expression) -> KvType {
    match expr {
        Expression::Bool(_) => KvType::Boolean,
        Expression::Number(_) => KvType::Number,
        Expression::UnaryOp(op) if op.expr.is_number() => KvType::Number,
        Expression::Array(_) | Expression::Object(_) => KvType::Json,
        Expression::Parenthesis(p) => literal_type(p.inner()),
        _ => KvType::String,
    }
}

/// An integer literal (`42`, `-3`); `Err` carries a description of what was written instead
/// (`"a string"`, `"a fraction"` …) for the caller's message.
pub fn integer(expr: &Expression) -> Result<i128, &'static str> {
    match expr {
        Expression::Number(n) => number_integer(n.value()).ok_or("a fraction"),
        Expression::UnaryOp(op) if op.operator.value().as_str() == "-" => match &op.expr {
            Expression::Number(n) => number_integer(n.value()).map(|i| -i).ok_or("a fraction"),
            other => Err(kind(other)),
        },
        Expression::Parenthesis(p) => integer(p.inner()),
        other => Err(kind(other)),
    }
}

/// What kind of expression this is, for messages ("`max_versions` must be an integer, not
/// a string").
pub fn kind(expr: &Expression) -> &'static str {
    match expr {
        Expression::Null(_) => "null",
        Expression::Bool(_) => "a bool",
        Expression::Number(_) => "a number",
        Expression::String(_) => "a string",
        Expression::Array(_) => "a list",
        Expression::Object(_) => "an object",
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => "a string",
        Expression::Parenthesis(p) => kind(p.inner()),
        Expression::Variable(_) | Expression::Traversal(_) => "a reference",
        Expression::FuncCall(_) => "a function call",
        Expression::Conditional(_) => "a conditional",
        Expression::UnaryOp(op) if op.operator.value().as_str() == "-" && op.expr.is_number() => "a number",
        Expression::UnaryOp(_) | Expression::BinaryOp(_) => "an operation",
        Expression::ForExpr(_) => "a `for` expression",
    }
}

/// The text of a string literal, quoted or heredoc, when it has no interpolation. `None`
/// for every other expression. Not trimmed.
pub fn string_text(expr: &Expression, file: FileId) -> Option<Result<String, Diagnostic>> {
    match expr {
        Expression::String(s) => Some(Ok(s.value().clone())),
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => Some(template_text(expr, file)),
        Expression::Parenthesis(p) => string_text(p.inner(), file),
        _ => None,
    }
}

fn number_integer(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else {
        n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e30).map(|f| f as i128)
    }
}

/// The store text of a number literal: the digits as written, never rounded through a
/// float (`123456789012345678901234567890` stays exactly that), in plain decimal form
/// (`1e3` -> `1000`, `2.50` -> `2.5`). A number beyond a double's range (`1e400`) is an
/// error: it is almost certainly a typo, and its plain form would be hundreds of digits.
fn number_text(expr: &Expression, n: &Formatted<Number>, file: FileId) -> Result<String, Diagnostic> {
    let Some(repr) = n.as_repr().map(|r| r.to_string()).filter(|r| !r.trim().is_empty()) else {
        // A number without its source text (not from the parser): the value is all there is.
        return Ok(match number_integer(n.value()) {
            Some(i) if n.value().as_i64().is_some() || n.value().as_u64().is_some() => i.to_string(),
            _ => decimal(n.value().as_f64().unwrap_or(0.0)),
        });
    };
    exact_decimal(&repr).map_err(|why| {
        Diagnostic::error(format!("the number `{}` {why}", repr.trim())).at(span_of(expr, file)).label(why).help(
            "numbers are stored as plain decimals; write one within ±1.7e308, or quote it to store the text as written",
        )
    })
}

/// `repr` (an HCL number literal, maybe with a leading `-`) as a plain decimal string.
pub(crate) fn exact_decimal(repr: &str) -> Result<String, &'static str> {
    let text = repr.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let magnitude: f64 = text.parse().map_err(|_| "is not a number")?;
    if !magnitude.is_finite() {
        return Err("is too large to store");
    }
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().map_err(|_| "has an invalid exponent")?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    if magnitude == 0.0 && digits.bytes().any(|b| b != b'0') {
        return Err("is too small to store (it is not zero, but below ±2.2e-308)");
    }
    // Where the decimal point falls in `digits` once the exponent is applied.
    let point = int.len() as i64 + exponent;
    let (whole, fraction) = if point <= 0 {
        (String::from("0"), format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)))
    } else if point as usize >= digits.len() {
        (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
    } else {
        (digits[..point as usize].to_string(), digits[point as usize..].to_string())
    };
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    let mut out = String::new();
    if negative && (whole != "0" || !fraction.is_empty()) {
        out.push('-');
    }
    out.push_str(whole);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    Ok(out)
}

/// Numbers, bools and the non-literal expressions (which are errors).
fn scalar(expr: &Expression, file: FileId) -> Result<String, Diagnostic> {
    match expr {
        Expression::Bool(b) => Ok(b.value().to_string()),
        Expression::Number(n) => number_text(expr, n, file),
        Expression::UnaryOp(op) if op.operator.value().as_str() == "-" => match &op.expr {
            Expression::Number(n) => {
                let text = number_text(expr, n, file)?;
                Ok(if text == "0" { text } else { format!("-{text}") })
            }
            _ => Err(not_literal(expr, file)),
        },
        Expression::Parenthesis(p) => literal_value(p.inner(), file),
        _ => Err(not_literal(expr, file)),
    }
}

fn template_text(expr: &Expression, file: FileId) -> Result<String, Diagnostic> {
    match expr {
        Expression::StringTemplate(t) => literal_elements(t.iter(), file),
        Expression::HeredocTemplate(h) => {
            // `<<-EOT` strips the common indentation; do it on a copy.
            let mut h = (**h).clone();
            h.dedent();
            literal_elements(h.template.iter(), file)
        }
        _ => Ok(String::new()),
    }
}

fn literal_elements<'a>(elements: impl Iterator<Item = &'a Element>, file: FileId) -> Result<String, Diagnostic> {
    let mut out = String::new();
    for e in elements {
        match e.as_literal() {
            Some(lit) => out.push_str(lit.value()),
            None => return Err(interpolation(e, file)),
        }
    }
    Ok(out)
}

fn interpolation(e: &Element, file: FileId) -> Diagnostic {
    let span = super::range_span(e.span(), file);
    Diagnostic::error("string interpolation is not supported")
        .at(span)
        .label("kvform does not evaluate `${…}` or `%{…}`")
        .help("write the value itself; to keep a literal `${` or `%{` in the text, escape it as `$${` or `%%{`")
}

fn not_literal(expr: &Expression, file: FileId) -> Diagnostic {
    let what = kind(expr);
    Diagnostic::error(format!("expected a literal value, found {what}"))
        .at(span_of(expr, file))
        .label(format!("{what} is not evaluated"))
        .help("kvform stores values as written and does not evaluate HCL expressions; write a string, number, bool, list or object literal")
}

/// Compact canonical JSON: no whitespace, object keys sorted, numbers as plain decimals.
fn write_json(expr: &Expression, file: FileId, out: &mut String) -> Result<(), Diagnostic> {
    match expr {
        Expression::Null(_) => out.push_str("null"),
        Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            let text = match string_text(expr, file) {
                Some(r) => r?,
                None => String::new(),
            };
            push_json_string(&text, out);
        }
        Expression::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, file, out)?;
            }
            out.push(']');
        }
        Expression::Object(o) => {
            // The parser rejects repeated keys, but `a` and `"a"` are different keys to it
            // and the same JSON key.
            let mut entries: BTreeMap<String, &Expression> = BTreeMap::new();
            for (key, value) in o.iter() {
                let name = object_key(key, file)?;
                if entries.insert(name.clone(), value.expr()).is_some() {
                    return Err(Diagnostic::error(format!("duplicate object key `{name}`"))
                        .at(super::range_span(key.span(), file))
                        .label("written again here")
                        .help("each key may appear only once; remove one of them"));
                }
            }
            out.push('{');
            for (i, (name, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&name, out);
                out.push(':');
                write_json(value, file, out)?;
            }
            out.push('}');
        }
        _ => out.push_str(&scalar(expr, file)?),
    }
    Ok(())
}

fn object_key(key: &ObjectKey, file: FileId) -> Result<String, Diagnostic> {
    match key {
        ObjectKey::Ident(id) => Ok(id.value().as_str().to_string()),
        ObjectKey::Expression(e) => match e {
            Expression::Number(_) => scalar(e, file),
            _ => match string_text(e, file) {
                Some(r) => r,
                None => Err(not_literal(e, file)),
            },
        },
    }
}

fn push_json_string(s: &str, out: &mut String) {
    // serde_json's escaping is the canonical JSON string form.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(src: &str) -> Result<String, String> {
        let body = hcl::edit::parser::parse_body(&format!("v = {src}\n")).expect("parses");
        let attr = body.attributes().next().expect("one attribute");
        literal_value(&attr.value, 0).map_err(|d| d.message)
    }

    #[test]
    fn strings_are_trimmed_as_written() {
        assert_eq!(conv(r#""  info ""#).unwrap(), "info");
        assert_eq!(conv(r#""a\tb""#).unwrap(), "a\tb");
        assert_eq!(conv(r#""cost: $${x}""#).unwrap(), "cost: ${x}");
        assert_eq!(conv("<<EOT\n  line one\nline two\nEOT").unwrap(), "line one\nline two");
        assert_eq!(conv("<<-EOT\n    a\n      b\n    EOT").unwrap(), "a\n  b");
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(conv("24576").unwrap(), "24576");
        assert_eq!(conv("1.5").unwrap(), "1.5");
        assert_eq!(conv("-3").unwrap(), "-3");
        assert_eq!(conv("1e3").unwrap(), "1000");
        assert_eq!(conv("2.5e-1").unwrap(), "0.25");
        assert_eq!(conv("18446744073709551615").unwrap(), "18446744073709551615");
        assert_eq!(conv("-0").unwrap(), "0");
        assert_eq!(conv("007").unwrap(), "7");
        assert_eq!(conv("0.000").unwrap(), "0");
        assert_eq!(conv("1.25E+2").unwrap(), "125");
    }

    #[test]
    fn integers_keep_every_digit_and_out_of_range_numbers_are_errors() {
        // Before, these went through f64: 123456789012345680000000000000.
        assert_eq!(conv("123456789012345678901234567890").unwrap(), "123456789012345678901234567890");
        assert_eq!(conv("-123456789012345678901234567890").unwrap(), "-123456789012345678901234567890");
        assert_eq!(conv("0.1000000000000000055511151231257827").unwrap(), "0.1000000000000000055511151231257827");
        assert_eq!(conv("[18446744073709551616]").unwrap(), "[18446744073709551616]");
        assert_eq!(conv("1e-3").unwrap(), "0.001");
        assert_eq!(exact_decimal("1e400"), Err("is too large to store"));
        assert!(exact_decimal("1e-400").unwrap_err().contains("too small"));
    }

    #[test]
    fn bools() {
        assert_eq!(conv("true").unwrap(), "true");
        assert_eq!(conv("false").unwrap(), "false");
    }

    #[test]
    fn lists_and_objects_are_canonical_json() {
        assert_eq!(conv(r#"[ "a", 1, true, 1.50 ]"#).unwrap(), r#"["a",1,true,1.5]"#);
        assert_eq!(conv(r#"{ b = 1, a = "x" }"#).unwrap(), r#"{"a":"x","b":1}"#);
        assert_eq!(conv(r#"{ "z k" = null, 3 = [] }"#).unwrap(), r#"{"3":[],"z k":null}"#);
        assert_eq!(conv("[]").unwrap(), "[]");
        assert_eq!(conv("{}").unwrap(), "{}");
    }

    #[test]
    fn nested_values_sort_keys_at_every_level() {
        assert_eq!(
            conv(r#"{ y = [{ d = 1, c = [-2, " s "] }], x = { q = false, p = 1e2 } }"#).unwrap(),
            r#"{"x":{"p":100,"q":false},"y":[{"c":[-2," s "],"d":1}]}"#
        );
    }

    #[test]
    fn expressions_are_rejected() {
        assert!(conv("upper(\"a\")").unwrap_err().contains("function call"));
        assert!(conv("var.x").unwrap_err().contains("reference"));
        assert!(conv("x").unwrap_err().contains("reference"));
        assert!(conv("1 + 2").unwrap_err().contains("operation"));
        assert!(conv("!true").unwrap_err().contains("operation"));
        assert!(conv("true ? 1 : 2").unwrap_err().contains("conditional"));
        assert!(conv("[for x in [1] : x]").unwrap_err().contains("for"));
        assert!(conv(r#""a ${b}""#).unwrap_err().contains("interpolation"));
        assert!(conv(r#"[1, "${b}"]"#).unwrap_err().contains("interpolation"));
        assert!(conv("null").unwrap_err().contains("null"));
        assert!(conv(r#"{ a = 1, "a" = 2 }"#).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn integers() {
        let int = |src: &str| {
            let body = hcl::edit::parser::parse_body(&format!("v = {src}\n")).unwrap();
            integer(&body.attributes().next().unwrap().value)
        };
        assert_eq!(int("10"), Ok(10));
        assert_eq!(int("-1"), Ok(-1));
        assert_eq!(int("2.5"), Err("a fraction"));
        assert_eq!(int("\"10\""), Err("a string"));
    }
}
