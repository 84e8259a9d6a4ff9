//! The dependency graph (SPEC §3 "Dependencies and waves"): a petgraph `DiGraph` with one
//! node per job (inserted in name order) and one edge per demand, job -> upstream job,
//! weighted with the span of the `demands` object.
//!
//! - A cycle is an error that prints the whole cycle, starting at its alphabetically first
//!   job and following demands in name order (`api -> db -> cache -> api`), with a label at
//!   every demand on the way. Each cycle (strongly connected component) is reported once.
//! - `deployment_seq` = 0 without demands, else 1 + the highest upstream wave; every job
//!   gets a wave, placed or not, so the wave of a job does not depend on placement.

use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::workspace::types::Workspace;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::{BTreeMap, BTreeSet};

/// Waves of an acyclic workspace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waves {
    /// Job -> deployment_seq.
    pub seq: BTreeMap<String, u32>,
    /// Job -> the jobs it demands (sorted, unique).
    pub upstreams: BTreeMap<String, Vec<String>>,
    /// `waves[seq]` = jobs of that wave, sorted.
    pub waves: Vec<Vec<String>>,
}

fn build(ws: &Workspace) -> (DiGraph<&str, Span>, BTreeMap<&str, NodeIndex>) {
    let mut g = DiGraph::new();
    let idx: BTreeMap<&str, NodeIndex> = ws.jobs.keys().map(|j| (j.as_str(), g.add_node(j.as_str()))).collect();
    for job in ws.jobs.values() {
        for cmd in job.commands.values() {
            // Demands of unknown jobs are the parser's error; the graph only links real jobs.
            if let Some(d) = &cmd.demands
                && let Some(&up) = idx.get(d.job.as_str())
            {
                g.add_edge(idx[job.name.as_str()], up, d.span);
            }
        }
    }
    (g, idx)
}

/// Compute the waves, or report every cycle and return `None`.
pub fn waves(ws: &Workspace, diags: &mut Diagnostics) -> Option<Waves> {
    let (g, _) = build(ws);
    let mut cyclic = false;
    for scc in tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.find_edge(scc[0], scc[0]).is_some();
        if scc.len() > 1 || self_loop {
            cyclic = true;
            diags.push(cycle_diagnostic(&g, &scc));
        }
    }
    if cyclic {
        return None;
    }
    let order = toposort(&g, None).ok()?;
    let mut out = Waves::default();
    // Edges point at upstreams, so walking the topological order backwards visits every
    // upstream before the jobs that demand it.
    let mut seq: BTreeMap<NodeIndex, u32> = BTreeMap::new();
    for &n in order.iter().rev() {
        let ups: BTreeSet<&str> = g.neighbors(n).map(|u| g[u]).collect();
        let s = g.neighbors(n).map(|u| seq[&u] + 1).max().unwrap_or(0);
        seq.insert(n, s);
        out.seq.insert(g[n].to_string(), s);
        out.upstreams.insert(g[n].to_string(), ups.into_iter().map(String::from).collect());
    }
    for (job, &s) in &out.seq {
        if out.waves.len() <= s as usize {
            out.waves.resize(s as usize + 1, Vec::new());
        }
        out.waves[s as usize].push(job.clone());
    }
    Some(out)
}

/// The cycle through the alphabetically first job of `scc`, as a diagnostic.
fn cycle_diagnostic(g: &DiGraph<&str, Span>, scc: &[NodeIndex]) -> Diagnostic {
    let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| g[**n]).expect("non-empty component");
    let path = find_cycle(g, &members, start);
    let names: Vec<&str> = path.iter().map(|(n, _)| g[*n]).chain([g[start]]).collect();
    let text = names.join(" -> ");
    let mut d = Diagnostic::error(format!("dependency cycle: {text}"));
    for (i, (n, span)) in path.iter().enumerate() {
        let label = format!("`{}` demands `{}`", g[*n], names[i + 1]);
        d = if i == 0 { d.at(*span).label(label) } else { d.also(*span, label) };
    }
    d.help("a job cannot depend on itself, directly or through other jobs; remove one of these demands")
}

