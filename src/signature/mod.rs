//! The company's signature on the PDFs the branch issues (signing.md): PAdES baseline
//! B-B (ETSI EN 319 142-1), one signature per file, made by an incremental update so the
//! file as typeset (with its embedded data) stays inside what is signed.
//!
//! [`Signer`] holds the signing key and its certificate chain, read once from the
//! configuration (`[signing]`: a PKCS#12 file, or a PEM key and chain). Its `Debug`
//! never shows the key.

mod chain;
pub mod cms;
pub mod demo;
pub mod pdf;
pub mod tsa;
pub mod verify;

use chrono::{DateTime, FixedOffset};
use der::{Decode, Encode};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use x509_cert::Certificate;

/// Why a signing key or certificate could not be used (said at start-up, by
/// configuration checking).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the key is not a PKCS#8 ECDSA P-256 or RSA key: {0}")]
    Key(String),
    #[error("the certificate chain cannot be read: {0}")]
    Chain(String),
    #[error("the PKCS#12 file cannot be opened (wrong password, or not PKCS#12): {0}")]
    Pkcs12(String),
    #[error("no certificate in the chain is for this key")]
    NoCertificateForKey,
}

/// Why a document could not be signed (the mail waits; signing.md).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error("the signature cannot be encoded: {0}")]
    Encode(String),
    #[error("the key did not sign")]
    Key,
}

enum Key {
    Ecdsa(EcdsaKeyPair, der::asn1::ObjectIdentifier),
    Rsa(RsaKeyPair),
}

/// The company's signing key and certificate chain.
pub struct Signer {
    key: Key,
    /// The certificate of the key.
    certificate: Certificate,
    /// The other certificates of the chain (issuers), as given.
    chain: Vec<Certificate>,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer {{ subject: {}, key: **** }}", self.subject())
    }
}

