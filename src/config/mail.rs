//! The mail part of the configuration: local Maildirs, or IMAP and SMTP servers with the
//! logins of the watched addresses. Passwords come from the file or the environment and
//! are never shown by `Debug`.

use super::oauth::{self, auth, Auth, RawAuth};
use super::raw;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Embedded default: one Maildir per address under this folder, `relay/` for the rest.
    pub maildir_root: PathBuf,
    pub imap: Option<Server>,
    pub smtp: Option<Server>,
    pub accounts: Vec<Account>,
    pub poll_seconds: u64,
    pub process_since: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    StartTls,
    /// No TLS: loopback, or `allow_plaintext = true`.
    Plain,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub ca_file: Option<PathBuf>,
    pub credentials: Option<Credentials>,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub address: String,
    pub credentials: Credentials,
    pub folder: String,
    pub move_processed_to: Option<String>,
}

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub auth: Auth,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.auth {
            Auth::Password(_) => write!(f, "Credentials({}, ****)", self.username),
            Auth::OAuth2(o) => write!(f, "Credentials({}, {o:?})", self.username),
        }
    }
}

/// A password: never shown by `Debug` or `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

/// The OAuth keys of a server block or an account, moved out of it.
macro_rules! raw_auth {
    ($r:expr) => {
        RawAuth { auth: $r.auth, provider: $r.provider, tenant: $r.tenant, client_id: $r.client_id, client_secret_env: $r.client_secret_env, client_secret_file: $r.client_secret_file, token_url: $r.token_url, device_url: $r.device_url, authorize_url: $r.authorize_url, scope: $r.scope }
    };
}

pub(super) fn mail(raw: raw::RawMail, base: &Path, problems: &mut Vec<String>) -> MailConfig {
    let password = |key: &str, p: &Option<String>, env: &Option<String>, problems: &mut Vec<String>| -> Option<Secret> {
        match (p, env) {
            (Some(p), None) => Some(Secret(p.clone())),
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) => Some(Secret(v)),
                Err(_) => {
                    problems.push(format!("{key}.password_env: the environment variable {var} is not set"));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push(format!("{key}: give password or password_env, not both"));
                None
            }
            (None, None) => None,
        }
    };
    let server = |key: &str, r: Option<raw::RawServer>, smtp: bool, problems: &mut Vec<String>| -> Option<Server> {
        let r = r?;
        let preset = oauth::preset_server(key, r.provider.as_deref(), smtp, problems);
        let security = match r.security.as_deref() {
            Some("tls") => Security::Tls,
            Some("starttls") => Security::StartTls,
            Some("plain") => Security::Plain,
            None if preset.is_some() => preset.map(|p| p.2).expect("just checked"),
            None => {
                problems.push(format!("{key}.security: tls, starttls or plain is needed (or a provider)"));
                Security::Tls
            }
            Some(other) => {
                problems.push(format!("{key}.security: \"{other}\" must be tls, starttls or plain"));
                Security::Tls
            }
        };
        let host = r.host.clone().or(preset.map(|p| p.0.to_string())).unwrap_or_else(|| {
            problems.push(format!("{key}.host: the server is needed (or a provider)"));
            String::new()
        });
        let port = r.port.or(preset.map(|p| p.1)).unwrap_or_else(|| {
            problems.push(format!("{key}.port: the port is needed (or a provider)"));
            0
        });
        let loopback = matches!(host.as_str(), "127.0.0.1" | "::1" | "localhost");
        if security == Security::Plain && !loopback && !r.allow_plaintext {
            problems.push(format!("{key}.security: plain (no TLS) to {host} is allowed only on loopback or with allow_plaintext = true"));
        }
        let pw = password(key, &r.password, &r.password_env, problems);
        let oauth2 = r.auth.as_deref() == Some("oauth2");
        let login = auth(key, raw_auth!(r), pw, smtp, base, problems);
        let credentials = match (r.username, login) {
            (Some(username), Some(auth)) => Some(Credentials { username, auth }),
            (None, None) => None,
            // auth() has said what is wrong with the OAuth keys.
            (Some(_), None) if oauth2 => None,
            (None, Some(_)) if oauth2 => {
                problems.push(format!("{key}.username: auth = \"oauth2\" needs the login's user name (the mailbox's address)"));
                None
            }
            _ => {
                problems.push(format!("{key}: username and a password go together"));
                None
            }
        };
        Some(Server { host, port, security, ca_file: r.ca_file.map(|p| base.join(p)), credentials, timeout: std::time::Duration::from_secs(r.timeout_seconds.unwrap_or(30)) })
    };
    let imap = server("mail.imap", raw.imap, false, problems);
    let smtp = server("mail.smtp", raw.smtp, true, problems);
    let accounts = raw.accounts.into_iter().enumerate().filter_map(|(i, a)| {
        let key = format!("mail.accounts[{i}]");
        let pw = password(&key, &a.password, &a.password_env, problems);
        let oauth2 = a.auth.as_deref() == Some("oauth2");
        if !oauth2 && pw.is_none() && a.password.is_none() && a.password_env.is_none() {
            problems.push(format!("{key}: a password (password or password_env) is needed, or auth = \"oauth2\""));
        }
        let login = auth(&key, raw_auth!(a), pw, false, base, problems)?;
        Some(Account { address: a.address.to_ascii_lowercase(), credentials: Credentials { username: a.username, auth: login }, folder: a.folder.unwrap_or_else(|| "INBOX".into()), move_processed_to: a.move_processed_to })
    }).collect();
    if raw.maildir_root.is_none() && (imap.is_none() || smtp.is_none()) {
        problems.push("mail: set maildir_root, or both mail.imap and mail.smtp".into());
    }
    MailConfig {
        maildir_root: base.join(raw.maildir_root.unwrap_or_else(|| "mailboxes".into())),
        imap,
        smtp,
        accounts,
        poll_seconds: raw.poll_seconds.unwrap_or(60),
        process_since: raw.process_since.as_deref().and_then(|d| {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
            if date.is_none() {
                problems.push(format!("mail.process_since: \"{d}\" is not a date (YYYY-MM-DD)"));
            }
            date
        }),
    }
}

