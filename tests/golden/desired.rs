//! `testdata/desired/<case>/` -> `golden/desired/<case>.txt` (owned by the model work).
