//! The demo company's signing certificate (`esurety init`): an ECDSA P-256 key and a
//! self-signed certificate whose subject says it is a demo, so the embedded default signs
//! its PDFs too and no reader mistakes them for a real company's. A real company uses a
//! certificate from a certification authority instead (README, "Signing").

use der::asn1::{BitString, ObjectIdentifier, OctetString, UtcTime};
use der::{Encode, Sequence};
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use std::str::FromStr;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

#[derive(Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct Cert {
    tbs: Tbs,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// A demo key and certificate: `(key PEM, certificate PEM)`, valid from `now` for
/// `years`, the subject naming `company` and saying it is a demo.
pub fn certificate(company: &str, now: std::time::SystemTime, years: u64) -> Result<(String, String), String> {
    made(&format!("{company} (DEMO signing certificate: not for real use)"), false, now, years)
}

/// The demo's timestamp authority's key and certificate (`esurety demo`): self-signed,
/// for timestamping only (extended key usage `timeStamping`, critical, as RFC 3161 asks).
pub fn timestamp_certificate(now: std::time::SystemTime) -> Result<(String, String), String> {
    made("esurety DEMO timestamp authority (not for real use)", true, now, 1)
}

const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

fn made(common_name: &str, timestamping: bool, now: std::time::SystemTime, years: u64) -> Result<(String, String), String> {
    let company = common_name;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|e| e.to_string())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).map_err(|e| e.to_string())?;
    let err = |e: der::Error| e.to_string();
    // RFC 4514 text: commas, plus signs and the like in the company's name escaped.
    let escaped: String = company.chars().flat_map(|c| if ",+\"\\<>;=#".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
    let name = Name::from_str(&format!("CN={escaped},O=esurety demo,C=JP")).map_err(err)?;
    let mut serial = [0u8; 16];
    rng.fill(&mut serial).map_err(|e| e.to_string())?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let since = now.duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    let day = std::time::Duration::from_secs(86_400);
    let validity = Validity::new(
        Time::UtcTime(UtcTime::from_unix_duration(since - day).map_err(err)?),
        Time::UtcTime(UtcTime::from_unix_duration(since + day * (365 * years as u32)).map_err(err)?),
    );
    let ecdsa = AlgorithmIdentifierOwned { oid: super::cms::ECDSA_WITH_SHA256, parameters: None };
    let mut extensions = vec![
        // A CA of itself: readers take it as its own trust anchor.
        Extension { extn_id: BASIC_CONSTRAINTS, critical: true, extn_value: OctetString::new(vec![0x30, 0x03, 0x01, 0x01, 0xff]).map_err(err)? },
        // digitalSignature, nonRepudiation, keyCertSign.
        Extension { extn_id: KEY_USAGE, critical: true, extn_value: OctetString::new(vec![0x03, 0x02, 0x02, 0xc4]).map_err(err)? },
    ];
    if timestamping {
        // digitalSignature, nonRepudiation, keyCertSign (its own anchor); id-kp-timeStamping only.
        extensions.push(Extension { extn_id: EXTENDED_KEY_USAGE, critical: true, extn_value: OctetString::new(vec![0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08]).map_err(err)? });
    }
    let tbs = Tbs {
        version: 2,
        serial: SerialNumber::new(&serial).map_err(err)?,
        signature: ecdsa.clone(),
        issuer: name.clone(),
        validity,
        subject: name,
        spki: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid: EC_PUBLIC_KEY, parameters: Some(der::Any::encode_from(&PRIME256V1).map_err(err)?) },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref()).map_err(err)?,
        },
        extensions,
    };
    let signature = key.sign(&rng, &tbs.to_der().map_err(err)?).map_err(|e| e.to_string())?;
    let cert = Cert { tbs, algorithm: ecdsa, signature: BitString::from_bytes(signature.as_ref()).map_err(err)? };
    let key_pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8.as_ref()).map_err(|e| e.to_string())?;
    let cert_pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert.to_der().map_err(err)?).map_err(|e| e.to_string())?;
    Ok((key_pem, cert_pem))
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_certificate_signs() {
        let (key, cert) = super::certificate("東日本建設業保証株式会社", std::time::SystemTime::now(), 5).unwrap();
        let signer = super::super::Signer::from_pem(key.as_bytes(), cert.as_bytes()).unwrap();
        assert!(signer.subject().contains("DEMO"), "{}", signer.subject());
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}
