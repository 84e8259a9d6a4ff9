//! Bounded input: oversized files refused unread, numbers kept exactly or refused, a BOM
//! accepted, nesting limited with a message instead of a crash.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn kvform(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("KVFORM_NOW", "2026-01-02T03:04:05Z")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bucket(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("workspace")).unwrap();
    for (rel, contents) in files {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
    tmp
}

/// `validate` fails (exit 1, no crash) and its stderr holds every one of `want`.
fn assert_invalid(root: &Path, want: &[&str]) {
    let out = kvform(root, &["validate"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for w in want {
        assert!(stderr.contains(w), "expected {w:?} in:\n{stderr}");
    }
}

#[test]
fn a_file_larger_than_the_limit_is_refused_unread() {
    let b = bucket(&[("kvform.hcl", b"limits {\n  max_file_size = \"1 KiB\"\n}\n")]);
    let workers = format!("[{}{{\"host\": \"h\"}}]", " ".repeat(2000));
    std::fs::write(b.path().join("workspace/workers.json"), &workers).unwrap();
    assert_invalid(
        b.path(),
        &["cannot read workspace/workers.json: it is 2015 bytes, larger than the limit of 1024 bytes", "max_file_size"],
    );
    // Raised, it reads.
    std::fs::write(b.path().join("kvform.hcl"), "limits {\n  max_file_size = 4096\n}\n").unwrap();
    let out = kvform(b.path(), &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn the_default_limit_is_64_mib_and_checked_before_reading() {
    let b = bucket(&[]);
    // Sparse: 65 MiB by its size, nothing on disk. Reading it would still take 65 MiB.
    let f = std::fs::File::create(b.path().join("workspace/bucket.conf")).unwrap();
    f.set_len(65 * 1024 * 1024).unwrap();
    assert_invalid(
        b.path(),
        &["cannot read workspace/bucket.conf: it is 68157440 bytes, larger than the limit of 67108864 bytes"],
    );
}

#[test]
fn a_bad_max_file_size_is_an_error() {
    // `64 MB` is accepted (the same as `64 MiB`, as in every other file); a unit of
    // another quantity is not.
    let b = bucket(&[("kvform.hcl", b"limits {\n  max_file_size = \"64 MHz\"\n}\n")]);
    assert_invalid(b.path(), &["`max_file_size` is not a size of at least one byte", "\"64 MiB\""]);
}

#[test]
fn large_integers_are_stored_exactly_as_written() {
    let b = bucket(&[
        ("workspace/bucket.conf", b"big = 123456789012345678901234567890\nlist = [18446744073709551616]\n"),
        ("workspace/workers.json", br#"[{"host": "10.0.0.1", "labels": ["api"]}]"#),
        ("workspace/jobs/api/manifest.json", b"{}"),
        ("workspace/jobs/api/vars.hcl", b"neg = -98765432109876543210987654321\n"),
    ]);
    let out = kvform(b.path(), &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (ns, key, want) in [
        ("vars/bucket", "big", "123456789012345678901234567890\n"),
        ("vars/bucket", "list", "[18446744073709551616]\n"),
        ("vars/job/api", "neg", "-98765432109876543210987654321\n"),
    ] {
        assert_eq!(text(&kvform(b.path(), &["kv", "get", ns, key]).stdout), want, "{ns} {key}");
    }
}

#[test]
fn numbers_out_of_range_are_clear_errors() {
    let b = bucket(&[
        ("workspace/bucket.conf", b"huge = 1e400\n"),
        (
            "workspace/workers.json",
            br#"[{"host": "a", "cpu": "18446744073709551616 thz"}, {"host": "b", "memory": 1e400}]"#,
        ),
    ]);
    assert_invalid(
        b.path(),
        &[
            "the number `1e400` is too large to store",
            "workspace/bucket.conf:1:8",
            "invalid `cpu`: `18446744073709551616 thz` is too large (at most 9007199254740992 MHz)",
            "invalid `memory`: `1e400` is too large (at most 9007199254740992 MB)",
        ],
    );
}

#[test]
fn a_utf8_bom_is_accepted_in_json_and_hcl() {
    let b = bucket(&[
        ("kvform.hcl", b"\xef\xbb\xbfmax_versions = 5\n"),
        ("workspace/bucket.conf", b"\xef\xbb\xbfregion = \"eu\"\n"),
        ("workspace/workers.json", b"\xef\xbb\xbf[{\"host\": \"10.0.0.1\"}]"),
    ]);
    let out = kvform(b.path(), &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Workspace is valid: 1 worker, 0 jobs.\n");
}

#[test]
fn deep_json_nesting_is_a_message_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let b = bucket(&[("workspace/workers.json", deep.as_bytes())]);
    assert_invalid(b.path(), &["arrays and objects nest too deeply", "workspace/workers.json:1:65"]);
}

#[test]
fn deep_hcl_nesting_is_a_message() {
    let deep = format!("a = {}{}\n", "[".repeat(1000), "]".repeat(1000));
    let b = bucket(&[("workspace/bucket.conf", deep.as_bytes())]);
    assert_invalid(b.path(), &["lists and objects nest too deeply"]);
}
