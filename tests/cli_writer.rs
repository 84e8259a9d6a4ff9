//! Who wrote a key: `<user>@<host>` (the operator, no prefix), with the user from the uid when the environment
//! names none (cron jobs, containers).

mod tf_support;

use std::process::Command;
use tf_support::applied_bucket;

fn id_un() -> String {
    let o = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn the_writer_is_the_login_name_of_the_uid_without_user_in_the_environment() {
    let b = applied_bucket();
    let o = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(b.path())
        .args(["kv", "set", "vars/job/web", "mode", "on"])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let history = tf_support::ok(b.path(), &["kv", "history", "vars/job/web", "mode", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&history).unwrap();
    let writer = rows[0]["writer"].as_str().unwrap().to_string();
    let host = String::from_utf8(Command::new("hostname").output().map(|o| o.stdout).unwrap_or_default()).unwrap();
    assert!(writer.starts_with(&format!("{}@", id_un())), "{writer}");
    if !host.trim().is_empty() {
        assert_eq!(writer, format!("{}@{}", id_un(), host.trim()));
    }
    // The audit trail names the same text for the change set as the version's writer.
    let info: serde_json::Value =
        serde_json::from_str(&tf_support::ok(b.path(), &["state", "info", "--format", "json"])).unwrap();
    let last = &info["last_change_sets"][0];
    assert_eq!((last["operation"].as_str(), last["actor"].as_str()), (Some("kv set"), Some(writer.as_str())), "{info}");
}
