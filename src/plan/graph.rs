//! `kvform graph`: the picture of a bucket's rollout (Terraform's `graph` gives DOT) — the
//! jobs grouped by wave (`deployment_seq`), an edge for each `demands` (from the job to the
//! job it demands), and, for a pending plan (`--rollout`), each job's allocation batches in
//! the order the apply rolls them out. Pure: the desired state and the plan in, text out;
//! deterministic (waves ascending, jobs and demands by name).
//!
//! Formats: Graphviz DOT (`dot -Tsvg`) and Mermaid (`flowchart`, which GitHub and GitLab
//! render in markdown).

use super::types::Plan;
use crate::model::types::Desired;
use std::fmt::Write;

/// Output format of [`render_graph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphFormat {
    #[default]
    Dot,
    Mermaid,
}

/// Hosts a batch node names before `… (+N)`.
const BATCH_HOSTS: usize = 4;

/// The graph of `desired`'s jobs, waves and demands; with `rollout`, the batches of that
/// plan too.
pub fn render_graph(desired: &Desired, rollout: Option<&Plan>, format: GraphFormat) -> String {
    let waves: Vec<(u32, &Vec<String>)> =
        desired.waves.iter().enumerate().filter(|(_, j)| !j.is_empty()).map(|(i, j)| (i as u32, j)).collect();
    let demands: Vec<(&str, &str)> =
        desired.jobs.values().flat_map(|j| j.upstreams.iter().map(move |u| (j.name.as_str(), u.as_str()))).collect();
    let batches: Vec<(&str, Vec<String>)> = rollout
        .map(|p| {
            p.jobs()
                .map(|(_, j)| {
                    let mut labels: Vec<String> =
                        j.batches.iter().map(|b| batch_label(b.kind.as_str(), &b.hosts)).collect();
                    if !j.stopped.is_empty() {
                        labels.push(batch_label("stopped", &j.stopped));
                    }
                    (j.job.as_str(), labels)
                })
                .filter(|(_, l)| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    match format {
        GraphFormat::Dot => dot(&waves, &demands, &batches),
        GraphFormat::Mermaid => mermaid(&waves, &demands, &batches),
    }
}

fn batch_label(kind: &str, hosts: &[String]) -> String {
    let shown: Vec<&str> = hosts.iter().take(BATCH_HOSTS).map(String::as_str).collect();
    let more =
        if hosts.len() > BATCH_HOSTS { format!(", … (+{})", hosts.len() - BATCH_HOSTS) } else { String::new() };
    format!("{kind}: {}{more}", shown.join(", "))
}

/// A DOT string literal.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn dot(waves: &[(u32, &Vec<String>)], demands: &[(&str, &str)], batches: &[(&str, Vec<String>)]) -> String {
    let mut out =
        String::from("digraph kvform {\n  rankdir = \"LR\";\n  node [shape = \"box\", style = \"rounded\"];\n");
    for (seq, jobs) in waves {
        let _ = writeln!(out, "  subgraph \"cluster_wave_{seq}\" {{\n    label = \"wave {seq}\";");
        for j in *jobs {
            let _ = writeln!(out, "    {};", q(j));
        }
        out.push_str("  }\n");
    }
    for (job, upstream) in demands {
        let _ = writeln!(out, "  {} -> {} [label = \"demands\"];", q(job), q(upstream));
    }
    for (job, labels) in batches {
        let mut prev = q(job);
        for (i, label) in labels.iter().enumerate() {
            let id = q(&format!("{job} batch {}", i + 1));
            let _ = writeln!(out, "  {id} [label = {}, shape = \"note\"];", q(label));
            let _ = writeln!(out, "  {prev} -> {id} [style = \"dashed\"];");
            prev = id;
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid node id: letters, digits and `_` only (job names may hold `-` and `.`), made
/// unique by the hex of every other byte.
fn mid(prefix: &str, s: &str) -> String {
    let mut out = String::from(prefix);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    out
}

/// A Mermaid label in quotes (`"` as `#quot;`).
fn ml(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "#quot;"))
}

fn mermaid(waves: &[(u32, &Vec<String>)], demands: &[(&str, &str)], batches: &[(&str, Vec<String>)]) -> String {
    let mut out = String::from("flowchart LR\n");
    for (seq, jobs) in waves {
        let _ = writeln!(out, "  subgraph wave_{seq}[{}]", ml(&format!("wave {seq}")));
        for j in *jobs {
            let _ = writeln!(out, "    {}({})", mid("job_", j), ml(j));
        }
        out.push_str("  end\n");
    }
    for (job, upstream) in demands {
        let _ = writeln!(out, "  {} -->|demands| {}", mid("job_", job), mid("job_", upstream));
    }
    for (job, labels) in batches {
        let mut prev = mid("job_", job);
        for (i, label) in labels.iter().enumerate() {
            let id = format!("{}_{}", mid("batch_", job), i + 1);
            let _ = writeln!(out, "  {id}[{}]", ml(label));
            let _ = writeln!(out, "  {prev} -.-> {id}");
            prev = id;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_ids_are_safe_and_distinct() {
        assert_eq!(mid("job_", "web-api"), "job_web_2dapi");
        assert_ne!(mid("job_", "a-b"), mid("job_", "a.b"));
        assert_eq!(q("a\"b"), "\"a\\\"b\"");
        assert_eq!(batch_label("new", &["1", "2", "3", "4", "5", "6"].map(String::from)), "new: 1, 2, 3, 4, … (+2)");
    }
}
