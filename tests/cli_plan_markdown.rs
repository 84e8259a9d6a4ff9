//! `plan --format markdown` as a pull-request comment (issue 27): a header naming the bucket,
//! the base serial and the commit; purges and destroys pulled out into a warning block
//! first; a size budget (`--max-chars`, default 60,000) with a visible note when cut.

mod tf_support;

use std::process::Command;
use tf_support::*;

fn markdown(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["plan", "--format", "markdown"];
    args.extend_from_slice(extra);
    ok(dir, &args)
}

#[test]
fn the_header_names_bucket_serial_and_commit() {
    let b = applied_bucket();
    std::fs::write(b.path().join("workspace/jobs/web/vars.hcl"), "greeting = \"bye\"\n").unwrap();
    let id = ok(b.path(), &["kv", "get", "maand/bucket", "bucket_id"]);
    let md = markdown(b.path(), &[]);
    assert!(md.starts_with(&format!("### kvform plan\n\nbucket `{}` at serial 1\n\n", id.trim())), "{md}");
    let git = |args: &[&str]| {
        let o = Command::new("git").arg("-C").arg(b.path()).args(args).output().expect("git is installed");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"]);
    let sha = git(&["rev-parse", "--short=12", "HEAD"]);
    let md = markdown(b.path(), &[]);
    assert!(md.contains(&format!("bucket `{}` at serial 1, commit `{}`\n", id.trim(), sha.trim())), "{md}");
}

#[test]
fn purges_and_destroys_come_first_in_a_warning_block() {
    let b = applied_bucket();
    std::fs::remove_dir_all(b.path().join("workspace/jobs/db")).unwrap();
    std::fs::write(b.path().join("workspace/jobs/web/manifest.json"), "{ \"version\": \"1.0.0\" }\n").unwrap();
    let md = markdown(b.path(), &[]);
    let warn = md.find("> [!CAUTION]").expect("a warning block");
    assert!(warn < md.find("| to add |").unwrap(), "{md}");
    assert!(md.contains("> - `maand/job/db` ("), "{md}");
    assert!(md.contains("purge: job removed from workspace)"), "{md}");
    assert!(md.contains("> - `maand/bucket` `web_http` (tombstone: "), "{md}");
    // Purges are listed before single tombstones.
    assert!(md.find("purge: job removed").unwrap() < md.find("`web_http` (tombstone").unwrap(), "{md}");
}

#[test]
fn a_comment_over_the_budget_is_cut_with_a_visible_note() {
    let b = bucket();
    let full = markdown(b.path(), &[]);
    assert!(full.len() > 3000, "the fixture plan is large enough: {}", full.len());
    assert!(!full.contains("was cut"));
    let cut = markdown(b.path(), &["--max-chars", "3000"]);
    assert!(cut.len() <= 3000, "{} bytes:\n{cut}", cut.len());
    assert!(cut.contains("> **This comment was cut to fit 3,000 characters**: "), "{cut}");
    assert!(cut.contains("The full plan: run `kvform plan` on this commit"), "{cut}");
    // The fence is closed, so the note renders outside the code block.
    assert_eq!(cut.matches("```").count(), 2, "{cut}");
    // With --out, the note names the saved plan.
    std::fs::remove_file(b.path().join("data/kvform.db")).ok();
    let b = applied_bucket();
    std::fs::remove_dir_all(b.path().join("workspace/jobs/web")).unwrap();
    let cut = ok(b.path(), &["plan", "--format", "markdown", "--max-chars", "1200", "--out", "pr.plan.json"]);
    assert!(cut.len() <= 1200, "{cut}");
    assert!(cut.contains("The full plan: `kvform show pr.plan.json` (saved with this plan)."), "{cut}");
    let shown = ok(b.path(), &["show", "pr.plan.json", "--format", "markdown", "--max-chars", "1200"]);
    assert!(
        shown.contains("state lineage `") && shown.contains("The full plan: `kvform show pr.plan.json`."),
        "{shown}"
    );
}