impl Signer {
    /// From a PKCS#8 key (DER) and the certificates of its chain, in any order.
    pub fn new(pkcs8: &[u8], certificates: Vec<Certificate>) -> Result<Signer, LoadError> {
        let rng = ring::rand::SystemRandom::new();
        let key = if let Ok(k) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8, &rng) {
            Key::Ecdsa(k, cms::ECDSA_WITH_SHA256)
        } else {
            Key::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| LoadError::Key(e.to_string()))?)
        };
        let public: Vec<u8> = match &key {
            Key::Ecdsa(k, _) => k.public_key().as_ref().to_vec(),
            Key::Rsa(k) => k.public_key().as_ref().to_vec(),
        };
        let of_key = certificates.iter().position(|c| c.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes() == public.as_slice()).ok_or(LoadError::NoCertificateForKey)?;
        let mut chain = certificates;
        let certificate = chain.remove(of_key);
        Ok(Signer { key, certificate, chain, rng })
    }

    /// From a PEM key (`PRIVATE KEY`, PKCS#8 unencrypted) and a PEM chain (the key's
    /// certificate and its issuers).
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8]) -> Result<Signer, LoadError> {
        let (label, der) = der::pem::decode_vec(key_pem).map_err(|e| LoadError::Key(e.to_string()))?;
        if label != "PRIVATE KEY" {
            return Err(LoadError::Key(format!("a PEM \"{label}\" block; convert it with `openssl pkcs8 -topk8 -nocrypt`")));
        }
        let chain = Certificate::load_pem_chain(chain_pem).map_err(|e| LoadError::Chain(e.to_string()))?;
        Signer::new(&der, chain)
    }

    /// From a PKCS#12 file and its password.
    pub fn from_pkcs12(bytes: &[u8], password: &str) -> Result<Signer, LoadError> {
        let store = p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed).map_err(|e| LoadError::Pkcs12(e.to_string()))?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| LoadError::Pkcs12("it holds no private key".into()))?;
        let mut certificates = Vec::new();
        for c in chain.certs() {
            certificates.push(Certificate::from_der(c.as_der()).map_err(|e| LoadError::Chain(e.to_string()))?);
        }
        // Issuers kept beside the key but not linked to it.
        for (_, entry) in store.entries() {
            if let p12_keystore::KeyStoreEntry::Certificate(c) = entry
                && let Ok(c) = Certificate::from_der(c.as_der())
                && !certificates.contains(&c)
            {
                certificates.push(c);
            }
        }
        Signer::new(chain.key().as_der(), certificates)
    }

    /// The signing certificate's subject, as RFC 4514 text.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate().subject().to_string()
    }

    /// The DER of the signing certificate.
    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.to_der().unwrap_or_default()
    }

    /// The signing certificate and the rest of its chain, DER: what the owner side of
    /// this deployment trusts for the company's own PDFs.
    pub fn certificates_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(&self.certificate).chain(&self.chain).filter_map(|c| c.to_der().ok()).collect()
    }

    /// The signing certificate, PEM: what the company publishes for owners to trust.
    pub fn certificate_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.certificate_der()).unwrap_or_default()
    }

    /// The signing certificate's first moment.
    pub fn not_before(&self) -> std::time::SystemTime {
        self.certificate.tbs_certificate().validity().not_before.to_system_time()
    }

    /// The signing certificate's last day.
    pub fn not_after(&self) -> std::time::SystemTime {
        self.certificate.tbs_certificate().validity().not_after.to_system_time()
    }

    /// Bytes of DER kept in a PDF for the signature: the certificates, the signer info, and
    /// room for a timestamp token when one is asked for.
    fn capacity(&self, timestamp: bool) -> usize {
        let certs: usize = std::iter::once(&self.certificate).chain(&self.chain).map(|c| c.to_der().map_or(4096, |d| d.len())).sum();
        certs + 2048 + if timestamp { 12_288 } else { 0 }
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<(der::asn1::ObjectIdentifier, Vec<u8>), SignError> {
        match &self.key {
            Key::Ecdsa(k, oid) => Ok((*oid, k.sign(&self.rng, message).map_err(|_| SignError::Key)?.as_ref().to_vec())),
            Key::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig).map_err(|_| SignError::Key)?;
                Ok((cms::SHA256_WITH_RSA, sig))
            }
        }
    }

    /// `pdf` signed (PAdES B-B) at `at`.
    pub fn sign(&self, pdf: &[u8], at: DateTime<FixedOffset>) -> Result<Vec<u8>, SignError> {
        self.finish(self.presign(pdf, at, false)?, None)
    }

    /// `pdf` with its signature's place kept and the signature value made; `timestamped`
    /// keeps room for a timestamp token. [`Presigned::signature_digest`] is what a
    /// timestamp authority stamps; [`Signer::finish`] makes the file.
    pub fn presign(&self, pdf: &[u8], at: DateTime<FixedOffset>, timestamped: bool) -> Result<Presigned, SignError> {
        self.presign_with_room(pdf, at, timestamped, 0)
    }

    /// [`Signer::presign`] with `token` bytes kept for the timestamp token instead of the
    /// usual room, when a token did not fit.
    pub fn presign_with_room(&self, pdf: &[u8], at: DateTime<FixedOffset>, timestamped: bool, token: usize) -> Result<Presigned, SignError> {
        let capacity = if token > 0 { self.capacity(false) + token + 1024 } else { self.capacity(timestamped) };
        let prepared = pdf::prepare(pdf, capacity, at)?;
        let (attrs_der, attrs) = cms::signed_attributes(&prepared.digest, &self.certificate_der()).map_err(encode)?;
        let (algorithm, signature) = self.sign_bytes(&attrs_der)?;
        Ok(Presigned { prepared, attrs, algorithm, signature })
    }

    /// The signed file of a [`Presigned`] PDF, with its timestamp token (PAdES B-T) if any.
    pub fn finish(&self, p: Presigned, timestamp_token: Option<&[u8]>) -> Result<Vec<u8>, SignError> {
        let cms = cms::signed_data_of(cms::detached(), &self.certificate, &self.chain, p.attrs, p.algorithm, &p.signature, timestamp_token).map_err(encode)?;
        Ok(p.prepared.embed(&cms)?)
    }
}

fn encode(e: der::Error) -> SignError {
    SignError::Encode(e.to_string())
}

/// A PDF whose signature value is made and whose signature is not yet in it.
pub struct Presigned {
    prepared: pdf::Prepared,
    attrs: der::asn1::SetOfVec<x509_cert::attr::Attribute>,
    algorithm: der::asn1::ObjectIdentifier,
    signature: Vec<u8>,
}

impl Presigned {
    /// The SHA-256 of the signature value: what a timestamp (RFC 3161) is asked for.
    pub fn signature_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.signature).into()
    }
}
