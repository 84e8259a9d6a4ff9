//! Port assignment (SPEC §3 "Ports").
//!
//! Decisions:
//! - **Fixed ports are reserved for every job of the workspace**, placed or not: a fixed
//!   number is a promise in a manifest, and two manifests promising the same number is a
//!   configuration error even before the second job is placed. Pool assignment skips them.
//! - **`{}` ports are assigned only for jobs with an active allocation** (the only ports the
//!   store carries). A job without one holds no pool number, so the pool is not drained by
//!   jobs that do not run; when it becomes active it gets the lowest free number then, and
//!   keeps it from then on (the store remembers it).
//! - Order: fixed ports first (job-name order, port names sorted), then every `{}` port
//!   that keeps its number from the current state (a number inside the pool), then fresh
//!   numbers (job-name order, port names sorted, lowest free number in the pool). Keeping
//!   comes before fresh assignment so a new port never takes a number a running service
//!   still holds.
//! - A number claimed twice — two fixed ports, or a fixed port and a `{}` port that holds
//!   it in the current state — is an error naming both claimants; moving a running
//!   service's port silently is worse than asking the operator.

use super::types::Prior;
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::workspace::types::Workspace;
use std::collections::{BTreeMap, BTreeSet};

struct Claim<'a> {
    job: &'a str,
    port: &'a str,
    span: Span,
    /// How the claimant got the number, for the secondary label.
    how: &'static str,
}

/// Port name -> number for every port of a job in `active_jobs`. Problems go to `diags`.
pub fn assign(
    ws: &Workspace,
    prior: &Prior,
    active_jobs: &BTreeSet<String>,
    diags: &mut Diagnostics,
) -> BTreeMap<String, u16> {
    let pool = ws.port_pool;
    let mut claims: BTreeMap<u16, Claim> = BTreeMap::new();
    let mut names: BTreeMap<&str, (&str, Span)> = BTreeMap::new();
    let mut out: BTreeMap<String, u16> = BTreeMap::new();
    let mut fresh: Vec<(&str, &str, Span)> = Vec::new();
    let mut kept: Vec<(&str, &str, Span, u16)> = Vec::new();

    for job in ws.jobs.values() {
        let mut ports: Vec<_> = job.ports.iter().collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        let active = active_jobs.contains(&job.name);
        for p in ports {
            // The parser checks bucket-wide uniqueness; kept here because two jobs owning one
            // `maand/bucket` key would make the projection ambiguous.
            if let Some((other, span)) = names.insert(&p.name, (&job.name, p.span)) {
                diags.push(
                    Diagnostic::error(format!("port name `{}` is used by jobs `{other}` and `{}`", p.name, job.name))
                        .at(p.span)
                        .label(format!("`{}` declares it again", job.name))
                        .also(span, format!("first declared by `{other}`"))
                        .help("port names are keys of `maand/bucket` and must be unique across the bucket"),
                );
                continue;
            }
            match p.fixed {
                Some(n) => {
                    claim(&mut claims, n, Claim { job: &job.name, port: &p.name, span: p.span, how: "fixed" }, diags);
                    if active {
                        out.insert(p.name.clone(), n);
                    }
                }
                None if !active => {}
                None => match prior.ports.get(&p.name) {
                    Some(&n) if (pool.min..=pool.max).contains(&n) => kept.push((&job.name, &p.name, p.span, n)),
                    _ => fresh.push((&job.name, &p.name, p.span)),
                },
            }
        }
    }

    for (job, port, span, n) in kept {
        if claim(&mut claims, n, Claim { job, port, span, how: "kept from the current state" }, diags) {
            out.insert(port.to_string(), n);
        }
    }

    let mut next = pool.min as u32;
    for (job, port, span) in fresh {
        while next <= pool.max as u32 && claims.contains_key(&(next as u16)) {
            next += 1;
        }
        if next > pool.max as u32 {
            let size = pool.max as u32 - pool.min as u32 + 1;
            let mut d = Diagnostic::error(format!(
                "port pool {}-{} is exhausted: no free number for `{job}.{port}`",
                pool.min, pool.max
            ))
            .at(span)
            .label("needs a number from the pool");
            // The last holder of the pool, so the operator sees who took the numbers.
            if let Some((n, c)) = claims.range(pool.min..=pool.max).next_back() {
                d = d.also(c.span, format!("`{}.{}` holds {n} ({})", c.job, c.port, c.how));
            }
            for v in ws.bucket_vars.iter().filter(|v| v.name == "port_min" || v.name == "port_max") {
                d = d.also(v.span, "the pool is set here");
            }
            diags.push(d.help(format!(
                "all {size} numbers of the pool are taken; widen it with `port_min`/`port_max` in bucket.conf"
            )));
            continue;
        }
        claims.insert(next as u16, Claim { job, port, span, how: "assigned from the pool" });
        out.insert(port.to_string(), next as u16);
    }
    out
}

