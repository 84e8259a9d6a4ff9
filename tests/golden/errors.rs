//! `testdata/errors/<case>/` is a bucket with one malformed workspace; the rendered
//! diagnostics must match `golden/errors/<case>.txt`.

use crate::support::{Golden, case_name, cases};

#[test]
fn error_corpus() {
    let mut g = Golden::new();
    let cases = cases("errors");
    for dir in &cases {
        let name = case_name(dir);
        let loaded = kvform::workspace::load(dir);
        let mut out = loaded.diagnostics.render(&loaded.sources, false);
        // A case that loads cleanly still runs through the model, so model errors (cycles,
        // capacity, ports) live in the same corpus.
        if let Some(ws) = &loaded.workspace {
            let prior = kvform::model::types::Prior::default();
            if let Err(diags) = kvform::model::desired(ws, &prior) {
                out.push_str(&diags.render(&loaded.sources, false));
            }
        }
        if !out.contains("error") {
            g.fail(format!("testdata/errors/{name}: expected at least one error, got:\n{out}"));
        }
        g.check(&format!("errors/{name}.txt"), &out);
    }
    g.finish("errors", 0);
}
