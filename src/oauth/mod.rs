//! OAuth 2.0 for mailboxes (`auth = "oauth2"`): access tokens for IMAP and SMTP, made
//! from the refresh token `esurety mailbox authorize` obtained ([`authorize`]) at the
//! provider's token endpoint (RFC 6749 §6), kept sealed in the store so that every daemon
//! on it shares them.
//!
//! An access token is used until shortly before it expires, then refreshed; a server that
//! refuses one has it refreshed once more ([`Tokens::with_access`]). A provider that
//! refuses the refresh token (revoked, expired, consent withdrawn) has the login marked
//! refused in the store: the log says so once, the desk and the digest show it, and that
//! mailbox waits until someone authorizes it again; nothing else stops.
//!
//! Stands above the store (it keeps the tokens there) and below the mail adapters.

pub mod authorize;
pub mod http;

use crate::clock::OsRandom;
use crate::config::{OAuth, StoreAt};
use crate::secrets::Secrets;
use crate::store::{Kind, Store, StoreError, Tx};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why no access token can be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No refresh token yet: `esurety mailbox authorize` has not been run for this login.
    #[error("{login}: not authorized yet; run `esurety mailbox authorize {who}`")]
    NotAuthorized { login: String, who: String },
    /// The provider refused the refresh token: the login waits for a new authorization.
    #[error("{login}: the provider refused the refresh token ({why}); run `esurety mailbox authorize {who}` again")]
    Refused { login: String, who: String, why: String },
    /// The provider or the store cannot be reached, or answered nonsense: tried again later.
    #[error("{login}: no access token now: {why}")]
    Unavailable { login: String, why: String },
}

/// What a mail server said of an access token it was given.
pub enum Attempt<E> {
    /// It refused the token (authentication failed): refreshed once more and tried again.
    Refused(E),
    /// Anything else.
    Failed(E),
}

/// The store's name for a login: `imap:ADDRESS` or `smtp:USERNAME`.
pub fn login(smtp: bool, username: &str) -> String {
    format!("{}:{}", if smtp { "smtp" } else { "imap" }, username.to_ascii_lowercase())
}

/// Every login on OAuth 2.0 in the configuration: the store's name for it and its client.
pub fn logins(mail: &crate::config::MailConfig) -> Vec<(String, &OAuth)> {
    fn oauth(c: &crate::config::Credentials) -> Option<&OAuth> {
        match &c.auth {
            crate::config::Auth::OAuth2(o) => Some(o.as_ref()),
            crate::config::Auth::Password(_) => None,
        }
    }
    let accounts = mail.imap.as_ref().map(|_| mail.accounts.as_slice()).unwrap_or_default();
    let mut out: Vec<(String, &OAuth)> = accounts.iter().filter_map(|a| Some((login(false, &a.address), oauth(&a.credentials)?))).collect();
    if let Some(c) = mail.smtp.as_ref().and_then(|s| s.credentials.as_ref())
        && let Some(o) = oauth(c)
    {
        out.push((login(true, &c.username), o));
    }
    out
}

