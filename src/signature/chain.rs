//! Certificates checked against each other (the owner side's judgment of a signature,
//! and a timestamp token's): a signature verified with a certificate's key, an issuer's
//! signature on a certificate, validity, and the walk from a certificate to one trusted.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use ring::signature::{self as algo, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::Certificate;

/// The longest chain followed.
const MAX_CERTIFICATES: usize = 16;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// Whether `signature` over `message` verifies with `key`'s public key by `algorithm`;
/// `Err` names an algorithm or key not checked here.
pub(super) fn verify_with(key: &Certificate, algorithm: &ObjectIdentifier, message: &[u8], signature: &[u8]) -> Result<bool, String> {
    let spki = key.tbs_certificate().subject_public_key_info();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let rsa = spki.algorithm.oid == RSA_ENCRYPTION;
    let ec = spki.algorithm.oid == EC_PUBLIC_KEY;
    let chosen: &dyn VerificationAlgorithm = match (*algorithm, ec, rsa, curve) {
        // CMS signers may name the key's algorithm for ECDSA; the digest is SHA-256 then.
        (ECDSA_SHA256 | EC_PUBLIC_KEY, true, _, Some(P256)) => &algo::ECDSA_P256_SHA256_ASN1,
        (ECDSA_SHA256 | EC_PUBLIC_KEY, true, _, Some(P384)) => &algo::ECDSA_P384_SHA256_ASN1,
        (ECDSA_SHA384, true, _, Some(P256)) => &algo::ECDSA_P256_SHA384_ASN1,
        (ECDSA_SHA384, true, _, Some(P384)) => &algo::ECDSA_P384_SHA384_ASN1,
        (SHA256_RSA | RSA_ENCRYPTION, _, true, _) => &algo::RSA_PKCS1_2048_8192_SHA256,
        (SHA384_RSA, _, true, _) => &algo::RSA_PKCS1_2048_8192_SHA384,
        (SHA512_RSA, _, true, _) => &algo::RSA_PKCS1_2048_8192_SHA512,
        _ => return Err(format!("確認できない署名方式です（{algorithm}、鍵 {}）", spki.algorithm.oid)),
    };
    Ok(UnparsedPublicKey::new(chosen, spki.subject_public_key.raw_bytes()).verify(message, signature).is_ok())
}

/// Whether `issuer` issued `cert` (names and signature).
pub(super) fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    cert.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && cert.tbs_certificate().to_der().is_ok_and(|tbs| {
            verify_with(issuer, &cert.signature_algorithm().oid, &tbs, cert.signature().raw_bytes()).unwrap_or(false)
        })
}

pub(super) fn in_force(cert: &Certificate, at: std::time::SystemTime) -> bool {
    let v = cert.tbs_certificate().validity();
    v.not_before.to_system_time() <= at && at <= v.not_after.to_system_time()
}

pub(super) fn is_ca(cert: &Certificate) -> bool {
    use x509_cert::ext::pkix::BasicConstraints;
    cert.tbs_certificate().extensions().into_iter().flatten()
        .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.19"))
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|b| b.ca)
}

/// Whether `leaf` leads, through CA certificates of `carried`, to one of `trusted`, every
/// certificate in force at `at`; else why not.
pub(super) fn chain_to(leaf: &Certificate, carried: &[Certificate], trusted: &[Certificate], at: std::time::SystemTime) -> Result<(), String> {
    if !in_force(leaf, at) {
        return Err("署名の時点で署名者の証明書が有効期間外です".into());
    }
    let mut current = leaf;
    for _ in 0..MAX_CERTIFICATES {
        if trusted.iter().any(|t| t == current) {
            return Ok(());
        }
        if let Some(anchor) = trusted.iter().find(|t| issued_by(current, t)) {
            if !in_force(anchor, at) {
                return Err("署名の時点で発行元の証明書が有効期間外です".into());
            }
            return Ok(());
        }
        match carried.iter().find(|c| *c != current && is_ca(c) && issued_by(current, c)) {
            Some(next) if in_force(next, at) => current = next,
            Some(_) => return Err("署名の時点で中間証明書が有効期間外です".into()),
            None => break,
        }
    }
    Err("署名者の証明書が、この発行元として設定された証明書につながりません".into())
}

/// The certificates of a PEM file (`signer_ca_file`), as DER.
pub fn anchors_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let certs = Certificate::load_pem_chain(pem).map_err(|e| format!("not PEM certificates ({e})"))?;
    certs.iter().map(|c| c.to_der().map_err(|e| e.to_string())).collect()
}

