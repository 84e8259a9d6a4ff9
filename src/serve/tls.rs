//! TLS for `kvform serve` (rustls with the `ring` provider): a certificate and key from
//! files (`--tls-cert`/`--tls-key`), or one issued at start from the bucket CA for the
//! listen address (`--tls-from-ca`), whose private key lives only in this process's memory
//! (never written, never printed).

use super::ServeError;
use crate::bucket::Bucket;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Days a `--tls-from-ca` certificate is valid (a new one is issued at every start).
pub const FROM_CA_DAYS: u32 = 365;

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    what: &str,
) -> Result<Arc<ServerConfig>, ServeError> {
    // rustls 0.23.48 deprecates the ring provider for its lack of post-quantum key
    // exchange; kvform keeps ring (classical X25519/P-256) rather than aws-lc-rs, which
    // needs a C and cmake build, and ring is already in the tree under rcgen.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let tls = |reason: String| ServeError::Tls { what: what.to_string(), reason };
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// `--tls-cert FILE --tls-key FILE`: PEM, the certificate file holding the chain (leaf first).
pub fn from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServeError> {
    let file = |p: &Path, reason: String| ServeError::TlsFile { path: p.to_path_buf(), reason };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file(cert, "it holds no PEM certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file(key, e.to_string()))?;
    config(certs, key_der, &format!("{} and {}", cert.display(), key.display()))
}

/// `--tls-from-ca`: a certificate from the bucket CA whose SAN is the listen address.
pub fn from_ca(bucket: &Bucket, listen: SocketAddr, now: i64) -> Result<Arc<ServerConfig>, ServeError> {
    if listen.ip().is_unspecified() {
        return Err(ServeError::FromCaUnspecified(listen));
    }
    let signer = crate::certs::ca::load_signer(bucket).map_err(ServeError::Certs)?;
    let req = crate::certs::IssueRequest {
        name: "kvform serve".into(),
        common_name: "kvform serve".into(),
        key_type: crate::workspace::types::KeyType::EcdsaP256,
        pkcs8: true,
        sans: vec![listen.ip().to_string()],
        ttl_days: FROM_CA_DAYS,
    };
    let issued = crate::certs::issue::issue(&signer, &req, now).map_err(ServeError::Certs)?;
    let what = "the certificate issued from the bucket CA";
    let tls = |reason: String| ServeError::Tls { what: what.to_string(), reason };
    let leaf = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).map_err(|e| tls(e.to_string()))?;
    let ca = CertificateDer::from_pem_slice(signer.cert_pem.as_bytes()).map_err(|e| tls(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).map_err(|e| tls(e.to_string()))?;
    config(vec![leaf, ca], key, what)
}
