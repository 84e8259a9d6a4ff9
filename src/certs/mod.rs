//! The bucket CA and the certificates it issues per allocation (SPEC §8).
//!
//! - [`ca`]: `secrets/ca.crt` + `secrets/ca.key` (created by `kvform init`, replaced by
//!   `kvform certs rotate-ca`).
//! - [`issue`]: key generation and signing — only `apply` calls it, inside its write
//!   transaction, so plans hold no random material.
//! - [`inspect`]: reading a stored certificate back (x509-parser) and the pure re-issue
//!   decision the plan makes ([`inspect::reissue_reason`]).
//!
//! Crates: `rcgen` builds and signs certificates (ring backend: no C++/cmake build); ring
//! cannot generate RSA keys, so RSA keys come from the `rsa` crate and are handed to rcgen as
//! PKCS#8; with `pkcs8` false, ECDSA keys are written as SEC1 through the `sec1` crate with
//! the named-curve parameters (RFC 5915 requires them; `p256`'s own encoder leaves them out
//! and OpenSSL refuses such a key), RSA keys as PKCS#1; ed25519 keys as PKCS#8 v1 (OpenSSL
//! 3.0 refuses ring's v2). `x509-parser` reads certificates and verifies their signature
//! against the CA.
//!
//! Decisions where SPEC §8 is silent:
//! - The CA key is ECDSA P-256 (maand: RSA 4096): fast to create, verified by every TLS
//!   stack; its certificate is valid 10 years from `now`, CN = the bucket id.
//! - Leaf certificates carry the SANs as IP addresses when the host parses as one, else as a
//!   DNS name; `basicConstraints CA:FALSE`, key usage digital signature + key encipherment,
//!   no extended key usage (maand's template, `build/build_certs.go` 472-481, so they serve
//!   both as server and client certificates); validity starts at `now`.
//! - What the plan compares to decide a re-issue is read from the certificate itself (CA
//!   signature, SANs, expiry) plus one companion key, `certs/<name>.spec`, that records the
//!   declaration (`key_type`, `pkcs8`, `one`, `common_name`): the key encoding cannot be read
//!   from the certificate, and the private key is encrypted, so the plan (which holds no
//!   secrets) could not read it either.

pub mod ca;
pub mod inspect;
pub mod issue;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error(
        "the bucket CA is incomplete: {} exists but {} does not\n  help: restore the missing file from your backup, or move the other one away and run `kvform init` to create a new CA (every certificate is then re-issued)",
        .present.display(), .missing.display()
    )]
    IncompleteCa { present: PathBuf, missing: PathBuf },
    #[error(
        "the bucket has no CA ({})\n  help: a bucket made on another machine (a shared PostgreSQL state) has its CA there: copy secrets/ca.crt and secrets/ca.key from it (mode 0600); a new bucket gets one from `kvform init`",
        .0.display()
    )]
    MissingCa(PathBuf),
    #[error("{} is readable by group or others (mode {mode:04o}); kvform refuses to use it\n  help: chmod 600 {}", .path.display(), .path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{} is not a usable CA {what}: {reason}\n  help: restore it from your backup, or run `kvform certs rotate-ca` to make a new CA", .path.display())]
    BadCa { path: PathBuf, what: &'static str, reason: String },
    #[error("cannot access {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot generate certificate `{name}`: {reason}")]
    Generate { name: String, reason: String },
}

/// What one certificate is issued for: the declaration and the hosts it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// `certs.<name>` of the manifest (used in errors).
    pub name: String,
    pub common_name: String,
    pub key_type: crate::workspace::types::KeyType,
    pub pkcs8: bool,
    /// SANs in order: `127.0.0.1` first, then the allocation host(s) in fleet order.
    pub sans: Vec<String>,
    /// Validity in days from `now`.
    pub ttl_days: u32,
}

/// The SANs of a certificate for `hosts`: `127.0.0.1`, then each host once, in order.
pub fn sans_for<'a>(hosts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = vec!["127.0.0.1".to_string()];
    for h in hosts {
        if !out.iter().any(|s| s == h) {
            out.push(h.to_string());
        }
    }
    out
}

/// The value of `certs/<name>.spec`: the declaration as one line.
pub fn spec_value(decl: &crate::workspace::types::CertDecl) -> String {
    format!(
        "key_type={},pkcs8={},one={},common_name={}",
        decl.key_type.as_str(),
        decl.pkcs8,
        decl.one,
        decl.common_name
    )
}
