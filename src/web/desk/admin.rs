//! The admin's pages: users of the desk (add, disable) and the registry's API tokens (make,
//! revoke), as `esurety user …` and `esurety token …` do. A new token is shown once, on
//! the page its making redirects to: until then the store keeps it sealed under the
//! company's secret for that session (minutes at most; any web server of the store may
//! show it), and after only its hash. Admin role only.

use super::{Staff, check_form, counts, done, forbidden, page, short_time, staff, store_failed, with_store};
use crate::web::App;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/desk/admin/users", get(users).post(add_user))
        .route("/desk/admin/users/{id}/disable", post(disable_user))
        .route("/desk/admin/tokens", get(tokens).post(add_token))
        .route("/desk/admin/tokens/{id}/revoke", post(revoke_token))
}

async fn admin(app: &Arc<App>, headers: &HeaderMap) -> Result<Staff, Response> {
    let s = staff(app, headers).await?;
    if !s.scope.admin {
        return Err(forbidden());
    }
    Ok(s)
}

macro_rules! admin {
    ($app:expr, $headers:expr) => {
        match admin(&$app, &$headers).await {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn users_page(app: &Arc<App>, staff: &Staff, notice: Option<String>, error: Option<String>) -> Response {
    let scope = staff.scope.clone();
    let got = with_store(app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let rows: Vec<Value> = s.users()?.iter().map(|u| json!({"id": u.id, "name": u.name, "roles": u.roles, "disabled": u.disabled, "created": short_time(&u.created_at)})).collect();
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    match got {
        Ok(Ok((c, rows))) => page(app, "web/desk/users.html", staff, c, json!({"users": rows, "notice": notice, "error": error})),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn users(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = admin!(app, headers);
    let notice = super::notice(q.done.as_deref()).map(str::to_string);
    users_page(&app, &staff, notice, None).await
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// One role a line (or separated by spaces or commas).
    #[serde(default)]
    roles: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

async fn add_user(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<UserForm>) -> Response {
    let staff = admin!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let name = f.name.trim().to_string();
    let roles: Result<Vec<String>, String> = f.roles.split(|c: char| c.is_whitespace() || c == ',').filter(|r| !r.is_empty())
        .map(|r| crate::desk::users::Role::parse(r, &app.engine.config).map(|r| r.stored())).collect();
    let problem = match &roles {
        _ if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) => Some("名前は1～64文字で入力してください。".to_string()),
        Err(e) => Some(format!("役割が正しくありません：{e}")),
        Ok(r) if r.is_empty() => Some("役割を1つ以上入力してください（branch:アドレス、owner:アドレス、admin）。".to_string()),
        _ if f.password != f.again => Some("2回入力したパスワードが一致しません。".to_string()),
        _ if f.password.chars().count() < crate::desk::users::MIN_PASSWORD => Some(format!("パスワードは{}文字以上にしてください。", crate::desk::users::MIN_PASSWORD)),
        _ => None,
    };
    if let Some(p) = problem {
        return users_page(&app, &staff, None, Some(p)).await;
    }
    let roles = roles.unwrap_or_default();
    let password = f.password.clone();
    let Ok(Ok(hash)) = tokio::task::spawn_blocking(move || crate::desk::users::hash_password(&password, &crate::clock::OsRandom)).await else {
        return super::error_page("パスワードを登録できませんでした。", StatusCode::INTERNAL_SERVER_ERROR);
    };
    let (by, now) = (staff.name.clone(), app.clock.now());
    let who = name.clone();
    let added = with_store(&app, move |s, _| s.write(|tx| -> Result<bool, crate::store::StoreError> {
        if !tx.add_user(&who, &hash, &roles, &now.to_rfc3339())? {
            return Ok(false);
        }
        tx.record_action(&by, "user_add", &who, Some(&roles.join(", ")), now)?;
        Ok(true)
    })).await;
    match added {
        Ok(Ok(true)) => done("/desk/admin/users", "user_added"),
        Ok(Ok(false)) => users_page(&app, &staff, None, Some(format!("「{name}」という名前のユーザーがすでにいます。"))).await,
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn disable_user(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> Response {
    let staff = admin!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let (by, now) = (staff.name.clone(), app.clock.now());
    let me = staff.name.clone();
    let done_ = with_store(&app, move |s, _| -> Result<Result<bool, &'static str>, crate::store::StoreError> {
        let users = s.users()?;
        let Some(u) = users.iter().find(|u| u.id == id).cloned() else { return Ok(Ok(false)) };
        if u.name == me {
            return Ok(Err("自分自身は無効にできません（別の管理者が行います）。"));
        }
        let admins = users.iter().filter(|x| !x.disabled && x.roles.iter().any(|r| r == "admin")).count();
        if u.roles.iter().any(|r| r == "admin") && !u.disabled && admins <= 1 {
            return Ok(Err("最後の管理者は無効にできません。"));
        }
        s.write(|tx| -> Result<bool, crate::store::StoreError> {
            if !tx.disable_user(&u.name)? {
                return Ok(false);
            }
            tx.record_action(&by, "user_disable", &u.name, None, now)?;
            Ok(true)
        }).map(Ok)
    }).await;
    match done_ {
        Ok(Ok(Ok(true))) => done("/desk/admin/users", "user_disabled"),
        Ok(Ok(Ok(false))) => super::error_page("このユーザーはいません。", StatusCode::NOT_FOUND),
        Ok(Ok(Err(why))) => super::error_page(why, StatusCode::CONFLICT),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn tokens_page(app: &Arc<App>, staff: &Staff, notice: Option<String>, made: Option<(String, String)>) -> Response {
    let scope = staff.scope.clone();
    let got = with_store(app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let rows: Vec<Value> = s.tokens()?.iter().map(|t| json!({"id": t.id, "name": t.name, "created": short_time(&t.created_at),
            "used": t.last_used_at.as_deref().map(short_time), "revoked": t.revoked_at.as_deref().map(short_time)})).collect();
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    match got {
        Ok(Ok((c, rows))) => page(app, "web/desk/tokens.html", staff, c, json!({"tokens": rows, "notice": notice, "made": made.map(|(n, t)| json!({"name": n, "token": t}))})),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

/// How long a new token waits for its page.
const FRESH_SECS: i64 = 5 * 60;

/// What a fresh token's seal is bound to: its session.
fn fresh_aad(session: &[u8; 32]) -> Vec<u8> {
    [b"fresh token\0".as_slice(), session].concat()
}

async fn tokens(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = admin!(app, headers);
    let notice = super::notice(q.done.as_deref()).map(str::to_string);
    // A token just made, handed over once from the POST that made it (taken from the
    // store, so this page may be served by another server than the POST was).
    let (session, now) = (staff.session, app.clock.now().timestamp());
    let made = match with_store(&app, move |s, e| s.write(|tx| tx.take_fresh_token(&session, now))
        .map(|sealed| sealed.and_then(|b| e.secrets.open_note(&fresh_aad(&session), &b)))).await {
        Ok(Ok(made)) => made.and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok()),
        Ok(Err(e)) => return store_failed(e),
        Err(r) => return r,
    };
    tokens_page(&app, &staff, notice, made).await
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn add_token(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    let staff = admin!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let name = f.name.trim().chars().filter(|c| !c.is_control()).take(100).collect::<String>();
    if name.is_empty() {
        return tokens_page(&app, &staff, Some("トークンを使う発注者のシステムの名前を入力してください。".into()), None).await;
    }
    let (token, hash) = crate::registry::tokens::new_token(&crate::clock::OsRandom);
    let (by, now, n, session) = (staff.name.clone(), app.clock.now(), name.clone(), staff.session);
    // Made and kept for its page in one transaction: a token is never made unseen.
    let made = with_store(&app, move |s, e| {
        let sealed = e.secrets.seal_note(&fresh_aad(&session), &serde_json::to_vec(&(&n, &token)).expect("JSON"), &crate::clock::OsRandom);
        s.write(|tx| -> Result<i64, crate::store::StoreError> {
            let id = tx.add_token(&n, &hash, now)?;
            tx.record_action(&by, "token_add", &id.to_string(), Some(&n), now)?;
            tx.keep_fresh_token(&session, &sealed, now.timestamp() + FRESH_SECS, now.timestamp())?;
            Ok(id)
        })
    }).await;
    match made {
        // Shown once, on the page this redirects to (a reload there does not make another
        // token); the page is not cached (Cache-Control: no-store).
        Ok(Ok(_)) => done("/desk/admin/tokens", "token_made"),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn revoke_token(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>, Form(f): Form<CsrfForm>) -> Response {
    let staff = admin!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let (by, now) = (staff.name.clone(), app.clock.now());
    let revoked = with_store(&app, move |s, _| s.write(|tx| -> Result<bool, crate::store::StoreError> {
        if !tx.revoke_token(id, now)? {
            return Ok(false);
        }
        tx.record_action(&by, "token_revoke", &id.to_string(), None, now)?;
        Ok(true)
    })).await;
    match revoked {
        Ok(Ok(true)) => done("/desk/admin/tokens", "token_revoked"),
        Ok(Ok(false)) => super::error_page("このトークンはないか、すでに無効です。", StatusCode::NOT_FOUND),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}
