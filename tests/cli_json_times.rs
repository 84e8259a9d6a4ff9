//! Every time in kvform's JSON output is an RFC 3339 string in UTC (`…Z`), never unix
//! seconds: `cat kv`, `kv history`, `state info`.

mod tf_support;

use serde_json::Value;
use tf_support::{NOW, applied_bucket, ok};

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// RFC 3339 UTC as kvform prints it: `2026-01-02T03:04:05Z`.
fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok())
}

#[test]
fn cat_kv_history_and_state_info_print_rfc3339_times() {
    let b = applied_bucket();
    ok(b.path(), &["kv", "set", "vars/job/web", "mode", "on", "--ttl", "1h"]);

    let rows = json(b.path(), &["cat", "kv", "--format", "json"]);
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert!(is_rfc3339_utc(&r["created_at"]), "{r}");
    }
    let mode = rows.iter().find(|r| r["key"] == "mode").unwrap();
    assert_eq!(mode["created_at"], NOW);
    assert_eq!(mode["expires_at"], "2026-01-02T04:04:05Z");
    let greeting = rows.iter().find(|r| r["key"] == "greeting").unwrap();
    assert_eq!(greeting["expires_at"], Value::Null);

    let history = json(b.path(), &["kv", "history", "vars/job/web", "mode", "--format", "json"]);
    assert_eq!(history[0]["created_at"], NOW, "{history}");
    assert_eq!(history[0]["expires_at"], "2026-01-02T04:04:05Z", "{history}");

    let info = json(b.path(), &["state", "info", "--format", "json"]);
    assert_eq!(info["serial"], 2, "{info}");
    let sets = info["last_change_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{info}");
    for s in sets {
        assert!(is_rfc3339_utc(&s["started_at"]) && is_rfc3339_utc(&s["finished_at"]), "{s}");
    }
    assert!(info["namespace_classes"].as_array().is_some_and(|c| !c.is_empty()), "{info}");
    assert_eq!(info["lock"]["held_by"], Value::Null);
}
