//! The owner side's receiver of a company's webhooks (`lifecycle.md`):
//! `POST /api/v1/webhooks/{registry}`, where `{registry}` is a `[[registries]] issuer`
//! with a `webhook_secret_env`. The signature (Standard Webhooks) and the timestamp's age
//! are checked before the body is read as anything; an id already registered is refused
//! as a replay (409, which the sender takes as delivered); a good one is registered as
//! the mail would be. Every refusal is a 4xx with `{"error", "message"}`.

use super::{App, Peer};
use crate::registry::json::read_event;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;

/// A webhook's body at most (an event is a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

pub async fn receive(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, Path(registry): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let address = app.client(peer, &headers);
    if let Err(wait) = app.limiter.hit(&format!("webhook-addr:{address}"), app.web.api_per_minute) {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests from this address");
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(wait.max(1)));
        return r;
    }
    let config = app.engine.config.registries.iter().find(|r| crate::text::squash(&r.issuer) == crate::text::squash(&registry));
    let Some(Some(Ok(secrets))) = config.map(|r| r.webhook_secret.as_ref()) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no webhooks are taken from this registry here");
    };
    let issuer = config.map(|r| r.issuer.clone()).unwrap_or_default();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &format!("a webhook is at most {MAX_BODY} bytes"));
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad_body", "the request body could not be read"),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let id = header("webhook-id");
    if let Err(refusal) = crate::outbound::webhook::verify_any(secrets, id, header("webhook-timestamp"), header("webhook-signature"), &bytes, app.clock.now().timestamp()) {
        tracing::warn!(event = "webhook_refused", registry = %issuer, address = %address, reason = %refusal);
        metrics::counter!("esurety_webhooks_received_total", "result" => "refused").increment(1);
        return error(StatusCode::UNAUTHORIZED, "bad_signature", &refusal.to_string());
    }
    // Signed by the registry: now the body is read, and must be one event under its id.
    let event = serde_json::from_slice::<serde_json::Value>(&bytes).ok().as_ref().and_then(read_event).filter(|e| e.id == id);
    let Some(event) = event else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "bad_event", "the body is not an event whose id is the webhook-id");
    };
    // A registry speaks only for its own numbers (`[[registries]] numbers`).
    if config.and_then(|r| r.numbers.as_ref()).is_some_and(|re| !re.is_match(&event.number)) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "not_this_registry", "this registry's webhooks are for its own numbers only");
    }
    let now = app.clock.now();
    let e = event.clone();
    let registered = super::desk::with_store(&app, move |store, _| -> Result<Option<usize>, crate::store::StoreError> {
        // A number accepted from another company: this registry does not speak for it.
        if store.accepted_issuer(&e.number)?.is_some_and(|from| crate::text::squash(&from) != crate::text::squash(&issuer)) {
            return Ok(None);
        }
        crate::owner::events::register(store, &issuer, std::slice::from_ref(&e), crate::owner::events::VIA_WEBHOOK, now).map(Some)
    }).await;
    match registered {
        Ok(Ok(None)) => error(StatusCode::UNPROCESSABLE_ENTITY, "not_this_registry", "that number was accepted from another company"),
        Ok(Ok(Some(1))) => {
            metrics::counter!("esurety_webhooks_received_total", "result" => "registered").increment(1);
            Json(json!({"registered": event.id})).into_response()
        }
        Ok(Ok(Some(_))) => {
            tracing::info!(event = "webhook_replayed", event_id = %event.id, address = %address);
            metrics::counter!("esurety_webhooks_received_total", "result" => "replayed").increment(1);
            error(StatusCode::CONFLICT, "replayed", "this webhook-id is registered already")
        }
        Ok(Err(e)) => {
            tracing::error!(event = "webhook_store_failed", error = %e);
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot register it now; send it again later")
        }
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot register it now; send it again later"),
    }
}
