//! A private copy of `examples/quickstart` for tests that create a state in it (the
//! example itself must stay without one).

use std::path::Path;

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// What running the example leaves behind (git-ignored): never part of the copy, so the
/// tests behave the same after someone ran the README's quickstart in the checkout.
const RUNTIME_DIRS: [&str; 3] = ["data", "secrets", "logs"];

/// The quickstart bucket (its workspace and settings, not its runtime state) copied into a
/// new temp dir.
pub fn quickstart_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    for e in std::fs::read_dir(&example).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if RUNTIME_DIRS.iter().any(|d| name == *d) {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &tmp.path().join(&name));
        } else {
            std::fs::copy(e.path(), tmp.path().join(&name)).unwrap();
        }
    }
    tmp
}
