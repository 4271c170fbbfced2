//! The lookup page (`registry-service.md` § The lookup page): what D-Sure offers a person.
//! Number + key are the credential, so there is no login; the same lockout applies, and
//! failures are also counted per client address. POST only: no key in any URL. Works
//! without JavaScript; every value is escaped (the templates are `.html`).

use super::checker::{Ask, Told};
use super::{App, Peer};
use crate::registry::Verification;
use crate::text::{format_era, format_yen};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(form))
        .route("/lookup", post(lookup).get(form))
        .route("/lookup/certificate.pdf", post(pdf))
        .route("/static/style.css", get(style))
        .fallback(not_found)
}

#[derive(Deserialize)]
struct LookupForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    key: String,
}

/// The one message for anything but a certificate: it does not tell an unknown number
/// from a wrong key.
const NOT_FOUND: &str = "保証契約番号または認証キーが正しくありません。お手元の「認証キーのお知らせ」をご確認のうえ、もう一度入力してください。";
const LOCKED: &str = "確認の失敗が続いたため、しばらく確認できません。時間をおいてからもう一度お試しください。";

fn page(app: &App, name: &str, ctx: Value, status: StatusCode) -> Response {
    let mut ctx = ctx;
    ctx["registry_name"] = json!(app.engine.config.company.registry_name);
    ctx["company"] = json!(app.engine.config.company.name);
    match app.pages.get_template(name).and_then(|t| t.render(minijinja::value::Serde(&ctx))) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(event = "page_failed", template = name, error = %e);
            (StatusCode::INTERNAL_SERVER_ERROR, "page could not be shown").into_response()
        }
    }
}

/// The page, with the number filled in when the QR code of a certificate or key notice
/// opened it (`/?number=…`, signing.md): only a well-formed number, never anything else
/// (the key is never in a URL, and a stranger's text is not echoed).
async fn form(State(app): State<Arc<App>>, axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let number = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "number").map(|(_, v)| v.into_owned()).filter(|n| n.len() <= 64).and_then(|n| crate::domain::CertificateNumber::parse(&n)).map(|n| n.to_string()).unwrap_or_default();
    page(&app, "web/lookup.html", json!({"message": null, "number": number}), StatusCode::OK)
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    page(&app, "web/not_found.html", json!({}), StatusCode::NOT_FOUND)
}

async fn style() -> Response {
    let mut r = crate::templates::STYLE.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    r
}

/// Checks number + key for the page; `Err` is the page to show instead.
async fn check(app: &App, peer: std::net::SocketAddr, headers: &HeaderMap, f: &LookupForm, via: &'static str) -> Result<Verification, Response> {
    if !app.same_origin(headers) {
        return Err(page(app, "web/lookup.html", json!({"message": "別のサイトからの送信は受け付けません。", "number": ""}), StatusCode::FORBIDDEN));
    }
    let address = app.client(peer, headers);
    if let Err(wait) = app.limiter.hit(&format!("page:{address}"), app.web.page_per_minute) {
        let mut r = page(app, "web/lookup.html", json!({"message": LOCKED, "number": ""}), StatusCode::TOO_MANY_REQUESTS);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Err(r);
    }
    let number: String = f.number.trim().chars().take(64).collect();
    let key: String = f.key.trim().chars().take(64).collect();
    let shown = number.clone();
    match app.checker.ask(Ask::Page { number, key, address, via }).await {
        Ok(Told::Checked(v @ Verification::Valid { .. })) => Ok(v),
        Ok(Told::Checked(Verification::Locked { .. } | Verification::SenderLocked { .. })) => {
            Err(page(app, "web/lookup.html", json!({"message": LOCKED, "number": shown}), StatusCode::TOO_MANY_REQUESTS))
        }
        Ok(_) => Err(page(app, "web/lookup.html", json!({"message": NOT_FOUND, "number": shown}), StatusCode::OK)),
        Err(e) => {
            tracing::error!(event = "lookup_failed", error = %e);
            Err(page(app, "web/lookup.html", json!({"message": "ただいま確認できません。しばらくしてからもう一度お試しください。", "number": shown}), StatusCode::SERVICE_UNAVAILABLE))
        }
    }
}

async fn lookup(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap, Form(f): Form<LookupForm>) -> Response {
    match check(&app, peer, &headers, &f, "page").await {
        Ok(v) => page(&app, "web/certificate.html", view(&app, &v, &f.key), StatusCode::OK),
        Err(r) => r,
    }
}

