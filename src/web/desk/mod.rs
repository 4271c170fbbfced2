//! The staff desk (`desk.md`): branch and owner staff's pages under `/desk/`, behind a
//! login. Every page and action checks the session and the user's roles on the server
//! (`users::Scope`): a branch user never reaches another branch's data, by any URL. Every
//! changing form carries the session's CSRF token, and a POST from another origin is
//! refused. Actions are the functions the CLI calls (`crate::desk`), with the user's name.
//! Requests share a few connections to the store ([`Stores`]), each taken only for the
//! request's reads and writes.

mod admin;
mod auth;
mod branch;
mod lifecycle;
mod owner;

use super::App;
use crate::store::Store;
use crate::desk::users::Scope;
use crate::engine::Engine;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The session cookie's name.
pub const COOKIE: &str = "esurety_desk";
/// Minutes a session lives without a request.
pub const IDLE_MINUTES: i64 = 30;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(admin::routes())
        .merge(auth::routes())
        .merge(branch::routes())
        .merge(lifecycle::routes())
        .merge(owner::routes())
        .route("/desk", axum::routing::get(|| async { Redirect::to("/desk/") }))
        .route("/desk/", axum::routing::get(index))
        .route("/desk/actions", axum::routing::get(actions))
}

/// The logged-in user of a request.
pub struct Staff {
    pub name: String,
    pub scope: Scope,
    pub csrf: String,
    /// The session's hash (what the store keeps).
    pub session: [u8; 32],
}

/// Connections to the store the desk's requests use at once; a request beyond waits for
/// one. Each request takes one only for its reads and writes (no page typesets or reads
/// every row while holding it), so a slow page does not stall logins and other pages.
pub const DESK_STORES: usize = 4;

/// The desk's connections to the store: opened as needed, up to [`DESK_STORES`], and
/// kept for the next request.
pub struct Stores {
    at: crate::config::StoreAt,
    idle: std::sync::Mutex<Vec<Store>>,
    permits: tokio::sync::Semaphore,
}

impl Stores {
    /// With `first` (opened at start, so that a store that cannot be opened stops the
    /// start) kept for the first request.
    pub fn new(at: crate::config::StoreAt, first: Store) -> Stores {
        Stores { at, idle: std::sync::Mutex::new(vec![first]), permits: tokio::sync::Semaphore::new(DESK_STORES) }
    }
}

