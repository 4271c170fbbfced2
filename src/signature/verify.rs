//! Checking the signature on a PDF someone sent (signing.md § The owner side), in two
//! halves. [`inspect`] reads the file, which is a stranger's: it runs in the PDF worker
//! beside the text (see `owner::submission::worker`) and answers whether the signature
//! is intact and covers the whole file, and which certificates it carries. [`judge`] then
//! decides with the certificates the owner trusts for that issuer: `valid`, `broken`,
//! `untrusted` (or `none`, a file without a signature). Both are pure.
//!
//! What is checked: the signed byte range is the whole file but the signature's own
//! place; its SHA-256 is the signed message digest; the signature over the signed
//! attributes verifies with a certificate the signature carries; that certificate leads,
//! through certificates the signature carries, to one the owner trusts, each issuer's
//! signature verifying and each certificate in force at the time of the signature (its
//! timestamp's, when it carries one for its value from an authority the owner trusts for
//! that issuer; else the time of the check).

use der::asn1::{GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Reader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::chain::{chain_to, verify_with};
pub use super::chain::anchors_pem;
use super::cms::{ID_MESSAGE_DIGEST, ID_SHA256, ID_SIGNED_DATA, ID_TIME_STAMP_TOKEN};

/// The most signatures looked at in one file.
const MAX_SIGNATURES: usize = 16;
/// The most certificates taken from one signature, and the longest chain followed.
const MAX_CERTIFICATES: usize = 16;

/// What the signature of a file says by itself (no trust yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inspected {
    /// The file is as signed: the certificates it carries (DER, the signer's first) and
    /// its timestamp token (DER) when it has one, and the SHA-256 of the signature value
    /// (what a token for it stamps).
    Intact { certificates: Vec<Vec<u8>>, token: Option<Vec<u8>>, stamped: Vec<u8> },
    /// The file is not as signed, or the signature is not one: why, in Japanese.
    Broken(String),
    /// A signature made in a way not checked here (another digest, another key type).
    Unsupported(String),
}

/// The register's `signature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureStatus {
    Valid,
    Broken,
    Untrusted,
    None,
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::Valid => "valid",
            SignatureStatus::Broken => "broken",
            SignatureStatus::Untrusted => "untrusted",
            SignatureStatus::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<SignatureStatus> {
        [SignatureStatus::Valid, SignatureStatus::Broken, SignatureStatus::Untrusted, SignatureStatus::None].into_iter().find(|v| v.as_str() == s)
    }

    /// For people (desk, digest).
    pub fn label(self) -> &'static str {
        match self {
            SignatureStatus::Valid => "電子署名：有効",
            SignatureStatus::Broken => "電子署名：改変あり",
            SignatureStatus::Untrusted => "電子署名：確認できない発行元",
            SignatureStatus::None => "電子署名なし",
        }
    }
}

/// A signature judged: its status and, unless valid or none, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    pub status: SignatureStatus,
    pub reason: Option<String>,
}

/// The signature of `pdf` (whose signature dictionaries are `signatures`: each one's
/// `/ByteRange`), by itself. `None`: the file carries no signature. Of several, a broken
/// one wins; else the one covering the most of the file is told.
pub fn inspect(pdf: &[u8], signatures: &[[i64; 4]]) -> Option<Inspected> {
    let mut best: Option<(usize, Inspected)> = None;
    for range in signatures.iter().take(MAX_SIGNATURES) {
        let (covered, result) = match one(pdf, *range) {
            Ok((covered, i)) => (covered, i),
            Err(i) => (usize::MAX, i),
        };
        if matches!(result, Inspected::Broken(_)) {
            return Some(result);
        }
        if best.as_ref().is_none_or(|(c, _)| covered > *c) {
            best = Some((covered, result));
        }
    }
    best.map(|(_, i)| i)
}

fn broken(why: &str) -> Inspected {
    Inspected::Broken(why.to_string())
}

/// One signature: `Ok((bytes covered, what it says))`.
fn one(pdf: &[u8], [a, b, c, d]: [i64; 4]) -> Result<(usize, Inspected), Inspected> {
    let bad_range = || broken("署名の範囲が正しくありません");
    let [a, b, c, d] = [a, b, c, d].map(|v| usize::try_from(v).ok());
    let (Some(0), Some(b), Some(c), Some(d)) = (a, b, c, d) else { return Err(bad_range()) };
    let end = c.checked_add(d).ok_or_else(bad_range)?;
    if !(b < c && c <= pdf.len() && end <= pdf.len() && c - b >= 2 && pdf[b] == b'<' && pdf[c - 1] == b'>') {
        return Err(bad_range());
    }
    // Bytes after the signed range: the file was changed after it was signed (only line
    // ends, which mail may add, are let through).
    if pdf[end..].iter().any(|x| !x.is_ascii_whitespace() && *x != 0) {
        return Err(broken("署名の後にファイルが変更されています"));
    }
    let contents = hex(&pdf[b + 1..c - 1]).ok_or_else(|| broken("署名の値が読み取れません"))?;
    let mut hasher = Sha256::new();
    hasher.update(&pdf[..b]);
    hasher.update(&pdf[c..end]);
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((end, cms(&contents, &digest)))
}

