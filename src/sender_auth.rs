//! Who really sent it: DKIM and SPF, and whether either is aligned with the `From` domain
//! (as DMARC defines alignment, relaxed). A registered `From` address alone is easy to
//! forge; with `[sender_auth] enabled = true` an application or change is processed only
//! when a passing DKIM signature or SPF result is aligned with its `From`, and is held for
//! staff with the reason otherwise.
//!
//! DNS answers are looked up in a cache first: `dns_answers` in the configuration fills it
//! with fixed TXT records (`name<TAB>value` per line), and with `offline = true` a name not
//! in it is answered "no such record" without any query (how the tests run).
//!
//! SPF needs the IP address the message came from: it is read from the first `Received`
//! header that carries one (the one the receiving mail server added), with its `from`
//! name as the HELO name, and the envelope sender from `Return-Path`.
//!
//! Outgoing mail is signed with DKIM (relaxed/relaxed) when `[dkim]` names a key.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::verify::DomainKey;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimResult, DnsError, MessageAuthenticator, Parameters, ResolverCache, SpfResult, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// The result for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A passing DKIM signature (`dkim`) or SPF result (`spf`) aligned with the From domain.
    Aligned { via: &'static str, domain: String },
    /// Neither: why, in words for staff.
    NotAligned(String),
    /// Neither, but a DNS lookup failed for now (a timeout, a server failure): the answer
    /// may well be a pass once DNS answers, so the message is tried again later.
    Unsure(String),
}

/// A DNS TXT cache filled from fixed answers; in offline mode every other name is "not found".
pub struct Answers {
    map: Mutex<HashMap<Box<str>, Txt>>,
    offline: bool,
}

impl Answers {
    /// `text`: one `name<TAB or spaces>value` per line (`#` starts a comment). A name under
    /// `_domainkey` is a DKIM key record, any other an SPF record.
    pub fn parse(text: &str, offline: bool) -> Result<Answers, String> {
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once(char::is_whitespace).ok_or_else(|| format!("line {}: expected `name value`", i + 1))?;
            let value = value.trim().trim_matches('"');
            let name = fqdn(name);
            let txt: Txt = if name.contains("._domainkey.") {
                DomainKey::parse(value.as_bytes()).map_err(|e| format!("line {}: not a DKIM key record: {e}", i + 1))?.into()
            } else if name.starts_with("_dmarc.") {
                continue; // alignment is checked here; the published policy is not needed
            } else {
                Spf::parse(value.as_bytes()).map_err(|e| format!("line {}: not an SPF record: {e}", i + 1))?.into()
            };
            map.insert(name.into_boxed_str(), txt);
        }
        Ok(Answers { map: Mutex::new(map), offline })
    }
}

fn fqdn(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

impl ResolverCache<Box<str>, Txt> for Answers {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned().or_else(|| self.offline.then(|| Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))))
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _: std::time::Instant) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).insert(key, value);
    }
}

pub struct SenderAuth {
    authenticator: MessageAuthenticator,
    answers: Answers,
    rt: tokio::runtime::Runtime,
    /// Our own host name, for SPF's `%{r}`.
    host: String,
}

impl SenderAuth {
    /// `nameservers`: the DNS servers to ask; none means the system's (/etc/resolv.conf).
    pub fn new(answers: Answers, host: &str, nameservers: &[std::net::SocketAddr]) -> Result<SenderAuth, String> {
        use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let config = if nameservers.is_empty() {
            mail_auth::hickory_resolver::system_conf::read_system_conf().map(|(c, _)| c).map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?
        } else {
            let servers = nameservers.iter().map(|a| {
                let mut s = NameServerConfig::udp_and_tcp(a.ip());
                s.connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()].into_iter().map(|mut c| { c.port = a.port(); c }).collect();
                s
            }).collect();
            ResolverConfig::from_parts(None, vec![], servers)
        };
        let authenticator = rt.block_on(async {
            let mut opts = mail_auth::hickory_resolver::config::ResolverOpts::default();
            opts.timeout = std::time::Duration::from_secs(5);
            opts.attempts = 1;
            MessageAuthenticator::new(config, opts)
        }).map_err(|e| format!("cannot set up DNS: {e}"))?;
        Ok(SenderAuth { authenticator, answers, rt, host: host.to_string() })
    }

    /// DKIM and SPF for one raw message, and their alignment with `from`.
    pub fn check(&self, raw: &[u8], from: &str, envelope: Option<&str>) -> Verdict {
        let from_domain = domain_of(from);
        let Some(msg) = AuthenticatedMessage::parse(raw) else {
            return Verdict::NotAligned("メールのヘッダーを読み取れないため、送信元を確認できません".into());
        };
        let mut why = Vec::new();
        let mut temporary = false;
        let dkim = self.rt.block_on(self.authenticator.verify_dkim(Parameters::new(&msg).with_txt_cache(&self.answers)));
        for out in &dkim {
            let d = out.signature().map(|s| s.d.to_ascii_lowercase()).unwrap_or_default();
            match out.result() {
                DkimResult::Pass if aligned(&d, &from_domain) => return Verdict::Aligned { via: "dkim", domain: d },
                DkimResult::Pass => why.push(format!("DKIM 署名（{d}）は送信者のドメイン（{from_domain}）のものではありません")),
                other => {
                    temporary |= matches!(other, DkimResult::TempError(_));
                    why.push(format!("DKIM 署名（{d}）を確認できません（{}）", dkim_words(other)));
                }
            }
        }
        if dkim.is_empty() {
            why.push("DKIM 署名がありません".into());
        }
        match received_from(raw) {
            Some((ip, helo)) => {
                let mail_from = envelope.filter(|e| e.contains('@')).unwrap_or(from).to_ascii_lowercase();
                let spf = self.rt.block_on(self.authenticator.verify_spf(
                    Parameters::new(SpfParameters::verify_mail_from(ip, &helo, &self.host, &mail_from)).with_txt_cache(&self.answers),
                ));
                let d = domain_of(&mail_from);
                match spf.result() {
                    SpfResult::Pass if aligned(&d, &from_domain) => return Verdict::Aligned { via: "spf", domain: d },
                    SpfResult::Pass => why.push(format!("SPF は {d} について合格ですが、送信者のドメイン（{from_domain}）と一致しません")),
                    other => {
                        temporary |= other == SpfResult::TempError;
                        why.push(format!("SPF（{d}、送信元 {ip}）が合格しません（{other:?}）"));
                    }
                }
            }
            None => why.push("受信経路（Received）に送信元の IP アドレスがないため SPF を確認できません".into()),
        }
        if temporary { Verdict::Unsure(why.join("。")) } else { Verdict::NotAligned(why.join("。")) }
    }
}

