//! Capacity and reservation units: the one table that says which unit suffixes exist and
//! what they are worth.
//!
//! Memory is counted in MB and CPU in MHz (SPEC §2). Memory units are binary
//! (`1 gb` = 1024 MB, as maand counts them), and the IEC spellings say the same thing:
//! `mib` = `mb`, `gib` = `gb`, `tib` = `tb`. CPU units are decimal (`1 ghz` = 1000 MHz).
//! A bare number means the base unit. Suffixes are case-insensitive; whitespace between
//! the number and the suffix is optional. Used by workers.json, manifest.json resources and
//! the bucket.jobs reservations, so every file accepts exactly the same spellings and
//! reports a bad one with the same words ([`diagnostic`]).
//!
//! Byte sizes (`kvform.hcl`'s `limits { max_file_size }`, [`parse_bytes`]) use the same
//! vocabulary, binary too: `kb` = `kib` = 1024 bytes, `mb` = `mib`, `gb` = `gib`.

use crate::diag::{Diagnostic, Span};

/// Which kind of quantity a value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Megabytes.
    Memory,
    /// Megahertz.
    Cpu,
}

/// `(suffix, factor to the base unit)`; the first entry is the base unit.
const MEMORY_UNITS: &[(&str, f64)] =
    &[("mb", 1.0), ("gb", 1024.0), ("tb", 1024.0 * 1024.0), ("mib", 1.0), ("gib", 1024.0), ("tib", 1024.0 * 1024.0)];
const CPU_UNITS: &[(&str, f64)] = &[("mhz", 1.0), ("ghz", 1000.0), ("thz", 1_000_000.0)];

impl Quantity {
    pub fn units(self) -> &'static [(&'static str, f64)] {
        match self {
            Quantity::Memory => MEMORY_UNITS,
            Quantity::Cpu => CPU_UNITS,
        }
    }

    /// The base unit as written in messages (`MB`, `MHz`).
    pub fn base_unit(self) -> &'static str {
        match self {
            Quantity::Memory => "MB",
            Quantity::Cpu => "MHz",
        }
    }

    /// `memory` / `cpu`, as the field is called.
    pub fn field(self) -> &'static str {
        match self {
            Quantity::Memory => "memory",
            Quantity::Cpu => "cpu",
        }
    }

    /// The accepted suffixes, comma-separated (`mb, gb, tb`).
    pub fn unit_list(self) -> String {
        self.units().iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", ")
    }

    /// One-line description of what is accepted, for error hints.
    pub fn accepted(self) -> String {
        let units: Vec<&str> = self.units().iter().map(|(u, _)| *u).collect();
        let example = match self {
            Quantity::Memory => "\"4 gb\"",
            Quantity::Cpu => "\"2.4 ghz\"",
        };
        format!(
            "write a non-negative number with one of the units {} (case-insensitive), e.g. {example}, \
             or a bare number of {}",
            units.join(", "),
            self.base_unit()
        )
    }

    /// ECMA-262 regular expression for the string form (used by the JSON Schemas, which
    /// cannot express case-insensitivity with a flag).
    pub fn schema_pattern(self) -> String {
        let alts: Vec<String> = self
            .units()
            .iter()
            .map(|(u, _)| u.chars().map(|c| format!("[{}{}]", c, c.to_ascii_uppercase())).collect())
            .collect();
        format!(r"^\s*[0-9]+(\.[0-9]+)?\s*({})?\s*$", alts.join("|"))
    }
}

