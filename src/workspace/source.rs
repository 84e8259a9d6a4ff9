//! Reading one workspace file as text, the same way for HCL and JSON.
//!
//! The file is registered in the [`SourceMap`] under its bucket-relative `/` path, so
//! diagnostics render identically on every machine. A missing file is not an error here
//! (every workspace file is optional; callers decide); an unreadable file or one that is
//! not UTF-8 is reported, and the caller then gets nothing from it.

use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
use std::path::Path;

/// Read `<root>/<rel>` and register it under `rel`. `None` when the file does not exist
/// (no diagnostic) or could not be read as UTF-8 text (with a diagnostic).
pub fn read(root: &Path, rel: &str, sources: &mut SourceMap, diags: &mut Diagnostics) -> Option<(FileId, String)> {
    let bytes = match std::fs::read(root.join(rel)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            diags.push(
                Diagnostic::error(format!("cannot read {rel}: {e}"))
                    .in_file(rel)
                    .help("check that it is a regular file kvform may read"),
            );
            return None;
        }
    };
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
