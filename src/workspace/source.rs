//! Reading one workspace file as text, the same way for HCL and JSON.
//!
//! The file is registered in the [`SourceMap`] under its bucket-relative `/` path, so
//! diagnostics render identically on every machine. A missing file is not an error here
//! (every workspace file is optional; callers decide). Anything else that stops the file
//! from being read as a regular file is reported with its cause, so a file that exists but
//! cannot be read is never mistaken for an absent one (an absent job is purged by the plan):
//! a dangling symlink, a directory, a FIFO, a device, a socket, a permission error, a file
//! larger than `limits { max_file_size }`, or bytes that are not UTF-8.
//!
//! The file is `stat`ed before it is opened, and opened with `O_NONBLOCK`, so neither a
//! FIFO nor a device (a symlink to `/dev/zero`) can make kvform hang or read without end;
//! at most `max_file_size + 1` bytes are ever read.

use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest workspace file read when `kvform.hcl` does not say (`limits { max_file_size }`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a path that exists could not be read as a regular file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("it is a symlink to {}, which does not exist", .0.display())]
    Dangling(PathBuf),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {} bytes, larger than the limit of {} bytes", .size, .limit)]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// The `help:` line for this cause.
    pub fn help(&self) -> String {
        match self {
            ReadError::Dangling(_) => "point the symlink at an existing file, or remove it".into(),
            ReadError::NotRegular(_) => "replace it with a regular file, or remove it".into(),
            ReadError::TooLarge { .. } => {
                "workspace files are small text files; if this one really is that large, raise `limits { max_file_size }` in kvform.hcl".into()
            }
            ReadError::Io(_) => "check that kvform may read it (permissions, file system)".into(),
        }
    }
}

/// What a file type is, in words, for "it is a FIFO, not a regular file".
pub fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Whether anything exists at `path` (a dangling symlink counts: it was put there).
/// `Err` when even that cannot be told (a permission error on the directory).
pub fn exists(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The metadata of what `path` resolves to; `Ok(None)` when nothing is there at all;
/// a dangling symlink is [`ReadError::Dangling`].
pub fn resolve(path: &Path) -> Result<Option<Metadata>, ReadError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::symlink_metadata(path) {
            Ok(link) if link.file_type().is_symlink() => {
                Err(ReadError::Dangling(std::fs::read_link(path).unwrap_or_else(|_| path.to_path_buf())))
            }
            Ok(_) => Err(ReadError::Io(e)),
            Err(_) => Ok(None),
        },
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// The bytes of the regular file at `path`, at most `limit` of them; `Ok(None)` when
/// nothing is there. Never opens a FIFO or device for reading (see the module docs).
pub fn read_regular(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let Some(meta) = resolve(path)? else { return Ok(None) };
    check_regular(&meta, limit)?;
    // O_NONBLOCK: if the path was swapped for a FIFO since the stat, the open still returns.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    check_regular(&file.metadata()?, limit)?;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: bytes.len() as u64, limit });
    }
    Ok(Some(bytes))
}

fn check_regular(meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind(meta)));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { size: meta.len(), limit });
    }
    Ok(())
}

/// The diagnostic for a workspace path that exists but cannot be read (`rel` is
/// bucket-relative).
pub fn unreadable(rel: &str, e: &ReadError) -> Diagnostic {
    Diagnostic::error(format!("cannot read {rel}: {e}")).in_file(rel).help(e.help())
}

/// Read `<root>/<rel>` and register it under `rel`. `None` when the file does not exist
/// (no diagnostic) or could not be read as UTF-8 text (with a diagnostic).
pub fn read(root: &Path, rel: &str, sources: &mut SourceMap, diags: &mut Diagnostics) -> Option<(FileId, String)> {
    let mut bytes = match read_regular(&root.join(rel), sources.max_file_size()) {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(e) => {
            diags.push(unreadable(rel, &e));
            return None;
        }
    };
    // A UTF-8 byte order mark (Windows editors write one) is accepted and dropped: it is
    // not part of the JSON or HCL, and editors do not show it, so columns match theirs.
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let file = sources.add(rel, text.clone());
            Some((file, text))
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            // The lossy copy is byte-identical up to `at`, where U+FFFD (3 bytes) starts.
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = sources.add(rel, lossy);
            diags.push(
                Diagnostic::error(format!("{rel} is not valid UTF-8"))
                    .at(Span::new(file, at..at + 3))
                    .label("invalid byte sequence starts here")
                    .help("save the file as UTF-8 text"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_silent_and_bad_utf8_is_reported_at_the_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut sources, mut diags) = (SourceMap::new(), Diagnostics::new());
        assert!(read(tmp.path(), "nope.json", &mut sources, &mut diags).is_none());
        assert!(diags.is_empty());
        std::fs::write(tmp.path().join("bad.hcl"), b"a = \"\xff\"\n").unwrap();
        assert!(read(tmp.path(), "bad.hcl", &mut sources, &mut diags).is_none());
        assert_eq!(diags.error_count(), 1);
        let out = diags.render(&sources, false);
        assert!(out.contains("bad.hcl is not valid UTF-8") && out.contains("bad.hcl:1:6"), "{out}");
        std::fs::write(tmp.path().join("ok.json"), "[]").unwrap();
        let (file, text) = read(tmp.path(), "ok.json", &mut sources, &mut diags).unwrap();
        assert_eq!((sources.name(file), text.as_str()), ("ok.json", "[]"));
    }
}
