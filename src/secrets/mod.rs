//! The bucket's secret key (`secrets/kv.key`) and AES-256-GCM sealing of `secrets/job/*` values.
//!
//! Stored form of a sealed value (text, so it fits the `value` column):
//!
//! ```text
//! kvs1:<key id, 8 hex>:<hex(nonce 12 bytes || ciphertext || tag 16 bytes)>
//! ```
//!
//! - A fresh random 96-bit nonce per seal (getrandom).
//! - The associated data binds namespace, key and version (length-prefixed, so no two
//!   triples share an encoding): a ciphertext copied to another key or version fails.
//! - The key id (first 4 bytes of SHA-256 of the key) names which key sealed a value. The
//!   keyring holds the current key (`kv.key`, used to seal) and, when present, the previous
//!   one (`kv.key.old`) and a key of an unfinished rotation (`kv.key.new`), so a crash in the
//!   middle of `kvform secrets rotate-key` never leaves values nobody can open.
//!
//! Plaintext only ever lives in [`Zeroizing`] buffers; [`Keyring`]'s `Debug` prints key ids
//! only, and errors name the namespace/key, never a value.

use crate::bucket::Bucket;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where a machine without `secrets/kv.key` (a CI runner applying against a shared
/// PostgreSQL state) can hold the bucket's key instead: the base64 of its 32 bytes. CI
/// systems hand secrets out as variables; it is never an argument, so it stays out of `ps`.
pub const KEY_ENV: &str = "KVFORM_SECRET_KEY";

/// Prefix of every sealed value; the `1` is the format version.
pub const SEALED_PREFIX: &str = "kvs1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "no secret key at {} and {KEY_ENV} is not set\n  help: a bucket made on another machine (a shared PostgreSQL state) has its key there: copy it to secrets/kv.key (mode 0600), or set {KEY_ENV} to the output of `base64 -w0 secrets/kv.key` run there; a new bucket gets its key from `kvform init`",
        .0.display()
    )]
    MissingKey(PathBuf),
    #[error(
        "{KEY_ENV} is not a kvform key (expected the base64 of 32 bytes)\n  help: set it to the output of `base64 -w0 secrets/kv.key` on a machine that has the bucket's key"
    )]
    BadKeyEnv,
    #[error(
        "{} and {KEY_ENV} hold different keys\n  help: keep one: unset {KEY_ENV}, or move the file away",
        .0.display()
    )]
    KeyMismatch(PathBuf),
    #[error(
        "the bucket's key comes from {KEY_ENV}, not from {}: rotate-key replaces the key file\n  help: rotate the key on the machine that holds secrets/kv.key, then set {KEY_ENV} to the new key",
        .0.display()
    )]
    KeyNotAFile(PathBuf),
    #[error("{} is readable by group or others (mode {mode:04o}); kvform refuses to use it\n  help: chmod 600 {}", .path.display(), .path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{} is accessible by group or others (mode {mode:04o}); kvform refuses to use the keys in it\n  help: chmod 700 {}", .path.display(), .path.display())]
    DirPermissions { path: PathBuf, mode: u32 },
    #[error("{} is not a kvform key (expected 32 bytes, found {len})\n  help: restore the key from your backup; without it secrets/job/* values cannot be read", .path.display())]
    BadKeyFile { path: PathBuf, len: usize },
    #[error("cannot access {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{ns} {key} (version {version}) is not a sealed value\n  help: the row was not written by kvform; run `kvform state check`"
    )]
    Malformed { ns: String, key: String, version: u64 },
    #[error(
        "{ns} {key} (version {version}) was sealed with key {key_id}, which is not in secrets/ (kv.key, kv.key.old)\n  help: restore the key file that matches this state"
    )]
    UnknownKey { ns: String, key: String, version: u64, key_id: String },
    #[error(
        "{ns} {key} (version {version}) failed to decrypt: the ciphertext was altered or copied from another key or version\n  help: write the secret again (`kvform kv set {ns} {key} - --secret`) or restore the state from a backup"
    )]
    Tampered { ns: String, key: String, version: u64 },
    #[error("cannot get random bytes from the OS: {0}")]
    Random(String),
}

/// One AES-256 key with its id.
struct KeyEntry {
    id: String,
    cipher: Aes256Gcm,
}

impl KeyEntry {
    fn new(bytes: &[u8; 32]) -> KeyEntry {
        let digest = Sha256::digest(bytes);
        let id = hex(&digest[..4]);
        let key = Key::<Aes256Gcm>::from(*bytes);
        KeyEntry { id, cipher: Aes256Gcm::new(&key) }
    }
}

/// The bucket's keys: `current` seals, every key opens.
pub struct Keyring {
    current: KeyEntry,
    others: Vec<KeyEntry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let others: Vec<&str> = self.others.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("current", &self.current.id).field("others", &others).finish()
    }
}

