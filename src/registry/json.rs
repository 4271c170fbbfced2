//! The registry's answer as JSON: the contract of `cli.md` (`esurety verify --json`) and of
//! the API (`registry-service.md`). Field names are fixed there; more fields are added
//! beside. Keys never appear here.

use crate::domain::Certificate;
use crate::registry::Verification;
use serde_json::{Value, json};

/// The fields of `cli.md`'s certificate object (and more beside them), for one version.
pub fn contents(number: &str, status: &crate::domain::CertificateStatus, c: &Certificate) -> Value {
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

/// An event as owners read it (`lifecycle.md`): never who did it.
pub fn event(e: &crate::domain::Event) -> Value {
    e.public()
}

pub fn verification(v: &Verification) -> Value {
    match v {
        Verification::Valid { number, status, latest, history, documents, events } => {
            let mut certificate = contents(number, status, &latest.contents);
            certificate["documents"] = json!(documents);
            certificate["status_label"] = json!(status.label());
            json!({
                "result": v.result(),
                "status": status,
                "events": events.iter().map(event).collect::<Vec<_>>(),
                "certificate": certificate,
                "history": history.iter().map(|h| json!({"kind": h.kind, "version": h.version, "label": h.contents.change_label(), "issued_at": h.issued_at, "project": h.contents.project})).collect::<Vec<_>>(),
            })
        }
        Verification::Locked { until } => json!({"result": "locked", "locked_until": until.to_rfc3339()}),
        other => json!({"result": other.result()}),
    }
}


/// An event as a registry sends it (its API, a webhook), read with care: it comes over the
/// network. `None` for anything that is not one (an unknown kind, an id or number not of
/// their form, a time that is not RFC 3339).
pub fn read_event(v: &Value) -> Option<crate::domain::Event> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let id = s("id")?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return None;
    }
    let kind = s("kind").or_else(|| s("type").and_then(|t| t.strip_prefix("certificate.")))?;
    let kind = crate::domain::EventKind::parse(kind)?;
    let number = crate::domain::CertificateNumber::parse(s("number")?)?.to_string();
    let status = crate::domain::CertificateStatus::parse(s("status")?)?;
    let at = chrono::DateTime::parse_from_rfc3339(s("at")?).ok()?;
    let effective = s("effective").and_then(|d| d.parse::<chrono::NaiveDate>().ok()).map(|d| d.to_string());
    let reason: String = crate::outbound::compose::one_line(s("reason").unwrap_or_default()).chars().take(1000).collect();
    let version = v.get("version").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    Some(crate::domain::Event { id: id.to_string(), number, kind, status: status.as_str().to_string(), at: at.to_rfc3339(), effective, by: String::new(), reason, version })
}
