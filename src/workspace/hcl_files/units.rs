//! Resource quantities in bucket.jobs blocks: `memory = "512 mb"`, `cpu = "2.4 ghz"`.
//!
//! The unit table is data: one row per accepted unit with its factor to the base unit (MB
//! for memory, MHz for cpu). Units are case-insensitive, the space before the unit is
//! optional, and a bare number means the base unit. Negative numbers, exponents and any
//! other unit are rejected with a message naming the accepted units.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quantity {
    Memory,
    Cpu,
}

/// (quantity, unit, factor to the base unit). The first unit of each quantity is its base.
const UNITS: &[(Quantity, &str, f64)] = &[
    (Quantity::Memory, "mb", 1.0),
    (Quantity::Memory, "gb", 1024.0),
    (Quantity::Memory, "tb", 1024.0 * 1024.0),
    (Quantity::Cpu, "mhz", 1.0),
    (Quantity::Cpu, "ghz", 1000.0),
    (Quantity::Cpu, "thz", 1_000_000.0),
];

impl Quantity {
    pub(super) fn noun(self) -> &'static str {
        match self {
            Quantity::Memory => "memory size",
            Quantity::Cpu => "cpu speed",
        }
    }

    fn units(self) -> impl Iterator<Item = (&'static str, f64)> {
        UNITS.iter().filter(move |(q, _, _)| *q == self).map(|(_, u, f)| (*u, *f))
    }

    /// "accepted units: mb, gb, tb (a bare number means mb)"
    pub(super) fn accepted(self) -> String {
        let units: Vec<&str> = self.units().map(|(u, _)| u).collect();
        format!("accepted units: {} (a bare number means {})", units.join(", "), units[0])
    }
}

/// The amount in the base unit (MB or MHz), or `None` when `text` is not a plain
/// non-negative decimal followed by an accepted unit.
pub(super) fn parse(quantity: Quantity, text: &str) -> Option<f64> {
    let text = text.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let well_formed =
        !number.is_empty() && !number.starts_with('.') && !number.ends_with('.') && number.matches('.').count() <= 1;
    if !well_formed {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let factor = if unit.is_empty() { 1.0 } else { quantity.units().find(|(u, _)| *u == unit)?.1 };
    // Round away binary noise (`0.1 gb` * 1024) so store values stay short decimals.
    let v = (n * factor * 1e6).round() / 1e6;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::{Quantity::*, parse};

    #[test]
    fn memory() {
        assert_eq!(parse(Memory, "512 mb"), Some(512.0));
        assert_eq!(parse(Memory, "4 GB"), Some(4096.0));
        assert_eq!(parse(Memory, "1tb"), Some(1_048_576.0));
        assert_eq!(parse(Memory, "8192"), Some(8192.0));
        assert_eq!(parse(Memory, "1.5 gb"), Some(1536.0));
        for bad in ["512 kb", "-1 gb", "1.2.3", "1e3", "gb", "", ".5 gb", "5. gb", "2 ghz"] {
            assert_eq!(parse(Memory, bad), None, "{bad}");
        }
    }

    #[test]
    fn cpu() {
        assert_eq!(parse(Cpu, "1500 mhz"), Some(1500.0));
        assert_eq!(parse(Cpu, "2.4 GHz"), Some(2400.0));
        assert_eq!(parse(Cpu, "1 thz"), Some(1_000_000.0));
        assert_eq!(parse(Cpu, "100"), Some(100.0));
        for bad in ["100 hz", "1 gb", "-1", "fast"] {
            assert_eq!(parse(Cpu, bad), None, "{bad}");
        }
        assert_eq!(Cpu.accepted(), "accepted units: mhz, ghz, thz (a bare number means mhz)");
    }
}
