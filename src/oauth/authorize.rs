//! The first refresh token of a login, obtained at the terminal (`esurety mailbox
//! authorize`), as each provider allows: the device authorization grant (RFC 8628: a code
//! shown here, typed by the mailbox's owner on any device; Microsoft 365), or the
//! authorization code grant with PKCE (RFC 7636) and a loopback redirect (RFC 8252 §7.3:
//! a browser on this machine; Google). Either way the tokens go to the store sealed and
//! are never printed.

use super::http::{post_form, reason};
use crate::clock::{OsRandom, Random};
use crate::config::OAuth;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    #[error("the provider has no {0} endpoint for this login: set {1}")]
    NoEndpoint(&'static str, &'static str),
    #[error("the provider refused: {0}")]
    Refused(String),
    #[error("no answer from the provider: {0}")]
    Unavailable(String),
    #[error("nobody approved within {0} minutes")]
    TimedOut(u64),
}

/// What the person at the terminal is told to do.
#[derive(Debug, Clone)]
pub enum Instruction {
    /// Open `uri` on any device and type `code`.
    Device { uri: String, code: String, complete: Option<String>, minutes: u64 },
    /// Open `url` in a browser on this machine.
    Browser { url: String },
}

/// The refresh token granted (never printed).
pub struct Granted {
    pub refresh: String,
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn runtime() -> Result<tokio::runtime::Runtime, AuthorizeError> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| AuthorizeError::Unavailable(e.to_string()))
}

/// The token endpoint's answer to a grant: the refresh token, a wait, or a refusal.
enum Answer {
    Granted(Granted),
    Pending { slow_down: bool },
}

fn grant<'a>(oauth: &'a OAuth, form: &mut Vec<(&'a str, &'a str)>, rt: &tokio::runtime::Runtime) -> Result<Answer, AuthorizeError> {
    form.push(("client_id", &oauth.client_id));
    if let Some(s) = &oauth.client_secret {
        form.push(("client_secret", s.expose()));
    }
    let (status, answer) = rt.block_on(post_form(&oauth.token_url, form)).map_err(AuthorizeError::Unavailable)?;
    if status == 200 {
        return match field(&answer, "refresh_token") {
            Some(r) => Ok(Answer::Granted(Granted { refresh: r.to_string() })),
            None => Err(AuthorizeError::Refused("the provider gave no refresh token (is offline_access among the scopes?)".into())),
        };
    }
    match field(&answer, "error") {
        Some("authorization_pending") => Ok(Answer::Pending { slow_down: false }),
        Some("slow_down") => Ok(Answer::Pending { slow_down: true }),
        _ => Err(AuthorizeError::Refused(reason(status, &answer))),
    }
}

/// The device authorization grant: shows a code, then waits (polling the token
/// endpoint as the provider asks) until the code is approved, refused or expires.
pub fn device(oauth: &OAuth, tell: &mut dyn FnMut(&Instruction)) -> Result<Granted, AuthorizeError> {
    let url = oauth.device_url.as_deref().ok_or(AuthorizeError::NoEndpoint("device authorization", "device_url, or use --loopback"))?;
    let rt = runtime()?;
    let mut form = vec![("client_id", oauth.client_id.as_str()), ("scope", oauth.scope.as_str())];
    if let Some(s) = &oauth.client_secret {
        form.push(("client_secret", s.expose()));
    }
    let (status, answer) = rt.block_on(post_form(url, &form)).map_err(AuthorizeError::Unavailable)?;
    if status != 200 {
        return Err(AuthorizeError::Refused(reason(status, &answer)));
    }
    let (Some(device_code), Some(code)) = (field(&answer, "device_code"), field(&answer, "user_code")) else {
        return Err(AuthorizeError::Unavailable("the device authorization answer has no device_code or user_code".into()));
    };
    // RFC 8628 says verification_uri; Google once said verification_url.
    let uri = field(&answer, "verification_uri").or_else(|| field(&answer, "verification_url")).unwrap_or_default().to_string();
    let lifetime = answer.get("expires_in").and_then(Value::as_u64).unwrap_or(900).clamp(60, 3600);
    let mut interval = answer.get("interval").and_then(Value::as_u64).unwrap_or(5).clamp(1, 60);
    tell(&Instruction::Device { uri, code: code.to_string(), complete: field(&answer, "verification_uri_complete").map(str::to_string), minutes: lifetime.div_ceil(60) });
    let until = Instant::now() + Duration::from_secs(lifetime);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(interval));
        let mut form = vec![("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)];
        match grant(oauth, &mut form, &rt)? {
            Answer::Granted(g) => return Ok(g),
            Answer::Pending { slow_down: true } => interval += 5,
            Answer::Pending { slow_down: false } => {}
        }
    }
    Err(AuthorizeError::TimedOut(lifetime.div_ceil(60)))
}

