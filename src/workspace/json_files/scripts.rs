//! The hook script of a command: exactly one of `_modules/<command>.py`,
//! `_modules/<command>.js` (run with node, as maand runs its `.js` commands),
//! `_modules/<command>.sh` or an executable `_modules/<command>`.

use super::doc::Ctx;
use crate::diag::{Diagnostic, Span};
use crate::workspace::source;
use std::path::{Path, PathBuf};

/// The command's script, relative to the bucket root; reports none / more than one at
/// `span` (the command's name in the manifest).
///
/// A candidate that exists but is not a regular file (a dangling symlink, a directory, a
/// FIFO) is reported, not skipped: skipping it could pick another script or none.
pub fn find(cx: &mut Ctx, root: &Path, job: &str, command: &str, span: Span) -> Option<PathBuf> {
    let dir = format!("workspace/jobs/{job}/_modules");
    let mut found: Vec<String> = Vec::new();
    let mut bare_is_file = false;
    let mut broken = false;
    for (name, bare) in [
        (format!("{command}.py"), false),
        (format!("{command}.js"), false),
        (format!("{command}.sh"), false),
        (command.to_string(), true),
    ] {
        let path = root.join(&dir).join(&name);
        let problem = match source::resolve(&path) {
            Ok(None) => continue,
            Ok(Some(meta)) if meta.is_file() => {
                if !bare || is_executable(&path) {
                    found.push(name);
                } else {
                    bare_is_file = true;
                }
                continue;
            }
            // A directory with the bare command's name is not a script candidate (a helper
            // package `_modules/<name>/` is a directory by intent).
            Ok(Some(meta)) if bare && meta.is_dir() => continue,
            Ok(Some(meta)) => source::ReadError::NotRegular(source::kind(&meta)),
            Err(e) => e,
        };
        broken = true;
        let d = Diagnostic::error(format!("cannot use the script {dir}/{name} for `{command}`: {problem}"))
            .at(span)
            .label(format!("{dir}/{name} is not a readable regular file"))
            .help(problem.help());
        cx.push(d);
    }
    if broken {
        return None;
    }
    match found.as_slice() {
        [one] => Some(PathBuf::from(format!("{dir}/{one}"))),
        [] if bare_is_file => {
            let d = Diagnostic::error(format!("script for `{command}` is not executable"))
                .at(span)
                .label(format!("{dir}/{command} has no execute permission"))
                .help(format!("run `chmod +x {dir}/{command}`, or rename it to {command}.py or {command}.sh"));
            cx.push(d);
            None
        }
        [] => {
            let d = Diagnostic::error(format!("no script for command `{command}`"))
                .at(span)
                .label(format!("nothing in {dir}/"))
                .help(format!(
                    "add one of {command}.py, {command}.js, {command}.sh or an executable {command} to {dir}/"
                ));
            cx.push(d);
            None
        }
        many => {
            let d = Diagnostic::error(format!("more than one script for command `{command}`"))
                .at(span)
                .label(format!("found {} in {dir}/", many.join(", ")))
                .help("keep exactly one script per command and remove the others");
            cx.push(d);
            None
        }
    }
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_p: &Path) -> bool {
    true
}