async fn pdf(State(app): State<Arc<App>>, ConnectInfo(Peer(peer)): ConnectInfo<Peer>, headers: HeaderMap, Form(f): Form<LookupForm>) -> Response {
    let v = match check(&app, peer, &headers, &f, "pdf").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Verification::Valid { number, latest, .. } = v else { unreachable!("check gives only valid") };
    let now = app.clock.now();
    // The file as issued (signed, its hash in the registry's answer); typeset again only
    // for a version issued before files were kept.
    let n = number.clone();
    let made = super::desk::with_store(&app, move |store, engine| -> Result<Vec<u8>, String> {
        let kind = crate::branch::documents::DocumentKind::Certificate;
        match store.issued_pdf(&n, latest.version, kind.as_str()) {
            Ok(Some(pdf)) => Ok(pdf),
            Ok(None) => engine.documents.render(kind, &engine.config, &latest.contents, None, now).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }).await;
    let made = match made {
        Ok(m) => m,
        Err(r) => return r,
    };
    match made {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            let name = format!("attachment; filename=\"certificate-{number}.pdf\"");
            h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")));
            r
        }
        Err(e) => {
            tracing::error!(event = "lookup_pdf_failed", number = %number, error = %e);
            (StatusCode::INTERNAL_SERVER_ERROR, "the PDF could not be made").into_response()
        }
    }
}

/// Screen ④ of the leaflets: the certificate's latest contents and its history.
fn view(app: &App, v: &Verification, key: &str) -> Value {
    let Verification::Valid { number, status, latest, history, events, .. } = v else { return json!({}) };
    let c = &latest.contents;
    let office = app.engine.config.branch_by_code(&c.office_code).map(|b| format!("{} （TEL {}）", b.name, b.tel));
    let contractor = match &c.jv {
        Some(jv) => format!("{jv}（代表者 {}）", c.contractor),
        None => c.contractor.clone(),
    };
    json!({
        "number": number,
        "key": key,
        "product": c.product.name(),
        "status": status.label(),
        "valid": status.in_force(),
        "ended": !status.in_force(),
        "label": c.change_label(),
        "rows": [
            ["保証契約番号", number],
            ["保証契約者", contractor],
            ["被保証者（発注者）", c.owner],
            ["保証金額", format_yen(c.amount)],
            ["保証期限", format_era(c.guarantee_end)],
            ["工事名", c.project],
            ["工期", format!("{} ～ {}", format_era(c.term_start), format_era(c.term_end))],
            ["請負金額", format_yen(c.contract_price)],
            ["請負契約日", format_era(c.contract_date)],
            ["預託金融機関", c.bank.clone().unwrap_or_else(|| "―".into())],
            ["取扱箇所", office.unwrap_or_else(|| c.office_code.clone())],
        ],
        "history": history_rows(history, events),
    })
}

/// The history as the page lists it: each version (新規, 変更) and each change of state
/// after the issue (期限満了, 解約, 取消, 履行請求 and its settling), with its reason, in
/// the order they happened. A 変更 is listed once, as its version.
fn history_rows(history: &[crate::store::VersionRow], events: &[crate::domain::Event]) -> Vec<Value> {
    let mut rows: Vec<(String, String, String)> = history.iter().map(|h| {
        (h.issued_at.clone(), h.contents.change_label().map(|l| format!("変更（{l}）")).unwrap_or_else(|| h.kind.clone()), String::new())
    }).collect();
    for e in events.iter().filter(|e| e.kind != crate::domain::EventKind::Changed) {
        let from = e.effective.as_deref().and_then(|d| d.parse().ok()).map(|d| format!("（{}から）", format_era(d))).unwrap_or_default();
        rows.push((e.at.clone(), format!("{}{from}", e.kind.label()), e.reason.clone()));
    }
    rows.sort_by_key(|(at, _, _)| chrono::DateTime::parse_from_rfc3339(at).map(|t| t.timestamp()).unwrap_or(0));
    rows.into_iter().enumerate().map(|(i, (at, kind, reason))| json!({"no": i + 1, "at": issued_at(&at), "kind": kind, "reason": reason})).collect()
}

/// `2026-07-04T10:00:00+09:00` as `2026/07/04 10:00`.
fn issued_at(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&crate::clock::jst()).format("%Y/%m/%d %H:%M").to_string()).unwrap_or_else(|_| s.to_string())
}
