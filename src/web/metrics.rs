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
use axum::http::header;
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
    let task = rt.spawn(serve(tcp, app, stop));
    eprintln!("esurety: metrics on {url}");
    tracing::info!(event = "metrics_listening", url = %url);
    Ok(super::Serving::fixed(url, task))
}

/// At most this many scrapers at once (Prometheus keeps one).
const CONNECTIONS: usize = 64;

/// Serves the router as `[web]` does, on a smaller scale: a request's headers must come
/// within [`super::HEADER_TIMEOUT`] (a client that never finishes them is cut, and holds
/// no descriptor for ever), and at most [`CONNECTIONS`] connections at once.
async fn serve(tcp: TcpListener, app: Router, stop: impl Future<Output = ()> + Send + 'static) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(event = "metrics_accept_failed", error = %e);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(super::HEADER_TIMEOUT).keep_alive(true);
        let conn = graceful.watch(builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(tcp);
    let _ = tokio::time::timeout(super::DRAIN_TIMEOUT, graceful.shutdown()).await;
}

async fn metrics_text(State(scrape): State<Arc<Scrape>>) -> Response {
    // The outbox's figures come from the store; a store that does not answer within 3 s
    // (or is still being asked by an earlier scrape) leaves them out, and the rest is
    // served: a scrape never waits on the store, nor piles up threads behind it.
    let asked = scrape.clone();
    let backlog = tokio::time::timeout(std::time::Duration::from_secs(3), tokio::task::spawn_blocking(move || {
        let Ok(mut kept) = asked.store.try_lock() else { return None };
        if kept.is_none() {
            *kept = Store::open(&asked.store_at).inspect_err(|e| tracing::warn!(event = "metrics_store_failed", error = %e)).ok();
        }
        match kept.as_ref().map(Store::outbox_backlog) {
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => {
                // Opened again at the next scrape.
                tracing::warn!(event = "metrics_store_failed", error = %e);
                *kept = None;
                None
            }
            None => None,
        }
    })).await;
    let backlog = match backlog {
        Ok(Ok(b)) => b,
        _ => None,
    };
    let text = scrape.metrics.render(backlog, scrape.clock.now());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
