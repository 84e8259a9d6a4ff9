//! Compare-and-set over the hook API (issue 24): `PUT /kv`, `DELETE /kv` and the secret
//! routes take `cas` (the live version expected, 0 = must not be live) and go through the
//! operations layer of every door; a stale one is 412 naming the current `version`, and
//! nothing is written.

mod hooks_apply_support;

use hooks_apply_support::*;
use serde_json::json;

const H1: &str = "10.0.0.1";

/// Each call's status code goes into `codes`, and the 412 bodies' `version` into `seen`.
const CAS_HOOK: &str = r#"#!/bin/bash
set -eu
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
codes=""
seen=""
call() { # METHOD ROUTE BODY
  code=$(curl -s -o body.json -w '%{http_code}' -X "$1" -H "$auth" -H "$ct" -d "$3" "$KVFORM_API/$2")
  codes="$codes$code,"
  if [ "$code" = 412 ]; then
    seen="$seen$(python3 -c 'import json; print(json.load(open("body.json"))["version"], end="")'),"
  fi
}
call PUT kv '{"namespace":"vars/job/app","key":"k","value":"a","cas":0}'
call PUT kv '{"namespace":"vars/job/app","key":"k","value":"b","cas":0}'
call PUT kv '{"namespace":"vars/job/app","key":"k","value":"b","cas":1}'
call PUT kv '{"namespace":"vars/job/app","key":"k","value":"c","cas":1}'
call DELETE kv '{"namespace":"vars/job/app","key":"k","cas":1}'
call DELETE kv '{"namespace":"vars/job/app","key":"k","cas":2}'
call PUT kv/secret '{"namespace":"secrets/job/app","key":"pw","value":"p1","cas":0}'
call PUT kv/secret '{"namespace":"secrets/job/app","key":"pw","value":"p2","cas":0}'
call DELETE kv/secret '{"namespace":"secrets/job/app","key":"pw","cas":7}'
curl -sf -X PUT -H "$auth" -H "$ct" -d "{\"namespace\":\"vars/job/app\",\"key\":\"codes\",\"value\":\"$codes\"}" "$KVFORM_API/kv" >/dev/null
curl -sf -X PUT -H "$auth" -H "$ct" -d "{\"namespace\":\"vars/job/app\",\"key\":\"seen\",\"value\":\"$seen\"}" "$KVFORM_API/kv" >/dev/null
"#;

/// The Python helper: `kv.version()` for the live version, `cas=` on put and delete, and a
/// stale one raising `KvformHookError` with status 412.
const PY_HOOK: &str = r#"
import kvform_hook as kv
out = [str(kv.version("vars/job/app", "py"))]
kv.put("py", "one", cas=0)
v = kv.version("vars/job/app", "py")
out.append(str(v))
try:
    kv.put("py", "two", cas=v + 1)
    out.append("written")
except kv.KvformHookError as e:
    out.append(str(e.status))
kv.put("py", "two", cas=v)
kv.put_secret("pysecret", "s", cas=0)
try:
    kv.delete_secret("pysecret", cas=5)
except kv.KvformHookError as e:
    out.append(str(e.status))
out.append(str(kv.delete_secret("pysecret", cas=1)))
kv.put("py_out", ",".join(out))
"#;

fn jobs(tb: TestBucket) -> TestBucket {
    tb.job(
        "app",
        json!({"version": "1.0", "commands": {
            "command_cas": {"executed_on": ["pre_deploy"]},
            "command_py": {"executed_on": ["post_deploy"]},
        }}),
        &[("command_cas.sh", CAS_HOOK), ("command_py.py", PY_HOOK)],
    );
    tb
}

fn hook_cas(tb: TestBucket) {
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    assert_eq!(tb.value("vars/job/app", "codes").as_deref(), Some("200,412,200,412,412,200,200,412,412,"));
    assert_eq!(tb.value("vars/job/app", "seen").as_deref(), Some("1,2,2,1,1,"));
    // The refused writes wrote nothing: `k` is deleted at version 3, `pw` is p1 at version 1.
    assert_eq!(tb.value("vars/job/app", "k"), None);
    let store = tb.store();
    let rows = store.history("vars/job/app", "k").unwrap();
    assert_eq!(rows.iter().map(|r| (r.version, r.deleted)).collect::<Vec<_>>(), [(1, false), (2, false), (3, true)]);
    drop(store);
    assert_eq!(tb.value("secrets/job/app", "pw").as_deref(), Some("p1"));
    assert_eq!(tb.value("vars/job/app", "py_out").as_deref(), Some("0,1,412,412,True"));
    assert_eq!(tb.value("vars/job/app", "py").as_deref(), Some("two"));
    assert_eq!(tb.value("secrets/job/app", "pysecret"), None);
}

#[test]
fn a_hook_with_a_stale_cas_gets_412_and_the_right_one_writes() {
    hook_cas(jobs(TestBucket::new(&[(H1, &["app"])])));
}

#[test]
fn a_hook_with_a_stale_cas_gets_412_and_the_right_one_writes_on_postgres() {
    let name = "a_hook_with_a_stale_cas_gets_412_and_the_right_one_writes_on_postgres";
    if let Some(tb) = TestBucket::new_on_postgres(name, &[(H1, &["app"])]) {
        hook_cas(jobs(tb));
    }
}
