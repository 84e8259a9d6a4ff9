//! Exit codes (SPEC §7): 0 success, 1 error — usage errors included, because with
//! `plan --detailed-exitcode` 2 means "the plan has changes".

use std::process::Command;

fn status(args: &[&str]) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_kvform")).args(args).output().unwrap().status.code()
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    assert_eq!(status(&["plan", "--detailed-exitcode", "--bogus"]), Some(1));
    assert_eq!(status(&["plan", "--format", "yaml", "--detailed-exitcode"]), Some(1));
    assert_eq!(status(&["no-such-command"]), Some(1));
    assert_eq!(status(&["--help"]), Some(0));
    assert_eq!(status(&["plan", "--help"]), Some(0));
    assert_eq!(status(&["--version"]), Some(0));
}
