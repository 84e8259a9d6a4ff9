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

/// Escape text for SVG/HTML.
fn x(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The pending plan's rollout as an SVG picture (the web UI's plan page, SPEC §9): one column
/// per wave, a box per job listing its batches in order, and an arrow for each `demands`
/// between jobs of the plan. Pure and deterministic, like the text formats; an empty plan
/// gives `None`.
pub fn rollout_svg(plan: &Plan) -> Option<String> {
    // A line of a box shows at most MAX_CHARS characters of 12 px monospace, whose advance
    // is 0.6 em (7.2 px): the box is as wide as that line and its 10 px margins.
    const MAX_CHARS: usize = 30;
    const BOX_W: usize = 10 + (MAX_CHARS * 72).div_ceil(10) + 10;
    const COL: usize = BOX_W + 60;
    const LINE: usize = 16;
    if plan.rollout.is_empty() {
        return None;
    }
    // Each job's box: its lines (name, then batches) and its place.
    struct Placed<'a> {
        job: &'a super::types::JobRollout,
        x: usize,
        y: usize,
        h: usize,
        lines: Vec<String>,
    }
    let mut placed: Vec<Placed> = Vec::new();
    let mut height = 0;
    for (col, wave) in plan.rollout.iter().enumerate() {
        let mut y = 40;
        for job in &wave.jobs {
            let mut lines: Vec<String> = job.batches.iter().map(|b| batch_label(b.kind.as_str(), &b.hosts)).collect();
            if !job.stopped.is_empty() {
                lines.push(batch_label("stopped", &job.stopped));
            }
            if lines.is_empty() {
                lines.push("namespaces only".into());
            }
            // A demanded job the plan does not roll out has no box to point at: say it here.
            let in_plan = |u: &String| plan.rollout.iter().any(|w| w.jobs.iter().any(|j| &j.job == u));
            lines.extend(job.upstreams.iter().filter(|u| !in_plan(u)).map(|u| format!("demands {u} (unchanged)")));
            let h = LINE * (lines.len() + 1) + 12;
            placed.push(Placed { job, x: 20 + col * COL, y, h, lines });
            y += h + 24;
        }
        height = height.max(y);
    }
    let width = 20 + plan.rollout.len() * COL;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=rollout role=img aria-label=\"rollout: waves, jobs, demands and batches\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"ui-monospace,monospace\" font-size=\"12\">\
<defs><marker id=arrow viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#6b7280\"/></marker></defs>"
    );
    for (col, wave) in plan.rollout.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"20\" font-weight=\"bold\" fill=\"#374151\">wave {}</text>",
            20 + col * COL,
            wave.seq
        );
    }
    // Demands first, so the boxes are drawn over the lines.
    for p in &placed {
        for up in &p.job.upstreams {
            let Some(u) = placed.iter().find(|o| &o.job.job == up) else { continue };
            let (x1, y1) = (p.x, p.y + LINE);
            let (x2, y2) = (u.x + BOX_W, u.y + LINE);
            let _ = write!(
                out,
                "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#6b7280\" marker-end=\"url(#arrow)\"><title>{} demands {}</title></line>",
                x(&p.job.job),
                x(up)
            );
        }
    }
    for p in &placed {
        let _ = write!(
            out,
            "<g><rect x=\"{}\" y=\"{}\" width=\"{BOX_W}\" height=\"{}\" rx=\"8\" fill=\"#f9fafb\" stroke=\"#4b5563\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>",
            p.x,
            p.y,
            p.h,
            p.x + 10,
            p.y + LINE + 2,
            x(&p.job.job)
        );
        for (i, l) in p.lines.iter().enumerate() {
            let shown: String = l.chars().take(MAX_CHARS).collect();
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"#374151\">{}{}</text>",
                p.x + 10,
                p.y + LINE * (i + 2) + 4,
                x(&shown),
                if l.chars().count() > MAX_CHARS { "…" } else { "" }
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of a box, cut at its character limit, fits the box at 12 px monospace
    /// (0.6 em advance): "demands … (unchanged)" ran past the box's edge.
    #[test]
    fn rollout_lines_fit_their_boxes() {
        use crate::plan::types::{JobRollout, Plan, Summary, Wave};
        let job = |name: &str, upstreams: &[&str]| JobRollout {
            job: name.into(),
            upstreams: upstreams.iter().map(|u| u.to_string()).collect(),
            namespaces: vec![format!("vars/job/{name}")],
            batches: Vec::new(),
            stopped: Vec::new(),
            hooks: Default::default(),
        };
        let plan = Plan {
            format_version: "1".into(),
            changes: Vec::new(),
            rollout: vec![Wave { seq: 1, jobs: vec![job("api", &["database", "a_much_longer_upstream_name"])] }],
            summary: Summary::default(),
            notes: Vec::new(),
            meta: Default::default(),
        };
        let svg = rollout_svg(&plan).unwrap();
        let attr = |tag: &str, name: &str| -> f64 {
            let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            tag[at..].split('"').next().unwrap().parse().unwrap()
        };
        let rect = svg.split("<rect").nth(1).unwrap();
        let right = attr(rect, "x") + attr(rect, "width");
        let mut lines = 0;
        for t in svg.split("<text").skip(2) {
            let text = t.split('>').nth(1).unwrap().split('<').next().unwrap();
            let end = attr(t, "x") + text.chars().count() as f64 * 7.2;
            assert!(end <= right, "{text:?} ends at {end}, the box at {right}");
            lines += 1;
        }
        assert!(svg.contains("demands database (unchanged)"), "{svg}");
        assert!(lines >= 3, "{svg}");
    }

    #[test]
    fn mermaid_ids_are_safe_and_distinct() {
        assert_eq!(mid("job_", "web-api"), "job_web_2dapi");
        assert_ne!(mid("job_", "a-b"), mid("job_", "a.b"));
        assert_eq!(q("a\"b"), "\"a\\\"b\"");
        assert_eq!(batch_label("new", &["1", "2", "3", "4", "5", "6"].map(String::from)), "new: 1, 2, 3, 4, … (+2)");
    }
}