fn hex(text: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
    let value = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut out = Vec::with_capacity(digits.len() / 2 + 1);
    for pair in digits.chunks(2) {
        let hi = value(pair[0])?;
        let lo = match pair.get(1) {
            Some(&l) => value(l)?,
            None => 0,
        };
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// The CMS `SignedData` of `/Contents` (zero padded) against the digest of the signed range.
fn cms(contents: &[u8], digest: &[u8; 32]) -> Inspected {
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};
    let unreadable = || broken("署名の値が読み取れません");
    let Ok(mut reader) = der::SliceReader::new(contents) else { return unreadable() };
    let Ok(info) = ContentInfo::decode(&mut reader) else { return unreadable() };
    if info.content_type != ID_SIGNED_DATA {
        return unreadable();
    }
    let Ok(signed) = info.content.decode_as::<SignedData>() else { return unreadable() };
    let certificates: Vec<Certificate> = signed.certificates.iter().flat_map(|set| set.0.iter()).filter_map(|c| match c {
        cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
        _ => None,
    }).take(MAX_CERTIFICATES).collect();
    let Some(si) = signed.signer_infos.0.iter().next() else { return unreadable() };
    if si.digest_alg.oid != ID_SHA256 {
        return Inspected::Unsupported(format!("SHA-256 以外のハッシュ（{}）による署名です", si.digest_alg.oid));
    }
    let Some(attrs) = &si.signed_attrs else { return broken("署名に署名属性がありません") };
    let signed_digest = attrs.iter().find(|a| a.oid == ID_MESSAGE_DIGEST).and_then(|a| a.values.iter().next()).and_then(|v| v.decode_as::<OctetString>().ok());
    let Some(signed_digest) = signed_digest else { return broken("署名にファイルのハッシュ値がありません") };
    if signed_digest.as_bytes() != digest {
        return broken("署名の後にファイルが変更されています（ハッシュ値が一致しません）");
    }
    let Ok(attrs_der) = attrs.to_der() else { return unreadable() };
    let signature = si.signature.as_bytes();
    // The signer: the certificate the signer info names, else any that verifies.
    let named = |c: &&Certificate| match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => c.tbs_certificate().issuer() == &ias.issuer && c.tbs_certificate().serial_number() == &ias.serial_number,
        SignerIdentifier::SubjectKeyIdentifier(_) => true,
    };
    let mut unsupported = None;
    let signer = certificates.iter().filter(named).find(|c| match verify_with(c, &si.signature_algorithm.oid, &attrs_der, signature) {
        Ok(ok) => ok,
        Err(e) => {
            unsupported = Some(e);
            false
        }
    });
    let Some(signer) = signer else {
        return match unsupported {
            Some(e) => Inspected::Unsupported(e),
            None => broken("署名の値が署名者の証明書と一致しません"),
        };
    };
    let mut ders: Vec<Vec<u8>> = vec![signer.to_der().unwrap_or_default()];
    ders.extend(certificates.iter().filter(|c| *c != signer).filter_map(|c| c.to_der().ok()));
    let token = si.unsigned_attrs.as_ref()
        .and_then(|u| u.iter().find(|a| a.oid == ID_TIME_STAMP_TOKEN))
        .and_then(|a| a.values.iter().next())
        .and_then(|token| token.to_der().ok());
    let stamped: [u8; 32] = Sha256::digest(signature).into();
    Inspected::Intact { certificates: ders, token, stamped: stamped.to_vec() }
}

/// Whom the owner trusts for an issuer: its signers (the company's signing certificate or
/// its CA) and the timestamp authorities whose time it takes (their CAs).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub signers: Vec<Vec<u8>>,
    pub timestamps: Vec<Vec<u8>>,
}

