//! The CMS `SignedData` a PAdES signature carries in `/Contents` (ETSI EN 319 122-1 as
//! EN 319 142-1 asks for `ETSI.CAdES.detached`): detached (no content inside), SHA-256,
//! the signer's certificate and its chain, and the signed attributes PAdES baseline B-B
//! names: content-type, message-digest and signing-certificate-v2 (no signing-time: the
//! time is the signature dictionary's `/M`). A timestamp token (B-T) is an unsigned
//! attribute over the signature value.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

/// What a `SignedData` carries (`EncapsulatedContentInfo`).
pub use cms::signed_data::EncapsulatedContentInfo as EncapsulatedContent;

pub const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
pub const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
pub const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// RFC 3161's `id-aa-timeStampToken`: the unsigned attribute of PAdES B-T.
pub const ID_TIME_STAMP_TOKEN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
pub const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// `ESSCertIDv2` with its default hash algorithm (SHA-256) left out, as DER asks.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
}

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2 }`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

pub fn sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA256, parameters: None }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> der::Result<Attribute> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}

/// The signed attributes of a signature over a document whose SHA-256 is `digest`, by
/// the certificate whose DER is `signer_der`: the DER `SET` the signature value is
/// computed over (RFC 5652 §5.4), and the same attributes as a value.
pub fn signed_attributes(digest: &[u8; 32], signer_der: &[u8]) -> der::Result<(Vec<u8>, SetOfVec<Attribute>)> {
    signed_attributes_of(ID_DATA, digest, signer_der)
}

/// The same for content of type `content_type` (a timestamp token's is `id-ct-TSTInfo`).
pub fn signed_attributes_of(content_type: ObjectIdentifier, digest: &[u8; 32], signer_der: &[u8]) -> der::Result<(Vec<u8>, SetOfVec<Attribute>)> {
    let content_type = attribute(ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?;
    let message_digest = attribute(ID_MESSAGE_DIGEST, Any::encode_from(&OctetString::new(digest.to_vec())?)?)?;
    let cert_hash: [u8; 32] = Sha256::digest(signer_der).into();
    let signing_certificate = SigningCertificateV2 { certs: vec![EssCertIdV2 { cert_hash: OctetString::new(cert_hash.to_vec())? }] };
    let signing_certificate = attribute(ID_SIGNING_CERTIFICATE_V2, Any::encode_from(&signing_certificate)?)?;
    let set = SetOfVec::try_from(vec![content_type, message_digest, signing_certificate])?;
    Ok((set.to_der()?, set))
}

/// What a PAdES signature signs: nothing inside (detached; the PDF's byte range is it).
pub fn detached() -> EncapsulatedContentInfo {
    EncapsulatedContentInfo { econtent_type: ID_DATA, econtent: None }
}

/// The `ContentInfo` of a `SignedData` with one signer over `content` (detached when it
/// carries none; a timestamp token carries its `TSTInfo`).
pub fn signed_data_of(
    content: EncapsulatedContentInfo,
    signer: &Certificate,
    chain: &[Certificate],
    signed_attrs: SetOfVec<Attribute>,
    signature_algorithm: ObjectIdentifier,
    signature: &[u8],
    timestamp_token: Option<&[u8]>,
) -> der::Result<Vec<u8>> {
    let unsigned_attrs = match timestamp_token {
        Some(token) => Some(SetOfVec::try_from(vec![attribute(ID_TIME_STAMP_TOKEN, Any::from_der(token)?)?])?),
        None => None,
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: signer.tbs_certificate().issuer().clone(),
        serial_number: signer.tbs_certificate().serial_number().clone(),
    });
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: sha256(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned { oid: signature_algorithm, parameters: if signature_algorithm == SHA256_WITH_RSA { Some(Any::null()) } else { None } },
        signature: OctetString::new(signature.to_vec())?,
        unsigned_attrs,
    };
    let mut certificates = vec![CertificateChoices::Certificate(signer.clone())];
    certificates.extend(chain.iter().filter(|c| *c != signer).cloned().map(CertificateChoices::Certificate));
    let signed = SignedData {
        // RFC 5652 §5.1: version 3 when the content is not id-data.
        version: if content.econtent_type == ID_DATA { CmsVersion::V1 } else { CmsVersion::V3 },
        digest_algorithms: SetOfVec::try_from(vec![sha256()])?,
        encap_content_info: content,
        certificates: Some(CertificateSet(SetOfVec::try_from(certificates)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    ContentInfo { content_type: ID_SIGNED_DATA, content: Any::encode_from(&signed)? }.to_der()
}
