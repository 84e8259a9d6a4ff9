//! `kvform fmt [--check] [--diff]`: rewrite the bucket's HCL and JSON files in canonical
//! form (`crate::workspace::format`), like `terraform fmt`.
//!
//! - Files: `kvform.hcl`, `workspace/bucket.conf`, `workspace/bucket.jobs*.conf`,
//!   `workspace/jobs/<job>/vars.hcl` (HCL); `workspace/workers.json`,
//!   `workspace/disabled.json`, `workspace/jobs/<job>/manifest.json` (JSON). Missing ones
//!   are skipped.
//! - Each changed file is named on stdout (with `--check`: each file that would change), as
//!   `terraform fmt` does; with `--diff` its unified diff follows the name.
//! - A file already canonical is never written. A changed one is written atomically (a
//!   temporary file in the same directory, then renamed over it) with its permissions kept.
//! - `--check` writes nothing and exits 3 when a file would change (`terraform fmt -check`
//!   does the same), listing those files; `--diff` prints a unified diff of each change.
//! - A file that does not parse, or whose canonical form would change more than whitespace
//!   (so a comment or a spelling could be lost), is left as it is and named on stderr; the
//!   command then exits 1 (after formatting the others).

use super::Context;
use crate::bucket::Bucket;
use crate::workspace::format;
use anyhow::Context as _;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rewrite the bucket's HCL and JSON files in canonical form and print the name of each file
/// it changed. HCL: comments kept, `=` aligned. JSON: values spelt as written; an array of
/// scalars, or an object of such values, on one line when it fits in 100 columns.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  kvform fmt\n  kvform fmt --check     exit 3 when a file is not formatted (CI)\n  \
kvform fmt --check --diff"
)]
pub struct Args {
    /// Write nothing; exit 3 when some file is not in canonical form.
    #[arg(long)]
    check: bool,
    /// Print a unified diff of every change.
    #[arg(long)]
    diff: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Hcl,
    Json,
}

/// The formattable files of the bucket that exist, in a stable order (relative paths).
fn files(root: &Path) -> Vec<(String, Kind)> {
    let mut out = vec![("kvform.hcl".to_string(), Kind::Hcl), ("workspace/bucket.conf".to_string(), Kind::Hcl)];
    let ws = root.join("workspace");
    let mut confs: Vec<String> = std::fs::read_dir(&ws)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bucket.jobs") && n.ends_with(".conf"))
        .collect();
    confs.sort();
    out.extend(confs.into_iter().map(|n| (format!("workspace/{n}"), Kind::Hcl)));
    out.push(("workspace/workers.json".to_string(), Kind::Json));
    out.push(("workspace/disabled.json".to_string(), Kind::Json));
    let mut jobs: Vec<String> = std::fs::read_dir(ws.join("jobs"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    jobs.sort();
    for job in jobs {
        out.push((format!("workspace/jobs/{job}/manifest.json"), Kind::Json));
        out.push((format!("workspace/jobs/{job}/vars.hcl"), Kind::Hcl));
    }
    out.into_iter().filter(|(rel, _)| root.join(rel).is_file()).collect()
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let bucket = Bucket::find(&ctx.dir)?;
    let (mut changed, mut refused) = (Vec::new(), 0);
    for (rel, kind) in files(&bucket.root) {
        let path = bucket.root.join(&rel);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let canonical = match kind {
            Kind::Hcl => format::hcl(&text),
            Kind::Json => format::json(&text),
        };
        let canonical = match canonical {
            Ok(c) => c,
            Err(e) => {
                refused += 1;
                ctx.printer.error(&format!("cannot format {rel}: {e}"));
                continue;
            }
        };
        if canonical == text {
            continue;
        }
        if !args.check {
            write_atomically(&path, &canonical)?;
        }
        // Named once written (or, with --check, found), like `terraform fmt`; with --diff its
        // diff follows.
        ctx.printer.out(&rel);
        if args.diff {
            let diff = similar::TextDiff::from_lines(&text, &canonical);
            ctx.printer.out(
                &diff.unified_diff().context_radius(3).header(&format!("a/{rel}"), &format!("b/{rel}")).to_string(),
            );
        }
        changed.push(rel);
    }
    if refused > 0 {
        return Ok(ExitCode::from(1));
    }
    if args.check && !changed.is_empty() {
        ctx.printer.info(&format!(
            "{} file(s) not in canonical form\n  help: run `kvform fmt` to rewrite them",
            changed.len()
        ));
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// Replace `path` with `text`: a temporary file beside it with the same permissions,
/// synced, then renamed over it, so a crash leaves either the old file or the new one.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.fmt-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
