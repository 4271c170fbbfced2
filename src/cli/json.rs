//! The JSON contract of `cli.md`: field names are fixed there; more fields are added beside.
//! Keys never appear here.

use crate::registry::Verification;
use crate::issuance::Certificate;
use crate::store::{CertificateRow, OutboxRow, VersionRow};
use serde_json::{Value, json};

pub fn certificate(row: &CertificateRow) -> Value {
    let mut v = contents(&row.number, &row.status, &row.latest);
    v["application_message_id"] = json!(row.application_message_id);
    v["print_state"] = json!(row.print_state);
    v
}

/// The fields of `cli.md`'s certificate object (and more beside them), for one version.
fn contents(number: &str, status: &crate::store::CertificateStatus, c: &Certificate) -> Value {
    json!({
        "number": number,
        "product": c.product.name(),
        "format": c.format.name(),
        "status": status,
        "contractor": c.contractor,
        "jv": c.jv,
        "owner": c.owner,
        "project": c.project,
        "amount": c.amount,
        "contract_price": c.contract_price,
        "guarantee_end": c.guarantee_end.to_string(),
        "term_start": c.term_start.to_string(),
        "term_end": c.term_end.to_string(),
        "contract_date": c.contract_date.to_string(),
        "issue_date": c.issue_date.to_string(),
        "version": c.version,
        "office_code": c.office_code,
        "change_label": c.change_label(),
        "contractor_address": c.contractor_address,
        "site": c.site,
        "this_year_amount": c.this_year_amount,
        "award_date": c.award_date.map(|d| d.to_string()),
        "bank": c.bank,
        "redeposit": c.redeposit,
        "intermediate": c.intermediate,
        "bid_bond": c.bid_bond,
        "reservation": c.reservation,
    })
}

pub fn version(v: &VersionRow) -> Value {
    json!({
        "version": v.version,
        "kind": v.kind,
        "issued_at": v.issued_at,
        "change_label": v.contents.change_label(),
        "amount": v.contents.amount,
        "contract_price": v.contents.contract_price,
        "guarantee_end": v.contents.guarantee_end.to_string(),
        "term_start": v.contents.term_start.to_string(),
        "term_end": v.contents.term_end.to_string(),
    })
}

/// The registry's answer with the name of the office that handles the certificate
/// (取扱箇所), as the API and the lookup page give it.
pub fn verification_with_office(v: &Verification, config: &crate::config::Config) -> Value {
    let mut out = verification(v);
    if let Verification::Valid { latest, .. } = v
        && let Some(b) = config.branch_by_code(&latest.contents.office_code)
    {
        out["certificate"]["office"] = json!(b.name);
        out["certificate"]["office_tel"] = json!(b.tel);
    }
    out
}

pub fn verification(v: &Verification) -> Value {
    match v {
        Verification::Valid { number, status, latest, history } => {
            json!({
                "result": "valid",
                "certificate": contents(number, status, &latest.contents),
                "history": history.iter().map(|h| json!({"kind": h.kind, "version": h.version, "label": h.contents.change_label(), "issued_at": h.issued_at, "project": h.contents.project})).collect::<Vec<_>>(),
            })
        }
        Verification::Locked { until } => json!({"result": "locked", "locked_until": until.to_rfc3339()}),
        other => json!({"result": other.result()}),
    }
}

pub fn outbox(r: &OutboxRow) -> Value {
    json!({
        "message_id": r.message_id,
        "to": r.recipients,
        "from": r.sender,
        "subject": r.subject,
        "kind": r.kind,
        "status": r.status,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "created_at": r.created_at,
        "sent_at": r.sent_at,
    })
}