fn dkim_words(r: &DkimResult) -> String {
    match r {
        DkimResult::Fail(e) | DkimResult::PermError(e) | DkimResult::Neutral(e) => format!("不合格: {e}"),
        DkimResult::TempError(e) => format!("一時的な失敗: {e}"),
        DkimResult::None => "署名なし".into(),
        DkimResult::Pass => "合格".into(),
    }
}

fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or(address).trim_end_matches('.').to_ascii_lowercase()
}

/// Relaxed alignment: the same domain, or one a subdomain of the other (a stand-in for
/// "the same organizational domain" without a public suffix list).
fn aligned(a: &str, b: &str) -> bool {
    !a.is_empty() && !b.is_empty() && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// The IP address and HELO name of the first `Received` header that has an address.
fn received_from(raw: &[u8]) -> Option<(IpAddr, String)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| raw.windows(2).position(|w| w == b"\n\n")).unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    // Unfold, then look at each Received header in order.
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ").replace("\n\t", " ");
    for line in unfolded.lines() {
        let Some(value) = line.strip_prefix("Received:").or_else(|| line.strip_prefix("received:")) else { continue };
        let helo = value.split_whitespace().skip_while(|w| *w != "from").nth(1).unwrap_or("unknown").to_string();
        let mut rest = value;
        while let Some(i) = rest.find('[') {
            let inner = &rest[i + 1..];
            let Some(j) = inner.find(']') else { break };
            let candidate = inner[..j].trim_start_matches("IPv6:");
            if let Ok(ip) = candidate.parse::<IpAddr>() {
                return Some((ip, helo));
            }
            rest = &inner[j..];
        }
    }
    None
}

/// A DKIM signing key and where its public half is published (built once, used for
/// every outgoing message).
pub enum Signer {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

/// Signed headers: those a reader relies on, and none a relay adds.
const SIGNED: [&str; 7] = ["From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "MIME-Version"];

impl Signer {
    /// `pem`: a PKCS#8 private key, Ed25519 or RSA (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str, domain: &str, selector: &str) -> Result<Signer, String> {
        let der = pem_body(pem).ok_or("not a PEM private key")?;
        Ok(match Ed25519Key::from_pkcs8_maybe_unchecked_der(&der) {
            Ok(k) => Signer::Ed25519(DkimSigner::from_key(k).domain(domain).selector(selector).headers(SIGNED)
                .header_canonicalization(Canonicalization::Relaxed).body_canonicalization(Canonicalization::Relaxed)),
            Err(_) => {
                let key = rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(der));
                let k = RsaKey::<Sha256>::from_key_der(key).map_err(|e| format!("neither an Ed25519 nor an RSA PKCS#8 key: {e}"))?;
                Signer::Rsa(DkimSigner::from_key(k).domain(domain).selector(selector).headers(SIGNED)
                    .header_canonicalization(Canonicalization::Relaxed).body_canonicalization(Canonicalization::Relaxed))
            }
        })
    }

    /// The message with a `DKIM-Signature` header in front.
    pub fn sign(&self, raw: &[u8]) -> Result<Vec<u8>, String> {
        let sig = match self {
            Signer::Ed25519(s) => s.sign(raw),
            Signer::Rsa(s) => s.sign(raw),
        }.map_err(|e| format!("DKIM signing failed: {e}"))?;
        let mut out = sig.to_header().into_bytes();
        out.extend_from_slice(raw);
        Ok(out)
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
    base64_decode(b64.trim())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_headers_give_the_connecting_address() {
        let raw = b"Received: from mx.maruichi.example (mx.maruichi.example [192.0.2.10])\r\n\tby mail.ejcs.example; Fri, 3 Jul 2026\r\nReceived: from [10.0.0.1] by inner\r\nFrom: a@b\r\n\r\nbody";
        assert_eq!(received_from(raw), Some(("192.0.2.10".parse().unwrap(), "mx.maruichi.example".into())));
        assert_eq!(received_from(b"From: a@b\r\n\r\nReceived: from x [1.2.3.4]"), None, "only headers count");
    }

    #[test]
    fn alignment_is_relaxed() {
        assert!(aligned("maruichi.example", "maruichi.example"));
        assert!(aligned("mail.maruichi.example", "maruichi.example"));
        assert!(!aligned("evil.example", "maruichi.example"));
        assert!(!aligned("xmaruichi.example", "maruichi.example"));
    }
}
