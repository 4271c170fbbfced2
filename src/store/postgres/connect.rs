//! Making a connection to the store's server (the settings come from [`super::param`]),
//! TLS through rustls when a CA file is configured, and which of the server's answers
//! mean that this connection is done for: the host went away, is shutting down, or no
//! longer takes writes (a standby, or a primary demoted by a failover). Such a connection
//! is dropped, and the next one goes to whichever host is the primary then.

use super::param;
use crate::config::PgTarget;

/// A connection to the host `target` names that fits what it asks (the primary, when it
/// names several), or why there is none: `Err(Ok(why))` is a wait (the server is away,
/// starting, stopping, or no host is primary yet), `Err(Err(why))` the configuration's to
/// correct (a wrong password, no such database, an unreadable URL or CA file).
pub(super) fn open(target: &PgTarget) -> Result<(postgres::Client, bool), Result<String, String>> {
    let mut config = param::settings(&target.url, target.ca_file.is_some()).map_err(Err)?;
    if let Some(var) = &target.password_env {
        match std::env::var(var) {
            Ok(pw) => {
                config.password(pw);
            }
            Err(_) => return Err(Err(format!("{var} is not set (the store's password)"))),
        }
    }
    let client = match &target.ca_file {
        Some(ca) => config.connect(tls(ca).map_err(Err)?),
        None => config.connect(postgres::NoTls),
    };
    // A wrong password or an unknown database is the configuration's to correct; anything
    // else (refused connections, a server starting or stopping, only standbys) is waited out.
    let client = client.map_err(|e| match e.code().map(|c| c.code()) {
        Some(c) if c.starts_with("28") || c == "3D000" => Err(super::describe(&e)),
        _ => Ok(super::describe(&e)),
    })?;
    Ok((client, param::wants_primary(&config)))
}

/// Whether a driver error means the connection is done for: it was closed, the server is
/// shutting down or ended it (57P01–57P03), the connection failed (class 08), or the host
/// no longer takes writes (25006: read-only, a standby or a demoted primary).
pub(super) fn ends_the_connection(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code().map(|c| c.code()) {
        Some(c) => c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "25006"),
        // No code: an I/O error on the socket (reset, timed out).
        None => e.as_db_error().is_none() && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// Closes a connection on a thread of its own, waited for: the driver blocks on its own
/// runtime when it closes, which must not happen on a thread that drives (or is shutting
/// down) a tokio runtime (the web server drops its stores there).
pub(super) fn close(client: postgres::Client) {
    // Without a thread to be had, the connection is left for the server to end.
    if let Ok(closing) = std::thread::Builder::new().name("esurety-pg-close".into()).spawn(move || drop(client)) {
        let _ = closing.join();
    }
}

fn tls(ca: &std::path::Path) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read the store's CA file {}: {e}", ca.display()))?;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("the store's CA file {} is not PEM: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("the store's CA file {}: {e}", ca.display()))?;
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