/// The authorization code grant with PKCE, redirected to a listener on this machine's
/// loopback (`port`, or any free one when 0): shows the URL to open, waits for the
/// browser to come back (10 minutes at most), and trades the code for the tokens.
pub fn loopback(oauth: &OAuth, port: u16, tell: &mut dyn FnMut(&Instruction)) -> Result<Granted, AuthorizeError> {
    let authorize = oauth.authorize_url.as_deref().ok_or(AuthorizeError::NoEndpoint("authorization", "authorize_url"))?;
    let rt = runtime()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", port))).map_err(|e| AuthorizeError::Unavailable(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let port = listener.local_addr().map_err(|e| AuthorizeError::Unavailable(e.to_string()))?.port();
    // RFC 8252 §7.3: a loopback redirect takes any port; the path is what is registered.
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut raw = [0u8; 32];
    OsRandom.fill(&mut raw);
    let verifier = b64(&raw);
    OsRandom.fill(&mut raw[..16]);
    let state = b64(&raw[..16]);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(authorize).map_err(|e| AuthorizeError::Unavailable(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oauth.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", &oauth.scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        // Google gives a refresh token only with these.
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent");
    tell(&Instruction::Browser { url: url.to_string() });
    let code = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(600), redirected(&listener, &state)).await.map_err(|_| AuthorizeError::TimedOut(10))?
    })?;
    let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect.as_str()), ("code_verifier", verifier.as_str())];
    match grant(oauth, &mut form, &rt)? {
        Answer::Granted(g) => Ok(g),
        Answer::Pending { .. } => Err(AuthorizeError::Refused("the provider answered as if this were a device code".into())),
    }
}

/// Waits for the browser's redirect carrying `state`; answers each request with a short
/// page. Each connection is served on its own, with 5 s for its request line, so a
/// stranger on the machine who connects first (or trickles bytes) never keeps the
/// browser waiting; requests without the state (a favicon, a stranger) are turned away.
async fn redirected(listener: &tokio::net::TcpListener, state: &str) -> Result<String, AuthorizeError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, AuthorizeError>>(1);
    let open = std::sync::Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            got = rx.recv() => {
                if let Some(out) = got {
                    return out;
                }
            }
            accepted = listener.accept() => {
                let (conn, _) = accepted.map_err(|e| AuthorizeError::Unavailable(e.to_string()))?;
                if open.fetch_add(1, Ordering::SeqCst) >= 32 {
                    open.fetch_sub(1, Ordering::SeqCst);
                    continue; // dropped: too many at once
                }
                let (tx, open, state) = (tx.clone(), open.clone(), state.to_string());
                tokio::spawn(async move {
                    if let Some(out) = answer(conn, &state).await {
                        let _ = tx.send(out).await;
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
}

/// Reads one request line (5 s at most, however it trickles), answers it, and says what
/// it carried: the code, the provider's refusal, or nothing for us.
async fn answer(mut conn: tokio::net::TcpStream, state: &str) -> Option<Result<String, AuthorizeError>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    // The request line is all that is read: the redirect carries its answer in the query.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while n < buf.len() && !buf[..n].windows(2).any(|w| w == b"\r\n") {
            match conn.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
    }).await;
    let line = String::from_utf8_lossy(&buf[..n]);
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let query: Vec<(String, String)> = url::Url::parse(&format!("http://127.0.0.1{target}")).map(|u| u.query_pairs().into_owned().collect()).unwrap_or_default();
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    let (page, out) = match (get("state"), get("code"), get("error")) {
        (Some(s), Some(code), _) if s == state => ("esurety: the mailbox is authorized. You may close this window.", Some(Ok(code))),
        (Some(s), _, Some(e)) if s == state => ("esurety: the authorization was refused. See the terminal.", Some(Err(AuthorizeError::Refused(e.chars().filter(|c| !c.is_control()).take(200).collect())))),
        _ => ("esurety: not this request.", None),
    };
    let status = if out.is_some() { "200 OK" } else { "400 Bad Request" };
    let reply = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len());
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = conn.write_all(reply.as_bytes()).await;
        let _ = conn.shutdown().await;
    }).await;
    out
}