/// What an inspected signature means to an owner who trusts `anchors` (DER certificates:
/// the issuer's signing certificate, or the CA that issues it), at `now` when the
/// signature has no timestamp.
pub fn judge(inspected: Option<&Inspected>, trust: &Trust, now: std::time::SystemTime) -> SignatureCheck {
    let anchors = &trust.signers;
    let said = |status, reason: String| SignatureCheck { status, reason: Some(reason) };
    let (ders, token, stamped) = match inspected {
        None => return SignatureCheck { status: SignatureStatus::None, reason: None },
        Some(Inspected::Broken(why)) => return said(SignatureStatus::Broken, why.clone()),
        Some(Inspected::Unsupported(why)) => return said(SignatureStatus::Untrusted, why.clone()),
        Some(Inspected::Intact { certificates, token, stamped }) => (certificates, token, stamped),
    };
    if anchors.is_empty() {
        return said(SignatureStatus::Untrusted, "この発行元の署名証明書が設定されていません（[[registries]] signer_ca_file）".into());
    }
    // A timestamp's time counts only from an authority trusted for this issuer: anyone
    // can make a token, and a token's time is what would let a retired key sign.
    let at = token.as_deref()
        .filter(|_| !trust.timestamps.is_empty())
        .and_then(|t| timestamp_token(t, &trust.timestamps).ok())
        .filter(|info| &info.imprint == stamped)
        .map(|info| info.time)
        .unwrap_or(now);
    let carried: Vec<Certificate> = ders.iter().filter_map(|d| Certificate::from_der(d).ok()).collect();
    let trusted: Vec<Certificate> = anchors.iter().filter_map(|d| Certificate::from_der(d).ok()).collect();
    let Some(leaf) = carried.first() else { return said(SignatureStatus::Broken, "署名者の証明書がありません".into()) };
    match chain_to(leaf, &carried, &trusted, at) {
        Ok(()) => SignatureCheck { status: SignatureStatus::Valid, reason: None },
        Err(why) => said(SignatureStatus::Untrusted, why),
    }
}

const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// What a timestamp token says, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The SHA-256 it stamps.
    pub imprint: Vec<u8>,
    /// Its nonce, as unsigned big-endian bytes without leading zeros.
    pub nonce: Option<Vec<u8>>,
    pub time: std::time::SystemTime,
}

fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// A timestamp token (RFC 3161 `TimeStampToken`, DER) checked: its `TSTInfo` is what its
/// signed attributes digest; the signature verifies with a certificate it carries (or one
/// of `anchors`) that is for timestamping; with `anchors`, that certificate leads to one of
/// them, in force at the token's time. Why not, otherwise.
pub fn timestamp_token(token: &[u8], anchors: &[Vec<u8>]) -> Result<TokenInfo, String> {
    use cms::content_info::ContentInfo;
    use cms::signed_data::SignedData;
    let e = |e: der::Error| e.to_string();
    let info = ContentInfo::from_der(token).map_err(e)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err("not SignedData".into());
    }
    let signed = info.content.decode_as::<SignedData>().map_err(e)?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err("its content is not a TSTInfo".into());
    }
    let tst = signed.encap_content_info.econtent.ok_or("no TSTInfo")?.decode_as::<OctetString>().map_err(e)?;
    let si = signed.signer_infos.0.iter().next().ok_or("no signer")?;
    if si.digest_alg.oid != ID_SHA256 {
        return Err(format!("a digest other than SHA-256 ({})", si.digest_alg.oid));
    }
    let attrs = si.signed_attrs.as_ref().ok_or("no signed attributes")?;
    let digest = attrs.iter().find(|a| a.oid == ID_MESSAGE_DIGEST).and_then(|a| a.values.iter().next()).and_then(|v| v.decode_as::<OctetString>().ok()).ok_or("no message digest")?;
    let want: [u8; 32] = Sha256::digest(tst.as_bytes()).into();
    if digest.as_bytes() != want {
        return Err("its signed digest is not its TSTInfo's".into());
    }
    let attrs_der = attrs.to_der().map_err(e)?;
    let trusted: Vec<Certificate> = anchors.iter().filter_map(|d| Certificate::from_der(d).ok()).collect();
    let carried: Vec<Certificate> = signed.certificates.iter().flat_map(|set| set.0.iter()).filter_map(|c| match c {
        cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
        _ => None,
    }).take(MAX_CERTIFICATES).collect();
    let signer = carried.iter().chain(&trusted)
        .find(|c| verify_with(c, &si.signature_algorithm.oid, &attrs_der, si.signature.as_bytes()).unwrap_or(false))
        .ok_or("its signature does not verify with its certificate")?;
    let for_timestamping = signer.tbs_certificate().extensions().into_iter().flatten()
        .find(|x| x.extn_id == ObjectIdentifier::new_unwrap("2.5.29.37"))
        .and_then(|x| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(x.extn_value.as_bytes()).ok())
        .is_some_and(|u| u.0.contains(&ID_KP_TIME_STAMPING));
    if !for_timestamping {
        return Err("its certificate is not for timestamping".into());
    }
    // TSTInfo: version, policy, messageImprint, serialNumber, genTime, then accuracy,
    // ordering, nonce, tsa, extensions, each optional.
    let mut r = der::SliceReader::new(tst.as_bytes()).map_err(e)?;
    let (imprint, time, nonce) = r.sequence(|r| -> der::Result<(OctetString, GeneralizedTime, Option<der::asn1::Int>)> {
        let _version: der::asn1::Int = r.decode()?;
        let _policy: ObjectIdentifier = r.decode()?;
        let imprint = r.sequence(|r| {
            let algorithm: x509_cert::spki::AlgorithmIdentifierOwned = r.decode()?;
            if algorithm.oid != ID_SHA256 {
                return Err(der::Tag::ObjectIdentifier.value_error().into());
            }
            r.decode::<OctetString>()
        })?;
        let _serial: der::asn1::Int = r.decode()?;
        let time: GeneralizedTime = r.decode()?;
        let mut nonce = None;
        while !r.is_finished() {
            let any: der::Any = r.decode()?;
            if der::Tagged::tag(&any) == der::Tag::Integer && nonce.is_none() {
                nonce = Some(any.decode_as::<der::asn1::Int>()?);
            }
        }
        Ok((imprint, time, nonce))
    }).map_err(e)?;
    r.finish().map_err(e)?;
    let time = time.to_system_time();
    if !trusted.is_empty() {
        chain_to(signer, &carried, &trusted, time).map_err(|_| "its certificate does not lead to the authority's CA (tsa_ca_file)".to_string())?;
    }
    Ok(TokenInfo { imprint: imprint.as_bytes().to_vec(), nonce: nonce.map(|n| unsigned(n.as_bytes())), time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(contents: &str) -> (Vec<u8>, [i64; 4]) {
        let head = b"%PDF-1.7\n1 0 obj << /Contents ".to_vec();
        let tail = b" >> endobj\n%%EOF\n";
        let b = head.len() as i64;
        let mut pdf = head;
        pdf.extend_from_slice(contents.as_bytes());
        let c = pdf.len() as i64;
        pdf.extend_from_slice(tail);
        (pdf.clone(), [0, b, c, tail.len() as i64])
    }

    fn reason(i: Option<Inspected>) -> String {
        match i {
            Some(Inspected::Broken(why)) => why,
            other => panic!("broken expected, got {other:?}"),
        }
    }

    #[test]
    fn a_file_without_a_signature_has_none() {
        assert_eq!(inspect(b"%PDF-1.7\n%%EOF\n", &[]), None);
        assert_eq!(judge(None, &Trust::default(), std::time::SystemTime::now()).status, SignatureStatus::None);
    }

    #[test]
    fn ranges_that_do_not_fit_the_file_are_broken_never_a_panic() {
        let (pdf, [a, b, c, d]) = file("<3000>");
        for range in [[a, c, b, d], [1, b, c, d - 1], [0, -1, c, d], [0, b, c, i64::MAX], [0, b, i64::MAX, i64::MAX], [0, b + 1, c, d], [0, b, c + 1, d - 1], [0, 0, 0, 0]] {
            assert_eq!(reason(inspect(&pdf, &[range])), "署名の範囲が正しくありません", "{range:?}");
        }
    }

    #[test]
    fn contents_that_are_not_a_signature_are_broken() {
        for contents in ["<zz>", "<>", "<3000>", "<3082ffffffff>", "<0000000000>"] {
            let (pdf, range) = file(contents);
            assert!(reason(inspect(&pdf, &[range])).contains("読み取れません"), "{contents}");
        }
    }

    #[test]
    fn bytes_added_after_the_signed_range_are_a_change_but_line_ends_are_not() {
        let (mut pdf, range) = file("<3000>");
        pdf.extend_from_slice(b"\r\n\n");
        assert!(reason(inspect(&pdf, &[range])).contains("読み取れません"), "line ends let through to the signature itself");
        pdf.extend_from_slice(b"1 0 obj << >> endobj\n");
        assert!(reason(inspect(&pdf, &[range])).contains("変更"));
    }

    #[test]
    fn an_intact_signature_without_a_trusted_certificate_is_untrusted() {
        let intact = Inspected::Intact { certificates: vec![vec![0x30, 0x00]], token: None, stamped: vec![] };
        let c = judge(Some(&intact), &Trust::default(), std::time::SystemTime::now());
        assert_eq!(c.status, SignatureStatus::Untrusted);
        assert!(c.reason.unwrap().contains("signer_ca_file"));
        let unsupported = Inspected::Unsupported("x".into());
        assert_eq!(judge(Some(&unsupported), &Trust { signers: vec![vec![1]], timestamps: vec![] }, std::time::SystemTime::now()).status, SignatureStatus::Untrusted);
    }
}
