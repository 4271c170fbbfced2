//! `GET /healthz` (the process lives: always 200) and `GET /readyz` (200 when ready, 503
//! with `{"ready": false, "reasons": [...]}` when not), over [`crate::health::readiness`].

use super::App;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long `/readyz` waits for the store before it calls it not answering.
const STORE_WAIT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    Json(json!({"alive": true})).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let asked = super::desk::with_store(&app, |store, _| store.outbox_backlog().map_err(|e| e.to_string()));
    let backlog = match tokio::time::timeout(STORE_WAIT, asked).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("it cannot be opened".to_string()),
        Err(_) => Err(format!("no answer within {} s", STORE_WAIT.as_secs())),
    };
    let reasons = crate::health::readiness(&app.health, backlog, app.engine.config.limits.outbox_stale_minutes, app.clock.now());
    if reasons.is_empty() {
        Json(json!({"ready": true})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "reasons": reasons}))).into_response()
    }
}
