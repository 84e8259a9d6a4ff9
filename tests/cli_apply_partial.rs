//! An apply where one job fails says which jobs were rolled back and what was kept, next to
//! the counts of what was kept and of the plan ("0 changed" alone read as a contradiction).

mod tf_support;

use std::os::unix::fs::PermissionsExt;
use tf_support::{bucket, kvform, stderr, stdout};

#[test]
fn a_failed_job_is_named_as_rolled_back_and_the_rest_as_kept() {
    let b = bucket();
    let web = b.path().join("workspace/jobs/web");
    std::fs::write(
        web.join("manifest.json"),
        r#"{ "version": "1.0.0", "commands": { "command_check": { "executed_on": ["post_deploy"] } } }"#,
    )
    .unwrap();
    std::fs::create_dir_all(web.join("_modules")).unwrap();
    let script = web.join("_modules/command_check.sh");
    std::fs::write(&script, "#!/bin/bash\necho not today >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let o = kvform(b.path(), &["apply", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let last = stdout(&o).lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("Apply partially complete! Rolled back: web (failed in post_deploy). "), "{last}");
    assert!(last.contains(" Kept: db, the bucket-level changes. "), "{last}");
    assert!(last.contains(" destroyed (of the plan's "), "{last}");
    assert!(stderr(&o).contains("job web failed in post_deploy"), "{}", stderr(&o));
}
