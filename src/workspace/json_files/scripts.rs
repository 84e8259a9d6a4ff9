//! The hook script of a command: exactly one of `_modules/<command>.py`,
//! `_modules/<command>.js` (run with node, as maand runs its `.js` commands),
//! `_modules/<command>.sh` or an executable `_modules/<command>`.

use super::doc::Ctx;
use crate::diag::{Diagnostic, Span};
use std::path::{Path, PathBuf};

/// The command's script, relative to the bucket root; reports none / more than one at
/// `span` (the command's name in the manifest).
pub fn find(cx: &mut Ctx, root: &Path, job: &str, command: &str, span: Span) -> Option<PathBuf> {
    let dir = format!("workspace/jobs/{job}/_modules");
    let bare = root.join(&dir).join(command);
    let bare_is_file = bare.is_file();
    let mut found: Vec<String> = [format!("{command}.py"), format!("{command}.js"), format!("{command}.sh")]
        .into_iter()
        .filter(|f| root.join(&dir).join(f).is_file())
        .collect();
    if bare_is_file && is_executable(&bare) {
        found.push(command.to_string());
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
