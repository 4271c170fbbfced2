//! The registry API (`registry-service.md` § The API): `GET /api/v1/health`,
//! `POST /api/v1/verify` with a bearer token, and `GET /api/v1/certificates/{number}/document`
//! (the stored, signed file of a certificate the token has checked; signing.md). Every refusal is a 4xx with a JSON body
//! `{"error": CODE, "message": TEXT}`; nothing a caller sends can stop the server.

use super::checker::{Ask, Told};
use super::{App, Peer};
use crate::registry::Verification;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// A verify request's body at most (a real one is under 100 bytes).
const MAX_BODY: usize = 4 * 1024;
/// Longest number or key looked at; a longer one is refused before any check.
const MAX_FIELD: usize = 64;
/// Longest `ref` or `sender` looked at.
const MAX_LABEL: usize = 200;
/// Requests with an unknown token per client address and minute.
const BAD_TOKENS_PER_MINUTE: u32 = 10;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/verify", post(verify))
        .route("/api/v1/certificates/{number}/document", get(document))
        .route("/api/v1/certificates/{number}/events", get(events))
        .route("/api/v1/webhooks/{registry}", post(super::webhooks::receive))
        .route("/api/{*rest}", axum::routing::any(not_found))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such API request: see POST /api/v1/verify")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// 429 with Retry-After. `rate_limited`: too many requests (the caller may come back
/// after the wait); `too_many_failures`: the token or address is locked by its failures.
fn too_many_as(code: &str, seconds: u64, message: &str) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, code, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    r
}

fn too_many(seconds: u64, message: &str) -> Response {
    too_many_as("rate_limited", seconds, message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    number: String,
    key: String,
    /// The caller's name for this question: asked again under it (a retry), a wrong key
    /// counts once.
    #[serde(rename = "ref")]
    reference: Option<String>,
    /// The end sender an owner's system asks for (a submission's From): failures are
    /// counted per (token, sender), so strangers cannot spend its contractors' budget.
    sender: Option<String>,
}

/// Why a field of a verify request is refused before any check: control characters or
/// absurd length are not a typo of a number or key, and are never recorded as typed.
fn bad_field(req: &VerifyRequest) -> Option<Response> {
    let long = |s: &str, max: usize| s.chars().count() > max;
    let control = |s: &str| s.chars().any(char::is_control);
    if long(&req.number, MAX_FIELD) || long(&req.key, MAX_FIELD) || req.reference.as_deref().is_some_and(|r| long(r, MAX_LABEL)) || req.sender.as_deref().is_some_and(|s| long(s, MAX_LABEL)) {
        return Some(error(StatusCode::UNPROCESSABLE_ENTITY, "too_long", &format!("number and key are at most {MAX_FIELD} characters (ref and sender {MAX_LABEL})")));
    }
    // A number or key with control characters is checked (and recorded) as `malformed`.
    if [req.reference.as_ref(), req.sender.as_ref()].into_iter().flatten().any(|f| control(f)) {
        return Some(error(StatusCode::BAD_REQUEST, "malformed_field", "ref and sender are text without control characters"));
    }
    None
}

/// The caller's address and the hash of its bearer token, after the limits every API
/// request passes (per address, per address's unknown tokens, per token); or the refusal.
fn bearer(app: &App, peer: std::net::SocketAddr, headers: &HeaderMap) -> Result<(String, [u8; 32]), Response> {
    let address = app.client(peer, headers);
    if let Err(wait) = app.limiter.hit(&format!("api-addr:{address}"), app.web.api_per_minute) {
        return Err(too_many(wait, "too many requests from this address"));
    }
    if let Some(wait) = app.limiter.over(&format!("api-bad-token:{address}"), BAD_TOKENS_PER_MINUTE) {
        return Err(too_many(wait, "too many requests with unknown tokens from this address"));
    }
    let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(crate::registry::tokens::from_header) else {
        return Err(error(StatusCode::UNAUTHORIZED, "missing_token", "send Authorization: Bearer TOKEN (a token from `esurety token add` at the registry)"));
    };
    let token_hash = crate::registry::tokens::hash(token);
    let token_key: String = token_hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    if let Err(wait) = app.limiter.hit(&format!("api-token:{token_key}"), app.web.api_per_minute) {
        return Err(too_many(wait, "too many requests with this token"));
    }
    Ok((address, token_hash))
}

async fn verify(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap, body: Body) -> Response {
    let (address, token_hash) = match bearer(&app, peer, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let json_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json_type {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the request as Content-Type: application/json");
    }
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &format!("a verify request is at most {MAX_BODY} bytes"));
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad_body", "the request body could not be read"),
    };
    let req: VerifyRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_json", &format!("the body must be {{\"number\": \"…\", \"key\": \"…\"}} in UTF-8 JSON: {}", e.to_string().chars().take(200).collect::<String>())),
    };
    if let Some(refused) = bad_field(&req) {
        tracing::info!(event = "api_field_refused", address = %address);
        return refused;
    }
    let asked = app.checker.ask(Ask::Api { token_hash, number: req.number, key: req.key, reference: req.reference, sender: req.sender, address: address.clone() }).await;
    match asked {
        Err(e) => {
            tracing::error!(event = "api_check_failed", error = %e);
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the registry cannot answer now; try again shortly")
        }
        Ok(Told::NoToken) => {
            tracing::info!(event = "api_token_refused", address = %address);
            let _ = app.limiter.hit(&format!("api-bad-token:{address}"), BAD_TOKENS_PER_MINUTE);
            error(StatusCode::UNAUTHORIZED, "bad_token", "the token is not known or was revoked")
        }
        Ok(Told::Checked(Verification::SenderLocked { until })) => {
            let wait = (until - app.clock.now()).num_seconds().max(1) as u64;
            too_many_as("too_many_failures", wait, "too many failed checks from this token or address; try again after Retry-After seconds")
        }
        Ok(Told::Checked(v)) => Json(crate::registry::json::verification_with_office(&v, &app.engine.config)).into_response(),
    }
}

