//! Issue 22, items 2 and 3: a hook write the state cannot hold (a NUL byte, a ttl of 2^63 or
//! more) is the hook's 400, and a write that still fails in the database runs under its own
//! savepoint — the apply goes on, later writes and later jobs land, on both backends.

mod hooks_apply_support;

use hooks_apply_support::*;
use kvform::state::Write;
use serde_json::json;

const H1: &str = "10.0.0.1";

/// Each request's status goes to `codes.log` as `<name> <status>`.
const WRITER: &str = r#"#!/bin/bash
set -u
auth="Authorization: Bearer $KVFORM_TOKEN"
ct="Content-Type: application/json"
req() { # name method route body
  code=$(curl -s -o /dev/null -w '%{http_code}' -X "$2" -H "$auth" -H "$ct" -d "$4" "$KVFORM_API$3")
  echo "$1 $code" >> codes.log
}
req nul_value PUT /kv '{"namespace":"vars/job/first","key":"k","value":"a\u0000b"}'
req nul_secret PUT /kv/secret '{"namespace":"secrets/job/first","key":"s","value":"a\u0000b"}'
req nul_description PUT /kv '{"namespace":"vars/job/first","key":"k","value":"v","type":"string","description":"d\u0000"}'
req ttl_2_63 PUT /kv '{"namespace":"vars/job/first","key":"k","value":"v","ttl":9223372036854775808}'
req ttl_u64_max PUT /kv '{"namespace":"vars/job/first","key":"k","value":"v","ttl":18446744073709551615}'
req ttl_101_years PUT /kv '{"namespace":"vars/job/first","key":"k","value":"v","ttl":3187296000}'
req nul_delete DELETE /kv '{"namespace":"vars/job/first","key":"k\u0000"}'
req refused_by_db PUT /kv '{"namespace":"vars/job/first","key":"boom","value":"v"}'
req good PUT /kv '{"namespace":"vars/job/first","key":"good","value":"stored","ttl":3600}'
req good_delete DELETE /kv '{"namespace":"vars/job/first","key":"good_gone"}'
"#;

/// Marks that the job after the bad writes ran and could write.
const SECOND: &str = r#"#!/bin/bash
set -eu
curl -sf -X PUT -H "Authorization: Bearer $KVFORM_TOKEN" -H "Content-Type: application/json" \
  -d '{"namespace":"vars/job/second","key":"ran","value":"yes"}' "$KVFORM_API/kv" >/dev/null
"#;

/// A trigger refusing every row of key `boom`: a write that passes the validation and still
/// fails in the database (a constraint, a full disk, a server-side error).
fn refuse_boom_in_the_database(tb: &TestBucket) {
    match &tb.pg {
        None => {
            let c = rusqlite::Connection::open(tb.state_file()).unwrap();
            c.execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON latest WHEN NEW.key = 'boom'
                 BEGIN SELECT RAISE(ABORT, 'boom refused'); END;",
            )
            .unwrap();
        }
        Some(kvform::state::Location::Postgres(pg)) => {
            let url = std::env::var("KVFORM_TEST_PG_URL").unwrap();
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let schema = kvform::state::postgres::bucket_schema(&pg.schema, pg.bucket_id.unwrap());
            c.batch_execute(&format!(
                "CREATE FUNCTION \"{schema}\".boom() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN IF NEW.key = 'boom' THEN RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$;
                 CREATE TRIGGER boom BEFORE INSERT ON \"{schema}\".latest
                   FOR EACH ROW EXECUTE FUNCTION \"{schema}\".boom();"
            ))
            .unwrap();
        }
        Some(other) => panic!("unexpected location {other:?}"),
    }
}

fn bad_writes_then_good_ones(tb: TestBucket) {
    let pre = json!({"version": "1.0", "commands": {"command_w": {"executed_on": ["pre_deploy"]}}});
    tb.job("first", pre.clone(), &[("command_w.sh", WRITER)]);
    tb.job(
        "second",
        json!({"version": "1.0", "commands": {"command_w": {"executed_on": ["pre_deploy"], "demands": {"job": "first", "command": "command_w"}}}}),
        &[("command_w.sh", SECOND)],
    );
    // A key the second request deletes, so the good delete has something to tombstone.
    {
        let store = tb.store();
        let mut txn = store.begin_write("seed", std::time::Duration::ZERO, NOW).unwrap();
        txn.put(Write::new("vars/job/first", "good_gone", "x", "seed", NOW)).unwrap();
        txn.commit(kvform::state::ApplyRecord::new("seed", NOW)).unwrap();
    }
    refuse_boom_in_the_database(&tb);

    let applied = mini_apply(&tb, |_| {});

    let codes = tb.read("codes.log");
    let code = |name: &str| {
        codes
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {codes}"))
            .to_string()
    };
    for bad in ["nul_value", "nul_secret", "nul_description", "ttl_2_63", "ttl_u64_max", "ttl_101_years", "nul_delete"]
    {
        assert_eq!(code(bad), "400", "{bad}: {codes}");
    }
    assert_eq!(code("refused_by_db"), "500", "{codes}");
    assert_eq!(code("good"), "200", "{codes}");
    assert_eq!(code("good_delete"), "200", "{codes}");

    assert!(applied.failures.is_empty(), "{:?}", applied.failures);
    assert_eq!(tb.value("vars/job/first", "good").as_deref(), Some("stored"));
    assert_eq!(tb.store().get("vars/job/first", "good").unwrap().unwrap().ttl, 3600);
    assert_eq!(tb.value("vars/job/first", "good_gone"), None);
    assert_eq!(tb.value("vars/job/first", "k"), None);
    assert_eq!(tb.value("vars/job/first", "boom"), None);
    assert_eq!(tb.value("vars/job/second", "ran").as_deref(), Some("yes"));
    assert_eq!(tb.value("maand/job/second", "version").as_deref(), Some("1.0"));
}

on_both_backends!(
    bad_hook_writes_get_400_and_the_apply_goes_on,
    bad_hook_writes_get_400_and_the_apply_goes_on_on_postgres,
    &[(H1, &["first", "second"])],
    bad_writes_then_good_ones
);

/// The state refuses what both backends cannot store, whoever calls it (the workspace's
/// values included), with the rule's message and no SQL.
fn the_state_refuses_unstorable_rows(tb: TestBucket) {
    let store = tb.store();
    let mut txn = store.begin_write("t", std::time::Duration::ZERO, NOW).unwrap();
    for (value, ttl) in [("a\0b", 0), ("v", 1u64 << 63), ("v", u64::MAX)] {
        let e = txn.put(Write::new("vars/job/x", "k", value, "t", NOW).ttl(ttl)).unwrap_err();
        assert!(matches!(e, kvform::state::StateError::Refused(_)), "{e}");
        let e = txn.put(Write::new("vars/job/x", "k", value, "t", NOW).ttl(ttl).expect_new()).unwrap_err();
        assert!(matches!(e, kvform::state::StateError::Refused(_)), "{e}");
    }
    txn.put(Write::new("vars/job/x", "k", "fine", "t", NOW).ttl(60)).unwrap();
    txn.commit(kvform::state::ApplyRecord::new("t", NOW)).unwrap();
    assert_eq!(tb.value("vars/job/x", "k").as_deref(), Some("fine"));
}

on_both_backends!(
    the_state_refuses_unstorable_rows_on_sqlite,
    the_state_refuses_unstorable_rows_on_postgres,
    &[(H1, &["x"])],
    the_state_refuses_unstorable_rows
);
