//! `kvform fmt [--check] [--diff]` end to end: canonical HCL (comments kept) and JSON,
//! exit 3 for --check, a unified diff, atomic rewrites that keep permissions, canonical
//! files never rewritten, and files that cannot be formatted safely left as they are.

mod tf_support;

use std::os::unix::fs::PermissionsExt;
use tf_support::{bucket, kvform, stderr, stdout};

const MESSY_CONF: &str = "# bucket-wide\nport_min=30000\n  port_max    = 39999   # the pool's top\n\nregion = \"eu\"\n";
const CANONICAL_CONF: &str =
    "# bucket-wide\nport_min = 30000\nport_max = 39999   # the pool's top\n\nregion = \"eu\"\n";

#[test]
fn check_diff_then_format_keeps_comments_and_modes() {
    let b = bucket();
    let conf = b.path().join("workspace/bucket.conf");
    std::fs::write(&conf, MESSY_CONF).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    let workers = b.path().join("workspace/workers.json");
    std::fs::write(&workers, "[{\"host\":\"10.0.0.1\",\"labels\":[\"web\",\"db\"],\"memory\":\"4 gb\"}]").unwrap();

    let o = kvform(b.path(), &["fmt", "--check"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "workspace/bucket.conf\nworkspace/workers.json\nworkspace/jobs/web/manifest.json\n");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), MESSY_CONF, "--check wrote the file");

    let o = kvform(b.path(), &["fmt", "--check", "--diff"]);
    assert_eq!(o.status.code(), Some(3));
    let d = stdout(&o);
    // The name first, as without --diff, then the diff.
    assert!(d.starts_with("workspace/bucket.conf\n--- a/workspace/bucket.conf\n+++ b/workspace/bucket.conf\n"), "{d}");
    assert!(d.contains("\n-port_min=30000\n") && d.contains("\n+port_min = 30000\n"), "{d}");

    let o = kvform(b.path(), &["fmt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Each rewritten file is named, as `terraform fmt` does (web's manifest had its short
    // `ports` object on four lines).
    assert_eq!(stdout(&o), "workspace/bucket.conf\nworkspace/workers.json\nworkspace/jobs/web/manifest.json\n");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), CANONICAL_CONF);
    assert_eq!(std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::read_to_string(&workers).unwrap(),
        "[\n  {\"host\": \"10.0.0.1\", \"labels\": [\"web\", \"db\"], \"memory\": \"4 gb\"}\n]\n"
    );
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(b.path().join("workspace"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Now canonical: nothing to do, nothing rewritten.
    let before = std::fs::metadata(&conf).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = kvform(b.path(), &["fmt"]);
    assert!(o.status.success() && stdout(&o).is_empty(), "{}", stdout(&o));
    assert_eq!(std::fs::metadata(&conf).unwrap().modified().unwrap(), before, "a canonical file was rewritten");
    assert_eq!(kvform(b.path(), &["fmt", "--check"]).status.code(), Some(0));
    let o = kvform(b.path(), &["validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_new_bucket_is_already_canonical() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(kvform(tmp.path(), &["init"]).status.success());
    let o = kvform(tmp.path(), &["fmt", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn files_that_cannot_be_formatted_safely_are_left_and_named() {
    let b = bucket();
    let manifest = b.path().join("workspace/jobs/db/manifest.json");
    // Not JSON (a trailing comma): left as it is and named.
    let text = "{ \"version\": \"2.0.0\", }";
    std::fs::write(&manifest, text).unwrap();
    let vars = b.path().join("workspace/jobs/web/vars.hcl");
    std::fs::write(&vars, "greeting = {\n").unwrap();
    let conf = b.path().join("workspace/bucket.conf");
    std::fs::write(&conf, "x=1\n").unwrap();
    let o = kvform(b.path(), &["fmt"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("error: cannot format workspace/jobs/db/manifest.json: not valid JSON"), "{e}");
    assert!(e.contains("error: cannot format workspace/jobs/web/vars.hcl: not valid HCL"), "{e}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&vars).unwrap(), "greeting = {\n");
    // The others are still formatted.
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "x = 1\n");
}

/// A three-worker `workers.json` with a worker per line stays five lines (it used to grow to
/// 31: every array item on its own line); numbers and escapes keep their spelling.
#[test]
fn short_json_items_stay_on_one_line_and_spellings_are_kept() {
    let b = bucket();
    let workers = b.path().join("workspace/workers.json");
    let text = "[\n  {\"host\": \"10.0.0.1\", \"labels\": [\"web\", \"db\"], \"memory\": \"4 gb\"},\n  \
{\"host\": \"10.0.0.2\", \"labels\": [\"web\"], \"memory\": \"1 gb\", \"tags\": {\"note\": \"caf\\u00e9\"}},\n  \
{\"host\": \"10.0.0.3\", \"labels\": [\"db\"], \"memory\": \"1 gb\", \"position\": 2}\n]\n";
    std::fs::write(&workers, text).unwrap();
    let o = kvform(b.path(), &["fmt", "--check"]);
    assert!(!stdout(&o).contains("workers.json"), "a canonical workers.json was listed: {}", stdout(&o));
    // Spread over 24 lines (serde_json's layout, which `fmt` used to write), it comes back
    // to the same five: the layout depends on the values, not on how the file was laid out.
    let spread = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(text).unwrap()).unwrap();
    std::fs::write(&workers, spread.replace("\u{e9}", "\\u00e9")).unwrap();
    let o = kvform(b.path(), &["fmt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().any(|l| l == "workspace/workers.json"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&workers).unwrap(), text);
    let o = kvform(b.path(), &["validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
