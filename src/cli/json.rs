//! The JSON contract of `cli.md`: field names are fixed there; more fields are added beside.
//! Keys never appear here.

use crate::registry::json::contents;
use crate::store::{CertificateRow, OutboxRow, VersionRow};
use serde_json::{Value, json};

pub fn certificate(row: &CertificateRow) -> Value {
    let mut v = contents(&row.number, &row.status, &row.latest);
    v["application_message_id"] = json!(row.application_message_id);
    v["print_state"] = json!(row.print_state);
    v
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

/// A webhook to an owner's system (`esurety webhooks --json`, the desk).
pub fn webhook(w: &crate::store::WebhookRow) -> Value {
    json!({
        "id": w.id, "endpoint": w.endpoint, "number": w.number, "event": w.event.id, "kind": w.event.kind,
        "status": w.status, "attempts": w.attempts, "next_attempt_at": w.next_attempt_at, "last_error": w.last_error,
    })
}
