//! Key generation and signing. Everything here is random: only `apply` (inside its write
//! transaction), `kvform init` and `kvform certs rotate-ca` call it.

use super::{CertsError, IssueRequest};
use crate::workspace::types::KeyType;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::net::IpAddr;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A certificate and its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
}

const DAY: i64 = 86_400;

fn err(name: &str) -> impl Fn(String) -> CertsError + '_ {
    move |reason| CertsError::Generate { name: name.to_string(), reason }
}

fn time_at(unix: i64, name: &str) -> Result<OffsetDateTime, CertsError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| err(name)(e.to_string()))
}

/// A positive 16-byte serial from the OS random source.
fn serial(name: &str) -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| err(name)(e.to_string()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A new self-signed CA: ECDSA P-256, CN `common_name`, valid `days` from `now`.
pub fn new_ca(common_name: &str, now: i64, days: i64) -> Result<Issued, CertsError> {
    let name = "ca";
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| err(name)(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = time_at(now, name)?;
    params.not_after = time_at(now + days * DAY, name)?;
    params.serial_number = Some(serial(name)?);
    let cert = params.self_signed(&key).map_err(|e| err(name)(e.to_string()))?;
    Ok(Issued { cert_pem: cert.pem(), key_pem: Zeroizing::new(key.serialize_pem()) })
}

/// The CA as loaded from `secrets/`: its certificate and signing key.
pub struct CaSigner {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl CaSigner {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<CaSigner, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the key does not parse: {e}"))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| format!("the certificate does not parse: {e}"))?;
        Ok(CaSigner { cert_pem: cert_pem.to_string(), issuer })
    }

    /// The raw public key of the signing key (to check it belongs to the certificate).
    pub fn public_key_raw(&self) -> &[u8] {
        self.issuer.key().public_key_raw()
    }
}

/// Generate a key of `req.key_type` and a certificate for it signed by `ca`, valid
/// `req.ttl_days` from `now`.
pub fn issue(ca: &CaSigner, req: &IssueRequest, now: i64) -> Result<Issued, CertsError> {
    let name = req.name.as_str();
    let (key, pkcs8_der) = new_key(req.key_type, name)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, req.common_name.as_str());
    params.subject_alt_names = req
        .sans
        .iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().map(SanType::DnsName).map_err(|e: rcgen::Error| err(name)(e.to_string())),
        })
        .collect::<Result<_, _>>()?;
    // maand's leaf template (build/build_certs.go 472-481): CA:FALSE, these two key usages.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.use_authority_key_identifier_extension = true;
    params.not_before = time_at(now, name)?;
    params.not_after = time_at(now + i64::from(req.ttl_days) * DAY, name)?;
    params.serial_number = Some(serial(name)?);
    let cert = params.signed_by(&key, &ca.issuer).map_err(|e| err(name)(e.to_string()))?;
    let key_pem = encode_key(req.key_type, req.pkcs8, &key, &pkcs8_der, name)?;
    Ok(Issued { cert_pem: cert.pem(), key_pem })
}

/// A new key pair and its PKCS#8 DER.
fn new_key(kt: KeyType, name: &str) -> Result<(KeyPair, Zeroizing<Vec<u8>>), CertsError> {
    let key = match kt {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        KeyType::Rsa2048 | KeyType::Rsa4096 => {
            // ring signs with RSA keys but cannot make them; the `rsa` crate does.
            use rsa::pkcs8::EncodePrivateKey;
            let bits = if kt == KeyType::Rsa2048 { 2048 } else { 4096 };
            let rsa = rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| err(name)(e.to_string()))?;
            let pem = rsa.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| err(name)(e.to_string()))?;
            KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        }
    }
    .map_err(|e| err(name)(e.to_string()))?;
    let der = Zeroizing::new(key.serialize_der());
    Ok((key, der))
}

