//! The one place that reads the wall clock. `KVFORM_NOW` (RFC 3339 or unix seconds)
//! fixes it, so plans with TTL expiry are reproducible in tests and goldens.
//!
//! [`now`] is called by the CLI's `Session` only, once per command; every layer below takes
//! that value. A `KVFORM_NOW` that does not parse is an error, never a fallback.
//!
//! [`parse_duration`] is the one duration syntax (`--ttl`, `--lock-timeout`,
//! `hooks { timeout }`), as SPEC §7 documents it.

#[derive(Debug, thiserror::Error)]
#[error("KVFORM_NOW={value:?} is not a time\n  help: use RFC 3339 (2026-01-02T03:04:05Z) or unix seconds (1767323045)")]
pub struct BadClock {
    pub value: String,
}

/// Current time in unix seconds, honouring `KVFORM_NOW`.
pub fn now() -> Result<i64, BadClock> {
    match std::env::var("KVFORM_NOW") {
        Ok(v) if !v.trim().is_empty() => parse_time(&v).ok_or(BadClock { value: v }),
        _ => Ok(jiff::Timestamp::now().as_second()),
    }
}

/// Parse RFC 3339 or unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Whole seconds of `3600`, `30s`, `1h`, `90m`, `1h30m`, `1h 30m`, `7d`, `PT1H`, `P30D`
/// (days are 24 hours). `None` for anything else: negative, fractional seconds, garbage.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok();
    }
    let span: jiff::Span = s.parse().ok()?;
    let total = span.total(jiff::SpanTotal::from(jiff::Unit::Second).days_are_24_hours()).ok()?;
    if total < 0.0 || total.fract() != 0.0 || !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(total as u64)
}

/// Unix seconds as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("2026-01-02T03:04:05Z"), Some(1767323045));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(1767323045), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn one_duration_syntax() {
        for (s, want) in [
            ("3600", 3600),
            ("30s", 30),
            ("10m", 600),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("7d", 604800),
            ("PT90S", 90),
            ("P30D", 2592000),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(s), Some(want), "{s}");
        }
        for s in ["", "-5m", "1.5s", "ten minutes", "1x"] {
            assert_eq!(parse_duration(s), None, "{s}");
        }
    }
}