/// A certificate's events after `since` (RFC 3339; all when absent), oldest first
/// (`lifecycle.md`): for an owner's system to catch up on what a lost push told. Only for
/// a number this token has checked with the right key; anything else is the same 404.
async fn events(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap,
                axum::extract::Path(number): axum::extract::Path<String>, axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let (address, token_hash) = match bearer(&app, peer, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let query = query.unwrap_or_default();
    let since = match url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "since").map(|(_, v)| v.into_owned()) {
        None => None,
        // `+09:00` sent unencoded arrives as a space: read it as meant.
        Some(s) => match chrono::DateTime::parse_from_rfc3339(&s.replace(' ', "+")) {
            Ok(t) if s.len() <= 64 => Some(t),
            _ => return error(StatusCode::BAD_REQUEST, "bad_since", "since is a time in RFC 3339 (2026-12-06T09:00:00+09:00)"),
        },
    };
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such certificate for this token: check the number with its key first (POST /api/v1/verify)");
    let Some(number) = (number.len() <= MAX_FIELD).then(|| crate::domain::CertificateNumber::parse(&number)).flatten().map(|n| n.to_string()) else {
        return not_found();
    };
    let n = number.clone();
    let found = super::desk::with_store(&app, move |store, _| -> Result<Option<Option<(String, Vec<crate::domain::Event>)>>, crate::store::StoreError> {
        let Some(id) = store.token_of(&token_hash)? else { return Ok(None) };
        if !store.token_follows(id, &n)? {
            return Ok(Some(None));
        }
        use crate::store::RegistryStore;
        let Some(entry) = store.registry_entry(&n)? else { return Ok(Some(None)) };
        Ok(Some(Some((entry.status.as_str().to_string(), store.registry_events(&n)?))))
    }).await;
    answer_for_token(&app, &address, found, not_found, |(status, events)| {
        let after = |e: &crate::domain::Event| since.is_none_or(|s| chrono::DateTime::parse_from_rfc3339(&e.at).is_ok_and(|t| t > s));
        let events: Vec<serde_json::Value> = events.iter().filter(|e| after(e)).map(crate::registry::json::event).collect();
        tracing::info!(event = "api_events", number = %number, address = %address, count = events.len());
        Json(json!({"number": number, "status": status, "events": events})).into_response()
    })
}

/// The answer to a question about a number for a token: `Ok(None)` the token is not known
/// (or revoked), `Some(None)` nothing for it (`not_found`), `Some(Some(v))` the answer.
fn answer_for_token<T>(app: &App, address: &str, found: Result<Result<Option<Option<T>>, crate::store::StoreError>, Response>,
                       not_found: impl Fn() -> Response, answer: impl FnOnce(T) -> Response) -> Response {
    match found {
        Ok(Ok(Some(Some(v)))) => answer(v),
        Ok(Ok(Some(None))) => not_found(),
        Ok(Ok(None)) => {
            tracing::info!(event = "api_token_refused", address = %address);
            let _ = app.limiter.hit(&format!("api-bad-token:{address}"), BAD_TOKENS_PER_MINUTE);
            error(StatusCode::UNAUTHORIZED, "bad_token", "the token is not known or was revoked")
        }
        Ok(Err(e)) => {
            tracing::error!(event = "api_store_failed", error = %e);
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the registry cannot answer now; try again shortly")
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the registry cannot answer now; try again shortly"),
    }
}

/// The stored, signed file of the current version of a certificate (signing.md § The
/// registry serves what it issued): `?kind=certificate` (default) or `fee`, never the key
/// notice; only for a number this token has had a `valid` answer for, so a token cannot
/// fetch the documents of numbers it was never given a key for. Everything else is the
/// same 404, so the answer does not tell an unknown number from one not checked.
async fn document(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap,
                  axum::extract::Path(number): axum::extract::Path<String>, axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let (address, token_hash) = match bearer(&app, peer, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let query = query.unwrap_or_default();
    let kind = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "kind").map(|(_, v)| v.into_owned()).unwrap_or_else(|| "certificate".into());
    if !matches!(kind.as_str(), "certificate" | "fee") {
        return error(StatusCode::BAD_REQUEST, "bad_kind", "kind is certificate or fee (the key notice is never served)");
    }
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such document for this token: check the number with its key first (POST /api/v1/verify)");
    let Some(number) = (number.len() <= MAX_FIELD).then(|| crate::domain::CertificateNumber::parse(&number)).flatten().map(|n| n.to_string()) else {
        return not_found();
    };
    let n = number.clone();
    let found = super::desk::with_store(&app, move |store, _| -> Result<Option<Option<Vec<u8>>>, crate::store::StoreError> {
        let Some(checked) = store.token_checked(&token_hash, &n)? else { return Ok(None) };
        if !checked {
            return Ok(Some(None));
        }
        use crate::store::RegistryStore;
        let Some(latest) = store.registry_versions(&n)?.last().map(|v| v.version) else { return Ok(Some(None)) };
        Ok(Some(store.issued_pdf(&n, latest, &kind)?))
    }).await;
    answer_for_token(&app, &address, found, not_found, |pdf| {
        tracing::info!(event = "api_document", number = %number, address = %address);
        let mut r = pdf.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&format!("attachment; filename=\"{number}.pdf\"")).unwrap_or(HeaderValue::from_static("attachment")));
        r
    })
}
