//! `secrets/ca.crt`: the public half of the bucket CA, read with the workspace because the
//! plan writes it to `maand/worker` `certs/ca.crt` and checks every certificate against it
//! (SPEC §8). The private key is never read here.
//!
//! A CA with only one of its two files, or a `ca.crt` that is not a CA certificate, is a
//! workspace error. A missing CA is not (the workspace stays valid on a fresh checkout, and
//! `apply` on a bucket without a state creates the CA with the state); planning refuses
//! certificates without a CA ([`check_declared`], called by the CLI pipeline).

use super::source;
use super::types::{CaCert, Job};
use crate::bucket::Bucket;
use crate::diag::{Diagnostic, Diagnostics, SourceMap, Span};
use std::collections::BTreeMap;
use std::path::Path;

const CERT: &str = "secrets/ca.crt";

pub fn load(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Option<CaCert> {
    let bucket = Bucket::at(root);
    if let Err(e) = crate::certs::ca::exists(&bucket) {
        let rel = if crate::certs::ca::cert_file(&bucket).exists() { CERT } else { "secrets/ca.key" };
        diags.push(
            Diagnostic::error("the bucket CA is incomplete: secrets/ must hold both ca.crt and ca.key")
                .in_file(rel)
                .help(e.to_string().split("help: ").nth(1).unwrap_or("run `kvform init`").to_string()),
        );
        return None;
    }
    let (file, text) = source::read(root, CERT, sources, diags)?;
    if let Err(reason) = crate::certs::inspect::check_ca(&text) {
        diags.push(
            Diagnostic::error(format!("{CERT} is not a usable CA certificate: {reason}"))
                .at(Span::new(file, 0..text.len().min(1)))
                .label("the bucket CA")
                .help("restore it from your backup, or run `kvform certs rotate-ca` to make a new CA"),
        );
        return None;
    }
    Some(CaCert { pem: text.trim().to_string() })
}

/// A job that declares certificates needs the CA (checked when planning).
pub fn check_declared(jobs: &BTreeMap<String, Job>, ca: Option<&CaCert>, diags: &mut Diagnostics) {
    if ca.is_some() {
        return;
    }
    for job in jobs.values() {
        if let Some(first) = job.certs.first() {
            diags.push(
                Diagnostic::error(format!("job `{}` declares certificates but the bucket has no CA", job.name))
                    .at(first.span)
                    .label("issued by the bucket CA (secrets/ca.crt)")
                    .help(
                        "copy secrets/ca.crt and secrets/ca.key from the machine that made the bucket (a shared PostgreSQL state), or run `kvform init` in a new bucket to create them",
                    ),
            );
        }
    }
}
