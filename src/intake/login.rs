//! Connecting and logging in to IMAP: TLS from the first byte, STARTTLS or (loopback)
//! plain; `LOGIN` with a password, or SASL with an OAuth 2.0 access token: `XOAUTH2`
//! (Microsoft 365, Google, Dovecot) or `OAUTHBEARER` (RFC 7628), whichever the server
//! offers, `XOAUTH2` first. A server that refuses the token has it refreshed once more
//! (see [`crate::oauth::Tokens::with_access`]).

use super::MailboxError;
use crate::config::{Account, Auth, Security, Server};
use crate::oauth::{Attempt, Tokens};
use async_imap::imap_proto::{Capability, Response};
use async_imap::{Client, Session};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
pub type ImapSession = Session<Box<dyn Io>>;

/// What a login is made with.
enum Secret<'a> {
    Password(&'a str),
    Bearer(&'a str),
}

/// A session for the account with its folder selected, and its UIDVALIDITY. Blocks (call
/// it outside the runtime): an access token may have to be refreshed first.
pub fn open(rt: &Handle, server: &Server, account: &Account, tokens: &Tokens) -> Result<(ImapSession, u32), MailboxError> {
    let user = account.credentials.username.as_str();
    let folder = account.folder.as_str();
    match &account.credentials.auth {
        Auth::Password(p) => rt.block_on(async { super::imap::select(login(server, user, Secret::Password(p.expose())).await.map_err(failed)?, folder).await }),
        Auth::OAuth2(oauth) => tokens.with_access(&crate::oauth::login(false, &account.address), oauth, |token| {
            rt.block_on(async {
                let session = login(server, user, Secret::Bearer(token)).await?;
                super::imap::select(session, folder).await.map_err(Attempt::Failed)
            })
        }),
    }
}

/// As [`open`], inside the runtime (the IDLE watcher): a refused token is not retried
/// here; the next pass refreshes it.
pub async fn open_async(server: &Server, account: &Account, tokens: &Arc<Tokens>) -> Result<(ImapSession, u32), MailboxError> {
    let user = account.credentials.username.as_str();
    let session = match &account.credentials.auth {
        Auth::Password(p) => login(server, user, Secret::Password(p.expose())).await.map_err(failed)?,
        Auth::OAuth2(oauth) => {
            let (tokens, oauth, name) = (tokens.clone(), oauth.clone(), crate::oauth::login(false, &account.address));
            let token = tokio::task::spawn_blocking(move || tokens.access(&name, &oauth)).await.map_err(|e| MailboxError::Unavailable(e.to_string()))??;
            login(server, user, Secret::Bearer(&token)).await.map_err(failed)?
        }
    };
    super::imap::select(session, &account.folder).await
}

fn failed(a: Attempt<MailboxError>) -> MailboxError {
    match a {
        Attempt::Refused(e) | Attempt::Failed(e) => e,
    }
}

async fn login(server: &Server, user: &str, secret: Secret<'_>) -> Result<ImapSession, Attempt<MailboxError>> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| Attempt::Failed(MailboxError::Unavailable(format!("IMAP {}:{} {what}: {e}", server.host, server.port)));
    let mut client = connect(server).await.map_err(Attempt::Failed)?;
    let timeout = server.timeout;
    let refused = |what: String| Attempt::Refused(MailboxError::Unavailable(format!("IMAP login as {user} failed: {what}")));
    match secret {
        Secret::Password(p) => tokio::time::timeout(timeout, client.login(user, p)).await
            .map_err(|e| unavailable("login", &e))?
            .map_err(|(e, _)| refused(e.to_string())),
        Secret::Bearer(token) => {
            let offered = tokio::time::timeout(timeout, mechanisms(&mut client)).await.map_err(|e| unavailable("CAPABILITY", &e))?.map_err(|e| unavailable("CAPABILITY", &e))?;
            let (mechanism, response) = if offered.iter().any(|m| m == "XOAUTH2") {
                ("XOAUTH2", crate::oauth::xoauth2(user, token))
            } else if offered.iter().any(|m| m == "OAUTHBEARER") {
                ("OAUTHBEARER", crate::oauth::oauthbearer(user, token, &server.host, server.port))
            } else {
                return Err(Attempt::Failed(MailboxError::Unavailable(format!("IMAP {}:{} offers neither XOAUTH2 nor OAUTHBEARER (it offers: {})", server.host, server.port, offered.join(" ")))));
            };
            let session = tokio::time::timeout(timeout, client.authenticate(mechanism, Initial(Some(response)))).await
                .map_err(|e| unavailable("AUTHENTICATE", &e))?
                .map_err(|(e, _)| match e {
                    // The server said no (NO, BAD): the token; anything else (a dropped
                    // connection) is not its fault and is not refreshed for.
                    async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => refused(format!("{mechanism}: {e}")),
                    e => unavailable(mechanism, &e),
                })?;
            tracing::info!(event = "imap_oauth_login", user = %user, mechanism = mechanism);
            Ok(session)
        }
    }
}

/// The SASL exchange: the initial response to the server's first (empty) challenge; an
/// empty answer to whatever it says after that (a failure's details, RFC 7628 §3.2.3).
struct Initial(Option<String>);

impl async_imap::Authenticator for Initial {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

/// The SASL mechanisms the server offers now (asked after TLS is up).
async fn mechanisms(client: &mut Client<Box<dyn Io>>) -> Result<Vec<String>, async_imap::error::Error> {
    let (tx, rx) = async_channel::unbounded();
    client.run_command_and_check_ok("CAPABILITY", Some(tx)).await?;
    let mut out = Vec::new();
    while let Ok(async_imap::types::UnsolicitedResponse::Other(r)) = rx.try_recv() {
        if let Response::Capabilities(caps) = r.parsed() {
            out.extend(caps.iter().filter_map(|c| match c {
                Capability::Auth(m) => Some(m.to_ascii_uppercase()),
                _ => None,
            }));
        }
    }
    Ok(out)
}

/// A connection with the greeting read and TLS up.
async fn connect(server: &Server) -> Result<Client<Box<dyn Io>>, MailboxError> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| MailboxError::Unavailable(format!("IMAP {}:{} {what}: {e}", server.host, server.port));
    let tcp = tokio::time::timeout(server.timeout, TcpStream::connect((server.host.as_str(), server.port))).await
        .map_err(|e| unavailable("connect", &e))?
        .map_err(|e| unavailable("connect", &e))?;
    let _ = tcp.set_nodelay(true);
    let tls = || crate::tls::connector(server.ca_file.as_deref()).map_err(|e| unavailable("TLS", &e));
    let name = crate::tls::server_name(&server.host).map_err(|e| unavailable("TLS", &e))?;
    Ok(match server.security {
        Security::Tls => {
            let s = tls()?.connect(name, tcp).await.map_err(|e| unavailable("TLS", &e))?;
            let mut c = Client::new(Box::new(s) as Box<dyn Io>);
            c.read_response().await.map_err(|e| unavailable("greeting", &e))?;
            c
        }
        Security::Plain => {
            let mut c = Client::new(Box::new(tcp) as Box<dyn Io>);
            c.read_response().await.map_err(|e| unavailable("greeting", &e))?;
            c
        }
        Security::StartTls => {
            let mut c = Client::new(tcp);
            c.read_response().await.map_err(|e| unavailable("greeting", &e))?;
            c.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| unavailable("STARTTLS", &e))?;
            let s = tls()?.connect(name, c.into_inner()).await.map_err(|e| unavailable("TLS", &e))?;
            Client::new(Box::new(s) as Box<dyn Io>)
        }
    })
}