/// Why a quantity could not be parsed. The caller turns it into a diagnostic with
/// [`Quantity::accepted`] as the hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("negative value")]
    Negative,
    #[error("no number before the unit")]
    NoNumber,
    #[error("`{0}` is not a number")]
    BadNumber(String),
    #[error("unknown {1} unit `{0}`")]
    UnknownUnit(String, &'static str),
    #[error("`{0}` is too large (at most {max} {1})", max = MAX_QUANTITY)]
    TooLarge(String, &'static str),
}

/// The largest quantity in the base unit: the largest integer a double holds exactly
/// (2^53). Larger ones used to saturate silently when counted.
pub const MAX_QUANTITY: u64 = 1 << 53;

/// Parse `"4 gb"`, `"2.4GHz"`, `"512"` into the base unit (MB or MHz).
pub fn parse(q: Quantity, text: &str) -> Result<f64, UnitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    if s.starts_with('-') {
        return Err(UnitError::Negative);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    if num.is_empty() {
        return Err(UnitError::NoNumber);
    }
    let value = parse_number(num).ok_or_else(|| UnitError::BadNumber(num.to_string()))?;
    if unit.is_empty() {
        return within_range(q, s, value);
    }
    let unit_lc = unit.to_ascii_lowercase();
    let factor = q
        .units()
        .iter()
        .find(|(u, _)| *u == unit_lc)
        .map(|(_, factor)| *factor)
        .ok_or_else(|| UnitError::UnknownUnit(unit.to_string(), q.field()))?;
    // Round away binary noise (`4.35 ghz` * 1000 = 4349.999…) so store values stay short
    // decimals; a millionth of a MB or MHz is far below anything meaningful.
    within_range(q, s, (value * factor * 1e6).round() / 1e6)
}

fn within_range(q: Quantity, text: &str, value: f64) -> Result<f64, UnitError> {
    if value > MAX_QUANTITY as f64 { Err(UnitError::TooLarge(text.to_string(), q.base_unit())) } else { Ok(value) }
}

/// The one diagnostic for a quantity that does not parse, in every file:
/// "invalid `<what>`: <why>", the accepted units as the label and [`Quantity::accepted`]
/// as the help.
pub fn diagnostic(q: Quantity, what: &str, err: &UnitError, at: Span) -> Diagnostic {
    Diagnostic::error(format!("invalid `{what}`: {err}"))
        .at(at)
        .label(format!("accepted units: {}", q.unit_list()))
        .help(q.accepted())
}

/// A JSON number used as a quantity: a bare number of the base unit (`text` as written).
pub fn from_number(q: Quantity, text: &str, n: f64) -> Result<f64, UnitError> {
    if n < 0.0 {
        Err(UnitError::Negative)
    } else if !n.is_finite() {
        Err(UnitError::TooLarge(text.to_string(), q.base_unit()))
    } else {
        within_range(q, text, n)
    }
}

/// Suffixes of a size in bytes (`kvform.hcl`'s `max_file_size`): binary on both spellings,
/// as memory is. The first entry is the base unit.
pub const BYTE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1 << 10),
    ("mb", 1 << 20),
    ("gb", 1 << 30),
    ("tb", 1 << 40),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Bytes of `64 MiB`, `64 mb`, `512kib`, `1 GiB`, `100 b` or a bare number of bytes (a whole
/// number; `None` for anything else or an overflow).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor = if unit.is_empty() { 1 } else { BYTE_UNITS.iter().find(|(u, _)| *u == unit)?.1 };
    number.checked_mul(factor)
}

