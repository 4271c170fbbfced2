//! The SMTP transport: lettre over a real server (implicit TLS, STARTTLS or, on loopback,
//! plain), with AUTH when configured, rustls only. One SMTP transaction per recipient, so
//! the outbox knows exactly who accepted. A 5xx is permanent, anything else (4xx, refused
//! connection, timeout) is tried again later.

use super::{SendError, Transport};
use crate::config::{Security, Server};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::runtime::Handle;

pub struct SmtpTransport {
    /// Built and dropped inside the runtime: lettre's connection pool lives on it.
    inner: Option<AsyncSmtpTransport<Tokio1Executor>>,
    rt: Handle,
}

impl Drop for SmtpTransport {
    fn drop(&mut self) {
        let _in_runtime = self.rt.enter();
        drop(self.inner.take());
    }
}

impl SmtpTransport {
    pub fn new(server: &Server, rt: Handle) -> Result<Self, String> {
        let mut params = TlsParameters::builder(server.host.clone());
        if let Some(ca) = &server.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
            params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?);
        }
        let params = params.build_rustls().map_err(|e| e.to_string())?;
        let tls = match server.security {
            Security::Tls => Tls::Wrapper(params),
            Security::StartTls => Tls::Required(params),
            Security::Plain => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
            .port(server.port)
            .tls(tls)
            .timeout(Some(server.timeout));
        if let Some(c) = &server.credentials {
            b = b.credentials(Credentials::new(c.username.clone(), c.password.expose().to_string()));
        }
        let _in_runtime = rt.enter();
        Ok(SmtpTransport { inner: Some(b.build()), rt: rt.clone() })
    }
}

impl Transport for SmtpTransport {
    fn send(&self, _unique: &str, sender: &str, recipient: &str, raw: &[u8]) -> Result<(), SendError> {
        let parse = |a: &str| a.parse().map_err(|e| SendError::Permanent(format!("{a}: {e}")));
        let envelope = Envelope::new(Some(parse(sender)?), vec![parse(recipient)?]).map_err(|e| SendError::Permanent(e.to_string()))?;
        let inner = self.inner.as_ref().expect("present until dropped");
        match self.rt.block_on(inner.send_raw(&envelope, raw)) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("{recipient}: {e}"))),
            Err(e) => Err(SendError::Transient(format!("{recipient}: {e}"))),
        }
    }
}
