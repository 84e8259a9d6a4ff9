//! The operations against a real state (SQLite, in a temp dir): CAS, patch, restore.

use super::*;
use crate::state::StateStore;
use std::time::Duration;

fn txn(dir: &std::path::Path, now: i64) -> WriteTxn {
    let (store, _) = StateStore::init(&dir.join("s.db"), now).unwrap();
    store.begin_write("test", Duration::ZERO, now).unwrap()
}

/// The actor of these writes (no OS lookup: a fixed operator).
const W: Actor = Actor::Token { name: String::new() };

fn set(value: &str) -> Change {
    Change { value: Some(Zeroizing::new(value.into())), ..Change::default() }
}

#[test]
fn cas_create_only_then_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = txn(dir.path(), 100);
    let ns = "vars/job/api";
    assert_eq!(put(&mut t, ns, "k", &Change { cas: Some(0), ..set("a") }, &W, 100).unwrap().version(), 1);
    let e = put(&mut t, ns, "k", &Change { cas: Some(0), ..set("b") }, &W, 100).unwrap_err();
    assert!(matches!(e, OpError::Conflict { current: 1, expected: 0, .. }), "{e}");
    assert_eq!(e.status(), 412);
    assert!(e.to_string().contains("is at version 1, not 0 (version 0 means create only, and the key exists)"), "{e}");
    assert_eq!(put(&mut t, ns, "k", &Change { cas: Some(1), ..set("b") }, &W, 100).unwrap().version(), 2);
    assert!(matches!(delete(&mut t, ns, "k", Some(1), &W, 100), Err(OpError::Conflict { current: 2, .. })));
    assert!(delete(&mut t, ns, "k", Some(2), &W, 100).unwrap());
    // Nothing live to delete: said so, not "retry with --cas 0" (which names no version).
    let e = delete(&mut t, ns, "k", Some(3), &W, 100).unwrap_err();
    assert!(matches!(e, OpError::NothingToDelete { expected: 3, .. }), "{e}");
    assert_eq!(e.status(), 412);
    assert!(e.to_string().contains("has no live version to delete") && !e.to_string().contains("--cas 0"), "{e}");
    // Deleted: create-only succeeds again.
    assert_eq!(put(&mut t, ns, "k", &Change { cas: Some(0), ..set("c") }, &W, 100).unwrap().version(), 4);
}

#[test]
fn a_patch_keeps_what_it_does_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = txn(dir.path(), 1000);
    let ns = "vars/job/api";
    let first =
        Change { kv_type: Some(KvType::Number), description: Some("how many".into()), ttl: Some(3600), ..set("3") };
    put(&mut t, ns, "replicas", &first, &W, 1000).unwrap();
    // 600 s later, only the description changes.
    put(&mut t, ns, "replicas", &Change { description: Some("replicas".into()), ..Change::default() }, &W, 1600)
        .unwrap();
    let rows = t.history(ns, "replicas").unwrap();
    let last = rows.last().unwrap();
    assert_eq!((last.value.as_str(), last.kv_type, last.description.as_str()), ("3", KvType::Number, "replicas"));
    assert_eq!(last.created_at + last.ttl as i64, 1000 + 3600, "the expiry is kept, not restarted");
    // A value alone keeps the type: a non-number is refused, not stored as a string.
    assert!(matches!(
        put(&mut t, ns, "replicas", &set("three"), &W, 1700),
        Err(OpError::Rule(_)) | Err(OpError::State(_))
    ));
    // Nothing to keep on a new key.
    assert!(matches!(put(&mut t, ns, "new", &Change::default(), &W, 1700), Err(OpError::NothingToKeep { .. })));
}

#[test]
fn restore_writes_an_old_version_again_and_undeletes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = txn(dir.path(), 10);
    let ns = "vars/job/api";
    put(&mut t, ns, "k", &Change { description: Some("v1".into()), ..set("one") }, &W, 10).unwrap();
    put(&mut t, ns, "k", &Change { description: Some("v2".into()), ..set("two") }, &W, 10).unwrap();
    delete(&mut t, ns, "k", None, &W, 10).unwrap();
    let out = restore(&mut t, ns, "k", 1, Some(0), &W, 20).unwrap();
    assert_eq!(out.version(), 4);
    let last = t.history(ns, "k").unwrap().pop().unwrap();
    assert_eq!((last.value.as_str(), last.description.as_str(), last.deleted), ("one", "v1", false));
    assert!(matches!(restore(&mut t, ns, "k", 3, None, &W, 20), Err(OpError::Tombstone { .. })));
    assert!(matches!(restore(&mut t, ns, "k", 9, None, &W, 20), Err(OpError::NoVersion { .. })));
    assert_eq!(restore(&mut t, ns, "k", 9, None, &W, 20).unwrap_err().status(), 404);
}

#[test]
fn every_write_goes_through_the_one_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = txn(dir.path(), 10);
    for bad in
        [set("a\0b"), Change { ttl: Some(u64::MAX), ..set("x") }, Change { ttl: Some(i64::MAX as u64), ..set("x") }]
    {
        let e = put(&mut t, "vars/job/api", "k", &bad, &W, 10).unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
    }
}