impl Keyring {
    /// Load `secrets/kv.key` (required) plus `kv.key.old` / `kv.key.new` when present.
    /// Refuses a key file readable by group or others, like ssh does with private keys.
    pub fn load(bucket: &Bucket) -> Result<Keyring, SecretsError> {
        let mut ring = Self::load_current(bucket)?;
        for extra in [bucket.old_key_file(), new_key_file(bucket)] {
            if extra.exists() {
                let k = KeyEntry::new(&*read_key(&extra)?);
                if k.id != ring.current.id {
                    ring.others.push(k);
                }
            }
        }
        Ok(ring)
    }

    /// `secrets/kv.key` alone (no `kv.key.old` / `kv.key.new`): what `rotate-key` checks the
    /// state against before it calls the old key unneeded.
    /// Without the file, [`KEY_ENV`] holds the key; with both, they must agree.
    pub fn load_current(bucket: &Bucket) -> Result<Keyring, SecretsError> {
        let path = bucket.key_file();
        let from_env = key_from_env()?;
        if !path.exists() {
            let key = from_env.ok_or(SecretsError::MissingKey(path))?;
            return Ok(Keyring { current: KeyEntry::new(&key), others: Vec::new() });
        }
        check_permissions(bucket)?;
        let key = read_key(&path)?;
        if from_env.is_some_and(|k| *k != *key) {
            return Err(SecretsError::KeyMismatch(path));
        }
        Ok(Keyring { current: KeyEntry::new(&key), others: Vec::new() })
    }

    /// Create `secrets/kv.key` (dir 0700, file 0600) with 32 random bytes unless it exists.
    /// Returns whether a key was written. Used by `kvform init`.
    pub fn create(bucket: &Bucket) -> Result<bool, SecretsError> {
        let path = bucket.key_file();
        if path.exists() {
            return Ok(false);
        }
        ensure_private_dir(&bucket.secrets_dir())?;
        write_key_file(&path, &*random_key()?)?;
        Ok(true)
    }

    /// A keyring from raw key bytes (tests, rotation).
    pub fn from_bytes(current: &[u8; 32]) -> Keyring {
        Keyring { current: KeyEntry::new(current), others: Vec::new() }
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seal `plaintext` for (`ns`, `key`, `version`) under the current key.
    pub fn seal(&self, ns: &str, key: &str, version: u64, plaintext: &str) -> Result<String, SecretsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SecretsError::Random(e.to_string()))?;
        let aad = aad(ns, key, version);
        let ct = self
            .current
            .cipher
            .encrypt(&nonce.into(), Payload { msg: plaintext.as_bytes(), aad: &aad })
            .map_err(|_| SecretsError::Random("AES-GCM refused to encrypt".into()))?;
        let mut out = String::with_capacity(SEALED_PREFIX.len() + 10 + 2 * (NONCE_LEN + ct.len()));
        out.push_str(SEALED_PREFIX);
        out.push_str(&self.current.id);
        out.push(':');
        out.push_str(&hex(&nonce));
        out.push_str(&hex(&ct));
        Ok(out)
    }

    /// Open a sealed value of (`ns`, `key`, `version`). A flipped byte, a value copied from
    /// another key or version, or an unknown key id all fail with an error naming the key.
    pub fn open(&self, ns: &str, key: &str, version: u64, stored: &str) -> Result<Zeroizing<String>, SecretsError> {
        let malformed = || SecretsError::Malformed { ns: ns.into(), key: key.into(), version };
        let rest = stored.strip_prefix(SEALED_PREFIX).ok_or_else(malformed)?;
        let (key_id, body) = rest.split_once(':').ok_or_else(malformed)?;
        let bytes = unhex(body).ok_or_else(malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(malformed());
        }
        let entry = std::iter::once(&self.current).chain(&self.others).find(|k| k.id == key_id).ok_or_else(|| {
            SecretsError::UnknownKey { ns: ns.into(), key: key.into(), version, key_id: key_id.into() }
        })?;
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let aad = aad(ns, key, version);
        let plain = Zeroizing::new(
            entry
                .cipher
                .decrypt(&nonce.into(), Payload { msg: ct, aad: &aad })
                .map_err(|_| SecretsError::Tampered { ns: ns.into(), key: key.into(), version })?,
        );
        let text = std::str::from_utf8(&plain).map_err(|_| malformed())?;
        Ok(Zeroizing::new(text.to_string()))
    }

    /// Whether `stored` looks like a sealed value (used by `state check` to prove no
    /// plaintext sits in a secrets namespace).
    pub fn is_sealed(stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(id, body)| id.len() == 8 && body.len() >= 2 * (NONCE_LEN + TAG_LEN) && unhex(body).is_some())
    }
}

