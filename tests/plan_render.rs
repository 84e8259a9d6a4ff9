//! The text, JSON and markdown renderers.

mod plan_fixture;

use kvform::model::types::AllocState::{Active, Removed};
use kvform::plan::{Plan, TextOptions, render_json, render_markdown, render_text};
use kvform::workspace::types::Event;
use plan_fixture::Fx;

const PLAIN: TextOptions = TextOptions { color: false, detail: false };

/// The SPEC §5 example, plus a secret purge.
fn spec_example() -> Plan {
    let mut fx = Fx::new()
        .job("api", 0, &[("10.0.0.1", Active, true), ("10.0.0.2", Active, true)])
        .command("api", "command_health", &[Event::HealthCheck])
        .want("maand/job/api", "workers", "10.0.0.1,10.0.0.2")
        .want("vars/bucket", "log_level", "debug")
        .live("vars/bucket", "log_level", "info")
        .removed_job("old")
        .live("vars/job/old", "feature_x", "on")
        .job("web", 1, &[("10.0.0.1", Active, false), ("10.0.0.3", Removed, false)])
        .live("maand/job/web/worker/10.0.0.3", "version", "1")
        .live("maand/job/web/worker/10.0.0.3", "web_allocation_index", "1")
        .removed_job("vault")
        .live("secrets/job/vault", "token", "CIPHERTEXT-abc")
        .live("secrets/job/vault", "password", "CIPHERTEXT-def");
    fx.job_mut("api").max_concurrent_starts = 1;
    fx.plan()
}

#[test]
fn text_matches_the_spec_layout() {
    let out = render_text(&spec_example(), PLAIN);
    let expected = r#"kvform will make these changes:

  + maand/job/api  workers = "10.0.0.1,10.0.0.2"
  - maand/job/web/worker/10.0.0.3  (2 keys)  # purge: allocation removed
  - secrets/job/vault  (2 keys)              # purge: job removed from workspace
  ~ vars/bucket    log_level = "info" -> "debug"
  - vars/job/old   feature_x                 # tombstone: job removed from workspace

Rollout:
  bucket level, no hooks: 3 namespaces
  wave 0:
    api
      hooks    health_check: command_health
      new      10.0.0.1
      new      10.0.0.2
  wave 1:
    web
      hooks    none
      stopped  10.0.0.3

Plan: 1 to add, 1 to change, 5 to destroy.
"#;
    assert_eq!(out, expected, "actual:\n{out}");
}

#[test]
fn detail_lists_every_purged_key() {
    let out = render_text(&spec_example(), TextOptions { color: false, detail: true });
    assert!(out.contains("  - maand/job/web/worker/10.0.0.3  web_allocation_index"), "{out}");
    assert!(
        out.contains(
            "  - secrets/job/vault              password (sensitive)  # tombstone: job removed from workspace"
        ),
        "{out}"
    );
    assert!(!out.contains("(2 keys)"), "{out}");
}

#[test]
fn no_changes() {
    let plan = Fx::new().want("vars/bucket", "a", "1").live("vars/bucket", "a", "1").plan();
    assert_eq!(render_text(&plan, PLAIN), "No changes. Your state matches the workspace.\n");
    assert!(render_markdown(&plan).contains("No changes."));
}

#[test]
fn colour_only_when_asked() {
    let plan = spec_example();
    let plain = render_text(&plan, PLAIN);
    assert!(!plain.bytes().any(|b| b == 0x1b), "escape byte in uncoloured output");
    let coloured = render_text(&plan, TextOptions { color: true, detail: false });
    assert!(coloured.contains("\x1b[32m+\x1b[0m maand/job/api"));
    assert!(coloured.contains("\x1b[33m~\x1b[0m vars/bucket"));
    assert!(coloured.contains("\x1b[31m-\x1b[0m vars/job/old"));
}

