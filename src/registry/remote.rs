//! The owner side's client to the issuers' registries (`[[registries]]`): one HTTP/1.1
//! connection per registry, kept open between checks, over rustls (ring) for https. Every
//! request has a deadline; a registry that cannot be reached, answers 5xx or something
//! that is not the API's leaves the submission pending ([`RegistryError::Unavailable`]);
//! a 401/403 is a configuration error ([`RegistryError::Refused`]).

use super::{Registry, RegistryError, Route, Verification, other_issuer_reason, viewing_reason};
use crate::config::RegistryConfig;
use crate::domain::Certificate;
use crate::domain::{Format, Product};
use crate::store::{Store, VersionRow};
use crate::domain::Found;
use crate::text::squash;
use chrono::{DateTime, FixedOffset, NaiveDate};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite};

/// The most of an answer that is read (a valid answer is a few kilobytes).
const MAX_ANSWER: usize = 1 << 20;

/// After a registry could not be reached, how long it is taken as away without asking
/// (so a pass over many waiting submissions does not wait a timeout for each).
const AWAY: std::time::Duration = std::time::Duration::from_secs(30);

mod events;

pub struct RemoteRegistries {
    remotes: Vec<Remote>,
    /// Drives the requests: the owner side asks from the pass's thread, one at a time.
    rt: tokio::runtime::Runtime,
}

struct Remote {
    config: RegistryConfig,
    tls: Option<tokio_rustls::TlsConnector>,
    conn: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    /// Until when it is taken as away, and why.
    away: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl RemoteRegistries {
    pub fn new(configs: &[RegistryConfig]) -> Result<RemoteRegistries, String> {
        let remotes = configs.iter().map(|c| {
            c.token.as_ref().map_err(Clone::clone)?;
            let tls = (c.url.scheme() == "https").then(|| crate::tls::connector(c.ca_file.as_deref())).transpose()?;
            Ok(Remote { config: c.clone(), tls, conn: tokio::sync::Mutex::new(None), away: std::sync::Mutex::new(None) })
        }).collect::<Result<_, String>>()?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the registry client: {e}"))?;
        Ok(RemoteRegistries { remotes, rt })
    }

    fn named(&self, issuer: &str) -> Option<&Remote> {
        self.remotes.iter().find(|r| squash(&r.config.issuer) == squash(issuer))
    }

    /// Asks `remote` about number + key for `sender` (the submission's From, so the
    /// registry counts its failures apart from other senders'); `asked_for` makes a
    /// retried check count once.
    fn ask(&self, remote: &Remote, number: &str, key: &str, sender: Option<&str>, asked_for: &str, now: DateTime<FixedOffset>) -> Result<Verification, RegistryError> {
        let mut request = serde_json::json!({"number": number, "key": key, "ref": asked_for});
        if let Some(s) = sender.filter(|s| !s.is_empty() && !s.chars().any(char::is_control)) {
            // As the registry compares it (lower case); one longer than the API takes (some
            // characters grow when lower-cased) is named by its digest: still its own.
            let s = s.to_lowercase();
            request["sender"] = if s.chars().count() <= 200 { s } else { format!("sha256:{}", crate::text::hex(&sha2::Sha256::digest(s.as_bytes()))) }.into();
        }
        let body = serde_json::to_vec(&request).expect("JSON");
        let name = remote.config.issuer.clone();
        let unavailable = |reason: String| RegistryError::Unavailable { registry: name.clone(), reason };
        if let Some((until, why)) = remote.away.lock().expect("not poisoned").clone()
            && std::time::Instant::now() < until
        {
            return Err(unavailable(why));
        }
        let sent = self.rt.block_on(async {
            tokio::time::timeout(remote.config.timeout, remote.post("api/v1/verify", body)).await
                .map_err(|_| format!("no answer within {} s", remote.config.timeout.as_secs()))?
        });
        let (status, headers, bytes) = sent.map_err(|why| {
            *remote.away.lock().expect("not poisoned") = Some((std::time::Instant::now() + AWAY, why.clone()));
            unavailable(why)
        })?;
        match status {
            200 => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("the answer is not JSON: {e}")))?;
                let a = answer(&v, now).ok_or_else(|| unavailable("the answer is not the registry API's".into()))?;
                // A certificate for another number is no answer to this one: the registry
                // is wrong (or not the one we think), so the submission waits and staff
                // see why, rather than being accepted on someone else's certificate.
                if let Verification::Valid { number: answered, .. } = &a
                    && !same_number(answered, number)
                {
                    tracing::error!(event = "registry_wrong_number", registry = %name, asked = %number, answered = %answered);
                    return Err(unavailable(format!("the registry answered for {answered}, not for the number asked")));
                }
                Ok(a)
            }
            401 | 403 => {
                tracing::error!(event = "registry_refused_token", registry = %name, status);
                Err(RegistryError::Refused { registry: name, status })
            }
            400 | 413 | 415 | 422 => {
                let code = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("error").and_then(Value::as_str).map(|c| c.chars().take(40).collect())).unwrap_or_default();
                tracing::warn!(event = "registry_refused_question", registry = %name, status, code = %code);
                Err(RegistryError::Unanswerable { registry: name, status, code })
            }
            429 => {
                let secs = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(60).clamp(1, 86_400);
                let code = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
                if code.as_deref() == Some("too_many_failures") {
                    // Our token (or address) is locked by failures: the submission waits.
                    return Ok(Verification::SenderLocked { until: now + chrono::Duration::seconds(secs) });
                }
                // Too many requests: the registry is busy for us; not asked again until then.
                let why = format!("too many requests; the registry asks to wait {secs} s");
                *remote.away.lock().expect("not poisoned") = Some((std::time::Instant::now() + std::time::Duration::from_secs(secs as u64), why.clone()));
                Err(unavailable(why))
            }
            s => Err(unavailable(format!("HTTP {s}"))),
        }
    }
}

