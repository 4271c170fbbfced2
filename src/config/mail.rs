//! The mail part of the configuration: local Maildirs, or IMAP and SMTP servers with the
//! logins of the watched addresses. Passwords come from the file or the environment and
//! are never shown by `Debug`.

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
    pub password: Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
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
    let server = |key: &str, r: Option<raw::RawServer>, problems: &mut Vec<String>| -> Option<Server> {
        let r = r?;
        let security = match r.security.as_str() {
            "tls" => Security::Tls,
            "starttls" => Security::StartTls,
            "plain" => Security::Plain,
            other => {
                problems.push(format!("{key}.security: \"{other}\" must be tls, starttls or plain"));
                Security::Tls
            }
        };
        let loopback = matches!(r.host.as_str(), "127.0.0.1" | "::1" | "localhost");
        if security == Security::Plain && !loopback && !r.allow_plaintext {
            problems.push(format!("{key}.security: plain (no TLS) to {} is allowed only on loopback or with allow_plaintext = true", r.host));
        }
        let pw = password(key, &r.password, &r.password_env, problems);
        let credentials = match (r.username, pw) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            _ => {
                problems.push(format!("{key}: username and a password go together"));
                None
            }
        };
        Some(Server {
            host: r.host,
            port: r.port,
            security,
            ca_file: r.ca_file.map(|p| base.join(p)),
            credentials,
            timeout: std::time::Duration::from_secs(r.timeout_seconds.unwrap_or(30)),
        })
    };
    let imap = server("mail.imap", raw.imap, problems);
    let smtp = server("mail.smtp", raw.smtp, problems);
    let accounts = raw.accounts.into_iter().enumerate().filter_map(|(i, a)| {
        let key = format!("mail.accounts[{i}]");
        let pw = password(&key, &a.password, &a.password_env, problems);
        if pw.is_none() && a.password.is_none() && a.password_env.is_none() {
            problems.push(format!("{key}: a password (password or password_env) is needed"));
        }
        Some(Account { address: a.address.to_ascii_lowercase(), credentials: Credentials { username: a.username, password: pw? }, folder: a.folder.unwrap_or_else(|| "INBOX".into()), move_processed_to: a.move_processed_to })
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

