//! Branch side, after issuance: the life of a guarantee (`lifecycle.md`). An event on a
//! certificate (a 変更, its expiry, staff's 解約, 取消, 履行請求 and its settling) is
//! recorded with the notices it makes, in one transaction: the contractor's mail (in
//! Japanese), the owner's notice by mail (`X-Esurety-Event`, which the owner side
//! recognises) and a webhook queued for the owner's systems when it has an endpoint.

use crate::clock::{Random, random_hex};
use crate::config::Config;
use crate::domain::{Certificate, CertificateStatus, Event, EventKind};
use crate::outbound::compose::{ComposeError, Composer, Draft};
use crate::store::{Outgoing, StoreError, Tx};
use chrono::{DateTime, FixedOffset};
use serde_json::json;

/// The header that marks an owner's notice of an event, with the event's id.
pub const EVENT_HEADER: &str = "X-Esurety-Event";

/// Who the daily job's events are by.
pub const SYSTEM: &str = "system";

/// A new event with a fresh id (`evt_` and 24 hex digits).
#[allow(clippy::too_many_arguments)]
pub fn new_event(number: &str, kind: EventKind, status: CertificateStatus, by: &str, reason: &str, effective: Option<chrono::NaiveDate>, version: Option<u32>, rng: &dyn Random, now: DateTime<FixedOffset>) -> Event {
    Event {
        id: format!("evt_{}", random_hex(rng, 12)),
        number: number.to_string(),
        kind,
        status: status.as_str().to_string(),
        at: now.to_rfc3339(),
        effective: effective.map(|d| d.to_string()),
        by: by.to_string(),
        reason: reason.to_string(),
        version,
    }
}

/// What an event makes: mails (the contractor's, the owner's notice) and the owner whose
/// endpoint gets a webhook. Composed before the transaction, written in it ([`Self::write`]).
pub struct Notices {
    pub mails: Vec<Outgoing>,
    pub webhook: Option<String>,
}

impl Notices {
    /// Enqueues the mails and the webhook in `tx`, beside the event (row `event`).
    pub fn write(&self, tx: &Tx, event: i64, number: &str, source: Option<i64>, now: DateTime<FixedOffset>) -> Result<(), StoreError> {
        for m in &self.mails {
            tx.enqueue(m, source, now)?;
        }
        if let Some(endpoint) = &self.webhook {
            tx.queue_webhook(event, endpoint, number, now)?;
        }
        Ok(())
    }
}

/// The notices of event `e` on certificate `c`: the contractor's mail (unless it is told
/// otherwise, as a 変更's sender is by its completion mail), the owner's notice to its
/// contracts address, and its webhook.
pub fn notices(config: &Config, composer: &Composer, c: &Certificate, e: &Event, tell_contractor: bool, rng: &dyn Random, now: DateTime<FixedOffset>) -> Result<Notices, ComposeError> {
    let Some(branch) = config.branch_by_code(&c.office_code).or(config.branches.first()) else {
        return Ok(Notices { mails: vec![], webhook: None });
    };
    let status = CertificateStatus::parse(&e.status).map(|s| s.label()).unwrap_or("");
    let at = chrono::DateTime::parse_from_rfc3339(&e.at).map(|t| t.with_timezone(&crate::clock::jst()).format("%Y年%m月%d日 %H:%M").to_string()).unwrap_or_default();
    let effective = e.effective.as_deref().and_then(|d| d.parse().ok()).map(crate::text::format_era);
    let ctx = json!({
        "company": {"name": config.company.name},
        "branch": {"name": branch.name, "tel": branch.tel, "fax": branch.fax, "address": branch.address},
        "number": c.number, "product": c.product.name(), "project": c.project, "owner": c.owner,
        "contractor": c.jv.clone().unwrap_or_else(|| c.contractor.clone()),
        "kind": e.kind.label(), "event": e.kind.as_str(), "status": status, "at": at, "effective": effective,
        "reason": e.reason, "label": c.change_label(), "id": e.id,
        "lookup": config.web.as_ref().and_then(|w| w.public_url.clone()),
    });
    let draft = |kind, template, to: String| Draft {
        kind, template, context: ctx.clone(),
        from_name: format!("{} {}", config.company.name, branch.name),
        from: branch.address.clone(), to: vec![to], reply: None, attachments: vec![],
    };
    let mut mails = Vec::new();
    if tell_contractor
        && let Some(to) = config.contractor_by_name(&c.contractor).and_then(|k| k.emails.first())
    {
        mails.push(composer.compose(draft("status_changed", "mail/status_changed.txt", to.clone()), rng, now)?);
    }
    let owner = config.owner_by_name(&c.owner);
    if let Some(o) = owner {
        mails.push(composer.compose_marked(draft("owner_event", "mail/owner_event.txt", o.contracts_address.clone()), &[(EVENT_HEADER, &e.id)], rng, now)?);
    }
    Ok(Notices { mails, webhook: owner.filter(|o| o.webhook.is_some()).map(|o| o.name.clone()) })
}
