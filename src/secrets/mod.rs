//! See the crate docs (`src/lib.rs`) for what this module is for.
