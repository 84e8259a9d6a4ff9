//! Reading certificates back (x509-parser) and the pure re-issue decision of the plan.

use super::issue::CaSigner;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::X509Certificate;

/// What `kvform certs list` and the plan read from a stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name (empty when it has none).
    pub common_name: String,
    /// SANs in certificate order (IP addresses and DNS names as text).
    pub sans: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub issuer: String,
}

fn with_cert<T>(pem: &str, f: impl FnOnce(&X509Certificate) -> T) -> Result<T, String> {
    let (_, pem) = parse_x509_pem(pem.trim().as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    if pem.label != "CERTIFICATE" {
        return Err(format!("a `{}` PEM block, not a certificate", pem.label));
    }
    let cert = pem.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(f(&cert))
}

fn common_name(cert: &X509Certificate) -> String {
    cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_string()
}

/// Read a certificate PEM.
pub fn read(pem: &str) -> Result<CertInfo, String> {
    with_cert(pem, |cert| {
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                match n {
                    GeneralName::IPAddress(b) => sans.push(ip_text(b)),
                    GeneralName::DNSName(d) => sans.push(d.to_string()),
                    _ => {}
                }
            }
        }
        CertInfo {
            common_name: common_name(cert),
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            issuer: cert.issuer().to_string(),
        }
    })
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let arr: [u8; 16] = b.try_into().expect("16 bytes");
            std::net::Ipv6Addr::from(arr).to_string()
        }
        _ => format!("{b:?}"),
    }
}

/// Check that `pem` is a CA certificate (basic constraints CA, parsable public key).
pub fn check_ca(pem: &str) -> Result<(), String> {
    with_cert(pem, |cert| {
        if cert.is_ca() { Ok(()) } else { Err("the certificate is not a CA (basic constraints)".to_string()) }
    })?
}

/// Whether the signer's key is the key of the CA certificate `ca_pem`.
pub fn key_matches(ca_pem: &str, signer: &CaSigner) -> bool {
    with_cert(ca_pem, |cert| cert.public_key().subject_public_key.data.as_ref() == signer.public_key_raw())
        .unwrap_or(false)
}

/// Whether `leaf_pem` was signed by the CA certificate `ca_pem`.
pub fn signed_by(leaf_pem: &str, ca_pem: &str) -> bool {
    with_cert(ca_pem, |ca| with_cert(leaf_pem, |leaf| leaf.verify_signature(Some(ca.public_key())).is_ok()))
        .and_then(|r| r)
        .unwrap_or(false)
}

/// The raw public key of a private key PEM in any encoding kvform writes (SEC1, PKCS#1,
/// PKCS#8 of P-256, RSA or ed25519); `None` when it does not parse.
fn public_key_of(key_pem: &str) -> Option<Vec<u8>> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::DecodePrivateKey;
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    let pem = key_pem.trim();
    let ec = |sk: p256::SecretKey| sk.public_key().to_encoded_point(false).as_bytes().to_vec();
    let rsa_pub = |sk: rsa::RsaPrivateKey| rsa::RsaPublicKey::from(&sk).to_pkcs1_der().ok().map(|d| d.into_vec());
    if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return p256::SecretKey::from_sec1_pem(pem).ok().map(ec);
    }
    if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return rsa::RsaPrivateKey::from_pkcs1_pem(pem).ok().and_then(rsa_pub);
    }
    if let Ok(sk) = p256::SecretKey::from_pkcs8_pem(pem) {
        return Some(ec(sk));
    }
    if let Ok(sk) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        return rsa_pub(sk);
    }
    // ed25519 (and anything else ring reads): rcgen derives the public key.
    rcgen::KeyPair::from_pem(pem).ok().map(|k| k.public_key_raw().to_vec())
}

