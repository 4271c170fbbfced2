//! The SMTP transport: lettre over a real server (implicit TLS, STARTTLS or, on loopback,
//! plain), with AUTH when configured (a password, or XOAUTH2 with an OAuth 2.0 access
//! token: Microsoft 365, Google, Postfix through Dovecot), rustls only. One SMTP
//! transaction per recipient, so the outbox knows exactly who accepted. A 5xx is
//! permanent, anything else (4xx, refused connection, timeout) is tried again later; a
//! refused login never makes a mail permanent: the login is the company's problem, not the
//! recipient's (on OAuth the token is refreshed once more first).

use super::{SendError, Transport};
use crate::config::{Auth, Security, Server};
use crate::oauth::{Attempt, Tokens};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::{Arc, Mutex};
use tokio::runtime::Handle;

type Inner = AsyncSmtpTransport<Tokio1Executor>;

pub struct SmtpTransport {
    server: Server,
    tls: TlsParameters,
    tokens: Arc<Tokens>,
    /// Built and dropped inside the runtime (lettre's connection pool lives on it), with
    /// the password it logs in with. (On OAuth each mail has a connection of its own.)
    inner: Mutex<Option<(String, Inner)>>,
    rt: Handle,
}

impl Drop for SmtpTransport {
    fn drop(&mut self) {
        let _in_runtime = self.rt.enter();
        drop(self.inner.lock().map(|mut i| i.take()));
    }
}

impl SmtpTransport {
    pub fn new(server: &Server, tokens: Arc<Tokens>, rt: Handle) -> Result<Self, String> {
        let mut params = TlsParameters::builder(server.host.clone());
        if let Some(ca) = &server.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
            params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?);
        }
        let tls = params.build_rustls().map_err(|e| e.to_string())?;
        Ok(SmtpTransport { server: server.clone(), tls, tokens, inner: Mutex::new(None), rt })
    }

    /// A transport logging in with `secret` (a password), or none.
    fn build(&self, secret: Option<&str>) -> Inner {
        let tls = match self.server.security {
            Security::Tls => Tls::Wrapper(self.tls.clone()),
            Security::StartTls => Tls::Required(self.tls.clone()),
            Security::Plain => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.server.host.clone()).port(self.server.port).tls(tls).timeout(Some(self.server.timeout));
        if let (Some(c), Some(secret)) = (&self.server.credentials, secret) {
            b = b.credentials(Credentials::new(c.username.clone(), secret.to_string()));
        }
        let _in_runtime = self.rt.enter();
        b.build()
    }

    /// Sends through the kept transport (its pool of connections), logged in with `secret`.
    fn send_with(&self, secret: Option<&str>, envelope: &Envelope, raw: &[u8], recipient: &str) -> Result<(), Attempt<SendError>> {
        let key = secret.unwrap_or_default();
        let inner = {
            let mut kept = self.inner.lock().expect("not poisoned");
            match kept.as_ref() {
                Some((k, t)) if k == key => t.clone(),
                _ => {
                    let t = self.build(secret);
                    let old = kept.replace((key.to_string(), t.clone()));
                    let _in_runtime = self.rt.enter();
                    drop(old);
                    t
                }
            }
        };
        classify(self.rt.block_on(inner.send_raw(envelope, raw)).map(|_| ()), recipient)
    }

    /// One mail over a connection of its own, logged in with XOAUTH2: `AUTH XOAUTH2`, then
    /// the response after the server's 334 (not on the AUTH line: Postfix cuts lines at
    /// 2,048 bytes, and a Microsoft access token is longer), and an empty line after a
    /// refusal's details (the server's second 334), which the 535 follows.
    async fn send_oauth(&self, user: &str, token: &str, envelope: &Envelope, raw: &[u8]) -> Result<(), OAuthSend> {
        use base64::Engine as _;
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        use lettre::transport::smtp::extension::ClientId;
        let hello = ClientId::default();
        let implicit = (self.server.security == Security::Tls).then(|| self.tls.clone());
        let mut c = AsyncSmtpConnection::connect_tokio1((self.server.host.as_str(), self.server.port), Some(self.server.timeout), &hello, implicit, None).await.map_err(OAuthSend::Mail)?;
        if self.server.security == Security::StartTls {
            c.starttls(self.tls.clone(), &hello).await.map_err(OAuthSend::Mail)?;
        }
        let response = base64::engine::general_purpose::STANDARD.encode(crate::oauth::xoauth2(user, token));
        let login = async {
            if c.command("AUTH XOAUTH2\r\n").await?.has_code(334) && c.command(format!("{response}\r\n")).await?.has_code(334) {
                c.command("\r\n").await?;
            }
            Ok::<(), lettre::transport::smtp::Error>(())
        }.await;
        if let Err(e) = login {
            c.abort().await;
            return Err(OAuthSend::Login(e));
        }
        match c.send(envelope, raw).await {
            Ok(_) => {
                let _ = c.quit().await;
                Ok(())
            }
            Err(e) => {
                c.abort().await;
                Err(OAuthSend::Mail(e))
            }
        }
    }
}

