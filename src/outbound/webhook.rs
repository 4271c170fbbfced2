//! Webhooks to owners' systems (`lifecycle.md` § What the owner is told), signed as the
//! Standard Webhooks specification says: `webhook-id` (the event's id), `webhook-timestamp`
//! (Unix seconds) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
//! `id.timestamp.body` under the endpoint's secret). Sent from the store's queue
//! (`webhook_deliveries`): in order per certificate and endpoint, retried with back-off
//! until a 2xx (or a 409: the receiver already has that id), never given up.

use crate::clock::Clock;
use crate::config::webhooks::WebhookEndpoint;
use crate::domain::Event;
use crate::store::{Store, StoreError, WebhookRow};
use base64::Engine as _;
use chrono::{DateTime, FixedOffset};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How long a webhook's try may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of an answer read.
const MAX_ANSWER: usize = 64 << 10;
/// How far a receiver lets a timestamp be from its clock (the specification's five minutes).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The signature of one message: `v1,BASE64`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref()))
}

/// Why a received webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the webhook-id, webhook-timestamp or webhook-signature header is missing or malformed")]
    Headers,
    #[error("the timestamp is more than five minutes from this server's clock")]
    Timestamp,
    #[error("no signature matches")]
    Signature,
}

/// [`verify`] against each of an endpoint's secrets (one, or two while rotating): any
/// one's signature will do.
pub fn verify_any(secrets: &crate::config::webhooks::WebhookSecrets, id: &str, timestamp: &str, signatures: &str, body: &[u8], now: i64) -> Result<(), Refusal> {
    let mut last = Err(Refusal::Signature);
    for s in secrets.iter() {
        last = verify(s.bytes(), id, timestamp, signatures, body, now);
        if last != Err(Refusal::Signature) {
            return last;
        }
    }
    last
}

/// Checks a received webhook's headers against the shared secret: the timestamp within
/// [`TOLERANCE_SECS`] of `now`, and one of the signatures (space separated, `v1,…`) the
/// HMAC of id, timestamp and body, compared in constant time.
pub fn verify(secret: &[u8], id: &str, timestamp: &str, signatures: &str, body: &[u8], now: i64) -> Result<(), Refusal> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::Headers);
    }
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refusal::Headers)?;
    if now.abs_diff(ts) > TOLERANCE_SECS as u64 {
        return Err(Refusal::Timestamp);
    }
    let expected = sign(secret, id, ts, body);
    let expected = expected.as_bytes();
    let mut any = false;
    for s in signatures.split(' ').filter(|s| s.starts_with("v1,")).take(8) {
        any |= s.len() == expected.len() && subtle::ConstantTimeEq::ct_eq(s.as_bytes(), expected).into();
    }
    if any { Ok(()) } else { Err(Refusal::Signature) }
}

/// An event's body as its webhook carries it.
pub fn payload(e: &Event) -> Vec<u8> {
    serde_json::to_vec(&e.public()).expect("JSON")
}

