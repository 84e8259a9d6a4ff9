//! `kvform cat workers|jobs|allocations` after applying the quickstart.

#[path = "quickstart_copy/mod.rs"]
mod quickstart_copy;

use std::process::Command;

fn kvform(dir: &std::path::Path, args: &[&str]) -> String {
    let out =
        Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn fleet_listings_show_what_the_state_holds() {
    let dir = quickstart_copy::quickstart_copy();
    // Before any apply there is no state: a clear error, not an empty table.
    let out = Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir.path()).args(["cat", "workers"]).output();
    let out = out.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kvform init"), "{}", String::from_utf8_lossy(&out.stderr));

    kvform(dir.path(), &["apply", "--auto-approve"]);
    assert_eq!(
        kvform(dir.path(), &["cat", "workers"]),
        "HOST      POSITION  LABELS               MEMORY_MB  CPU_MHZ  JOBS\n\
         10.0.0.1  0         api,database,worker  8192       4000     api,database\n\
         10.0.0.2  1         api,frontend,worker  4096       2400     api,frontend\n\
         10.0.0.3  2         frontend,worker      2048       2000\n"
    );
    assert_eq!(
        kvform(dir.path(), &["cat", "jobs"]),
        "JOB       VERSION  WAVE  WORKERS  MEMORY  CPU   SELECTORS\n\
         api       1.4.0    1     2        512     500   api\n\
         database  15.4     0     1        2048    1500  database\n\
         frontend  2.1.0    2     1        256     250   frontend\n"
    );
    // frontend on 10.0.0.3 is drained in disabled.json: it keeps its namespace, but is not active.
    assert_eq!(
        kvform(dir.path(), &["cat", "allocations"]),
        "JOB       HOST      STATE     VERSION  INDEX\n\
         api       10.0.0.1  active    1.4.0    0\n\
         api       10.0.0.2  active    1.4.0    1\n\
         database  10.0.0.1  active    15.4     0\n\
         frontend  10.0.0.2  active    2.1.0    0\n\
         frontend  10.0.0.3  disabled  2.1.0    1\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&kvform(dir.path(), &["cat", "allocations", "--format", "json"])).unwrap();
    assert_eq!(json[4]["state"], "disabled");
    assert_eq!(json.as_array().unwrap().len(), 5);
}
