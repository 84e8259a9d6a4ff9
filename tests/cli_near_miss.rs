//! A misspelt setting warns with "did you mean", and warnings never fail the command.

mod tf_support;

use tf_support::{bucket, kvform, stderr, stdout};

#[test]
fn near_misses_warn_and_validate_still_succeeds() {
    let b = bucket();
    let ws = b.path().join("workspace");
    std::fs::write(ws.join("bucket.conf"), "port_mn = 31000\nport_max = 31999\n").unwrap();
    let jobs = std::fs::read_to_string(ws.join("bucket.jobs.conf")).unwrap();
    std::fs::write(ws.join("bucket.jobs.conf"), format!("{jobs}\njob \"wbe\" {{\n  cpu = \"100 mhz\"\n}}\n")).unwrap();
    let o = kvform(b.path(), &["validate"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Workspace is valid"), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("warning: `port_mn` is not a setting; it is stored in vars/bucket as a variable"), "{e}");
    assert!(e.contains("help: did you mean `port_min`?"), "{e}");
    assert!(e.contains("warning: bucket.jobs block for unknown job `wbe`"), "{e}");
    assert!(e.contains("help: did you mean `web`?"), "{e}");
    // The plan goes ahead too.
    let o = kvform(b.path(), &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
