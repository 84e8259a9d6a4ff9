//! The quickstart's hooks against the real hook runtime: database's pre_deploy creates its
//! admin password once, api's post_deploy reads database's port, worker and password and
//! publishes database_url, frontend's read-only health check gates on it.

mod hooks_apply_support;

use hooks_apply_support::*;
use std::path::Path;

#[test]
fn quickstart_hooks_bootstrap_connect_and_check() {
    let tb = TestBucket::from_example(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"));
    let applied = mini_apply(&tb, |_| {});
    assert!(applied.failures.is_empty(), "{:?}\nlogs:\n{}", applied.failures, tb.all_logs());
    let password = tb.value("secrets/job/database", "admin_password").expect("bootstrap created the password");
    assert!(password.len() >= 24);
    assert_eq!(tb.value("vars/job/database", "bootstrapped_version").as_deref(), Some("15.4"));
    assert_eq!(tb.value("vars/job/api", "database_url").as_deref(), Some("postgres://app@10.0.0.1:5432/app"));
    let logs = tb.all_logs();
    assert!(logs.contains("database: created admin_password"), "{logs}");
    assert!(logs.contains("api on 10.0.0.2: database at 10.0.0.1:5432"), "{logs}");
    assert!(logs.contains("frontend on 10.0.0.2: healthy"), "{logs}");
    assert!(!logs.contains("10.0.0.3: healthy"), "the drained allocation runs no hooks: {logs}");
    assert!(!logs.contains(&password), "{logs}");

    // A later apply of a new database version keeps the password.
    let manifest = tb.path("workspace/jobs/database/manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("\"15.4\"", "\"15.5\"");
    std::fs::write(&manifest, text).unwrap();
    let again = mini_apply(&tb, |_| {});
    assert!(again.failures.is_empty(), "{:?}", again.failures);
    assert!(tb.all_logs().contains("database: admin_password already set"));
    assert_eq!(tb.value("secrets/job/database", "admin_password"), Some(password));
    assert_eq!(tb.store().get("secrets/job/database", "admin_password").unwrap().unwrap().version, 1);
    assert_eq!(tb.value("vars/job/database", "bootstrapped_version").as_deref(), Some("15.5"));
}
