//! RFC 3161 timestamps for PAdES B-T (signing.md): each signature's value is sent (as its
//! SHA-256) to the configured timestamp authority, and the token it answers becomes the
//! signature's unsigned `id-aa-timeStampToken` attribute. The requests of one batch of
//! documents go out at once, on connections of their own, never one after another.
//!
//! A token is taken only when the answer is "granted", parses as CMS `SignedData`, and its
//! `TSTInfo` echoes the request's message imprint and nonce; anything else is an error and
//! the mail waits (an unsigned or unstamped document is never sent instead).

use der::asn1::{Int, OctetString};
use der::{Decode, Encode, Sequence};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// How long one timestamp may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (a real token is 2–6 KB).
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    #[error("the timestamp authority {0} cannot be reached: {1}")]
    Away(String, String),
    #[error("the timestamp authority {0} answered {1}")]
    Refused(String, String),
    #[error("the timestamp authority's answer is not a token for this request: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampReq {
    version: u8,
    message_imprint: MessageImprint,
    nonce: Int,
    #[asn1(default = "Default::default")]
    cert_req: bool,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PkiStatusInfo {
    status: u32,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<der::asn1::BitString>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<der::Any>,
}

/// A timestamp authority.
pub struct Tsa {
    url: url::Url,
    /// The authority's CA (`tsa_ca_file`): its tokens must lead to it.
    anchors: Vec<Vec<u8>>,
    tls: Option<tokio_rustls::TlsConnector>,
    /// Until when the authority is taken as away (it did not answer a moment ago): each
    /// application of a pass then waits at once instead of each waiting [`TIMEOUT`].
    away_until: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

/// How long an authority that did not answer is left alone.
const AWAY_FOR: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Tsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tsa({})", self.name())
    }
}

/// The request for `digest` (SHA-256) with `nonce`, and the DER its answer must echo.
fn request(digest: &[u8; 32], nonce: &[u8; 8]) -> der::Result<(Vec<u8>, Vec<u8>)> {
    let imprint = MessageImprint { hash_algorithm: super::cms::sha256(), hashed_message: OctetString::new(digest.to_vec())? };
    let mut n = nonce.to_vec();
    n[0] &= 0x7f;
    n[0] |= 0x01;
    let nonce = Int::new(&n)?;
    let req = TimeStampReq { version: 1, message_imprint: imprint, nonce, cert_req: true };
    Ok((req.to_der()?, n))
}

/// Text from the authority, fit for a log line: no control characters, bounded.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The token of an answer, checked against what was asked: granted, signed by a
/// certificate for timestamping (leading to `anchors` when given), its TSTInfo's imprint
/// the `digest` asked for and its nonce the `nonce` sent.
fn token(reply: &[u8], digest: &[u8; 32], nonce: &[u8], anchors: &[Vec<u8>]) -> Result<Vec<u8>, TsaError> {
    let invalid = |e: &dyn std::fmt::Display| TsaError::Invalid(clean(&e.to_string()));
    let resp = TimeStampResp::from_der(reply).map_err(|e| invalid(&e))?;
    if resp.status.status > 1 {
        let why = resp.status.status_string.map(|s| s.join("; ")).unwrap_or_default();
        return Err(TsaError::Invalid(clean(&format!("status {} {why}", resp.status.status))));
    }
    let token = resp.time_stamp_token.ok_or_else(|| TsaError::Invalid("granted, but no token".into()))?.to_der().map_err(|e| invalid(&e))?;
    let info = super::verify::timestamp_token(&token, anchors).map_err(|e| invalid(&e))?;
    if info.imprint != digest || info.nonce.as_deref() != Some(nonce) {
        return Err(TsaError::Invalid("its TSTInfo is not for this request (message imprint or nonce)".into()));
    }
    Ok(token)
}

impl Tsa {
    /// `tls`: the connector for an `https` URL (the configuration makes it, with the
    /// operator's CA when given).
    pub fn new(url: &str, tls: Option<tokio_rustls::TlsConnector>) -> Result<Tsa, String> {
        // Never the URL itself in a message: it may carry a login.
        let url = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let tls = match (url.scheme(), tls) {
            ("https", Some(tls)) => Some(tls),
            ("http", _) => None,
            ("https", None) => return Err(format!("{shown}: https needs a TLS connector")),
            (other, _) => return Err(format!("{other}: the timestamp authority's URL is http or https")),
        };
        if url.host_str().is_none() {
            return Err(format!("{shown}: no host"));
        }
        Ok(Tsa { url, tls, anchors: Vec::new(), away_until: std::sync::Mutex::new(None) })
    }