/// Nodes of a cycle from `start` back to it within `members`, each with the span of the
/// demand leading to the next node. Neighbours are tried in name order (deterministic).
fn find_cycle(g: &DiGraph<&str, Span>, members: &BTreeSet<NodeIndex>, start: NodeIndex) -> Vec<(NodeIndex, Span)> {
    fn dfs(
        g: &DiGraph<&str, Span>,
        members: &BTreeSet<NodeIndex>,
        start: NodeIndex,
        n: NodeIndex,
        seen: &mut BTreeSet<NodeIndex>,
        path: &mut Vec<(NodeIndex, Span)>,
    ) -> bool {
        let mut edges: Vec<_> = g.edges(n).filter(|e| members.contains(&e.target())).collect();
        edges.sort_by_key(|e| (g[e.target()], *e.weight()));
        for e in edges {
            path.push((n, *e.weight()));
            if e.target() == start {
                return true;
            }
            if seen.insert(e.target()) && dfs(g, members, start, e.target(), seen, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    let mut seen = BTreeSet::from([start]);
    dfs(g, members, start, start, &mut seen, &mut path);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::WsBuilder;

    #[test]
    fn three_wave_chain() {
        let ws =
            WsBuilder::new().job("api").job("db").job("cache").demand("api", "cache").demand("cache", "db").build();
        let w = waves(&ws, &mut Diagnostics::new()).unwrap();
        assert_eq!(w.waves, [vec!["db"], vec!["cache"], vec!["api"]]);
        assert_eq!(w.seq["api"], 2);
        assert_eq!(w.upstreams["api"], ["cache"]);
        assert!(w.upstreams["db"].is_empty());
    }

    #[test]
    fn diamond_takes_the_highest_upstream_wave() {
        // top -> left -> base, top -> right -> mid -> base, lone stays in wave 0.
        let ws = WsBuilder::new()
            .job("top")
            .job("left")
            .job("right")
            .job("mid")
            .job("base")
            .job("lone")
            .demand("top", "left")
            .demand("top", "right")
            .demand("left", "base")
            .demand("right", "mid")
            .demand("mid", "base")
            .build();
        let w = waves(&ws, &mut Diagnostics::new()).unwrap();
        assert_eq!(w.waves, [vec!["base", "lone"], vec!["left", "mid"], vec!["right"], vec!["top"]]);
        assert_eq!(w.upstreams["top"], ["left", "right"]);
    }

    #[test]
    fn cycle_prints_the_whole_path_with_a_label_per_demand() {
        let ws = WsBuilder::new()
            .job("api")
            .job("db")
            .job("cache")
            .job("ok")
            .demand("db", "cache")
            .demand("cache", "api")
            .demand("api", "db")
            .demand("ok", "db")
            .build();
        let mut d = Diagnostics::new();
        assert!(waves(&ws, &mut d).is_none());
        assert_eq!(d.0.len(), 1);
        let e = &d.0[0];
        assert_eq!(e.message, "dependency cycle: api -> db -> cache -> api");
        let span =
            |job: &str, up: &str| ws.jobs[job].commands[&format!("command_use_{up}")].demands.as_ref().unwrap().span;
        assert_eq!(e.span, Some(span("api", "db")));
        assert_eq!(e.label.as_deref(), Some("`api` demands `db`"));
        assert_eq!(
            e.secondary,
            vec![
                (span("db", "cache"), "`db` demands `cache`".to_string()),
                (span("cache", "api"), "`cache` demands `api`".to_string())
            ]
        );
    }

    #[test]
    fn two_separate_cycles_are_both_reported() {
        let ws = WsBuilder::new()
            .job("a")
            .job("b")
            .job("x")
            .job("y")
            .demand("a", "b")
            .demand("b", "a")
            .demand("x", "y")
            .demand("y", "x")
            .build();
        let mut d = Diagnostics::new();
        assert!(waves(&ws, &mut d).is_none());
        let mut msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        msgs.sort();
        assert_eq!(msgs, ["dependency cycle: a -> b -> a", "dependency cycle: x -> y -> x"]);
    }
}
