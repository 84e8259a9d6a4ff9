//! The golden runner: walks `testdata/<suite>/<case>/`, produces the output for each case
//! and compares it with `golden/<suite>/<case>…`. `UPDATE_GOLDEN=1 cargo test` rewrites
//! the expected files; a mismatch prints a line diff. Every case is checked before the
//! test fails, so one run shows every broken case.

mod desired;
mod errors;
mod plan;
#[path = "../quickstart_copy/mod.rs"]
#[allow(dead_code)]
mod quickstart_copy;
mod show;
mod support;
#[path = "../tf_support/mod.rs"]
mod tf_support;
