//! The branch staff's changes of a certificate's state on the desk (`lifecycle.md` §
//! Staff): 取消, 解約, 履行請求 and its settling, each in two steps: the form on the
//! certificate's page posts here and is shown back for confirmation (what will happen, to
//! whom it is told); only the confirmed post acts, through the same function as
//! `esurety certificate NUMBER ACTION`.

use super::{check_form, counts, done, forbidden, page, refused, store_failed, with_store};
use crate::domain::StaffAction;
use crate::web::App;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/desk/certificates/{number}/state", post(change))
}

#[derive(Deserialize)]
struct StateForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    date: String,
    /// `yes` on the confirmation page's post; anything else shows that page.
    #[serde(default)]
    confirm: String,
}

/// The actions staff may take on a certificate in `status`, as the page offers them.
pub fn offered(status: crate::domain::CertificateStatus) -> Vec<serde_json::Value> {
    use crate::domain::CertificateStatus as S;
    let actions: &[StaffAction] = match status {
        S::Valid => &[StaffAction::Terminate, StaffAction::Cancel, StaffAction::Claim],
        S::Claimed => &[StaffAction::Settle],
        _ => &[],
    };
    actions.iter().map(|a| json!({"value": a.as_str(), "label": a.label()})).collect()
}

async fn change(State(app): State<Arc<App>>, headers: HeaderMap, Path(number): Path<String>, Form(f): Form<StateForm>) -> Response {
    let staff = match super::branch::branch_staff(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = check_form(&app, &headers, &staff, &f.csrf) {
        return r;
    }
    if !staff.scope.office(&app.engine.config, number.get(..5).unwrap_or("")) {
        return forbidden();
    }
    let Some(action) = StaffAction::parse(&f.action) else {
        return super::error_page("この操作はありません。", StatusCode::BAD_REQUEST);
    };
    let reason: String = crate::desk::certificates::staff_text(&f.reason).chars().take(crate::desk::certificates::MAX_REASON + 1).collect();
    if reason.is_empty() {
        return super::error_page("理由を入力してください（記録され、受注者と発注者に伝えられます）。", StatusCode::BAD_REQUEST);
    }
    let date = match f.date.trim() {
        "" => None,
        d => match d.parse::<chrono::NaiveDate>() {
            Ok(d) if action == StaffAction::Terminate => Some(d),
            _ => return super::error_page("解約の日付は YYYY-MM-DD で、解約のときだけ入力してください。", StatusCode::BAD_REQUEST),
        },
    };
    if f.confirm != "yes" {
        let scope = staff.scope.clone();
        let n = number.clone();
        let got = with_store(&app, move |s, e| -> Result<Option<(serde_json::Value, crate::store::CertificateRow)>, crate::store::StoreError> {
            let Some(c) = s.certificate(&n)? else { return Ok(None) };
            Ok(Some((counts(s, e, &scope)?, c)))
        }).await;
        return match got {
            Ok(Ok(Some((c, row)))) => {
                let owner = app.engine.config.owner_by_name(&row.latest.owner);
                page(&app, "web/desk/state_confirm.html", &staff, c, json!({
                    "number": row.number, "status": row.status.label(), "action": action.as_str(), "label": action.label(),
                    "reason": reason, "date": date.map(|d| d.to_string()), "project": row.latest.project, "owner": row.latest.owner,
                    "contractor": row.latest.jv.clone().unwrap_or_else(|| row.latest.contractor.clone()),
                    "owner_mail": owner.map(|o| o.contracts_address.clone()), "owner_webhook": owner.is_some_and(|o| o.webhook.is_some()),
                }))
            }
            Ok(Ok(None)) => super::error_page("この保証はありません（または担当外です）。", StatusCode::NOT_FOUND),
            Ok(Err(e)) => store_failed(e),
            Err(r) => r,
        };
    }
    let (by, clock) = (staff.name.clone(), app.clock.clone());
    let to = format!("/desk/certificates/{number}");
    match with_store(&app, move |s, e| crate::desk::certificates::act(e, s, &number, action, &reason, &by, date, clock.as_ref(), &crate::clock::OsRandom)).await {
        Ok(Ok(_)) => done(&to, "state_changed"),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}
