//! The branch staff's pages: held mail (release, reject), paper to print (PDFs, printed),
//! failed mail (retry), certificates (search, versions, documents, resend). Each lists and
//! acts only within the user's branches.

use super::{Staff, check_form, counts, done, forbidden, notice, page, pdf_response, refused, short_time, staff, store_failed, with_store};
use crate::branch::documents::DocumentKind;
use crate::web::App;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/desk/held", get(held))
        .route("/desk/held/{id}", get(held_one))
        .route("/desk/held/{id}/release", post(release))
        .route("/desk/held/{id}/reject", post(reject))
        .route("/desk/paper", get(paper))
        .route("/desk/paper/{number}/printed", post(printed))
        .route("/desk/failed", get(failed))
        .route("/desk/failed/retry", post(retry))
        .route("/desk/certificates", get(certificates))
        .route("/desk/certificates/{number}", get(certificate))
        .route("/desk/certificates/{number}/{document}", get(document))
        .route("/desk/certificates/{number}/kept/{id}", get(kept))
        .route("/desk/certificates/{number}/resend", post(resend))
}

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
    #[serde(default)]
    q: String,
}

/// The user, when a branch user.
pub(super) async fn branch_staff(app: &Arc<App>, headers: &HeaderMap) -> Result<Staff, Response> {
    let s = staff(app, headers).await?;
    if !s.scope.any_branch() {
        return Err(forbidden());
    }
    Ok(s)
}

macro_rules! user {
    ($app:expr, $headers:expr) => {
        match branch_staff(&$app, &$headers).await {
            Ok(s) => s,
            Err(r) => return r,
        }
    };
}