/// When a webhook that failed `attempts` times is tried again: 30 s, doubling, at most an
/// hour apart.
pub fn next_try(attempts: u32, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    let secs = 30i64.saturating_mul(1 << attempts.min(7)).min(3600);
    now + chrono::Duration::seconds(secs)
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhookReport {
    pub sent: usize,
    pub failed: usize,
}

/// The most time one sweep spends sending webhooks: the rest wait for the next sweep, so
/// slow owners' systems never hold up the daemon's pass for long.
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Sends the due webhooks, endpoint by endpoint (the first waiting of each certificate,
/// oldest first), one try each, within [`SWEEP_BUDGET`]. An endpoint that fails is left
/// alone for the rest of the sweep, so one that hangs costs one timeout, and never holds
/// up another owner's. An endpoint no longer configured (or without its secret) is
/// counted a failed try, with why, so staff see it on the desk; its webhooks wait.
pub fn sweep(config: &crate::config::Config, store: &mut Store, clock: &dyn Clock) -> Result<WebhookReport, StoreError> {
    let mut report = WebhookReport::default();
    if !config.sides.branch {
        return Ok(report);
    }
    let endpoints = store.due_endpoints(clock.now())?;
    if endpoints.is_empty() {
        return Ok(report);
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Ok(report) };
    let began = std::time::Instant::now();
    for name in endpoints {
        let endpoint = config.owner_by_name(&name).and_then(|o| o.webhook.as_ref());
        // A certificate's next event is due once its earlier one is sent: a few rounds
        // send a backlog in order.
        'rounds: for _ in 0..16 {
            let due = store.due_webhooks(&name, clock.now(), 200)?;
            if due.is_empty() {
                break;
            }
            for w in due {
                if began.elapsed() > SWEEP_BUDGET {
                    return Ok(report);
                }
                let now = clock.now();
                if !store.write(|tx| tx.claim_webhook(w.id, now, 60))? {
                    continue;
                }
                let tried = match endpoint {
                    Some(e) => rt.block_on(send(e, &w, now)),
                    None => Err(format!("no webhook_url for the owner {name} in the configuration: it waits until one is set")),
                };
                match tried {
                    Ok(()) => {
                        store.write(|tx| tx.webhook_sent(w.id, clock.now()))?;
                        tracing::info!(event = "webhook_sent", endpoint = %w.endpoint, number = %w.number, event_id = %w.event.id);
                        metrics::counter!("esurety_webhooks_total", "result" => "sent").increment(1);
                        report.sent += 1;
                    }
                    Err(why) => {
                        store.write(|tx| tx.webhook_failed(w.id, &why, next_try(w.attempts, clock.now())))?;
                        tracing::warn!(event = "webhook_failed", endpoint = %w.endpoint, number = %w.number, event_id = %w.event.id, attempts = w.attempts + 1, error = %why);
                        metrics::counter!("esurety_webhooks_total", "result" => "failed").increment(1);
                        report.failed += 1;
                        break 'rounds;
                    }
                }
            }
        }
    }
    Ok(report)
}

/// One try: POST the event, signed now. Ok on a 2xx, or a 409 (the receiver has it).
async fn send(endpoint: &WebhookEndpoint, w: &WebhookRow, now: DateTime<FixedOffset>) -> Result<(), String> {
    let secrets = endpoint.secret.as_ref().map_err(Clone::clone)?;
    let body = payload(&w.event);
    let ts = now.timestamp();
    let signature = secrets.iter().map(|s| sign(s.bytes(), &w.event.id, ts, &body)).collect::<Vec<_>>().join(" ");
    let status = tokio::time::timeout(TIMEOUT, post(&endpoint.url, endpoint.ca_file.as_deref(), &body, &[("webhook-id", &w.event.id), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", &signature)]))
        .await
        .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))??;
    match status {
        200..=299 | 409 => Ok(()),
        s => Err(format!("HTTP {s}")),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// POSTs JSON to `url` on a connection of its own; the answer's status.
async fn post(url: &url::Url, ca_file: Option<&std::path::Path>, body: &[u8], headers: &[(&str, &str)]) -> Result<u16, String> {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let io: Box<dyn Io> = if url.scheme() == "https" {
        let tls = crate::tls::connector(ca_file)?;
        Box::new(tls.connect(crate::tls::server_name(&host)?, tcp).await.map_err(|e| format!("TLS with {host}: {e}"))?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("esurety/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_vec()))).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER).collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_are_the_specifications() {
        let secret = crate::config::webhooks::WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &format!("v1,bm9wZQ== {sig}"), body, 1614265330 + 60), Ok(()));
        assert_eq!(verify(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig, b"{}", 1614265330), Err(Refusal::Signature));
        assert_eq!(verify(secret.bytes(), "msg_other", "1614265330", &sig, body, 1614265330), Err(Refusal::Signature));
        assert_eq!(verify(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig, body, 1614265330 + 301), Err(Refusal::Timestamp));
        assert_eq!(verify(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", "soon", &sig, body, 1614265330), Err(Refusal::Headers));
        assert_eq!(verify(secret.bytes(), "msg_p5jXN8AQM9LWM0D4loKWxJek", &i64::MIN.to_string(), &sig, body, 1614265330), Err(Refusal::Timestamp), "no overflow");
        assert_eq!(verify(b"another secret of twenty-four bytes", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &sig, body, 1614265330), Err(Refusal::Signature));
    }

    #[test]
    fn back_off_doubles_to_an_hour() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00+09:00").unwrap();
        let gaps: Vec<i64> = (0..10).map(|a| (next_try(a, now) - now).num_seconds()).collect();
        assert_eq!(gaps, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }
}
