//! A form POST to an OAuth 2.0 endpoint (token, device authorization) over HTTPS (plain
//! HTTP on loopback only, as the configuration allows), and its JSON answer. One
//! connection per request: tokens are asked for about once an hour.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An answer larger than this is not read.
const MAX_ANSWER: usize = 256 * 1024;

/// How long an endpoint may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The endpoint's HTTP status and its JSON answer (`Null` when the body is not JSON).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
    tokio::time::timeout(TIMEOUT, post(url, form)).await.map_err(|_| format!("{url} did not answer within {} s", TIMEOUT.as_secs()))?
}

async fn post(url: &str, form: &[(&str, &str)]) -> Result<(u16, Value), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = match parsed.scheme() {
        "https" => {
            let tls = crate::tls::connector(None)?;
            Box::new(tls.connect(crate::tls::server_name(&host)?, tcp).await.map_err(|e| format!("TLS with {host}: {e}"))?)
        }
        _ => Box::new(tcp),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::CONNECTION, "close")
        .header(hyper::header::USER_AGENT, concat!("esurety/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("{host}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER).collect().await.map_err(|e| format!("reading {host}'s answer: {e}"))?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

/// A short, printable reason from an OAuth error answer (`error` and
/// `error_description`), never echoing more than a line of it.
pub fn reason(status: u16, answer: &Value) -> String {
    let field = |k: &str| answer.get(k).and_then(Value::as_str).map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect::<String>());
    match (field("error"), field("error_description")) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e,
        _ => format!("HTTP {status}"),
    }
}
