//! The web adapter (`[web]`): the registry's API for owners' systems (`api.rs`) and its
//! lookup page for people (`lookup.rs`), served by axum over plain HTTP (loopback, or
//! behind a proxy) or HTTPS with rustls. Handlers are thin: the registry's answer is the
//! same `verify` that `esurety verify` runs, made in the checker thread (`checker.rs`).
//!
//! This folder is the web, one front door (the command line is the other; neither imports
//! the other): `mod.rs` (listen, TLS, the accept loop, headers, a reload for the
//! connections after it), `api.rs`, `lookup.rs`, `checker.rs`, `limit.rs` (rate limits),
//! `desk/` (the staff's pages over `crate::desk`), `health.rs` (`/healthz`, `/readyz`) and
//! `metrics.rs` (`/metrics` on a listener of its own). The daemon and the demo start it.

mod api;
mod checker;
mod desk;
mod health;
pub mod limit;
mod lookup;
mod webhooks;
pub mod metrics;

use crate::clock::Clock;
use crate::config::WebConfig;
use crate::registry::Lockout;
use crate::engine::{Engine, SetupError};
use axum::Router;
use axum::http::{HeaderValue, header};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

/// What every handler shares.
pub struct App {
    pub engine: Arc<Engine>,
    pub clock: Arc<dyn Clock>,
    checker: checker::Checker,
    pages: minijinja::Environment<'static>,
    limiter: limit::RateLimiter,
    web: WebConfig,
    /// The desk's connections to the store (a few, each request taking one for its reads
    /// and writes only).
    desk: desk::Stores,
    /// Password checks running at once (see [`LOGINS_AT_ONCE`]).
    logins: tokio::sync::Semaphore,
    /// The daemon's passes, as `/readyz` reports them.
    health: Arc<crate::health::Health>,
}


impl App {
    /// The client's address as limits and failures count it (see [`limit::bucket`]).
    fn client(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> String {
        // Every X-Forwarded-For line, in order (a proxy may add a line of its own); a
        // line that is not text makes the list unreadable.
        let mut lines = Vec::new();
        for v in headers.get_all("x-forwarded-for") {
            lines.push(v.to_str().unwrap_or("unreadable"));
        }
        let xff = (!lines.is_empty()).then(|| lines.join(","));
        limit::bucket(limit::client_address(peer, xff.as_deref(), &self.web.trusted_proxies))
    }

    /// Whether a POST comes from our own pages: its `Origin` (when the browser sends one)
    /// is `public_url`'s origin when set (behind a proxy that rewrites Host), else the
    /// `Host` it was sent to (with `Referrer-Policy: same-origin`, browsers name it on our
    /// own forms).
    fn same_origin(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
        if let Some(public) = &self.web.public_url {
            let public = url::Url::parse(public).ok().map(|u| u.origin().ascii_serialization());
            return public.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(origin));
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host))
    }
}

