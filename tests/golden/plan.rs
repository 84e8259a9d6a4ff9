//! `testdata/plan/<case>/` -> `golden/plan/<case>/` (owned by the plan/apply work).