/// Whether `key_pem` parses as a private key and is the key of the certificate `cert_pem`.
pub fn key_matches_cert(key_pem: &str, cert_pem: &str) -> bool {
    let Some(public) = public_key_of(key_pem) else { return false };
    with_cert(cert_pem, |cert| cert.public_key().subject_public_key.data.as_ref() == public.as_slice()).unwrap_or(false)
}

/// What the plan knows about one stored certificate.
pub struct Stored<'a> {
    /// The live `certs/<name>.crt` value.
    pub cert: Option<&'a str>,
    /// A live `certs/<name>.key` exists.
    pub key: bool,
    /// The live key was found not to unseal, not to parse or not to be the certificate's
    /// (the shell checks it: the plan holds no secrets; `DesiredCerts::unreadable_keys`).
    pub key_unreadable: bool,
    /// The live `certs/<name>.spec` equals the declaration's.
    pub same_spec: bool,
}

/// Why a certificate must be (re)issued, `None` when the stored one is still good. First
/// match wins: missing, the key unreadable, the certificate unreadable, another CA, declaration changed, SANs changed, renewal
/// (`now >= not_after - renewal_days`).
pub fn reissue_reason(stored: &Stored, ca_pem: &str, sans: &[String], now: i64, renewal_days: u32) -> Option<String> {
    let Some(pem) = stored.cert else { return Some("issue: new certificate".into()) };
    if !stored.key {
        return Some("reissue: the private key is missing".into());
    }
    if stored.key_unreadable {
        return Some("reissue: the private key cannot be read".into());
    }
    let info = match read(pem) {
        Ok(i) => i,
        Err(_) => return Some("reissue: the stored certificate cannot be read".into()),
    };
    if !signed_by(pem, ca_pem) {
        return Some("reissue: signed by another CA".into());
    }
    if !stored.same_spec {
        return Some("reissue: declaration changed".into());
    }
    if info.sans != sans {
        return Some(format!("reissue: SANs changed ({} -> {})", info.sans.join(","), sans.join(",")));
    }
    if now >= info.not_after - i64::from(renewal_days) * 86_400 {
        return Some(format!("renew: expires {}", date(info.not_after)));
    }
    None
}