    /// Its tokens must lead to one of `anchors` (DER certificates: the authority's CA).
    pub fn with_anchors(mut self, anchors: Vec<Vec<u8>>) -> Tsa {
        self.anchors = anchors;
        self
    }

    /// The authority's CA, as configured (`tsa_ca_file`).
    pub fn anchors(&self) -> &[Vec<u8>] {
        &self.anchors
    }

    /// The authority's URL as logged: without its user and password.
    fn name(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    }

    async fn ask(&self, body: Vec<u8>) -> Result<Vec<u8>, TsaError> {
        let name = self.name();
        let away = |e: &dyn std::fmt::Display| TsaError::Away(name.clone(), e.to_string());
        let host = self.url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = self.url.port_or_known_default().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| away(&e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| away(&e))?;
                Box::new(tls.connect(name, tcp).await.map_err(|e| away(&e))?)
            }
            None => Box::new(tcp),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| away(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bracketed = if host.contains(':') { format!("[{host}]") } else { host.clone() };
        let authority = match self.url.port() {
            Some(p) => format!("{bracketed}:{p}"),
            None => bracketed,
        };
        let path = match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        };
        let mut req = hyper::Request::post(path).header(hyper::header::HOST, authority);
        // An authority that asks for a login: the URL's user and password, as Basic.
        if !self.url.username().is_empty() {
            use base64::Engine as _;
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            let pair = format!("{}:{}", decode(self.url.username()), decode(self.url.password().unwrap_or("")));
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)));
        }
        let req = req
            .header(hyper::header::CONTENT_TYPE, "application/timestamp-query")
            .header(hyper::header::ACCEPT, "application/timestamp-reply")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| away(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| away(&e))?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_REPLY).collect().await.map_err(|e| away(&e))?.to_bytes();
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().filter(|c| !c.is_control()).take(200).collect();
            return Err(TsaError::Refused(name, format!("HTTP {status}: {text}")));
        }
        Ok(body.to_vec())
    }

    async fn stamp(&self, digest: [u8; 32], nonce: [u8; 8]) -> Result<Vec<u8>, TsaError> {
        let (req, nonce) = request(&digest, &nonce).map_err(|e| TsaError::Invalid(e.to_string()))?;
        let reply = tokio::time::timeout(TIMEOUT, self.ask(req)).await.map_err(|_| TsaError::Away(self.name(), format!("no answer in {} s", TIMEOUT.as_secs())))??;
        token(&reply, &digest, &nonce, &self.anchors)
    }

    /// A token for each digest (SHA-256 of a signature value), all asked at once.
    pub fn stamp_all(&self, digests: &[[u8; 32]]) -> Result<Vec<Vec<u8>>, TsaError> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut nonces = vec![[0u8; 8]; digests.len()];
        for n in &mut nonces {
            rng.fill(n).map_err(|_| TsaError::Invalid("no random source".into()))?;
        }
        if let Some((until, why)) = self.away_until.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && std::time::Instant::now() < until
        {
            return Err(TsaError::Away(self.name(), format!("{why} (a moment ago; asked again within {} s)", AWAY_FOR.as_secs())));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| TsaError::Away(self.name(), e.to_string()))?;
        let got: Result<Vec<Vec<u8>>, TsaError> = rt.block_on(async {
            let asks = digests.iter().zip(nonces).map(|(d, n)| self.stamp(*d, n));
            futures::future::join_all(asks).await.into_iter().collect()
        });
        let mut away = self.away_until.lock().unwrap_or_else(|p| p.into_inner());
        // Any failure: an authority that refuses or answers garbage slowly costs each
        // application as much as one that does not answer.
        *away = match &got {
            Err(TsaError::Away(_, why) | TsaError::Refused(_, why) | TsaError::Invalid(why)) => Some((std::time::Instant::now() + AWAY_FOR, why.clone())),
            Ok(_) => None,
        };
        got
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