impl Remote {
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let url = &self.config.url;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            Some(tls) => Box::new(tls.connect(crate::tls::server_name(&host)?, tcp).await.map_err(|e| format!("TLS with {host}: {e}"))?),
            None => Box::new(tcp),
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// POSTs JSON to `path` under the registry's URL; once more on a fresh connection
    /// when the kept one turns out closed.
    async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
        self.request(hyper::Method::POST, path, body).await
    }

    /// A request to `path` (with its query) under the registry's URL, with our token.
    async fn request(&self, method: hyper::Method, path: &str, body: Vec<u8>) -> Result<(u16, hyper::HeaderMap, Bytes), String> {
        let url = self.config.url.join(path).map_err(|e| e.to_string())?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let mut kept = self.conn.lock().await;
        let mut last = String::new();
        for _ in 0..2 {
            let mut sender = match kept.take() {
                Some(s) if !s.is_closed() => s,
                _ => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                continue;
            }
            let target = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            let req = hyper::Request::builder().method(method.clone()).uri(target)
                .header(hyper::header::HOST, &authority)
                .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.config.token.as_ref().map(|t| t.expose()).unwrap_or_default()))
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, concat!("esurety/", env!("CARGO_PKG_VERSION")))
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| e.to_string())?;
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let limited = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER);
                    let bytes = limited.collect().await.map_err(|e| format!("reading the answer: {e}"))?.to_bytes();
                    *kept = Some(sender);
                    return Ok((status, headers, bytes));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(if last.is_empty() { "the connection closed".into() } else { last })
    }
}

impl RemoteRegistries {
    /// The registries that may hold `number`: those whose `numbers` pattern it matches;
    /// when none does, those without a pattern. A pair is never sent to a registry whose
    /// pattern says it is not its number, nor to a catch-all when one whose pattern
    /// matches is there.
    fn candidates(&self, number: &str) -> Vec<&Remote> {
        let by_shape: Vec<&Remote> = self.remotes.iter().filter(|r| r.config.numbers.as_ref().is_some_and(|re| re.is_match(number))).collect();
        if !by_shape.is_empty() {
            return by_shape;
        }
        self.remotes.iter().filter(|r| r.config.numbers.is_none()).collect()
    }