fn list_page(app: &App, staff: &Staff, got: Result<Result<(Value, Value), crate::store::StoreError>, Response>, template: &str, key: &str, done: Option<&str>, extra: Value) -> Response {
    match got {
        Ok(Ok((c, rows))) => {
            let mut ctx = json!({"notice": notice(done)});
            ctx[key] = rows;
            if let Value::Object(m) = extra {
                for (k, v) in m {
                    ctx[k] = v;
                }
            }
            page(app, template, staff, c, ctx)
        }
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn held(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let mut rows = Vec::new();
        for (id, mailbox) in s.held_mailboxes()?.into_iter().filter(|(_, m)| scope.branch(m)) {
            if let Ok(Some(h)) = crate::desk::held_one(e, s, id) {
                rows.push(json!({"id": id, "received": short_time(&h.message.received_at), "mailbox": mailbox, "from": h.from, "subject": h.subject,
                                 "why": h.message.detail, "named": h.named}));
            }
        }
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    list_page(&app, &staff, got, "web/desk/held.html", "held", q.done.as_deref(), json!({}))
}

async fn held_one(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<Option<(Value, Value)>, crate::store::StoreError> {
        let Ok(Some(h)) = crate::desk::held_one(e, s, id) else { return Ok(None) };
        if !scope.branch(&h.message.mailbox) {
            return Ok(None);
        }
        // The message as text only: its texts, and its attachments by name; nothing of a
        // mail becomes HTML.
        let letter = crate::intake::letter::read_with(&h.message.raw, &e.config.limits).ok();
        let texts: Vec<String> = letter.as_ref().map(|l| l.texts().map(|(_, t)| t.replace("\r\n", "\n").replace('\r', "\n").chars().take(20_000).collect()).collect()).unwrap_or_default();
        let attachments: Vec<String> = letter.as_ref().map(|l| l.pieces.iter().filter_map(|p| match p {
            crate::intake::letter::Piece::Pdf { name, bytes, .. } => Some(format!("{}（PDF、{} バイト）", name.as_deref().unwrap_or("名前なし"), bytes.len())),
            _ => None,
        }).collect()).unwrap_or_default();
        let contractors: Vec<String> = e.config.contractors.iter().map(|c| c.name.clone()).collect();
        Ok(Some((counts(s, e, &scope)?, json!({"id": id, "received": short_time(&h.message.received_at), "mailbox": h.message.mailbox, "from": h.from,
            "subject": h.subject, "why": h.message.detail, "named": h.named, "texts": texts, "attachments": attachments, "contractors": contractors}))))
    }).await;
    match got {
        Ok(Ok(Some((c, m)))) => page(&app, "web/desk/held_one.html", &staff, c, json!({"m": m})),
        Ok(Ok(None)) => super::error_page("この保留メールはありません（解除・お断り済みか、担当外です）。", axum::http::StatusCode::NOT_FOUND),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    contractor: String,
}

/// Whether held message `id` is in the user's branches.
async fn held_in_scope(app: &Arc<App>, staff: &Staff, id: i64) -> Result<(), Response> {
    let scope = staff.scope.clone();
    let ok = with_store(app, move |s, _| s.held_mailboxes().map(|l| l.iter().any(|(i, m)| *i == id && scope.branch(m)))).await?;
    match ok {
        Ok(true) => Ok(()),
        Ok(false) => Err(super::error_page("この保留メールはありません（解除・お断り済みか、担当外です）。", axum::http::StatusCode::NOT_FOUND)),
        Err(e) => Err(store_failed(e)),
    }
}

async fn release(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>, Form(f): Form<ReleaseForm>) -> Response {
    let staff = user!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if let Err(r) = held_in_scope(&app, &staff, id).await {
        return r;
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let contractor = Some(f.contractor.trim().to_string()).filter(|c| !c.is_empty());
    match with_store(&app, move |s, e| crate::desk::release(e, s, id, contractor.as_deref(), &by, clock.as_ref())).await {
        Ok(Ok(_)) => done("/desk/held", "released"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RejectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn reject(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>, Form(f): Form<RejectForm>) -> Response {
    let staff = user!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if let Err(r) = held_in_scope(&app, &staff, id).await {
        return r;
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let reason: String = f.reason.chars().take(2000).collect();
    match with_store(&app, move |s, e| crate::desk::reject(e, s, id, &reason, &by, clock.as_ref(), &crate::clock::OsRandom)).await {
        Ok(Ok(_)) => done("/desk/held", "rejected"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

fn certificate_json(c: &crate::store::CertificateRow) -> Value {
    let l = &c.latest;
    json!({"number": c.number, "product": l.product.name(), "format": l.format.name(), "status": c.status.label(), "contractor": l.jv.clone().unwrap_or_else(|| l.contractor.clone()),
           "owner": l.owner, "project": l.project, "amount": crate::text::format_yen(l.amount), "version": l.version, "print_state": c.print_state,
           "electronic": l.format == crate::domain::Format::Electronic, "fee_statement": l.fee_statement,
           "reservation": l.reservation,
           "bid_bond": l.bid_bond.as_ref().map(|b| json!({"bid_date": crate::text::format_era(b.bid_date), "valid_until": crate::text::format_era(b.valid_until),
               "planned_price": crate::text::format_yen(b.planned_price), "fee": crate::text::format_yen(b.fee_yen + b.tax_yen), "tax": crate::text::format_yen(b.tax_yen)}))})
}

async fn paper(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let rows: Vec<Value> = s.paper_waiting()?.iter().filter(|c| scope.office(&e.config, &c.latest.office_code)).map(certificate_json).collect();
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    list_page(&app, &staff, got, "web/desk/paper.html", "paper", q.done.as_deref(), json!({}))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn printed(State(app): State<Arc<App>>, headers: HeaderMap, Path(number): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    let staff = user!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if !staff.scope.office(&app.engine.config, number.get(..5).unwrap_or("")) {
        return forbidden();
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    match with_store(&app, move |s, _| crate::desk::printed(s, &number, &by, clock.as_ref())).await {
        Ok(Ok(())) => done("/desk/paper", "printed"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

async fn failed(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let rows: Vec<Value> = s.failed_outbox()?.iter().filter(|r| scope.branch(&r.sender)).map(|r| json!({
            "message_id": r.message_id, "to": r.recipients.join(", "), "subject": r.subject, "kind": r.kind, "attempts": r.attempts,
            "error": r.last_error, "created": short_time(&r.created_at),
        })).collect();
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    list_page(&app, &staff, got, "web/desk/failed.html", "failed", q.done.as_deref(), json!({}))
}

#[derive(Deserialize)]
struct RetryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    message_id: String,
}

async fn retry(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<RetryForm>) -> Response {
    let staff = user!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let scope = staff.scope.clone();
    // The same Message-ID for the check and the action (`desk::retry` takes it either way).
    let trimmed = f.message_id.trim();
    let mid = if trimmed.starts_with('<') { trimmed.to_string() } else { format!("<{trimmed}>") };
    let act = mid.clone();
    match with_store(&app, move |s, _| s.outbox_row(&mid)).await {
        Ok(Ok(Some(r))) if scope.branch(&r.sender) => {}
        Ok(Ok(_)) => return forbidden(),
        Ok(Err(e)) => return store_failed(e),
        Err(r) => return r,
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    match with_store(&app, move |s, _| crate::desk::retry(s, &act, &by, clock.as_ref())).await {
        Ok(Ok(())) => done("/desk/failed", "retried"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

async fn certificates(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let query: String = q.q.trim().chars().take(100).collect();
    let shown = query.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        let offices: Option<Vec<String>> = (!scope.admin).then(|| scope.branches.iter().filter_map(|b| e.config.branch_by_address(b)).map(|b| b.office_code.clone()).collect());
        let rows: Vec<Value> = s.search_certificates(&query, offices.as_deref(), 100)?.iter().map(certificate_json).collect();
        Ok((counts(s, e, &scope)?, json!(rows)))
    }).await;
    list_page(&app, &staff, got, "web/desk/certificates.html", "certificates", q.done.as_deref(), json!({"q": shown}))
}

async fn certificate(State(app): State<Arc<App>>, headers: HeaderMap, Path(number): Path<String>, Query(q): Query<Done>) -> Response {
    let staff = user!(app, headers);
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<Option<(Value, Value)>, crate::store::StoreError> {
        let Some(c) = s.certificate(&number)? else { return Ok(None) };
        if !scope.office(&e.config, &c.latest.office_code) {
            return Ok(None);
        }
        let versions: Vec<Value> = s.versions(&number)?.iter().map(|v| json!({"version": v.version, "kind": v.kind, "label": v.contents.change_label(), "at": short_time(&v.issued_at),
            "amount": crate::text::format_yen(v.contents.amount), "project": v.contents.project})).collect();
        let documents: Vec<Value> = s.documents_of(&number)?.into_iter()
            .map(|(id, kind, name, size)| json!({"id": id, "kind": kind, "name": name, "size": crate::text::group_thousands(size.max(0) as u64)})).collect();
        let events: Vec<Value> = s.events_of(&number)?.iter().map(|ev| json!({"at": short_time(&ev.at), "kind": ev.kind.label(), "by": ev.by, "reason": ev.reason,
            "effective": ev.effective.as_deref().and_then(|d| d.parse().ok()).map(crate::text::format_era)})).collect();
        Ok(Some((counts(s, e, &scope)?, json!({"c": certificate_json(&c), "versions": versions, "documents": documents, "events": events,
            "actions": super::lifecycle::offered(c.status)}))))
    }).await;
    match got {
        Ok(Ok(Some((c, mut ctx)))) => {
            ctx["notice"] = json!(notice(q.done.as_deref()));
            page(&app, "web/desk/certificate.html", &staff, c, ctx)
        }
        Ok(Ok(None)) => super::error_page("この保証はありません（または担当外です）。", axum::http::StatusCode::NOT_FOUND),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn document(State(app): State<Arc<App>>, headers: HeaderMap, Path((number, document)): Path<(String, String)>) -> Response {
    let staff = user!(app, headers);
    let kind = match document.as_str() {
        "notice.pdf" => DocumentKind::Notice,
        "certificate.pdf" => DocumentKind::Certificate,
        "fee.pdf" => DocumentKind::Fee,
        _ => return super::error_page("この書類はありません。", axum::http::StatusCode::NOT_FOUND),
    };
    if !staff.scope.office(&app.engine.config, number.get(..5).unwrap_or("")) {
        return forbidden();
    }
    // The store only for the reads; the typesetting (seconds) holds none of its
    // connections, so other desk requests are answered meanwhile.
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let source = match with_store(&app, move |s, e| crate::desk::take_document(e, s, &number, kind, &by, clock.as_ref())).await {
        Ok(Ok(source)) => source,
        Ok(Err(e)) => return refused(&e),
        Err(r) => return r,
    };
    let (engine, clock) = (app.engine.clone(), app.clock.clone());
    match tokio::task::spawn_blocking(move || crate::desk::typeset(&engine, &source, kind, clock.as_ref())).await {
        Ok(Ok((name, pdf))) => pdf_response(&name, pdf),
        Ok(Err(e)) => refused(&e),
        Err(_) => super::error_page("内部エラーが起きました。", axum::http::StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A document kept with the certificate (a 認定調書), as the contractor sent it.
async fn kept(State(app): State<Arc<App>>, headers: HeaderMap, Path((number, id)): Path<(String, i64)>) -> Response {
    let staff = user!(app, headers);
    if !staff.scope.office(&app.engine.config, number.get(..5).unwrap_or("")) {
        return forbidden();
    }
    match with_store(&app, move |s, _| s.kept_document(&number, id)).await {
        Ok(Ok(Some((name, pdf)))) => pdf_response(&name, pdf),
        Ok(Ok(None)) => super::error_page("この書類はありません。", axum::http::StatusCode::NOT_FOUND),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

async fn resend(State(app): State<Arc<App>>, headers: HeaderMap, Path(number): Path<String>, Form(f): Form<CsrfForm>) -> Response {
    let staff = user!(app, headers);
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if !staff.scope.office(&app.engine.config, number.get(..5).unwrap_or("")) {
        return forbidden();
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let to = format!("/desk/certificates/{number}");
    match with_store(&app, move |s, e| crate::desk::resend(e, s, &number, &by, clock.as_ref(), &crate::clock::OsRandom)).await {
        Ok(Ok(_)) => done(&to, "resent"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}