/// Runs `f` on one of the desk's connections to the store, off the async threads.
pub async fn with_store<T: Send + 'static>(app: &Arc<App>, f: impl FnOnce(&mut Store, &Engine) -> T + Send + 'static) -> Result<T, Response> {
    let Ok(permit) = app.desk.permits.acquire().await else {
        return Err(error_page("ただいま利用できません。", StatusCode::SERVICE_UNAVAILABLE));
    };
    let app2 = app.clone();
    let out = tokio::task::spawn_blocking(move || -> Result<T, crate::store::StoreError> {
        let idle = app2.desk.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut store = match idle {
            Some(s) => s,
            None => Store::open(&app2.desk.at)?,
        };
        let out = f(&mut store, &app2.engine);
        // Back for the next request (a panic in `f` drops it: a new one is opened).
        app2.desk.idle.lock().unwrap_or_else(|p| p.into_inner()).push(store);
        Ok(out)
    }).await;
    drop(permit);
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(store_failed(e)),
        Err(_) => Err(error_page("内部エラーが起きました。", StatusCode::INTERNAL_SERVER_ERROR)),
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The session's user, or the answer to give instead (to the login page).
pub async fn staff(app: &Arc<App>, headers: &HeaderMap) -> Result<Staff, Response> {
    let Some(id) = cookie(headers, COOKIE).filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())) else {
        return Err(Redirect::to("/desk/login").into_response());
    };
    let hash = crate::desk::users::session_hash(&id);
    let now = app.clock.now().timestamp();
    let found = with_store(app, move |s, _| s.write(|tx| tx.touch_session(&hash, now, IDLE_MINUTES * 60))).await?;
    match found {
        Ok(Some(s)) => Ok(Staff { scope: Scope::of(&s.user.roles), name: s.user.name, csrf: s.csrf, session: hash }),
        Ok(None) => Err(Redirect::to("/desk/login").into_response()),
        Err(e) => {
            tracing::error!(event = "desk_session_failed", error = %e);
            Err(error_page("ただいま利用できません。", StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

/// A changing request is the user's own: same origin, and the session's CSRF token.
pub fn check_form(app: &App, headers: &HeaderMap, staff: &Staff, csrf: &str) -> Result<(), Response> {
    if !app.same_origin(headers) {
        return Err(error_page("別のサイトからの送信は受け付けません。", StatusCode::FORBIDDEN));
    }
    use subtle::ConstantTimeEq;
    if csrf.len() != staff.csrf.len() || !bool::from(csrf.as_bytes().ct_eq(staff.csrf.as_bytes())) {
        return Err(error_page("フォームの有効期限が切れたか、正しくない送信です。ページを開き直してからもう一度操作してください。", StatusCode::FORBIDDEN));
    }
    Ok(())
}

pub fn forbidden() -> Response {
    error_page("このページを見る権限がありません。", StatusCode::FORBIDDEN)
}

pub fn error_page(message: &str, status: StatusCode) -> Response {
    let body = format!("<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>esurety</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main class=\"inner\"><h1>{}</h1><p><a href=\"/desk/\">デスクへ</a></p></main></body></html>",
        minijinja::HtmlEscape(message));
    (status, Html(body)).into_response()
}

/// What waits for this user: held, paper to print, failed mail, unchecked submissions.
pub fn counts(store: &Store, engine: &Engine, scope: &Scope) -> Result<Value, crate::store::StoreError> {
    let config = &engine.config;
    let (mut held, mut paper, mut failed, mut unchecked) = (0, 0, 0, 0);
    let mut webhooks = Vec::new();
    if scope.any_branch() {
        held = store.held_mailboxes()?.iter().filter(|(_, m)| scope.branch(m)).count();
        paper = store.paper_waiting()?.iter().filter(|c| scope.office(config, &c.latest.office_code)).count();
        failed = store.failed_outbox()?.iter().filter(|r| scope.branch(&r.sender)).count();
        // Webhooks to owners' systems that failed at least once (retried until delivered).
        webhooks = store.failing_webhooks()?.into_iter().filter(|w| scope.office(config, w.number.get(..5).unwrap_or(""))).map(|w| json!({
            "number": w.number, "endpoint": w.endpoint, "kind": w.event.kind.label(), "attempts": w.attempts, "error": w.last_error, "next": short_time(&w.next_attempt_at),
        })).collect();
    }
    if scope.any_owner() {
        unchecked = store.unchecked_counts()?.iter().filter(|(o, _)| scope.owner_named(config, o)).map(|(_, n)| *n as usize).sum();
    }
    let mail_refused = crate::desk::digest::oauth_refusals(engine, store, |a| scope.branch(a) || scope.owner(a))?;
    let total = held + paper + failed + unchecked + mail_refused.len() + webhooks.len();
    Ok(json!({"held": held, "paper": paper, "failed": failed, "unchecked": unchecked, "mail_refused": mail_refused, "webhooks": webhooks, "total": total}))
}

/// Renders a desk page: the user, their menu, what waits (in the title too), the CSRF
/// token for its forms, and `ctx`.
pub fn page(app: &App, template: &str, staff: &Staff, counts: Value, mut ctx: Value) -> Response {
    if ctx.get("notice").is_none() {
        ctx["notice"] = Value::Null;
    }
    ctx["me"] = json!({"name": staff.name, "branch": staff.scope.any_branch(), "owner": staff.scope.any_owner(), "admin": staff.scope.admin});
    ctx["counts"] = counts;
    ctx["csrf"] = json!(staff.csrf);
    ctx["registry_name"] = json!(app.engine.config.company.registry_name);
    ctx["company"] = json!(app.engine.config.company.name);
    render(app, template, ctx, StatusCode::OK)
}

pub fn render(app: &App, template: &str, ctx: Value, status: StatusCode) -> Response {
    match app.pages.get_template(template).and_then(|t| t.render(minijinja::value::Serde(&ctx))) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(event = "page_failed", template, error = %e);
            error_page("ページを表示できませんでした。", StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// After an action: back to `to` with a fixed notice (never text from the request).
pub fn done(to: &str, notice: &str) -> Response {
    let mut r = Redirect::to(&format!("{to}?done={notice}")).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// The notice of a `?done=` code.
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "released" => "保留を解除しました。次の処理で証書を発行します。",
        "rejected" => "申込者に理由をメールで返信しました。",
        "printed" => "印刷済みにしました。",
        "retried" => "送信をやり直します。",
        "resent" => "登録アドレスに再送しました。",
        "state_changed" => "状態を変更しました。受注者と発注者に通知します。",
        "settled" => "確認結果を登録しました。",
        "user_added" => "ユーザーを登録しました。",
        "user_disabled" => "ユーザーを無効にしました。そのユーザーのログインは終わりました。",
        "token_revoked" => "トークンを無効にしました。次の問い合わせから拒否します。",
        "token_made" => "トークンを発行しました。",
        _ => return None,
    })
}

/// The message of a desk action that was not done, for the user.
pub fn refused(e: &crate::desk::DeskError) -> Response {
    use crate::desk::DeskError;
    match e {
        DeskError::NotApplicable(m) | DeskError::Needs(m) => error_page(&format!("この操作はできません：{m}"), StatusCode::CONFLICT),
        DeskError::AlreadyDone(m) => error_page(&format!("ほかの担当者がすでに処理しました：{m}"), StatusCode::CONFLICT),
        other => {
            tracing::error!(event = "desk_action_failed", error = %other);
            error_page("操作できませんでした。しばらくしてからもう一度お試しください。", StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

async fn index(axum::extract::State(app): axum::extract::State<Arc<App>>, headers: HeaderMap) -> Response {
    let staff = match staff(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scope = staff.scope.clone();
    match with_store(&app, move |s, e| counts(s, e, &scope)).await {
        Ok(Ok(c)) => page(&app, "web/desk/index.html", &staff, c, json!({})),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

pub fn store_failed(e: crate::store::StoreError) -> Response {
    tracing::error!(event = "desk_store_failed", error = %e);
    error_page("ただいま利用できません。しばらくしてからもう一度お試しください。", StatusCode::SERVICE_UNAVAILABLE)
}

/// Whether this user may see an action: its target is in their scope (read without
/// any message's or mail's bytes).
fn action_visible(store: &Store, engine: &Engine, scope: &Scope, a: &crate::store::ActionRow) -> bool {
    if scope.admin {
        return true;
    }
    let config = &engine.config;
    match a.action.as_str() {
        "release" | "reject" => a.target.parse::<i64>().ok().and_then(|id| store.message_mailbox(id).ok().flatten()).is_some_and(|m| scope.branch(&m)),
        "printed" | "resend" | "notice_download" => scope.office(config, a.target.get(..5).unwrap_or("")),
        "retry" => store.outbox_sender(&a.target).ok().flatten().is_some_and(|s| scope.branch(&s)),
        "settle_accepted" | "settle_rejected" => a.detail.as_deref().and_then(|d| d.split_once(" (")).and_then(|(_, rest)| rest.split_once("):"))
            .is_some_and(|(owner, _)| scope.owner_named(config, owner)),
        _ => false,
    }
}

/// Actions a page of the log shows, and how many rows one page reads at most to find
/// them (a user who may see few of many reads a bounded part per page, and pages on).
const ACTIONS_PER_PAGE: usize = 100;
const ACTIONS_READ_PER_PAGE: usize = 2_000;

#[derive(serde::Deserialize, Default)]
struct ActionsQuery {
    /// The id the previous page stopped at (older ones follow).
    before: Option<i64>,
}

async fn actions(axum::extract::State(app): axum::extract::State<Arc<App>>, headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<ActionsQuery>) -> Response {
    let staff = match staff(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value, Option<i64>), crate::store::StoreError> {
        // Read newest first, a chunk at a time, until a page is full or the budget read.
        // `next`: where the next page starts (older than it), when there are rows left.
        let (mut rows, mut read, mut last_read, mut next) = (Vec::new(), 0, q.before, None);
        'read: while read < ACTIONS_READ_PER_PAGE {
            let chunk = s.actions_before(last_read, 200)?;
            if chunk.is_empty() {
                break;
            }
            for a in chunk {
                if action_visible(s, e, &scope, &a) {
                    if rows.len() == ACTIONS_PER_PAGE {
                        // One more to show: the next page starts after this page's last.
                        next = last_read;
                        break 'read;
                    }
                    rows.push(a.clone());
                }
                read += 1;
                last_read = Some(a.id);
            }
        }
        // The budget read with rows left: the next page goes on from the last one read
        // (it may hold none of this user's actions, and says so).
        if next.is_none() && read >= ACTIONS_READ_PER_PAGE && !s.actions_before(last_read, 1)?.is_empty() {
            next = last_read;
        }
        let shown: Vec<Value> = rows.iter().map(|a| json!({"at": short_time(&a.at), "by": a.by, "action": action_name(&a.action), "target": a.target, "detail": a.detail})).collect();
        Ok((counts(s, e, &scope)?, json!(shown), next))
    }).await;
    match got {
        Ok(Ok((c, rows, next))) => page(&app, "web/desk/actions.html", &staff, c, json!({"actions": rows, "next": next})),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

fn action_name(a: &str) -> &str {
    match a {
        "release" => "保留解除",
        "reject" => "申込を断る",
        "printed" => "印刷済み",
        "retry" => "再送信",
        "resend" => "書類の再送",
        "settle_accepted" => "担当者確認：受付",
        "settle_rejected" => "担当者確認：受付できず",
        "user_add" => "ユーザー登録",
        "user_disable" => "ユーザー無効化",
        "token_add" => "トークン発行",
        "token_revoke" => "トークン無効化",
        "notice_download" => "認証キー通知書の取得",
        other => other,
    }
}

/// `2026-07-04T10:00:00+09:00` as `2026/07/04 10:00`.
pub fn short_time(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&crate::clock::jst()).format("%Y/%m/%d %H:%M").to_string()).unwrap_or_else(|_| s.to_string())
}

/// Sets `Cache-Control` and the content type of a PDF download.
pub fn pdf_response(name: &str, bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    // The name is built from the number and fixed words; sent percent-encoded (RFC 6266).
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20");
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"document.pdf\"; filename*=UTF-8''{encoded}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
