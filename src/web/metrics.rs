//! `[metrics] listen`: `GET /metrics` in Prometheus' text format on a listener of its own
//! (loopback in the examples: it names no secret, but tells much about the company's
//! traffic), apart from `[web]` so that a firewall can keep the two apart.

use crate::clock::Clock;
use crate::config::StoreAt;
use crate::engine::SetupError;
use crate::health::Metrics;
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

struct Scrape {
    metrics: &'static Metrics,
    store_at: StoreAt,
    /// One connection, kept between scrapes (opened again after a failure).
    store: Mutex<Option<Store>>,
    clock: Arc<dyn Clock>,
}

/// Binds `listen` and serves `/metrics` until `stop`. Prints `metrics on URL`.
pub fn start(listen: &str, store_at: StoreAt, clock: Arc<dyn Clock>, rt: &tokio::runtime::Handle, stop: impl Future<Output = ()> + Send + 'static) -> Result<super::Serving, SetupError> {
    let metrics = Metrics::install().map_err(SetupError)?;
    let tcp = rt.block_on(TcpListener::bind(listen)).map_err(|e| SetupError(format!("metrics.listen {listen}: {e}")))?;
    let url = format!("http://{}/metrics", tcp.local_addr().map_err(|e| SetupError(e.to_string()))?);
    let scrape = Arc::new(Scrape { metrics, store_at, store: Mutex::new(None), clock });
    let app = Router::new().route("/metrics", get(metrics_text)).with_state(scrape);
    let task = rt.spawn(async move {
        if let Err(e) = axum::serve(tcp, app).with_graceful_shutdown(stop).await {
            tracing::error!(event = "metrics_server_failed", error = %e);
        }
    });
    eprintln!("esurety: metrics on {url}");
    tracing::info!(event = "metrics_listening", url = %url);
    Ok(super::Serving::fixed(url, task))
}

async fn metrics_text(State(scrape): State<Arc<Scrape>>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        let mut kept = scrape.store.lock().unwrap_or_else(|p| p.into_inner());
        if kept.is_none() {
            *kept = Store::open(&scrape.store_at).inspect_err(|e| tracing::warn!(event = "metrics_store_failed", error = %e)).ok();
        }
        let backlog = match kept.as_ref().map(Store::outbox_backlog) {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                // Opened again at the next scrape.
                tracing::warn!(event = "metrics_store_failed", error = %e);
                *kept = None;
                None
            }
            None => None,
        };
        scrape.metrics.render(backlog, scrape.clock.now())
    }).await;
    match text {
        Ok(t) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], t).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
