//! `esurety mailbox`: the OAuth 2.0 logins of the watched mailboxes and the SMTP relay:
//! `authorize` obtains a refresh token at the terminal and keeps it sealed in the store;
//! `list` says which are authorized, refused (and why) or not yet. No token is printed.

use super::{MailboxCommand, open, print_json};
use crate::oauth::authorize::{self, Instruction};
use anyhow::{Context, Result, bail};
use std::path::Path;

pub(super) fn mailbox(config: &Path, action: MailboxCommand) -> Result<i32> {
    let (config, mut store) = open(config)?;
    let logins = crate::oauth::logins(&config.mail);
    match action {
        MailboxCommand::Authorize { address, smtp, loopback, port } => {
            let login = crate::oauth::login(smtp, &address);
            let Some((_, oauth)) = logins.iter().find(|(l, _)| *l == login) else {
                let known: Vec<String> = logins.iter().map(|(l, _)| crate::oauth::who(l)).collect();
                bail!("{address}{} does not log in with OAuth 2.0 (auth = \"oauth2\"); those that do: {}", if smtp { " (SMTP)" } else { "" }, if known.is_empty() { "none".into() } else { known.join(", ") });
            };
            let secrets = std::sync::Arc::new(crate::secrets::Secrets::load(&config.secret_file)?);
            let mut tell = |i: &Instruction| match i {
                Instruction::Device { uri, code, complete, minutes } => {
                    eprintln!("esurety: to authorize {address}, open {uri} on any device, sign in as {address} and enter this code (valid {minutes} minutes):");
                    eprintln!("code: {code}");
                    if let Some(c) = complete {
                        eprintln!("(or open {c})");
                    }
                }
                Instruction::Browser { url } => {
                    eprintln!("esurety: to authorize {address}, open this address in a browser on this machine and sign in as {address}:");
                    eprintln!("url: {url}");
                }
            };
            let granted = if loopback || oauth.device_url.is_none() { authorize::loopback(oauth, port, &mut tell) } else { authorize::device(oauth, &mut tell) }.with_context(|| format!("authorizing {address}"))?;
            let now = chrono::Utc::now().timestamp();
            let sealed = secrets.seal_token(&login, &granted.refresh, &crate::clock::OsRandom);
            store.write(|tx| tx.put_oauth_refresh(&login, &sealed, now))?;
            drop(granted);
            // The first access token, to prove the refresh token works.
            let tokens = crate::oauth::Tokens::new(config.store.clone(), secrets);
            tokens.access(&login, oauth)?;
            eprintln!("esurety: {address} is authorized; its refresh token is kept sealed in the store");
            Ok(0)
        }
        MailboxCommand::List { json } => {
            let states = store.oauth_states()?;
            let rows: Vec<serde_json::Value> = logins.iter().map(|(login, oauth)| {
                let s = states.iter().find(|s| s.login == *login);
                let state = match s {
                    None => "not_authorized",
                    Some(s) if s.refused.is_some() => "refused",
                    Some(_) => "authorized",
                };
                serde_json::json!({
                    "login": login, "provider": oauth.provider.as_str(), "state": state,
                    "refused": s.and_then(|s| s.refused.clone()), "refused_at": s.and_then(|s| s.refused_at).map(crate::clock::from_unix).map(|t| t.to_rfc3339()),
                    "access_until": s.and_then(|s| s.access_expires).map(crate::clock::from_unix).map(|t| t.to_rfc3339()),
                })
            }).collect();
            if json {
                print_json(&serde_json::Value::Array(rows));
            } else {
                for r in &rows {
                    let why = r["refused"].as_str().map(|w| format!(" ({w}; run `esurety mailbox authorize {}`)", crate::oauth::who(r["login"].as_str().unwrap_or_default()))).unwrap_or_default();
                    println!("{}  {}  {}{why}", r["login"].as_str().unwrap_or_default(), r["provider"].as_str().unwrap_or_default(), r["state"].as_str().unwrap_or_default());
                }
                if rows.is_empty() {
                    println!("(no mailbox logs in with OAuth 2.0)");
                }
            }
            Ok(0)
        }
    }
}
