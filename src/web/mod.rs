//! The web adapter (`[web]`): the registry's API for owners' systems (`api.rs`) and its
//! lookup page for people (`lookup.rs`), served by axum over plain HTTP (loopback, or
//! behind a proxy) or HTTPS with rustls. Handlers are thin: the registry's answer is the
//! same `verify` that `esurety verify` runs, made in the checker thread (`checker.rs`).

mod api;
mod checker;
mod desk;
pub mod limit;
mod lookup;

use crate::clock::Clock;
use crate::config::WebConfig;
use crate::registry::Lockout;
use crate::wiring::{Engine, SetupError};
use axum::Router;
use axum::extract::connect_info::Connected;
use axum::http::{HeaderValue, header};
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower_http::set_header::SetResponseHeaderLayer;

/// What every handler shares.
pub struct App {
    pub engine: Arc<Engine>,
    pub clock: Arc<dyn Clock>,
    checker: checker::Checker,
    pages: minijinja::Environment<'static>,
    limiter: limit::RateLimiter,
    web: WebConfig,
    /// The desk's connection to the store (staff pages: few requests, one at a time).
    desk: std::sync::Mutex<crate::store::Store>,
}

/// A POST from another site's page is refused (the browser names its origin; with
/// `Referrer-Policy: same-origin` it does so for our own forms too).
pub(crate) fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, h)| h.eq_ignore_ascii_case(host))
}

impl App {
    fn client(&self, peer: SocketAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        limit::client_address(peer, xff, &self.web.trusted_proxies)
    }
}

/// The peer's address, for plain and TLS connections alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*s.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(s: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*s.remote_addr())
    }
}

/// Connections whose TLS handshake is done (handshakes run apart, so a slow client does
/// not hold up the others).
pub struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn tls_listener(tcp: TcpListener, cert: &std::path::Path, key: &std::path::Path) -> Result<TlsListener, SetupError> {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let local = tcp.local_addr().map_err(|e| setup(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(event = "web_accept_failed", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    let _ = tx.send((tls, peer)).await;
                }
            });
        }
    });
    Ok(TlsListener { rx, local })
}

/// The server, bound and running.
pub struct Serving {
    /// `http://127.0.0.1:PORT` or `https://…`, as printed at start.
    pub url: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds `[web]` and serves it on `rt` until `stop` completes; requests in flight finish.
/// Prints `listening on URL` on standard error.
pub fn start(engine: Arc<Engine>, clock: Arc<dyn Clock>, rt: &tokio::runtime::Handle, stop: impl Future<Output = ()> + Send + 'static) -> Result<Serving, SetupError> {
    let web = engine.config.web.clone().ok_or_else(|| SetupError("no [web] in the configuration: add [web] listen = \"127.0.0.1:8080\"".into()))?;
    let templates = crate::templates::TemplateSet::load(engine.config.templates.as_deref()).map_err(|e| SetupError(e.to_string()))?;
    let pages = pages(&templates).map_err(SetupError)?;
    let checker = checker::Checker::start(engine.clone(), clock.clone(), Lockout::default()).map_err(|e| SetupError(e.to_string()))?;
    let tcp = rt.block_on(TcpListener::bind(&web.listen)).map_err(|e| SetupError(format!("web.listen {}: {e}", web.listen)))?;
    let local = tcp.local_addr().map_err(|e| SetupError(e.to_string()))?;
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{local}");
    let tls = web.tls.clone();
    let desk = std::sync::Mutex::new(crate::store::Store::open(&engine.config.store).map_err(|e| SetupError(e.to_string()))?);
    let app = Arc::new(App { engine, clock, checker, pages, limiter: limit::RateLimiter::default(), web, desk });
    let router = router(app);
    let task = match tls {
        Some((cert, key)) => {
            let _guard = rt.enter();
            let listener = tls_listener(tcp, &cert, &key)?;
            rt.spawn(async move {
                let served = axum::serve(listener, router.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(stop).await;
                if let Err(e) = served {
                    tracing::error!(event = "web_stopped", error = %e);
                }
            })
        }
        None => rt.spawn(async move {
            let served = axum::serve(tcp, router.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(stop).await;
            if let Err(e) = served {
                tracing::error!(event = "web_stopped", error = %e);
            }
        }),
    };
    eprintln!("esurety: listening on {url}");
    tracing::info!(event = "web_listening", url = %url);
    Ok(Serving { url, task })
}

/// Every route, with the headers every answer carries.
pub fn router(app: Arc<App>) -> Router {
    let h = |name: &'static str, value: &'static str| SetResponseHeaderLayer::if_not_present(header::HeaderName::from_static(name), HeaderValue::from_static(value));
    Router::new()
        .merge(api::routes())
        .merge(desk::routes())
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
