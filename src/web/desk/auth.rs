//! Logging in and out. A new session id at each login (only its hash is stored), the
//! cookie `HttpOnly; SameSite=Strict` (+ `Secure` over TLS); failed logins limited per
//! user name and per client address (counted in the store, under a lock, so the limits
//! hold across several web servers of one store), with one message for an unknown user and a wrong
//! password (and the same Argon2 work for both).

use super::{COOKIE, render, with_store};
use crate::web::{App, Peer};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Failed logins within [`WINDOW`] that stop further tries: per user name, per address.
const PER_USER: u32 = 5;
const PER_ADDRESS: u32 = 20;
const WINDOW: i64 = 15 * 60;
/// The login form's own CSRF cookie (there is no session yet).
const LOGIN_COOKIE: &str = "esurety_login";
const WRONG: &str = "名前またはパスワードが正しくありません。";
const LOCKED: &str = "ログインの失敗が続いたため、しばらくログインできません。時間をおいてからお試しください。";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/desk/login", get(form).post(login))
        .route("/desk/logout", axum::routing::post(logout))
}

fn cookie_attrs(app: &App) -> &'static str {
    // Secure whenever the browser reaches us over TLS: ours, or a proxy's (`public_url`).
    let tls = app.web.tls.is_some() || app.web.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    if tls { "; Path=/desk; HttpOnly; SameSite=Strict; Secure" } else { "; Path=/desk; HttpOnly; SameSite=Strict" }
}

fn login_page(app: &App, message: Option<&str>, status: StatusCode) -> Response {
    let token = crate::clock::random_hex(&crate::clock::OsRandom, 16);
    let mut r = render(app, "web/desk/login.html", json!({"message": message, "csrf": token, "registry_name": app.engine.config.company.registry_name, "company": app.engine.config.company.name}), status);
    if let Ok(v) = HeaderValue::from_str(&format!("{LOGIN_COOKIE}={token}{}", cookie_attrs(app))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn form(State(app): State<Arc<App>>) -> Response {
    login_page(&app, None, StatusCode::OK)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let expected = super::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    use subtle::ConstantTimeEq;
    if !app.same_origin(&headers) || expected.is_empty() || expected.len() != f.csrf.len() || !bool::from(expected.as_bytes().ct_eq(f.csrf.as_bytes())) {
        return login_page(&app, Some("ページを開き直してから、もう一度ログインしてください。"), StatusCode::FORBIDDEN);
    }
    let address = app.client(peer, &headers);
    let name: String = f.name.trim().chars().take(64).collect();
    let password: String = f.password.chars().take(1024).collect();
    let now = app.clock.now().timestamp();
    let (user_key, addr_key) = (format!("user:{name}"), format!("addr:{address}"));
    // Limits first: a locked name or address is not even checked. A check counts as a
    // failure from its start (taken back if the password matches), so many logins at
    // once cannot all pass the limit before any has failed.
    let (k1, k2) = (user_key.clone(), addr_key.clone());
    let found = with_store(&app, move |s, _| s.write(|tx| -> Result<_, crate::store::StoreError> {
        // Counted and added under the locks of both keys (PostgreSQL; SQLite's write lock
        // does it there), so two logins on two web servers of one store cannot both read
        // a count below the limit that the other is about to raise.
        tx.lock_all(&[format!("login {k1}"), format!("login {k2}")])?;
        let locked = tx.login_failures_since(&k1, now - WINDOW)? >= PER_USER || tx.login_failures_since(&k2, now - WINDOW)? >= PER_ADDRESS;
        if locked {
            return Ok((true, None, vec![]));
        }
        let ids = vec![tx.record_login_failure(&k1, now)?, tx.record_login_failure(&k2, now)?];
        Ok((false, tx.user_by_name(&name)?, ids))
    })).await;
    let (locked, user, provisional) = match found {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return super::store_failed(e),
        Err(r) => return r,
    };
    if locked {
        tracing::info!(event = "login_locked", address = %address);
        return login_page(&app, Some(LOCKED), StatusCode::TOO_MANY_REQUESTS);
    }
    // A few password checks at once (each is 19 MiB of Argon2 work); the rest wait a
    // little or are told to try again.
    let Ok(Ok(_permit)) = tokio::time::timeout(std::time::Duration::from_secs(5), app.logins.acquire()).await else {
        return login_page(&app, Some("混み合っています。しばらくしてからもう一度ログインしてください。"), StatusCode::TOO_MANY_REQUESTS);
    };
    // The same Argon2 work whether or not the user exists.
    let hash = user.as_ref().filter(|u| !u.disabled).map(|u| u.hash.clone()).unwrap_or_else(|| crate::desk::users::decoy_hash().to_string());
    let matched = tokio::task::spawn_blocking(move || crate::desk::users::password_matches(&password, &hash)).await.unwrap_or(false);
    let user = user.filter(|u| matched && !u.disabled);
    let Some(user) = user else {
        tracing::info!(event = "login_failed", address = %address);
        return login_page(&app, Some(WRONG), StatusCode::OK);
    };
    // A new session id at each login; any session id the browser had is not reused.
    let (id, hash) = crate::desk::users::new_session(&crate::clock::OsRandom);
    let csrf = crate::clock::random_hex(&crate::clock::OsRandom, 32);
    let uid = user.id;
    let started = with_store(&app, move |s, _| s.write(|tx| -> Result<(), crate::store::StoreError> {
        tx.forget_login_failures(&provisional)?;
        tx.start_session(&hash, uid, &csrf, now)
    })).await;
    match started {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return super::store_failed(e),
        Err(r) => return r,
    }
    tracing::info!(event = "login", user = %user.name, address = %address);
    let mut r = Redirect::to("/desk/").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={id}{}", cookie_attrs(&app))) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{LOGIN_COOKIE}=; Max-Age=0{}", cookie_attrs(&app))) {
        h.append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    let staff = match super::staff(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = super::check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if let Some(id) = super::cookie(&headers, COOKIE) {
        let hash = crate::desk::users::session_hash(&id);
        let _ = with_store(&app, move |s, _| s.write(|tx| tx.end_session(&hash))).await;
    }
    tracing::info!(event = "logout", user = %staff.name);
    let mut r = Redirect::to("/desk/login").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}=; Max-Age=0{}", cookie_attrs(&app))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
