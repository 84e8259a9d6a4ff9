//! Human and machine renderings of a [`Desired`] state, for
//! `kvform validate --print-desired [--format json]` and the golden suite.
//!
//! Both are deterministic: namespaces and keys sorted, workers in fleet order,
//! allocations in [`Desired::allocations`] order, no timestamps.

use super::types::Desired;
use serde_json::{Map, Value, json};

/// A value as a double-quoted string with `\\`, `"`, newlines, tabs and other control
/// characters escaped, so every key stays on one line.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Header (bucket id, waves, allocations, removed jobs/workers) then one line per key:
/// `maand/job/api  workers = "10.0.0.1,10.0.0.2"`.
pub fn text(d: &Desired) -> String {
    let mut out = String::new();
    out.push_str(&format!("# bucket_id {}\n", d.bucket_id));
    if d.waves.is_empty() {
        out.push_str("# waves: none\n");
    }
    for (seq, jobs) in d.waves.iter().enumerate() {
        out.push_str(&format!("# wave {seq}: {}\n", jobs.join(", ")));
    }
    for a in &d.allocations {
        out.push_str(&format!(
            "# allocation {}@{} {}{}\n",
            a.job,
            a.host,
            a.state.as_str(),
            if a.is_new { " (new)" } else { "" }
        ));
    }
    if !d.removed_jobs.is_empty() {
        out.push_str(&format!("# removed jobs: {}\n", d.removed_jobs.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    if !d.removed_workers.is_empty() {
        out.push_str(&format!(
            "# removed workers: {}\n",
            d.removed_workers.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    // With the derived peer keys: what readers will see after an apply.
    for (ns, keys) in &crate::kv::derived::complete(&d.kv) {
        for (k, v) in keys {
            out.push_str(&format!("{ns}  {k} = {}\n", quote(&v.to_cow())));
        }
    }
    out
}

/// Pretty JSON with every object's keys in sorted order.
pub fn json(d: &Desired) -> String {
    let kv: Map<String, Value> = crate::kv::derived::complete(&d.kv)
        .iter()
        .map(|(ns, keys)| {
            let keys: Map<String, Value> =
                keys.iter().map(|(k, v)| (k.clone(), Value::from(v.to_cow().into_owned()))).collect();
            (ns.clone(), Value::Object(keys))
        })
        .collect();
    let jobs: Map<String, Value> = d
        .jobs
        .values()
        .map(|j| {
            (
                j.name.clone(),
                json!({
                    "active_hosts": j.active_hosts,
                    "commands": j.commands.keys().collect::<Vec<_>>(),
                    "deployment_seq": j.deployment_seq,
                    "disabled_hosts": j.disabled_hosts,
                    "job_id": j.job_id.to_string(),
                    "max_concurrent_starts": j.max_concurrent_starts,
                    "max_concurrent_upgrades": j.max_concurrent_upgrades,
                    "upstreams": j.upstreams,
                    "version": j.version,
                }),
            )
        })
        .collect();
    let v = json!({
        "allocations": d.allocations.iter().map(|a| json!({
            "alloc_id": a.alloc_id.to_string(),
            "host": a.host,
            "is_new": a.is_new,
            "job": a.job,
            "state": a.state.as_str(),
        })).collect::<Vec<_>>(),
        "bucket_id": d.bucket_id.to_string(),
        "jobs": jobs,
        "kv": kv,
        "removed_jobs": d.removed_jobs,
        "removed_workers": d.removed_workers,
        "waves": d.waves,
        "workers": d.workers.iter().map(|w| json!({
            "host": w.host,
            "labels": w.labels,
            "position": w.position,
            "worker_id": w.worker_id.to_string(),
        })).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&v).expect("JSON values always serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_escapes_what_would_break_a_line() {
        assert_eq!(quote("a\"b\\c\nd\te\u{1}"), r#""a\"b\\c\nd\te\u{1}""#);
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("é ok"), "\"é ok\"");
    }
}