/// Where a mail over its own connection failed: logging in, or the mail itself.
enum OAuthSend {
    Login(lettre::transport::smtp::Error),
    Mail(lettre::transport::smtp::Error),
}

fn classify(r: Result<(), lettre::transport::smtp::Error>, recipient: &str) -> Result<(), Attempt<SendError>> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if login_refused(&e) => Err(Attempt::Refused(SendError::Transient(format!("{recipient}: the SMTP server refused esurety's login: {e}")))),
        Err(e) if e.is_permanent() => Err(Attempt::Failed(SendError::Permanent(format!("{recipient}: {e}")))),
        Err(e) => Err(Attempt::Failed(SendError::Transient(format!("{recipient}: {e}")))),
    }
}

/// The server refused the login: 530/534/535 (or 454), or an XOAUTH2 failure's
/// continuation with its error details (lettre stops there: "does not expect a challenge").
fn login_refused(e: &lettre::transport::smtp::Error) -> bool {
    let code = e.status().map(|c| c.to_string());
    matches!(code.as_deref(), Some("530" | "534" | "535" | "454")) || e.to_string().contains("does not expect a challenge")
}

impl From<crate::oauth::TokenError> for SendError {
    fn from(e: crate::oauth::TokenError) -> Self {
        match e {
            crate::oauth::TokenError::Refused { .. } | crate::oauth::TokenError::NotAuthorized { .. } => SendError::LoginRefused(e.to_string()),
            crate::oauth::TokenError::Unavailable { .. } => SendError::Transient(e.to_string()),
        }
    }
}

impl Transport for SmtpTransport {
    fn send(&self, _unique: &str, sender: &str, recipient: &str, raw: &[u8]) -> Result<(), SendError> {
        let parse = |a: &str| a.parse().map_err(|e| SendError::Permanent(format!("{a}: {e}")));
        let envelope = Envelope::new(Some(parse(sender)?), vec![parse(recipient)?]).map_err(|e| SendError::Permanent(e.to_string()))?;
        let plain = |a: Attempt<SendError>| match a {
            Attempt::Refused(e) | Attempt::Failed(e) => e,
        };
        match self.server.credentials.as_ref().map(|c| (&c.username, &c.auth)) {
            None => self.send_with(None, &envelope, raw, recipient).map_err(plain),
            Some((_, Auth::Password(p))) => self.send_with(Some(p.expose()), &envelope, raw, recipient).map_err(plain),
            Some((user, Auth::OAuth2(oauth))) => self.tokens.with_access(&crate::oauth::login(true, user), oauth, |token| {
                match self.rt.block_on(self.send_oauth(user, token, &envelope, raw)) {
                    Ok(()) => Ok(()),
                    // The login: the company's, never the recipient's (the mail waits; a
                    // refused token is refreshed once more first).
                    Err(OAuthSend::Login(e)) if login_refused(&e) => Err(Attempt::Refused(SendError::LoginRefused(format!("the SMTP server refused esurety's login: {e}")))),
                    Err(OAuthSend::Login(e)) if e.is_permanent() => Err(Attempt::Failed(SendError::LoginRefused(format!("the SMTP server takes no XOAUTH2 login: {e}")))),
                    Err(OAuthSend::Login(e)) => Err(Attempt::Failed(SendError::Transient(format!("{recipient}: logging in: {e}")))),
                    Err(OAuthSend::Mail(e)) => classify(Err(e), recipient),
                }
            }),
        }
    }
}
