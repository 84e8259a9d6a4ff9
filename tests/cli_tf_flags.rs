//! Terraform-style single-dash long flags work as aliases (`-chdir=DIR`, `-out=FILE`,
//! `-json`, `-auto-approve`, `-detailed-exitcode`); real short flags keep working; an
//! unknown single-dash flag is answered with the `--` spelling.

mod tf_support;

use tf_support::{bucket, kvform_in, stderr, stdout};

#[test]
fn terraform_spellings_plan_save_and_apply() {
    let b = bucket();
    let parent = b.path().parent().unwrap();
    let chdir = format!("-chdir={}", b.path().display());
    let o = kvform_in(parent, &[&chdir, "plan", "-out=tf.plan.json", "-no-color"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Plan: "), "{}", stdout(&o));
    assert!(b.path().join("tf.plan.json").is_file());
    let o = kvform_in(parent, &[&chdir, "show", "tf.plan.json", "-json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("-json prints JSON");
    assert!(v["summary"].is_object(), "{v}");
    let o = kvform_in(parent, &[&chdir, "apply", "-auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Apply complete!"), "{}", stdout(&o));
    let o = kvform_in(parent, &[&chdir, "plan", "-detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn short_flags_still_work() {
    let b = bucket();
    let o = kvform_in(b.path().parent().unwrap(), &["-q", "-C", b.path().to_str().unwrap(), "validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Workspace is valid"), "{}", stdout(&o));
    let o = kvform_in(b.path(), &["-qv", "validate"]);
    // -q and -v conflict: clap's own error, not a rewrite.
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

#[test]
fn an_unknown_single_dash_flag_names_the_two_dash_spelling() {
    let b = bucket();
    let o = kvform_in(b.path(), &["plan", "-detailed-exit-code"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error: unknown flag `-detailed-exit-code`"), "{}", stderr(&o));
    assert!(stderr(&o).contains("help: did you mean `--detailed-exitcode`?"), "{}", stderr(&o));
    let o = kvform_in(b.path(), &["apply", "-input=false"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("kvform has no `--input`"), "{}", stderr(&o));
}