/// The private key as PEM: PKCS#8, or the traditional form (PKCS#1 for RSA, SEC1 for ECDSA).
fn encode_key(
    kt: KeyType,
    pkcs8: bool,
    key: &KeyPair,
    der: &[u8],
    name: &str,
) -> Result<Zeroizing<String>, CertsError> {
    if kt == KeyType::Ed25519 {
        // PKCS#8 is the only encoding ed25519 has (the manifest parser refuses `pkcs8:
        // false`); v1, which OpenSSL 3.0 loads.
        return pkcs8_v1_pem(der).map_err(err(name));
    }
    if pkcs8 {
        return Ok(Zeroizing::new(key.serialize_pem()));
    }
    match kt {
        KeyType::EcdsaP256 => {
            use p256::pkcs8::DecodePrivateKey;
            let sk = p256::SecretKey::from_pkcs8_der(der).map_err(|e| err(name)(e.to_string()))?;
            sec1_pem(&sk).map_err(err(name))
        }
        KeyType::Rsa2048 | KeyType::Rsa4096 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::pkcs8::DecodePrivateKey;
            let rsa = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| err(name)(e.to_string()))?;
            let pem = rsa.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).map_err(|e| err(name)(e.to_string()))?;
            Ok(Zeroizing::new(pem.to_string()))
        }
        KeyType::Ed25519 => unreachable!("encoded above"),
    }
}

/// A P-256 key as SEC1 `EC PRIVATE KEY` PEM **with** the named-curve parameters (RFC 5915
/// section 3: they MUST be present; OpenSSL refuses a key without them). p256's own
/// `to_sec1_pem` leaves them out (RustCrypto/elliptic-curves#1096).
pub(crate) fn sec1_pem(sk: &p256::SecretKey) -> Result<Zeroizing<String>, String> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::AssociatedOid;
    use sec1::der::{Encode, pem::LineEnding, pem::PemLabel};
    let private = Zeroizing::new(sk.to_bytes());
    let public = sk.public_key().to_encoded_point(false);
    let key = sec1::EcPrivateKey {
        private_key: private.as_slice(),
        parameters: Some(sec1::EcParameters::NamedCurve(p256::NistP256::OID)),
        public_key: Some(public.as_bytes()),
    };
    let der = Zeroizing::new(key.to_der().map_err(|e| e.to_string())?);
    let pem = sec1::der::pem::encode_string(sec1::EcPrivateKey::PEM_LABEL, LineEnding::LF, &der)
        .map_err(|e| e.to_string())?;
    Ok(Zeroizing::new(pem))
}

/// `der` (PKCS#8 from ring, v2: it carries the public key) re-encoded as PKCS#8 v1 (RFC 8410
/// section 7, the private key only): OpenSSL 3.0 refuses ring's v2 ed25519 encoding
/// ("unsupported"), so a TLS server could not load the key.
fn pkcs8_v1_pem(der: &[u8]) -> Result<Zeroizing<String>, String> {
    use p256::pkcs8::der::{Encode, pem::LineEnding, pem::PemLabel};
    let v2 = p256::pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| e.to_string())?;
    let v1 = p256::pkcs8::PrivateKeyInfo { public_key: None, ..v2 };
    let der = Zeroizing::new(v1.to_der().map_err(|e| e.to_string())?);
    let label = p256::pkcs8::PrivateKeyInfo::PEM_LABEL;
    let pem = p256::pkcs8::der::pem::encode_string(label, LineEnding::LF, &der).map_err(|e| e.to_string())?;
    Ok(Zeroizing::new(pem))
}

/// rand_core 0.6 (what `rsa` takes) over the OS random source (getrandom), so key generation
/// does not depend on which crate happens to enable rand_core's own `OsRng`.
struct OsRng;

impl rsa::rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).expect("the OS random source failed");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        getrandom::fill(dest).map_err(|e| {
            rsa::rand_core::Error::from(
                std::num::NonZeroU32::new(e.raw_os_error().unwrap_or(1) as u32).unwrap_or(std::num::NonZeroU32::MIN),
            )
        })
    }
}

impl rsa::rand_core::CryptoRng for OsRng {}
