//! Semver-like versions (`1`, `1.2`, `v1.2.3`, `2.0.0-rc1`) and the demand constraints
//! (`config.min_version` / `config.max_version`) that bound an upstream job's version.
//!
//! Decisions (SPEC §2 says "semver-like" and "bound"):
//! - Missing components are zero: `1` == `1.0` == `1.0.0`; a leading `v`/`V` is ignored;
//!   build metadata after `+` is ignored, as in semver.
//! - A pre-release sorts before its release (`2.0.0-rc1 < 2.0.0`); pre-release
//!   identifiers compare as in semver (numeric ones numerically and below alphanumeric
//!   ones, a shorter list of equal identifiers first).
//! - Both bounds are inclusive: `min_version = "1.2"` accepts `1.2.0`, `max_version = "2"`
//!   accepts `2.0.0` but not `2.0.1`.

use crate::diag::{Diagnostic, Diagnostics};
use crate::workspace::types::Workspace;
use std::cmp::Ordering;

/// A parsed version. Ordering follows the rules in the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    core: [u64; 3],
    pre: Vec<Ident>,
}

/// Pre-release identifier. Variant order matters: numeric sorts below alphanumeric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ident {
    Num(u64),
    Alpha(String),
}

impl Version {
    /// Parse a semver-like version; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _build)| v);
        let (core_s, pre_s) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let parts: Vec<&str> = core_s.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return None;
        }
        let mut core = [0u64; 3];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            core[i] = p.parse().ok()?;
        }
        let mut pre = Vec::new();
        if let Some(p) = pre_s {
            for id in p.split('.') {
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return None;
                }
                pre.push(match id.bytes().all(|b| b.is_ascii_digit()) {
                    true => Ident::Num(id.parse().ok()?),
                    false => Ident::Alpha(id.to_string()),
                });
            }
        }
        Some(Version { core, pre })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.pre.cmp(&other.pre),
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Check every demand's `min_version` / `max_version` against the upstream job's version.
pub fn check_demands(ws: &Workspace, diags: &mut Diagnostics) {
    for job in ws.jobs.values() {
        for cmd in job.commands.values() {
            let Some(demand) = &cmd.demands else { continue };
            let Some(upstream) = ws.jobs.get(&demand.job) else { continue };
            let (up_text, up_span) = match &upstream.version {
                Some(v) => (v.value.as_str(), Some(v.span)),
                None => ("0.0.0", None),
            };
            let bounds = [
                (&demand.min_version, "min_version", Ordering::Less, ">="),
                (&demand.max_version, "max_version", Ordering::Greater, "<="),
            ];
            for (bound, field, violates, op) in bounds {
                let Some(bound) = bound else { continue };
                let Some(want) = Version::parse(&bound.value) else {
                    diags.push(
                        Diagnostic::error(format!("`{field}` = \"{}\" is not a version", bound.value))
                            .at(bound.span)
                            .label("expected a version like `1`, `1.2`, `v1.2.3` or `2.0.0-rc1`"),
                    );
                    continue;
                };
                let Some(have) = Version::parse(up_text) else {
                    // The parser reports malformed job versions; nothing to compare here.
                    continue;
                };
                if have.cmp(&want) == violates {
                    let mut d = Diagnostic::error(format!(
                        "job `{}` demands `{}` {op} {} but `{}` is version {up_text}",
                        job.name, demand.job, bound.value, demand.job
                    ))
                    .at(bound.span)
                    .label(format!("requires `{}` {op} {}", demand.job, bound.value));
                    d = match up_span {
                        Some(s) => d.also(s, format!("`{}` is version {up_text}", demand.job)),
                        None => d.also(upstream.span, format!("`{}` declares no version (0.0.0)", demand.job)),
                    };
                    diags.push(d.help(format!(
                        "upgrade `{}` (its manifest `version`) or relax `{field}` in `{}`'s `{}` demands",
                        demand.job, job.name, cmd.name
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn short_forms_fill_with_zero_and_v_prefix_is_ignored() {
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("1.2"), v("v1.2.0"));
        assert_eq!(v("V1.2.3"), v("1.2.3"));
        assert_eq!(v("1.2.3+build.7"), v("1.2.3"));
    }

    #[test]
    fn ordering_is_numeric_per_component() {
        assert!(v("1.10") > v("1.9"));
        assert!(v("2") > v("1.99.99"));
        assert!(v("v1.2.3") < v("1.2.4"));
    }

    #[test]
    fn pre_releases_sort_before_their_release() {
        assert!(v("2.0.0-rc1") < v("2.0.0"));
        assert!(v("2.0.0-rc1") > v("1.9.9"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-beta"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert!(v("1.0.0-10") < v("1.0.0-rc"));
    }

    #[test]
    fn garbage_is_rejected() {
        for s in ["", "v", "1.2.3.4", "1..2", "x1", "1.2-", "1.2-rc..1", "1.-2", "1.2a"] {
            assert!(Version::parse(s).is_none(), "{s:?} should not parse");
        }
    }
}