    /// Neither the notice nor the number's shape decides: each registry that may hold the
    /// number ([`Self::candidates`]) is asked in turn, and a valid answer decides. A
    /// registry that could not answer makes the whole answer wait (it may be the one that
    /// holds it); a wrong key outranks a malformed one (another registry's number shape).
    fn ask_each(&self, number: &str, key: &str, sender: Option<&str>, asked_for: &str, now: DateTime<FixedOffset>) -> Result<Verification, RegistryError> {
        let mut answer = Verification::Malformed;
        let mut failed: Option<RegistryError> = None;
        for r in self.candidates(number) {
            match self.ask(r, number, key, sender, asked_for, now) {
                Ok(v @ Verification::Valid { .. }) => return Ok(v),
                Ok(v @ (Verification::Locked { .. } | Verification::SenderLocked { .. })) => answer = v,
                Ok(Verification::Mismatch) if matches!(answer, Verification::Malformed) => answer = Verification::Mismatch,
                Ok(_) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) if !matches!(answer, Verification::Locked { .. } | Verification::SenderLocked { .. }) => Err(e),
            _ => Ok(answer),
        }
    }
}

impl Registry for RemoteRegistries {
    fn trust(&self, issuer: Option<&str>) -> crate::signature::verify::Trust {
        use crate::signature::verify::Trust;
        match issuer.and_then(|i| self.named(i)) {
            Some(r) => Trust { signers: r.config.signers.clone(), timestamps: r.config.timestamps.clone() },
            None => Trust {
                signers: self.remotes.iter().flat_map(|r| r.config.signers.iter().cloned()).collect(),
                timestamps: self.remotes.iter().flat_map(|r| r.config.timestamps.iter().cloned()).collect(),
            },
        }
    }

    fn route(&self, found: &Found) -> Route {
        if found.viewing {
            return Route::Unchecked { issuer: found.issuer.clone(), reason: viewing_reason(found.issuer.as_deref()) };
        }
        if let Some(issuer) = &found.issuer {
            return match self.named(issuer) {
                Some(r) => Route::Ask(Some(r.config.issuer.clone())),
                None => Route::Unchecked { issuer: Some(issuer.clone()), reason: other_issuer_reason(issuer) },
            };
        }
        match self.candidates(&found.number).as_slice() {
            [one] => Route::Ask(Some(one.config.issuer.clone())),
            [] => Route::Unchecked { issuer: None, reason: "発行した保証会社が分からないため、担当者が確認します".into() },
            _ => Route::Ask(None),
        }
    }

    /// The registries keep their own locks (per number and caller, per our token and each
    /// sender we name); the owner side keeps one per sender (and per number and sender) in
    /// its own store, so one sender's wrong keys stop at this sender and never reach the
    /// registry's limit for our token.
    fn lock(&self, store: &mut Store, number: &str, sender: Option<&str>, now: DateTime<FixedOffset>) -> Result<Option<Verification>, RegistryError> {
        let lockout = super::Lockout::default();
        Ok(store.write(|tx| super::lock_in_force(tx, number, crate::domain::Caller::sender(sender), now, lockout))?)
    }

    fn events(&self, _store: &mut Store, issuer: Option<&str>, number: &str, since: Option<&str>) -> Result<(String, Vec<crate::domain::Event>), RegistryError> {
        self.events_of(issuer, number, since)
    }

    fn verify(&self, store: &mut Store, issuer: Option<&str>, number: &str, key: &str, sender: Option<&str>, asked_for: &str, now: DateTime<FixedOffset>) -> Result<Verification, RegistryError> {
        let answer = match issuer.and_then(|i| self.named(i)) {
            Some(r) => self.ask(r, number, key, sender, asked_for, now)?,
            None => self.ask_each(number, key, sender, asked_for, now)?,
        };
        // A wrong key is counted here too, against the sender (once per message).
        if matches!(answer, Verification::Mismatch | Verification::Malformed) {
            store.write(|tx| -> Result<(), crate::store::StoreError> {
                use crate::store::RegistryStore;
                tx.record_failure(number, crate::domain::Caller::sender(sender), Some(asked_for), now.timestamp())
            })?;
        }
        Ok(answer)
    }
}

