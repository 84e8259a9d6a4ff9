//! Shared golden-file plumbing.

pub use crate::quickstart_copy::copy_dir;
use similar::TextDiff;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Case directories of a suite (`testdata/<suite>/*`), sorted.
pub fn cases(suite: &str) -> Vec<PathBuf> {
    let dir = repo().join("testdata").join(suite);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Collects mismatches over a whole suite so every broken case is reported.
#[derive(Default)]
pub struct Golden {
    failures: Vec<String>,
    checked: usize,
}

impl Golden {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compare `actual` with the file at `golden/<rel>`; rewrite it when updating.
    pub fn check(&mut self, rel: &str, actual: &str) {
        self.checked += 1;
        let path = repo().join("golden").join(rel);
        if updating() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let old = std::fs::read_to_string(&path).ok();
            if old.as_deref() != Some(actual) {
                std::fs::write(&path, actual).unwrap();
                eprintln!("updated golden/{rel}");
            }
            return;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => self.failures.push(format!(
                "golden/{rel} differs (- expected, + actual):\n{}",
                TextDiff::from_lines(&expected, actual).unified_diff().context_radius(3)
            )),
            Err(_) => self.failures.push(format!(
                "golden/{rel} is missing; run `UPDATE_GOLDEN=1 cargo test` and review it. Actual output:\n{actual}"
            )),
        }
    }

    pub fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// Panic with every mismatch; `min_cases` guards against a suite silently running nothing.
    pub fn finish(self, suite: &str, min_cases: usize) {
        assert!(
            self.checked >= min_cases,
            "suite {suite}: only {} golden files checked, expected at least {min_cases}",
            self.checked
        );
        if !self.failures.is_empty() {
            panic!("{} golden mismatch(es) in {suite}:\n\n{}", self.failures.len(), self.failures.join("\n\n"));
        }
    }
}

/// Relative display path of a case directory.
pub fn case_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}
