//! `kvform graph` (issue 27): the quickstart's jobs by wave with their demands, as DOT and
//! Mermaid, and with `--rollout` the batches of the pending plan (none once applied).

mod quickstart_copy;
mod tf_support;

use quickstart_copy::quickstart_copy;
use tf_support::ok;

const DOT: &str = r#"digraph kvform {
  rankdir = "LR";
  node [shape = "box", style = "rounded"];
  subgraph "cluster_wave_0" {
    label = "wave 0";
    "database";
  }
  subgraph "cluster_wave_1" {
    label = "wave 1";
    "api";
  }
  subgraph "cluster_wave_2" {
    label = "wave 2";
    "frontend";
  }
  "api" -> "database" [label = "demands"];
  "frontend" -> "api" [label = "demands"];
}
"#;

#[test]
fn graph_draws_waves_demands_and_the_pending_batches() {
    let b = quickstart_copy();
    assert_eq!(ok(b.path(), &["graph"]), DOT);
    let mermaid = ok(b.path(), &["graph", "--format", "mermaid", "--rollout"]);
    assert!(
        mermaid.starts_with("flowchart LR\n  subgraph wave_0[\"wave 0\"]\n    job_database(\"database\")\n  end\n"),
        "{mermaid}"
    );
    assert!(mermaid.contains("  job_api -->|demands| job_database\n"), "{mermaid}");
    assert!(mermaid.contains("  batch_api_1[\"new: 10.0.0.1, 10.0.0.2\"]\n  job_api -.-> batch_api_1\n"), "{mermaid}");
    let dot_rollout = ok(b.path(), &["graph", "--rollout"]);
    assert!(
        dot_rollout.contains("  \"api batch 1\" [label = \"new: 10.0.0.1, 10.0.0.2\", shape = \"note\"];\n"),
        "{dot_rollout}"
    );
    // Applied: the same jobs and waves, and no batch is pending.
    let o = tf_support::kvform(b.path(), &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", tf_support::stderr(&o));
    assert_eq!(ok(b.path(), &["graph", "--rollout"]), DOT);
}