/// What `esurety mailbox authorize` is told to name a login by.
pub fn who(login: &str) -> String {
    match login.split_once(':') {
        Some(("smtp", user)) => format!("{user} --smtp"),
        Some((_, user)) => user.to_string(),
        None => login.to_string(),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Access tokens of this process's logins: cached in memory, shared through the store.
pub struct Tokens {
    at: StoreAt,
    secrets: Arc<Secrets>,
    store: Mutex<Option<Store>>,
    /// login → (access token, unix time after which it is refreshed)
    cache: Mutex<HashMap<String, (String, i64)>>,
}

impl Tokens {
    pub fn new(at: StoreAt, secrets: Arc<Secrets>) -> Tokens {
        Tokens { at, secrets, store: Mutex::new(None), cache: Mutex::new(HashMap::new()) }
    }

    /// Runs `f` with an access token; when the server refuses it, once more with a
    /// refreshed one. Call it from a thread that is not inside an async runtime.
    pub fn with_access<T, E: From<TokenError>>(&self, login: &str, oauth: &OAuth, mut f: impl FnMut(&str) -> Result<T, Attempt<E>>) -> Result<T, E> {
        let token = self.access(login, oauth)?;
        match f(&token) {
            Ok(v) => Ok(v),
            Err(Attempt::Failed(e)) => Err(e),
            Err(Attempt::Refused(_)) => {
                tracing::warn!(event = "oauth_token_refused_by_server", login = %login);
                self.forget(login, &token);
                let token = self.access(login, oauth)?;
                f(&token).map_err(|a| match a {
                    Attempt::Refused(e) | Attempt::Failed(e) => e,
                })
            }
        }
    }

    /// A valid access token for the login: the cached one, the store's, or a new one.
    pub fn access(&self, login: &str, oauth: &OAuth) -> Result<String, TokenError> {
        let now = unix_now();
        if let Some((t, until)) = self.cache.lock().expect("not poisoned").get(login)
            && *until > now
        {
            return Ok(t.clone());
        }
        let unavailable = |e: StoreError| TokenError::Unavailable { login: login.into(), why: e.to_string() };
        let token = self.in_store(|store| {
            if let Some(row) = store.oauth_row(login)?
                && let (Some(sealed), Some(until)) = (&row.access_sealed, row.access_expires)
                && until > now
                && let Some(t) = self.secrets.open_token(login, sealed)
            {
                return Ok(Ok((t, until)));
            }
            if store.kind() == Kind::Sqlite {
                // One daemon writes a SQLite store (the daemon's lock): nobody else
                // refreshes meanwhile, and the provider is asked outside any transaction, so
                // no writer of the store waits for it (nor a pass that holds the store).
                return match self.next_step(login, store.oauth_row(login)?) {
                    Step::Done(r) => Ok(r),
                    Step::Refresh(refresh) => {
                        let got = refresh_token(oauth, &refresh);
                        store.write(|tx| self.record(tx, login, got))
                    }
                };
            }
            // PostgreSQL: the row is held until the commit, so another daemon refreshing
            // meanwhile is waited for and what it saved is used (a provider that rotates
            // refresh tokens would refuse all but one). Only refreshers wait on that row.
            store.write(|tx| match self.next_step(login, tx.lock_oauth(login)?) {
                Step::Done(r) => Ok(r),
                Step::Refresh(refresh) => self.record(tx, login, refresh_token(oauth, &refresh)),
            })
        }).map_err(unavailable)??;
        self.cache.lock().expect("not poisoned").insert(login.to_string(), token.clone());
        Ok(token.0)
    }

    /// What the stored row calls for: a token or an error as it is, or a refresh.
    fn next_step(&self, login: &str, row: Option<crate::store::OAuthRow>) -> Step {
        let Some(row) = row else {
            return Step::Done(Err(TokenError::NotAuthorized { login: login.into(), who: who(login) }));
        };
        if let Some(why) = row.refused {
            return Step::Done(Err(TokenError::Refused { login: login.into(), who: who(login), why }));
        }
        if let (Some(sealed), Some(until)) = (&row.access_sealed, row.access_expires)
            && until > unix_now()
            && let Some(t) = self.secrets.open_token(login, sealed)
        {
            return Step::Done(Ok((t, until)));
        }
        match self.secrets.open_token(login, &row.refresh_sealed) {
            Some(refresh) => Step::Refresh(refresh),
            None => Step::Done(Err(TokenError::Refused { login: login.into(), who: who(login), why: "the stored refresh token does not open with this secret".into() })),
        }
    }

    /// Records what the token endpoint answered, and says it.
    fn record(&self, tx: &Tx, login: &str, got: Result<Fresh, Refresh>) -> Result<Result<(String, i64), TokenError>, StoreError> {
        match got {
            Ok(Fresh { access, lifetime, refresh }) => {
                let at = unix_now();
                // Refreshed a little before it expires: a fifth of its life, at most a minute.
                let until = at + lifetime - (lifetime / 5).min(60);
                let sealed = self.secrets.seal_token(login, &access, &OsRandom);
                let rotated = refresh.map(|r| self.secrets.seal_token(login, &r, &OsRandom));
                tx.put_oauth_access(login, &sealed, until, rotated.as_deref(), at)?;
                metrics::counter!("esurety_oauth_refreshes_total", "result" => "ok").increment(1);
                tracing::info!(event = "oauth_refreshed", login = %login, valid_seconds = lifetime);
                Ok(Ok((access, until)))
            }
            Err(Refresh::Refused(why)) => {
                tx.put_oauth_refused(login, &why, unix_now())?;
                metrics::counter!("esurety_oauth_refreshes_total", "result" => "refused").increment(1);
                tracing::error!(event = "oauth_refresh_refused", login = %login, reason = %why, "the provider refused the refresh token; the mailbox waits for `esurety mailbox authorize`");
                Ok(Err(TokenError::Refused { login: login.into(), who: who(login), why }))
            }
            Err(Refresh::Unavailable(why)) => {
                metrics::counter!("esurety_oauth_refreshes_total", "result" => "failed").increment(1);
                tracing::warn!(event = "oauth_refresh_failed", login = %login, reason = %why);
                Ok(Err(TokenError::Unavailable { login: login.into(), why }))
            }
        }
    }

    /// Forgets an access token a server refused (here and in the store), so the next
    /// [`Tokens::access`] refreshes.
    fn forget(&self, login: &str, token: &str) {
        let mut cache = self.cache.lock().expect("not poisoned");
        if cache.get(login).is_some_and(|(t, _)| t == token) {
            cache.remove(login);
        }
        drop(cache);
        let _ = self.in_store(|store| {
            if let Some(row) = store.oauth_row(login)?
                && let Some(sealed) = row.access_sealed
                && self.secrets.open_token(login, &sealed).as_deref() == Some(token)
            {
                store.write(|tx| tx.forget_oauth_access(login, &sealed))?;
            }
            Ok(())
        });
    }

    /// Runs `f` on this process's connection to the store (made on first use, made again
    /// after a failure).
    fn in_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut kept = self.store.lock().expect("not poisoned");
        if kept.is_none() {
            *kept = Some(Store::open(&self.at)?);
        }
        let out = f(kept.as_mut().expect("just opened"));
        if out.is_err() {
            *kept = None;
        }
        out
    }
}

/// What a login's stored row calls for.
enum Step {
    Done(Result<(String, i64), TokenError>),
    /// A refresh with this refresh token.
    Refresh(String),
}

/// A refresh's answer.
struct Fresh {
    access: String,
    /// Seconds the access token lives.
    lifetime: i64,
    /// A new refresh token, when the provider rotates them.
    refresh: Option<String>,
}

enum Refresh {
    /// `invalid_grant` and the like: the refresh token is no good any more.
    Refused(String),
    /// The provider cannot be reached, or failed: tried again later.
    Unavailable(String),
}

/// Asks the token endpoint for a new access token (RFC 6749 §6). Blocks: runs a small
/// runtime of its own for the request.
fn refresh_token(oauth: &OAuth, refresh: &str) -> Result<Fresh, Refresh> {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", oauth.client_id.as_str()), ("scope", oauth.scope.as_str())];
    if let Some(s) = &oauth.client_secret {
        form.push(("client_secret", s.expose()));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Refresh::Unavailable(e.to_string()))?;
    let (status, answer) = rt.block_on(http::post_form(&oauth.token_url, &form)).map_err(Refresh::Unavailable)?;
    token_answer(status, &answer)
}

/// Reads a token endpoint's answer: a token, a refusal of the grant, or a failure.
fn token_answer(status: u16, answer: &Value) -> Result<Fresh, Refresh> {
    if status == 200 {
        let access = answer.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty() && t.len() < 16_384 && t.bytes().all(|b| b.is_ascii_graphic()));
        let Some(access) = access else { return Err(Refresh::Unavailable("the token endpoint's answer has no usable access_token".into())) };
        let lifetime = answer.get("expires_in").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(3600).clamp(1, 86_400);
        let refresh = answer.get("refresh_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
        return Ok(Fresh { access: access.to_string(), lifetime, refresh });
    }
    let code = answer.get("error").and_then(Value::as_str).unwrap_or_default();
    // RFC 6749 §5.2: the grant (our refresh token) or the client is no good; anything
    // else (5xx, rate limits, a proxy's page) may pass.
    if matches!(status, 400 | 401) && matches!(code, "invalid_grant" | "invalid_client" | "unauthorized_client" | "invalid_scope") {
        return Err(Refresh::Refused(http::reason(status, answer)));
    }
    Err(Refresh::Unavailable(http::reason(status, answer)))
}

/// SASL XOAUTH2's initial response (Google's and Microsoft's mechanism).
pub fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// SASL OAUTHBEARER's initial response (RFC 7628).
pub fn oauthbearer(user: &str, token: &str, host: &str, port: u16) -> String {
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_answer_is_a_token_a_refusal_or_a_failure() {
        let ok = token_answer(200, &json!({"access_token": "abc", "expires_in": 3599, "refresh_token": "r2"})).ok().unwrap();
        assert_eq!((ok.access.as_str(), ok.lifetime, ok.refresh.as_deref()), ("abc", 3599, Some("r2")));
        let Err(Refresh::Refused(why)) = token_answer(400, &json!({"error": "invalid_grant", "error_description": "AADSTS70008: expired"})) else { panic!() };
        assert_eq!(why, "invalid_grant: AADSTS70008: expired");
        assert!(matches!(token_answer(503, &Value::Null), Err(Refresh::Unavailable(w)) if w == "HTTP 503"));
        assert!(matches!(token_answer(400, &json!({"error": "temporarily_unavailable"})), Err(Refresh::Unavailable(_))));
        assert!(matches!(token_answer(200, &json!({"access_token": "a b"})), Err(Refresh::Unavailable(_))), "a token that cannot go on a SASL line");
    }

    #[test]
    fn sasl_initial_responses() {
        assert_eq!(xoauth2("a@b.example", "T"), "user=a@b.example\x01auth=Bearer T\x01\x01");
        assert_eq!(oauthbearer("a@b.example", "T", "imap.example", 993), "n,a=a@b.example,\x01host=imap.example\x01port=993\x01auth=Bearer T\x01\x01");
    }
}
