//! The demo's timestamp authority: RFC 3161 over HTTP on loopback, for `esurety demo`
//! only, so the demo's PDFs are timestamped (PAdES B-T) on a machine with no server. Its
//! certificate is self-signed and says it is a demo; a company points `[signing] tsa_url`
//! at a real timestamp service (a 総務大臣認定 one in Japan), never at this.
//!
//! It answers `TimeStampReq` (SHA-256 imprints only) with a granted `TimeStampResp`: a
//! `TSTInfo` (policy, imprint, serial, time, the request's nonce) signed as CMS
//! `SignedData` with its certificate inside.

use crate::signature::cms::{self, ID_SHA256};
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use der::asn1::{Any, GeneralizedTime, Int, ObjectIdentifier, OctetString};
use der::{Decode, DecodePem, Encode, Reader, Sequence, Tagged};
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifierOwned;

const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// ETSI EN 319 421's best-practices policy for timestamps (the demo claims no more).
const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2023.1.1");

#[derive(Clone, Debug, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Clone, Debug, Sequence)]
struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: GeneralizedTime,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
}

#[derive(Clone, Debug, Sequence)]
struct StatusInfo {
    status: u8,
}

#[derive(Clone, Debug, Sequence)]
struct Granted {
    status: StatusInfo,
    token: Any,
}

/// A request: its imprint and nonce (the rest, policy and extensions, is not asked for).
fn read_request(body: &[u8]) -> der::Result<(MessageImprint, Option<Int>)> {
    let mut r = der::SliceReader::new(body)?;
    let got = r.sequence(|r| -> der::Result<(MessageImprint, Option<Int>)> {
        let _version: u8 = r.decode()?;
        let imprint: MessageImprint = r.decode()?;
        let mut nonce = None;
        while !r.is_finished() {
            let any: Any = r.decode()?;
            if any.tag() == der::Tag::Integer && nonce.is_none() {
                nonce = Some(any.decode_as::<Int>()?);
            }
        }
        Ok((imprint, nonce))
    })?;
    r.finish()?;
    Ok(got)
}

/// The demo authority: its key and certificate.
pub struct DemoTsa {
    key: EcdsaKeyPair,
    certificate: Certificate,
    rng: ring::rand::SystemRandom,
}

impl DemoTsa {
    pub fn new(key_pem: &str, cert_pem: &str) -> Result<DemoTsa, String> {
        let (_, pkcs8) = der::pem::decode_vec(key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng).map_err(|e| e.to_string())?;
        let certificate = Certificate::from_pem(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
        Ok(DemoTsa { key, certificate, rng })
    }

    /// The DER `TimeStampResp` granting a token for `request`, or why not.
    pub fn answer(&self, request: &[u8], now: std::time::SystemTime) -> Result<Vec<u8>, String> {
        let err = |e: der::Error| e.to_string();
        let (imprint, nonce) = read_request(request).map_err(err)?;
        if imprint.hash_algorithm.oid != ID_SHA256 || imprint.hashed_message.as_bytes().len() != 32 {
            return Err("only SHA-256 imprints".into());
        }
        let mut serial = [0u8; 16];
        self.rng.fill(&mut serial).map_err(|e| e.to_string())?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        let since = now.duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
        let info = TstInfo {
            version: 1,
            policy: POLICY,
            message_imprint: imprint,
            serial_number: Int::new(&serial).map_err(err)?,
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(since.as_secs())).map_err(err)?,
            nonce,
        };
        let info_der = info.to_der().map_err(err)?;
        let digest: [u8; 32] = Sha256::digest(&info_der).into();
        let (attrs_der, attrs) = cms::signed_attributes_of(ID_CT_TST_INFO, &digest, &self.certificate.to_der().map_err(err)?).map_err(err)?;
        let signature = self.key.sign(&self.rng, &attrs_der).map_err(|e| e.to_string())?;
        let content = cms::EncapsulatedContent { econtent_type: ID_CT_TST_INFO, econtent: Some(Any::encode_from(&OctetString::new(info_der).map_err(err)?).map_err(err)?) };
        let token = cms::signed_data_of(content, &self.certificate, &[], attrs, cms::ECDSA_WITH_SHA256, signature.as_ref(), None).map_err(err)?;
        Granted { status: StatusInfo { status: 0 }, token: Any::from_der(&token).map_err(err)? }.to_der().map_err(err)
    }
}

/// Serves `tsa` on `listener` (loopback) until the runtime ends.
pub async fn serve(tsa: Arc<DemoTsa>, listener: tokio::net::TcpListener) {
    let app = axum::Router::new()
        .route("/", axum::routing::post(move |body: Bytes| {
            let tsa = tsa.clone();
            async move {
                match tsa.answer(&body, std::time::SystemTime::now()) {
                    Ok(der) => ([(header::CONTENT_TYPE, "application/timestamp-reply")], der).into_response(),
                    Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
                }
            }
        }))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024));
    let _ = axum::serve(listener, app).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token of the demo authority, for `digest`.
    fn token(tsa: &DemoTsa, digest: [u8; 32]) -> Vec<u8> {
        let imprint = MessageImprint { hash_algorithm: crate::signature::cms::sha256(), hashed_message: OctetString::new(digest.to_vec()).unwrap() };
        #[derive(Sequence)]
        struct Req {
            version: u8,
            imprint: MessageImprint,
            nonce: Int,
        }
        let req = Req { version: 1, imprint, nonce: Int::new(&[0x12, 0x34]).unwrap() }.to_der().unwrap();
        let reply = tsa.answer(&req, std::time::SystemTime::now()).unwrap();
        let mut r = der::SliceReader::new(&reply).unwrap();
        let token: Any = r.sequence(|r| -> der::Result<Any> {
            let _status: StatusInfo = r.decode()?;
            r.decode()
        }).unwrap();
        token.to_der().unwrap()
    }

    #[test]
    fn its_tokens_check_and_an_altered_or_foreign_one_does_not() {
        let (key, cert) = crate::signature::demo::timestamp_certificate(std::time::SystemTime::now()).unwrap();
        let tsa = DemoTsa::new(&key, &cert).unwrap();
        let anchors = crate::signature::verify::anchors_pem(cert.as_bytes()).unwrap();
        let good = token(&tsa, [7; 32]);
        let info = crate::signature::verify::timestamp_token(&good, &anchors).unwrap();
        assert_eq!((info.imprint, info.nonce), (vec![7; 32], Some(vec![0x12, 0x34])));
        // Its signature changed (the last bytes of the token are the signature value).
        let mut forged = good.clone();
        let n = forged.len();
        forged[n - 3] ^= 0x01;
        assert!(crate::signature::verify::timestamp_token(&forged, &anchors).is_err());
        // Another authority's token, intact: refused where this one's CA is named.
        let (key2, cert2) = crate::signature::demo::timestamp_certificate(std::time::SystemTime::now()).unwrap();
        let other = token(&DemoTsa::new(&key2, &cert2).unwrap(), [7; 32]);
        assert!(crate::signature::verify::timestamp_token(&other, &[]).is_ok(), "intact by itself");
        assert!(crate::signature::verify::timestamp_token(&other, &anchors).is_err(), "not of the named authority");
        // A signing certificate (not for timestamping) is not an authority.
        let (skey, scert) = crate::signature::demo::certificate("会社", std::time::SystemTime::now(), 1).unwrap();
        let not_tsa = token(&DemoTsa::new(&skey, &scert).unwrap(), [7; 32]);
        assert!(crate::signature::verify::timestamp_token(&not_tsa, &[]).unwrap_err().contains("timestamping"));
    }
}