/// `2027-01-03` (UTC).
pub fn date(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_else(|_| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::IssueRequest;
    use crate::certs::issue::{issue, new_ca};
    use crate::workspace::types::KeyType;

    const NOW: i64 = 1_800_000_000;

    fn ca() -> (CaSigner, String) {
        let ca = new_ca("bucket-1", NOW, 3650).unwrap();
        (CaSigner::new(&ca.cert_pem, &ca.key_pem).unwrap(), ca.cert_pem)
    }

    fn req(kt: KeyType, sans: &[&str]) -> IssueRequest {
        IssueRequest {
            name: "server".into(),
            common_name: "api".into(),
            key_type: kt,
            pkcs8: true,
            sans: sans.iter().map(|s| s.to_string()).collect(),
            ttl_days: 60,
        }
    }

    #[test]
    fn issued_certificates_read_back_and_verify_against_their_ca_only() {
        let (signer, ca_pem) = ca();
        check_ca(&ca_pem).unwrap();
        assert!(key_matches(&ca_pem, &signer));
        for kt in [KeyType::EcdsaP256, KeyType::Ed25519] {
            let sans = ["127.0.0.1", "10.0.0.1"];
            let c = issue(&signer, &req(kt, &sans), NOW).unwrap();
            let info = read(&c.cert_pem).unwrap();
            assert_eq!(info.common_name, "api");
            assert_eq!(info.sans, sans);
            assert_eq!(info.not_after - info.not_before, 60 * 86_400);
            assert!(signed_by(&c.cert_pem, &ca_pem));
            assert!(c.key_pem.contains("BEGIN PRIVATE KEY"));
        }
        let (_, other_ca) = ca();
        let c = issue(&signer, &req(KeyType::EcdsaP256, &["127.0.0.1"]), NOW).unwrap();
        assert!(!signed_by(&c.cert_pem, &other_ca));
        assert!(check_ca(&c.cert_pem).is_err());
    }

    #[test]
    fn a_key_matches_its_certificate_only_in_every_encoding() {
        let (signer, _) = ca();
        let kinds = [
            (KeyType::EcdsaP256, false),
            (KeyType::EcdsaP256, true),
            (KeyType::Rsa2048, false),
            (KeyType::Rsa2048, true),
            (KeyType::Ed25519, true),
        ];
        let issued: Vec<_> = kinds
            .iter()
            .map(|(kt, pkcs8)| {
                issue(&signer, &IssueRequest { pkcs8: *pkcs8, ..req(*kt, &["127.0.0.1"]) }, NOW).unwrap()
            })
            .collect();
        for (i, c) in issued.iter().enumerate() {
            assert!(key_matches_cert(&c.key_pem, &c.cert_pem), "{:?}", kinds[i]);
            let other = &issued[(i + 1) % issued.len()];
            assert!(!key_matches_cert(&other.key_pem, &c.cert_pem), "{:?}", kinds[i]);
        }
        assert!(!key_matches_cert("garbage", &issued[0].cert_pem));
        let cut = &issued[0].key_pem[..issued[0].key_pem.len() / 2];
        assert!(!key_matches_cert(cut, &issued[0].cert_pem));
    }

    #[test]
    fn the_reissue_reasons_in_order() {
        let (signer, ca_pem) = ca();
        let sans: Vec<String> = vec!["127.0.0.1".into(), "10.0.0.1".into()];
        let c = issue(&signer, &req(KeyType::EcdsaP256, &["127.0.0.1", "10.0.0.1"]), NOW).unwrap();
        let good = Stored { cert: Some(&c.cert_pem), key: true, key_unreadable: false, same_spec: true };
        assert_eq!(reissue_reason(&good, &ca_pem, &sans, NOW, 15), None);
        let missing = Stored { cert: None, key: false, key_unreadable: false, same_spec: false };
        assert_eq!(reissue_reason(&missing, &ca_pem, &sans, NOW, 15).unwrap(), "issue: new certificate");
        let junk = Stored { cert: Some("garbage"), key: true, key_unreadable: false, same_spec: true };
        assert!(reissue_reason(&junk, &ca_pem, &sans, NOW, 15).unwrap().contains("cannot be read"));
        let bad_key = Stored { key_unreadable: true, ..good };
        assert_eq!(
            reissue_reason(&bad_key, &ca_pem, &sans, NOW, 15).unwrap(),
            "reissue: the private key cannot be read"
        );
        let (_, other) = ca();
        assert_eq!(reissue_reason(&good, &other, &sans, NOW, 15).unwrap(), "reissue: signed by another CA");
        let spec = Stored { same_spec: false, ..good };
        assert_eq!(reissue_reason(&spec, &ca_pem, &sans, NOW, 15).unwrap(), "reissue: declaration changed");
        let more: Vec<String> = vec!["127.0.0.1".into(), "10.0.0.1".into(), "10.0.0.2".into()];
        let good = Stored { cert: Some(&c.cert_pem), key: true, key_unreadable: false, same_spec: true };
        assert!(reissue_reason(&good, &ca_pem, &more, NOW, 15).unwrap().starts_with("reissue: SANs changed"));
        // 60 days valid, renewed from 15 days before the end: day 44 keeps, day 45 renews.
        assert_eq!(reissue_reason(&good, &ca_pem, &sans, NOW + 44 * 86_400, 15), None);
        let expires = date(NOW + 60 * 86_400);
        assert_eq!(
            reissue_reason(&good, &ca_pem, &sans, NOW + 45 * 86_400, 15).unwrap(),
            format!("renew: expires {expires}")
        );
        assert_eq!(reissue_reason(&good, &ca_pem, &sans, NOW + 59 * 86_400, 0), None);
    }
}