/// Digits with at most one decimal point, at least one digit on each side of it.
fn parse_number(num: &str) -> Option<f64> {
    let mut parts = num.split('.');
    let int = parts.next()?;
    let frac = parts.next();
    if parts.next().is_some() || int.is_empty() || frac.is_some_and(str::is_empty) {
        return None;
    }
    num.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        let cases = [
            ("8192 mb", 8192.0),
            ("4 gb", 4096.0),
            ("4GB", 4096.0),
            ("1 tb", 1048576.0),
            ("1.5 Gb", 1536.0),
            ("512", 512.0),
            ("  256  ", 256.0),
            ("0", 0.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse(Quantity::Memory, text), Ok(want), "{text}");
        }
    }

    /// IEC spellings mean what the short ones mean, in memory and in byte sizes (a manifest
    /// used to refuse `"512 mib"` while kvform.hcl took `"64 MiB"`).
    #[test]
    fn iec_and_short_spellings_agree() {
        for (iec, short) in [("512 mib", "512 mb"), ("4 GiB", "4 gb"), ("1.5gib", "1.5 gb"), ("1 TiB", "1 tb")] {
            assert_eq!(parse(Quantity::Memory, iec), parse(Quantity::Memory, short), "{iec}");
            assert!(parse(Quantity::Memory, iec).is_ok(), "{iec}");
        }
        assert_eq!(parse(Quantity::Memory, "512 MiB"), Ok(512.0));
        assert_eq!(parse(Quantity::Memory, "1 gib"), Ok(1024.0));
        for (iec, short, bytes) in [
            ("64 MiB", "64 mb", 64 << 20),
            ("512kib", "512kb", 512 << 10),
            ("1 GiB", "1 GB", 1 << 30),
            ("2 tib", "2 tb", 2 << 40),
        ] {
            assert_eq!(parse_bytes(iec), Some(bytes), "{iec}");
            assert_eq!(parse_bytes(short), Some(bytes), "{short}");
        }
        assert_eq!(parse_bytes("100 b"), Some(100));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1.5 mb"), None);
        assert_eq!(parse_bytes("4 mhz"), None);
        assert_eq!(parse_bytes("99999999999 tib"), None);
        assert_eq!(Quantity::Memory.unit_list(), "mb, gb, tb, mib, gib, tib");
    }

    #[test]
    fn cpu_units() {
        let cases =
            [("4000 mhz", 4000.0), ("2.4 ghz", 2400.0), ("4.35 ghz", 4350.0), ("1 THz", 1_000_000.0), ("1500", 1500.0)];
        for (text, want) in cases {
            assert_eq!(parse(Quantity::Cpu, text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(parse(Quantity::Memory, ""), Err(UnitError::Empty));
        assert_eq!(parse(Quantity::Memory, "  "), Err(UnitError::Empty));
        assert_eq!(parse(Quantity::Memory, "-1 gb"), Err(UnitError::Negative));
        assert_eq!(parse(Quantity::Memory, "1.2.3"), Err(UnitError::BadNumber("1.2.3".into())));
        assert_eq!(parse(Quantity::Memory, "1."), Err(UnitError::BadNumber("1.".into())));
        assert_eq!(parse(Quantity::Memory, ".5"), Err(UnitError::BadNumber(".5".into())));
        assert_eq!(parse(Quantity::Memory, "gb"), Err(UnitError::NoNumber));
        assert_eq!(parse(Quantity::Memory, "4 kb"), Err(UnitError::UnknownUnit("kb".into(), "memory")));
        assert_eq!(parse(Quantity::Memory, "4 mhz"), Err(UnitError::UnknownUnit("mhz".into(), "memory")));
        assert_eq!(parse(Quantity::Cpu, "100 hz"), Err(UnitError::UnknownUnit("hz".into(), "cpu")));
        assert_eq!(parse(Quantity::Cpu, "1e3"), Err(UnitError::UnknownUnit("e3".into(), "cpu")));
        assert_eq!(from_number(Quantity::Cpu, "-2", -2.0), Err(UnitError::Negative));
        assert_eq!(from_number(Quantity::Cpu, "2.5", 2.5), Ok(2.5));
        assert_eq!(from_number(Quantity::Cpu, "1e400", f64::INFINITY), Err(UnitError::TooLarge("1e400".into(), "MHz")));
        // Before, this overflowed silently when counted.
        assert_eq!(
            parse(Quantity::Cpu, "18446744073709551616 thz"),
            Err(UnitError::TooLarge("18446744073709551616 thz".into(), "MHz"))
        );
    }

    #[test]
    fn schema_pattern_matches_the_parser() {
        let re = regex::Regex::new(&Quantity::Memory.schema_pattern()).unwrap();
        for ok in ["4 gb", "4GB", "512", "1.5 Tb", "512 MiB", "2gib"] {
            assert!(re.is_match(ok), "{ok}");
            assert!(parse(Quantity::Memory, ok).is_ok(), "{ok}");
        }
        for bad in ["4 kb", "-1", "1.2.3", "", "gb"] {
            assert!(!re.is_match(bad), "{bad}");
            assert!(parse(Quantity::Memory, bad).is_err(), "{bad}");
        }
    }
}