/// Whether the registry's number is the one asked (both in their canonical form).
fn same_number(answered: &str, asked: &str) -> bool {
    use crate::domain::CertificateNumber;
    match (CertificateNumber::parse(answered), CertificateNumber::parse(asked)) {
        (Some(a), Some(b)) => a.to_string() == b.to_string(),
        _ => squash(answered) == squash(asked),
    }
}

/// The API's answer (the JSON of `esurety verify --json`) as a [`Verification`].
pub fn answer(v: &Value, now: DateTime<FixedOffset>) -> Option<Verification> {
    match v.get("result")?.as_str()? {
        "valid" | "not_in_force" => {
            let c = v.get("certificate")?;
            let latest = certificate(c)?;
            let history = v.get("history")?.as_array()?.iter().map(|h| {
                let mut contents = latest.clone();
                contents.version = h.get("version")?.as_u64()? as u32;
                if let Some(p) = h.get("project").and_then(Value::as_str) {
                    contents.project = p.to_string();
                }
                Some(VersionRow { version: contents.version, kind: h.get("kind")?.as_str()?.to_string(), issued_at: h.get("issued_at")?.as_str()?.to_string(), contents })
            }).collect::<Option<Vec<_>>>()?;
            let issued_at = history.iter().find(|h| h.version == latest.version).map(|h| h.issued_at.clone()).unwrap_or_default();
            let kind = if latest.version > 1 { "変更" } else { "新規" }.to_string();
            Some(Verification::Valid {
                number: c.get("number")?.as_str()?.to_string(),
                status: crate::domain::CertificateStatus::parse(c.get("status")?.as_str()?)?,
                latest: VersionRow { version: latest.version, kind, issued_at, contents: latest },
                history,
                // A registry from before documents were kept answers without them.
                documents: c.get("documents").and_then(Value::as_array).map(|ds| ds.iter().filter_map(|d| Some(crate::store::IssuedDocument {
                    kind: d.get("kind")?.as_str()?.chars().take(32).collect(),
                    sha256: d.get("sha256")?.as_str().filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))?.to_ascii_lowercase(),
                })).take(16).collect()).unwrap_or_default(),
                // A registry from before events were kept answers without them.
                events: v.get("events").and_then(Value::as_array).map(|es| es.iter().take(1000).filter_map(super::json::read_event).collect()).unwrap_or_default(),
            })
        }
        "mismatch" => Some(Verification::Mismatch),
        "malformed" => Some(Verification::Malformed),
        "locked" => {
            let until = v.get("locked_until").and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).unwrap_or(now + chrono::Duration::minutes(15));
            Some(Verification::Locked { until })
        }
        _ => None,
    }
}

/// The registry's certificate object as contents the checks can read.
fn certificate(c: &Value) -> Option<Certificate> {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let d = |k: &str| s(k).and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok());
    let n = |k: &str| c.get(k).and_then(Value::as_u64);
    Some(Certificate {
        number: s("number")?,
        product: Product::from_name(&s("product")?)?,
        format: if s("format").as_deref() == Some(Format::Paper.name()) { Format::Paper } else { Format::Electronic },
        contractor: s("contractor")?,
        contractor_address: s("contractor_address").unwrap_or_default(),
        jv: s("jv"),
        owner: s("owner")?,
        project: s("project")?,
        site: s("site"),
        amount: n("amount")?,
        contract_price: n("contract_price")?,
        this_year_amount: n("this_year_amount"),
        term_start: d("term_start")?,
        term_end: d("term_end")?,
        guarantee_end: d("guarantee_end")?,
        contract_date: d("contract_date")?,
        award_date: d("award_date"),
        bank: s("bank"),
        redeposit: c.get("redeposit").and_then(Value::as_bool),
        payment_method: String::new(),
        billing: String::new(),
        fee_statement: false,
        office_code: s("office_code").unwrap_or_default(),
        version: n("version")? as u32,
        issue_date: d("issue_date")?,
        fee: None,
        intermediate: c.get("intermediate").and_then(|i| serde_json::from_value(i.clone()).ok()),
        bid_bond: None,
        reservation: s("reservation"),
    })
}