/// The peer's address (the `ConnectInfo` of every request).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address (an IPv6 client: its /64) may hold at once (a trusted
/// proxy: any number); beyond, a new one is closed at once.
const PER_CLIENT: usize = 32;
/// A request's headers must arrive within this (also how long an idle keep-alive
/// connection is kept): a client that trickles bytes holds nothing for long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, SetupError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let setup = |e: String| SetupError(e);
    let certs = CertificateDer::pem_file_iter(cert).map_err(|e| setup(format!("web.tls_cert {}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>().map_err(|e| setup(format!("web.tls_cert {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| setup(format!("web.tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions().map_err(|e| setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key).map_err(|e| setup(format!("web.tls_cert/tls_key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The server, bound and running.
pub struct Serving {
    /// `http://127.0.0.1:PORT` or `https://…`, as printed at start.
    pub url: String,
    pub task: tokio::task::JoinHandle<()>,
    /// What each new connection is served with, and the address bound (the web server's).
    live: Option<(tokio::sync::watch::Sender<Arc<Live>>, String)>,
}

/// What a connection is served with: the routes over one [`App`], the TLS certificate,
/// the proxies trusted. A reload puts a new one in place for the connections after it.
struct Live {
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    proxies: Vec<std::net::IpAddr>,
}

fn live(engine: Arc<Engine>, clock: Arc<dyn Clock>, health: Arc<crate::health::Health>) -> Result<Live, SetupError> {
    let web = engine.config.web.clone().ok_or_else(|| SetupError("no [web] in the configuration: add [web] listen = \"127.0.0.1:8080\"".into()))?;
    let templates = crate::templates::TemplateSet::load(engine.config.templates.as_deref()).map_err(|e| SetupError(e.to_string()))?;
    let pages = pages(&templates).map_err(SetupError)?;
    let checker = checker::Checker::start(engine.clone(), clock.clone(), Lockout::default()).map_err(|e| SetupError(e.to_string()))?;
    let tls = web.tls.as_ref().map(|(cert, key)| tls_acceptor(cert, key)).transpose()?;
    let desk = desk::Stores::new(engine.config.store.clone(), crate::store::Store::open(&engine.config.store).map_err(|e| SetupError(e.to_string()))?);
    let proxies = web.trusted_proxies.clone();
    let app = Arc::new(App { engine, clock, checker, pages, limiter: limit::RateLimiter::default(), web, desk, logins: tokio::sync::Semaphore::new(LOGINS_AT_ONCE), health });
    Ok(Live { router: router(app), tls, proxies })
}

/// Binds `[web]` and serves it on `rt` until `stop` completes; requests in flight finish
/// (for at most 10 s). Prints `listening on URL` on standard error.
pub fn start(engine: Arc<Engine>, clock: Arc<dyn Clock>, health: Arc<crate::health::Health>, rt: &tokio::runtime::Handle, stop: impl Future<Output = ()> + Send + 'static) -> Result<Serving, SetupError> {
    let listen = engine.config.web.as_ref().map(|w| w.listen.clone()).unwrap_or_default();
    let first = live(engine, clock, health)?;
    let tcp = rt.block_on(TcpListener::bind(&listen)).map_err(|e| SetupError(format!("web.listen {listen}: {e}")))?;
    let local = tcp.local_addr().map_err(|e| SetupError(e.to_string()))?;
    let scheme = if first.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{local}");
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(first));
    let task = rt.spawn(serve(tcp, rx, stop));
    eprintln!("esurety: listening on {url}");
    tracing::info!(event = "web_listening", url = %url);
    Ok(Serving { url, task, live: Some((tx, listen)) })
}

impl Serving {
    /// A server of another kind (the metrics listener), which has nothing to reload.
    pub(crate) fn fixed(url: String, task: tokio::task::JoinHandle<()>) -> Serving {
        Serving { url, task, live: None }
    }

    /// Serves the connections that come after with `engine`'s configuration and templates
    /// (a reload, `SIGHUP`): those open finish with what they had. The address stays bound
    /// as it was; another `[web] listen` takes effect at the next start (said in the log).
    pub fn reload(&self, engine: Arc<Engine>, clock: Arc<dyn Clock>, health: Arc<crate::health::Health>) -> Result<(), SetupError> {
        let Some((tx, bound)) = &self.live else { return Ok(()) };
        if let Some(w) = &engine.config.web
            && w.listen != *bound
        {
            tracing::warn!(event = "web_listen_changed", bound = %bound, configured = %w.listen, "the web server stays on the address it has; the new one is taken at the next start");
            eprintln!("esurety: [web] listen is now {}, but the server stays on {bound} until it is started again", w.listen);
        }
        let next = live(engine, clock, health)?;
        tx.send_replace(Arc::new(next));
        Ok(())
    }
}

/// Password checks (Argon2, 19 MiB each) at once; a login beyond waits its turn briefly
/// or is told to try again.
pub const LOGINS_AT_ONCE: usize = 4;

/// The accept loop: each connection served by hyper (HTTP/1.1) with a header timeout,
/// at most [`MAX_CONNECTIONS`] at once, TLS handshakes apart from the loop; on `stop`, no
/// new connection is taken and those open finish their requests.
async fn serve(tcp: TcpListener, live: tokio::sync::watch::Receiver<Arc<Live>>, stop: impl Future<Output = ()> + Send + 'static) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_client: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(event = "web_accept_failed", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let now = live.borrow().clone();
        let Live { router, tls, proxies } = &*now;
        // Counted per address, an IPv6 client per /64 (as every other limit): a client
        // with a /64 cannot hold 32 connections from each of its addresses.
        let client = limit::connection_key(peer.ip());
        let counted = !proxies.contains(&peer.ip().to_canonical());
        if counted {
            let mut open = per_client.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(client).or_insert(0);
            if *n >= PER_CLIENT {
                tracing::warn!(event = "web_client_over_connections", address = %client);
                drop(stream);
                continue;
            }
            *n += 1;
        }
        let counted = ClientSlot { map: per_client.clone(), client, counted };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(
            router.clone().layer(axum::Extension(axum::extract::ConnectInfo(Peer(peer)))),
        );
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
        match tls {
            None => {
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop((permit, counted));
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                        let _ = watcher.watch(conn).await;
                    }
                    drop((permit, counted));
                });
            }
        }
    }
    drop(tcp);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!(event = "web_stop_timeout", "requests still open after 10 s were cut");
    }
}

/// One client's open connection, counted until it is dropped.
struct ClientSlot {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    client: std::net::IpAddr,
    counted: bool,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut open = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Every route, with the headers every answer carries.
pub fn router(app: Arc<App>) -> Router {
    let h = |name: &'static str, value: &'static str| SetResponseHeaderLayer::if_not_present(header::HeaderName::from_static(name), HeaderValue::from_static(value));
    Router::new()
        .merge(api::routes())
        .merge(desk::routes())
        .merge(health::routes())
        .merge(lookup::routes())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(h("content-security-policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"))
        .layer(h("x-content-type-options", "nosniff"))
        .layer(h("x-frame-options", "DENY"))
        .layer(h("referrer-policy", "same-origin"))
        .layer(h("cache-control", "no-store"))
        .with_state(app)
}

/// The web pages' templates: `.html` names, so every value is escaped.
fn pages(templates: &crate::templates::TemplateSet) -> Result<minijinja::Environment<'static>, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, text) in templates.iter().filter(|(n, _)| n.starts_with("web/")) {
        env.add_template_owned(name.to_string(), text.to_string()).map_err(|e| format!("template {name}: {e}"))?;
    }
    Ok(env)
}