#[test]
fn values_are_quoted_with_escapes() {
    let plan = Fx::new().want("vars/bucket", "a", "say \"hi\"\t\x1b[31m").plan();
    let out = render_text(&plan, PLAIN);
    assert!(out.contains(r#"a = "say \"hi\"\t\u{1b}[31m""#), "{out}");
    assert!(!out.bytes().any(|b| b == 0x1b));
}

#[test]
fn multi_line_values_show_a_line_diff_with_context() {
    let before = "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9";
    let after = "line 1\nline 2\nline 3\nline four\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10";
    let plan = Fx::new().want("vars/bucket", "motd", after).live("vars/bucket", "motd", before).plan();
    let out = render_text(&plan, PLAIN);
    let expected = "  ~ vars/bucket  motd
        line 2
        line 3
  -     line 4
  +     line four
        line 5
        line 6
        ...
        line 8
        line 9
  +     line 10
";
    assert!(out.contains(expected), "actual:\n{out}");
}

#[test]
fn multi_line_create_lists_every_line() {
    let plan = Fx::new().want("vars/bucket", "motd", "a\nb").plan();
    assert!(render_text(&plan, PLAIN).contains("  + vars/bucket  motd\n  +     a\n  +     b\n"));
}

#[test]
fn json_object_values_show_a_key_level_diff() {
    let plan = Fx::new()
        .want("vars/bucket", "cfg", r#"{"a": 1, "b": "x", "d": [1]}"#)
        .live("vars/bucket", "cfg", r#"{"a": 2, "c": true, "d": [1]}"#)
        .plan();
    let out = render_text(&plan, PLAIN);
    let expected = r#"  ~ vars/bucket  cfg (JSON)
  ~     "a": 2 -> 1
  +     "b": "x"
  -     "c": true
"#;
    assert!(out.contains(expected), "actual:\n{out}");
    // Not both objects: a plain one-line update.
    let plan = Fx::new().want("vars/bucket", "cfg", "[1]").live("vars/bucket", "cfg", r#"{"a":1}"#).plan();
    assert!(render_text(&plan, PLAIN).contains(r#"cfg = "{\"a\":1}" -> "[1]""#));
}

#[test]
fn secrets_are_masked_in_every_format() {
    let plan = Fx::new()
        .removed_job("vault")
        .live("secrets/job/vault", "token", "CIPHERTEXT-SECRET")
        .job("api", 0, &[("10.0.0.1", Active, false)])
        .live_ttl("secrets/job/api", "session", "CIPHERTEXT-SESSION", 0, 5)
        .plan();
    let outputs = [
        render_text(&plan, PLAIN),
        render_text(&plan, TextOptions { color: true, detail: true }),
        render_json(&plan),
        render_markdown(&plan),
    ];
    for out in &outputs {
        assert!(!out.contains("CIPHERTEXT"), "secret value leaked:\n{out}");
    }
    assert!(outputs[1].contains("token (sensitive)"));
    assert!(outputs[2].contains("\"before_sensitive\": true"));
}

#[test]
fn json_document_has_the_documented_shape() {
    let plan = spec_example();
    let v: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "format_version",
            "kvform_version",
            "lineage",
            "base_serial",
            "planned_at",
            "applyable",
            "errored",
            "changes",
            "rollout",
            "summary",
            "diagnostics"
        ]
    );
    assert_eq!(v["format_version"], "1");
    let change_keys: Vec<&String> = v["changes"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        change_keys,
        ["namespace", "key", "action", "before", "after", "before_sensitive", "after_sensitive", "reason", "purge"]
    );
    assert_eq!(v["changes"][0]["action"], "create");
    assert_eq!(v["summary"], serde_json::json!({"add": 1, "change": 1, "destroy": 5}));
    assert_eq!(v["rollout"][0]["jobs"][0]["batches"][0], serde_json::json!({"kind": "new", "hosts": ["10.0.0.1"]}));
    // Round trip: the document parses back into the same plan (metadata aside).
    let mut back: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();
    let back: Plan = serde_json::from_value(serde_json::json!({
        "format_version": back["format_version"].take(),
        "changes": back["changes"].take(),
        "rollout": back["rollout"].take(),
        "summary": back["summary"].take(),
    }))
    .unwrap();
    assert_eq!(back.changes, plan.changes);
    assert_eq!(back.rollout, plan.rollout);
}

#[test]
fn markdown_has_summary_table_details_diff_and_rollout() {
    let out = render_markdown(&spec_example());
    assert!(out.contains("| 1 | 1 | 5 |"), "{out}");
    assert!(out.contains("<details><summary>7 changes</summary>"), "{out}");
    assert!(out.contains("```diff\n+ maand/job/api  workers = \"10.0.0.1,10.0.0.2\"\n"), "{out}");
    assert!(out.contains("! vars/bucket    log_level = \"info\" -> \"debug\""), "{out}");
    assert!(out.contains("#### Rollout"), "{out}");
    assert!(out.contains("  - `api` (hooks: health_check: command_health)\n    - new: 10.0.0.1\n"), "{out}");
}

#[test]
fn markdown_fence_outgrows_backticks_in_values() {
    let plan = Fx::new().want("vars/bucket", "a", "```x```").plan();
    let out = render_markdown(&plan);
    assert!(out.contains("````diff\n"), "{out}");
}

#[test]
fn rendering_is_deterministic() {
    let a = spec_example();
    let b = spec_example();
    assert_eq!(render_text(&a, PLAIN), render_text(&b, PLAIN));
    assert_eq!(render_text(&a, PLAIN), render_text(&a, PLAIN));
    assert_eq!(render_json(&a), render_json(&b));
    assert_eq!(render_markdown(&a), render_markdown(&b));
}

/// `hosts` allocation namespaces of `api` created (2 keys each), plus one bucket key.
fn wide_plan(hosts: usize) -> Plan {
    let mut fx = Fx::new().want("vars/bucket", "region", "eu");
    for i in 0..hosts {
        let ns = format!("maand/job/api/worker/10.0.{}.{}", i / 100, i % 100);
        fx = fx.want(&ns, "api_allocation_index", &i.to_string()).want(&ns, "version", "1");
    }
    fx.plan()
}

#[test]
fn more_than_twenty_namespaces_of_one_shape_print_as_one_line() {
    // 20 is listed key by key…
    let out = render_text(&wide_plan(20), PLAIN);
    assert_eq!(out.matches("maand/job/api/worker/").count(), 40, "{out}");
    // …21 is one line with counts and the first names.
    let out = render_text(&wide_plan(21), PLAIN);
    let group: Vec<&str> = out.lines().filter(|l| l.contains("maand/job/api/worker/")).collect();
    assert_eq!(group.len(), 1, "{out}");
    assert!(group[0].starts_with("  + maand/job/api/worker/*  (21 namespaces; keys +42)"), "{out}");
    assert!(group[0].contains("# 10.0.0.0, 10.0.0.1, 10.0.0.10, … (--detail lists every change)"), "{out}");
    assert!(out.contains("  + vars/bucket"), "other namespaces are listed as before: {out}");
    assert!(out.contains("Plan: 43 to add, 0 to change, 0 to destroy."), "{out}");
    // --detail lists everything; JSON is always complete.
    let detail = render_text(&wide_plan(21), TextOptions { color: false, detail: true });
    assert_eq!(detail.matches("maand/job/api/worker/").count(), 42, "{detail}");
    assert_eq!(render_json(&wide_plan(21)).matches("\"namespace\": \"maand/job/api/worker/").count(), 42);
    assert!(render_markdown(&wide_plan(21)).contains("+ maand/job/api/worker/*  (21 namespaces; keys +42)"));
}

#[test]
fn a_group_with_mixed_actions_counts_each() {
    let mut fx = Fx::new();
    for i in 0..25 {
        let ns = format!("maand/worker/10.0.0.{i}");
        fx = if i % 2 == 0 { fx.want(&ns, "jobs", "api").live(&ns, "jobs", "") } else { fx.want(&ns, "jobs", "") };
        if i == 0 {
            fx = fx.live(&ns, "old", "x");
        }
    }
    let out = render_text(&fx.plan(), PLAIN);
    let group: Vec<&str> = out.lines().filter(|l| l.contains("maand/worker/")).collect();
    assert_eq!(group.len(), 1, "{out}");
    assert!(group[0].starts_with("  ~ maand/worker/*  (25 namespaces; keys +12 ~13 -1)"), "{out}");
}