/// Key rotation, file side (the state side re-encrypts rows; see `state::WriteTxn`).
///
/// Order, chosen so a crash at any point leaves every value openable:
/// 1. [`Rotation::prepare`] writes the new key to `kv.key.new` (0600, fsynced);
/// 2. the caller re-encrypts every secret row and commits the state;
/// 3. [`Rotation::finish`] moves `kv.key` to `kv.key.old` (replacing the previous old key)
///    and `kv.key.new` to `kv.key`.
///
/// [`Keyring::load`] also reads `kv.key.new`, so a crash between 2 and 3 still opens.
pub struct Rotation {
    bucket: Bucket,
    new_key_id: String,
}

impl Rotation {
    /// Write `kv.key.new`; returns the rotation and a keyring that opens everything (old
    /// and new keys) and seals under the new key — hand it to the state transaction.
    pub fn prepare(bucket: &Bucket) -> Result<(Rotation, Keyring), SecretsError> {
        // An unfinished earlier rotation: every row is sealed under kv.key or kv.key.new, so
        // the old kv.key.old is unused; keep kv.key.new there rather than overwrite it.
        if !bucket.key_file().exists() && key_from_env()?.is_some() {
            return Err(SecretsError::KeyNotAFile(bucket.key_file()));
        }
        let pending = new_key_file(bucket);
        if pending.exists() {
            std::fs::rename(&pending, bucket.old_key_file())
                .map_err(|source| SecretsError::Io { path: pending.clone(), source })?;
        }
        let old = Keyring::load(bucket)?;
        let bytes = random_key()?;
        write_key_file(&new_key_file(bucket), &bytes)?;
        let mut others = vec![old.current];
        others.extend(old.others);
        let keyring = Keyring { current: KeyEntry::new(&bytes), others };
        let rotation = Rotation { bucket: bucket.clone(), new_key_id: keyring.current.id.clone() };
        Ok((rotation, keyring))
    }

    /// The new key's id.
    pub fn new_key_id(&self) -> &str {
        &self.new_key_id
    }

    pub fn finish(self) -> Result<(), SecretsError> {
        let b = &self.bucket;
        let io = |path: PathBuf| move |source| SecretsError::Io { path, source };
        std::fs::rename(b.key_file(), b.old_key_file()).map_err(io(b.key_file()))?;
        std::fs::rename(new_key_file(b), b.key_file()).map_err(io(new_key_file(b)))?;
        sync_dir(&b.secrets_dir());
        Ok(())
    }

    /// Give up a rotation whose state transaction failed: remove `kv.key.new`.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(new_key_file(&self.bucket));
    }
}

fn new_key_file(bucket: &Bucket) -> PathBuf {
    bucket.secrets_dir().join("kv.key.new")
}

/// The key in [`KEY_ENV`], if it is set. Set but not a key (empty included: a CI variable
/// that did not resolve) is an error, not "no key".
pub fn key_from_env() -> Result<Option<Zeroizing<[u8; 32]>>, SecretsError> {
    use base64::Engine as _;
    let Some(value) = std::env::var_os(KEY_ENV) else { return Ok(None) };
    let text = Zeroizing::new(value.into_string().map_err(|_| SecretsError::BadKeyEnv)?);
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| SecretsError::BadKeyEnv)?,
    );
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SecretsError::BadKeyEnv)?;
    Ok(Some(Zeroizing::new(key)))
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, SecretsError> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(k.as_mut()).map_err(|e| SecretsError::Random(e.to_string()))?;
    Ok(k)
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, SecretsError> {
    let io = |source| SecretsError::Io { path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::KeyPermissions { path: path.to_path_buf(), mode });
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| SecretsError::BadKeyFile { path: path.to_path_buf(), len: bytes.len() })?;
    Ok(Zeroizing::new(arr))
}

fn write_key_file(path: &Path, bytes: &[u8; 32]) -> Result<(), SecretsError> {
    let io = |source| SecretsError::Io { path: path.to_path_buf(), source };
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
    // An existing file keeps its old mode on open; force 0600.
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Refuse a `secrets/` directory or a `kv.key` that group or others can access (like ssh
/// with `~/.ssh`): `apply` and `plan` alike, so a leaky key is noticed before the first
/// secret is sealed with it. A bucket without a key passes (it has nothing to leak yet).
pub fn check_permissions(bucket: &Bucket) -> Result<(), SecretsError> {
    let dir = bucket.secrets_dir();
    let meta = match std::fs::metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(SecretsError::Io { path: dir, source }),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::DirPermissions { path: dir, mode });
    }
    let key = bucket.key_file();
    match std::fs::metadata(&key) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            Err(SecretsError::KeyPermissions { path: key, mode: m.permissions().mode() & 0o777 })
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SecretsError::Io { path: key, source }),
    }
}

