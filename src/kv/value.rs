//! Value formats written to the store: decimals without exponents, compact canonical JSON.

/// A number as the store writes it: integers without a fraction (`24576`), fractions
/// minimal (`1.5`), never in exponent form (SPEC §2).
pub fn decimal(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        return format!("{}", n as i128);
    }
    // Rust's `Display` for f64 never uses exponent form and prints the shortest
    // representation that round-trips.
    let s = format!("{n}");
    s
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimals_are_plain() {
        assert_eq!(decimal(24576.0), "24576");
        assert_eq!(decimal(1.5), "1.5");
        assert_eq!(decimal(0.1), "0.1");
        assert_eq!(decimal(-3.0), "-3");
        assert_eq!(decimal(1e20), "100000000000000000000");
        assert_eq!(decimal(2457.6), "2457.6");
    }
}