/// Claim `n`; on a collision report both claimants and return false.
fn claim<'a>(claims: &mut BTreeMap<u16, Claim<'a>>, n: u16, c: Claim<'a>, diags: &mut Diagnostics) -> bool {
    if let Some(first) = claims.get(&n) {
        diags.push(
            Diagnostic::error(format!(
                "port {n} is claimed by both `{}.{}` and `{}.{}`",
                first.job, first.port, c.job, c.port
            ))
            .at(c.span)
            .label(format!("`{}.{}` claims {n} ({})", c.job, c.port, c.how))
            .also(first.span, format!("`{}.{}` claims {n} ({})", first.job, first.port, first.how))
            .help("give one of the ports another fixed number, or `{}` to assign one from the pool"),
        );
        return false;
    }
    claims.insert(n, c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::WsBuilder;

    fn active(jobs: &[&str]) -> BTreeSet<String> {
        jobs.iter().map(|s| s.to_string()).collect()
    }

    fn prior(ports: &[(&str, u16)]) -> Prior {
        Prior { ports: ports.iter().map(|(n, p)| (n.to_string(), *p)).collect(), ..Default::default() }
    }

    fn run(ws: &Workspace, prior: &Prior, act: &[&str]) -> (Vec<(String, u16)>, Diagnostics) {
        let mut d = Diagnostics::new();
        let p = assign(ws, prior, &active(act), &mut d);
        (p.into_iter().collect(), d)
    }

    fn pairs(v: &[(&str, u16)]) -> Vec<(String, u16)> {
        v.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    #[test]
    fn pool_ports_in_job_then_port_name_order_skipping_fixed() {
        let ws = WsBuilder::new()
            .job("b")
            .port("b", "b_http", None)
            .job("a")
            .port("a", "a_web", None)
            .port("a", "a_admin", None)
            .port("a", "a_fixed", Some(30001))
            .build();
        let (p, d) = run(&ws, &Prior::default(), &["a", "b"]);
        assert!(d.is_empty());
        assert_eq!(p, pairs(&[("a_admin", 30000), ("a_fixed", 30001), ("a_web", 30002), ("b_http", 30003)]));
    }

    #[test]
    fn prior_numbers_are_kept_inside_the_pool_and_reassigned_outside() {
        let ws = WsBuilder::new()
            .pool(31000, 31009)
            .job("a")
            .port("a", "a_http", None)
            .port("a", "a_rpc", None)
            .job("b")
            .port("b", "b_http", None)
            .build();
        let (p, d) = run(&ws, &prior(&[("a_http", 31005), ("a_rpc", 30000), ("b_http", 31000)]), &["a", "b"]);
        assert!(d.is_empty());
        // b_http keeps 31000 even though a_rpc (earlier in order) is assigned after it.
        assert_eq!(p, pairs(&[("a_http", 31005), ("a_rpc", 31001), ("b_http", 31000)]));
    }

    #[test]
    fn only_active_jobs_get_pool_numbers_but_fixed_ports_are_reserved() {
        let ws = WsBuilder::new()
            .job("a")
            .port("a", "a_http", None)
            .port("a", "a_fixed", Some(30000))
            .job("b")
            .port("b", "b_http", None)
            .build();
        let (p, d) = run(&ws, &Prior::default(), &["b"]);
        assert!(d.is_empty());
        assert_eq!(p, pairs(&[("b_http", 30001)]));
    }

    #[test]
    fn two_fixed_ports_on_one_number_name_both_claimants() {
        let ws = WsBuilder::new()
            .job("a")
            .port("a", "a_admin", Some(8443))
            .job("b")
            .port("b", "b_admin", Some(8443))
            .build();
        let (_, d) = run(&ws, &Prior::default(), &[]);
        assert_eq!(d.0.len(), 1);
        let e = &d.0[0];
        assert_eq!(e.message, "port 8443 is claimed by both `a.a_admin` and `b.b_admin`");
        assert_eq!(e.span, Some(ws.jobs["b"].ports[0].span));
        assert_eq!(e.secondary[0].0, ws.jobs["a"].ports[0].span);
    }

    #[test]
    fn kept_prior_number_colliding_with_a_fixed_port_is_an_error() {
        let ws = WsBuilder::new().job("a").port("a", "a_http", None).job("b").port("b", "b_new", Some(30004)).build();
        let (_, d) = run(&ws, &prior(&[("a_http", 30004)]), &["a", "b"]);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].message, "port 30004 is claimed by both `b.b_new` and `a.a_http`");
        assert_eq!(d.0[0].label.as_deref(), Some("`a.a_http` claims 30004 (kept from the current state)"));
    }

    #[test]
    fn exhausted_pool_names_the_port_and_the_pool() {
        let ws = WsBuilder::new()
            .pool(30000, 30001)
            .job("a")
            .port("a", "a_one", None)
            .port("a", "a_two", None)
            .job("b")
            .port("b", "b_one", None)
            .build();
        let (p, d) = run(&ws, &Prior::default(), &["a", "b"]);
        assert_eq!(p, pairs(&[("a_one", 30000), ("a_two", 30001)]));
        assert_eq!(d.0.len(), 1);
        let e = &d.0[0];
        assert_eq!(e.message, "port pool 30000-30001 is exhausted: no free number for `b.b_one`");
        assert_eq!(e.secondary.len(), 3, "{e:?}");
        assert!(e.secondary[0].1.contains("`a.a_two` holds 30001"));
    }
}