/// Remove `kv.key.old` (after `rotate-key --remove-old-key` verified the state without it).
pub fn remove_old_key(bucket: &Bucket) -> Result<bool, SecretsError> {
    let old = bucket.old_key_file();
    match std::fs::remove_file(&old) {
        Ok(()) => {
            sync_dir(&bucket.secrets_dir());
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(SecretsError::Io { path: old, source }),
    }
}

/// Create `dir` (and parents) with mode 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<(), SecretsError> {
    let io = |source| SecretsError::Io { path: dir.to_path_buf(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Associated data: length-prefixed namespace and key, then the version.
fn aad(ns: &str, key: &str, version: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(24 + ns.len() + key.len());
    a.extend_from_slice(b"kvform-secret-v1");
    for part in [ns.as_bytes(), key.as_bytes()] {
        a.extend_from_slice(&(part.len() as u32).to_be_bytes());
        a.extend_from_slice(part);
    }
    a.extend_from_slice(&version.to_be_bytes());
    a
}

/// Lower-case hex, the sealed format's only spelling.
fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Strict lower-case hex (an upper-case body is not a sealed value of ours).
fn unhex(s: &str) -> Option<Vec<u8>> {
    base16ct::lower::decode_vec(s.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::from_bytes(&[7u8; 32])
    }

    #[test]
    fn hex_is_strict_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("00ABFF"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn round_trip_and_fresh_nonce() {
        let k = ring();
        let a = k.seal("secrets/job/api", "token", 1, "hunter2").unwrap();
        let b = k.seal("secrets/job/api", "token", 1, "hunter2").unwrap();
        assert_ne!(a, b, "each seal uses a fresh nonce");
        assert!(!a.contains("hunter2"));
        assert!(Keyring::is_sealed(&a));
        assert_eq!(k.open("secrets/job/api", "token", 1, &a).unwrap().as_str(), "hunter2");
    }

    #[test]
    fn any_flipped_byte_fails() {
        let k = ring();
        let s = k.seal("secrets/job/api", "token", 3, "hunter2").unwrap();
        let body_start = s.rfind(':').unwrap() + 1;
        for i in body_start..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(b).unwrap();
            let err = k.open("secrets/job/api", "token", 3, &t).unwrap_err();
            assert!(err.to_string().contains("secrets/job/api token"), "{err}");
        }
    }

    #[test]
    fn moved_ciphertext_fails() {
        let k = ring();
        let s = k.seal("secrets/job/api", "token", 3, "hunter2").unwrap();
        assert!(matches!(k.open("secrets/job/api", "other", 3, &s), Err(SecretsError::Tampered { .. })));
        assert!(matches!(k.open("secrets/job/web", "token", 3, &s), Err(SecretsError::Tampered { .. })));
        assert!(matches!(k.open("secrets/job/api", "token", 4, &s), Err(SecretsError::Tampered { .. })));
        let other = Keyring::from_bytes(&[8u8; 32]);
        assert!(matches!(other.open("secrets/job/api", "token", 3, &s), Err(SecretsError::UnknownKey { .. })));
    }

    #[test]
    fn debug_shows_ids_only() {
        let d = format!("{:?}", ring());
        assert!(d.contains("current"));
        assert!(!d.contains("7, 7"));
    }

    #[test]
    fn key_file_permissions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bucket::at(dir.path());
        assert!(matches!(Keyring::load(&b), Err(SecretsError::MissingKey(_))));
        assert!(Keyring::create(&b).unwrap());
        assert!(!Keyring::create(&b).unwrap(), "never overwrites");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&b.key_file()), 0o600);
        assert_eq!(mode(&b.secrets_dir()), 0o700);
        Keyring::load(&b).unwrap();
        std::fs::set_permissions(b.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::load(&b).unwrap_err();
        assert!(matches!(err, SecretsError::KeyPermissions { mode: 0o644, .. }), "{err}");
    }

    #[test]
    fn rotation_keeps_old_values_openable() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bucket::at(dir.path());
        Keyring::create(&b).unwrap();
        let before = Keyring::load(&b).unwrap();
        let sealed = before.seal("secrets/job/a", "k", 1, "v").unwrap();
        let (rot, ring) = Rotation::prepare(&b).unwrap();
        // Crash here: kv.key.new exists, the keyring still opens everything.
        let mid = Keyring::load(&b).unwrap();
        assert_eq!(mid.open("secrets/job/a", "k", 1, &sealed).unwrap().as_str(), "v");
        let resealed = ring.seal("secrets/job/a", "k", 1, "v").unwrap();
        let new_id = rot.new_key_id().to_string();
        rot.finish().unwrap();
        let after = Keyring::load(&b).unwrap();
        assert_eq!(after.current_key_id(), new_id);
        assert_eq!(after.open("secrets/job/a", "k", 1, &resealed).unwrap().as_str(), "v");
        assert!(b.old_key_file().exists());
    }
}
