//! The one place that reads the wall clock. `KVFORM_NOW` (RFC 3339 or unix seconds)
//! fixes it, so plans with TTL expiry are reproducible in tests and goldens.

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
}
