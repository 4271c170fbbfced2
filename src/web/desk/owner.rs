//! The owner's contract staff's pages: the register of submissions (accepted, rejected
//! with reasons, unchecked with why), and settling an unchecked one by hand.

use crate::signature::verify::SignatureStatus;
use super::{check_form, counts, done, forbidden, notice, page, refused, short_time, staff, store_failed, with_store};
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
        .route("/desk/submissions", get(submissions))
        .route("/desk/submissions/{id}/settle", post(settle))
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn submissions(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<Done>) -> Response {
    let staff = match staff(&app, &headers).await {
        Ok(s) if s.scope.any_owner() => s,
        Ok(_) => return forbidden(),
        Err(r) => return r,
    };
    let scope = staff.scope.clone();
    let got = with_store(&app, move |s, e| -> Result<(Value, Value), crate::store::StoreError> {
        // The owners' names as the register writes them.
        let names: Option<Vec<String>> = (!scope.admin).then(|| scope.owners.iter().filter_map(|a| e.config.owner_by_address(a)).map(|o| o.name.clone()).collect());
        let rows: Vec<Value> = s.submissions_of(names.as_deref(), 500)?.into_iter().filter(|r| scope.owner_named(&e.config, &r.owner)).map(|r| json!({
            "id": r.id, "owner": r.owner, "from": r.from, "received": short_time(&r.received_at), "number": r.number, "project": r.project,
            "product": r.product, "result": r.result, "reasons": r.reasons, "issuer": r.issuer, "settled_by": r.settled_by,
            "label": match r.result.as_str() { "accepted" => "受付", "rejected" => "受付できず", "unchecked" => "担当者確認待ち", _ => "" },
            "signature": r.signature, "signature_reason": r.signature_reason,
            "signature_label": r.signature.as_deref().and_then(SignatureStatus::parse).map(SignatureStatus::label),
        })).collect();
        // What the companies told of the certificates accepted here (`lifecycle.md`).
        let accepted: std::collections::HashSet<String> = rows.iter().filter(|r| r["result"] == "accepted").filter_map(|r| r["number"].as_str().map(str::to_string)).collect();
        let events: Vec<Value> = s.owner_events(500)?.into_iter().filter(|ev| accepted.contains(&ev.number)).map(|ev| json!({
            "number": ev.number, "at": short_time(&ev.at), "received": short_time(&ev.received_at), "registry": ev.registry, "via": ev.via, "reason": ev.reason,
            "kind": crate::domain::EventKind::parse(&ev.kind).map(|k| k.label()).unwrap_or(""), "ended": !crate::domain::CertificateStatus::parse(&ev.status).is_some_and(|s| s.in_force()),
            "status": crate::domain::CertificateStatus::parse(&ev.status).map(|s| s.label()).unwrap_or(""),
        })).collect();
        Ok((counts(s, e, &scope)?, json!({"rows": rows, "events": events})))
    }).await;
    match got {
        Ok(Ok((c, v))) => page(&app, "web/desk/submissions.html", &staff, c, json!({"submissions": v["rows"], "events": v["events"], "notice": notice(q.done.as_deref())})),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct SettleForm {
    #[serde(default)]
    csrf: String,
    /// `accepted` or `rejected`.
    #[serde(default)]
    result: String,
    #[serde(default)]
    note: String,
}

async fn settle(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>, Form(f): Form<SettleForm>) -> Response {
    let staff = match staff(&app, &headers).await {
        Ok(s) if s.scope.any_owner() => s,
        Ok(_) => return forbidden(),
        Err(r) => return r,
    };
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    let accepted = match f.result.as_str() {
        "accepted" => true,
        "rejected" => false,
        _ => return super::error_page("受付か受付できずかを選んでください。", axum::http::StatusCode::UNPROCESSABLE_ENTITY),
    };
    let scope = staff.scope.clone();
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let note: String = f.note.chars().take(2000).collect();
    let got = with_store(&app, move |s, e| -> Result<Result<(), crate::desk::DeskError>, crate::store::StoreError> {
        let Some(row) = s.submission(id)? else { return Ok(Err(crate::desk::DeskError::NotApplicable(format!("no submission {id}")))) };
        if !scope.owner_named(&e.config, &row.owner) {
            return Ok(Err(crate::desk::DeskError::NotApplicable("担当外です".into())));
        }
        Ok(crate::desk::settle(s, id, accepted, &note, &by, clock.as_ref()))
    }).await;
    match got {
        Ok(Ok(Ok(()))) => done("/desk/submissions", "settled"),
        Ok(Ok(Err(e))) => refused(&e),
        Ok(Err(e)) => store_failed(e),
        Err(r) => r,
    }
}
