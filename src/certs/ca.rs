//! The bucket CA files: `secrets/ca.crt` (0600) and `secrets/ca.key` (0600) in the 0700
//! `secrets/` directory, like `secrets/kv.key`.
//!
//! - [`ensure`] (`kvform init`): creates both when both are missing, keeps both when both
//!   exist, refuses when only one exists (a certificate without its key, or the reverse, is a
//!   half-restored backup: guessing would silently re-issue every certificate).
//! - [`rotate`] (`kvform certs rotate-ca`): a new CA; the previous files are kept as
//!   `ca.crt.old` / `ca.key.old`. Each file is written next to its place and renamed over it,
//!   so a file is never half-written.
//! - [`load_signer`] (`apply`): the CA with its key, refusing a key readable by others.

use super::CertsError;
use super::issue::{CaSigner, Issued, new_ca};
use crate::bucket::Bucket;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Validity of the bucket CA, days (SPEC §8: 10 years).
pub const CA_DAYS: i64 = 3650;

pub fn cert_file(bucket: &Bucket) -> PathBuf {
    bucket.secrets_dir().join("ca.crt")
}

pub fn key_file(bucket: &Bucket) -> PathBuf {
    bucket.secrets_dir().join("ca.key")
}

/// `Ok(true)` when both files exist, `Ok(false)` when neither does; an error when only one does.
pub fn exists(bucket: &Bucket) -> Result<bool, CertsError> {
    let (crt, key) = (cert_file(bucket), key_file(bucket));
    match (crt.exists(), key.exists()) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (true, false) => Err(CertsError::IncompleteCa { present: crt, missing: key }),
        (false, true) => Err(CertsError::IncompleteCa { present: key, missing: crt }),
    }
}

/// Create the CA (CN `bucket_id`) unless it exists; `Ok(true)` when it was created.
pub fn ensure(bucket: &Bucket, bucket_id: &str, now: i64) -> Result<bool, CertsError> {
    if exists(bucket)? {
        return Ok(false);
    }
    let ca = new_ca(bucket_id, now, CA_DAYS)?;
    write_pair(bucket, &ca)?;
    Ok(true)
}

/// Replace the CA with a new one (CN `bucket_id`); the old files become `*.old`.
pub fn rotate(bucket: &Bucket, bucket_id: &str, now: i64) -> Result<(), CertsError> {
    let had = exists(bucket)?;
    let ca = new_ca(bucket_id, now, CA_DAYS)?;
    if had {
        for f in [cert_file(bucket), key_file(bucket)] {
            let old = with_suffix(&f, ".old");
            std::fs::copy(&f, &old).map_err(|source| CertsError::Io { path: old.clone(), source })?;
            std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600))
                .map_err(|source| CertsError::Io { path: old, source })?;
        }
    }
    write_pair(bucket, &ca)
}

fn write_pair(bucket: &Bucket, ca: &Issued) -> Result<(), CertsError> {
    let dir = bucket.secrets_dir();
    crate::secrets::ensure_private_dir(&dir)
        .map_err(|e| CertsError::Io { path: dir.clone(), source: std::io::Error::other(e.to_string()) })?;
    // The key first: a crash between the two leaves an old certificate with a new key,
    // which `exists` still accepts but `apply` rejects loudly (the pair does not match).
    write_private(&key_file(bucket), ca.key_pem.as_bytes())?;
    write_private(&cert_file(bucket), ca.cert_pem.as_bytes())?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write `bytes` to `path.tmp` (0600), fsync, rename over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertsError> {
    let tmp = with_suffix(path, ".tmp");
    let io = |source| CertsError::Io { path: path.to_path_buf(), source };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The CA with its signing key, for `apply`.
pub fn load_signer(bucket: &Bucket) -> Result<CaSigner, CertsError> {
    if !exists(bucket)? {
        return Err(CertsError::MissingCa(cert_file(bucket)));
    }
    let key_path = key_file(bucket);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertsError::Io { path, source }
    };
    let mode = std::fs::metadata(&key_path).map_err(io(&key_path))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CertsError::KeyPermissions { path: key_path, mode });
    }
    let key = zeroize::Zeroizing::new(std::fs::read_to_string(&key_path).map_err(io(&key_path))?);
    let crt_path = cert_file(bucket);
    let crt = std::fs::read_to_string(&crt_path).map_err(io(&crt_path))?;
    let signer = CaSigner::new(&crt, &key).map_err(|reason| CertsError::BadCa {
        path: key_path.clone(),
        what: "pair",
        reason,
    })?;
    if !super::inspect::key_matches(&crt, &signer) {
        return Err(CertsError::BadCa {
            path: key_path,
            what: "key",
            reason: "it does not belong to secrets/ca.crt".into(),
        });
    }
    Ok(signer)
}
