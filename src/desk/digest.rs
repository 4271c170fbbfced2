//! The daily job and what esurety tells the staff by mail: the reservations (契約保証予約)
//! whose time has passed marked lapsed, the daily digest to each branch's and owner's staff
//! address, and a notice when an outgoing mail was given up on. Each mail is written to the
//! outbox in the same transaction that records it, so a restart never sends one twice.

use crate::clock::{Clock, Random};
use crate::outbound::compose::{ComposeError, Draft};
use crate::engine::Engine;
use crate::store::{Store, StoreError};
use chrono::Duration;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// The daily job of the branch side before its digest: open 契約保証予約 past their time
/// after 入札日 are marked 失効 (`products.md`). Returns their numbers.
pub fn lapse_reservations(engine: &Engine, store: &mut Store, clock: &dyn Clock) -> Result<Vec<String>, DigestError> {
    if !engine.config.sides.branch {
        return Ok(Vec::new());
    }
    let now = clock.now();
    let lapsed = store.write(|tx| tx.lapse_reservations(now.date_naive(), now))?;
    for n in &lapsed {
        tracing::info!(event = "reservation_lapsed", number = %n);
    }
    Ok(lapsed)
}

/// One digest per branch and owner with a staff address, for the time since the last one
/// (or the last 24 hours). Returns how many were written to the outbox.
pub fn send_digests(engine: &Engine, store: &mut Store, clock: &dyn Clock, rng: &dyn Random) -> Result<usize, DigestError> {
    let config = &engine.config;
    let mut n = 0;
    for b in config.branches.iter().filter(|_| config.sides.branch) {
        if let Some(staff) = &b.staff_address {
            n += digest(engine, store, clock, rng, &b.address, &b.name, staff, "mail/digest_branch.txt", |store, from, to| {
                Ok(json!({"branch": {"name": b.name}, "f": store.branch_figures(&b.address, &b.office_code, from, to, crate::registry::Lockout::default().alert_failures)?}))
            })?;
        }
    }
    for o in config.owners.iter().filter(|_| config.sides.owner) {
        if let Some(staff) = &o.staff_address {
            n += digest(engine, store, clock, rng, &o.contracts_address, &o.name, staff, "mail/digest_owner.txt", |store, from, to| {
                Ok(json!({"owner": {"name": o.name}, "f": store.owner_figures(&o.name, &o.contracts_address, from, to)?}))
            })?;
        }
    }
    if n > 0 {
        tracing::info!(event = "digests_queued", count = n);
    }
    Ok(n)
}

/// One target's digest for the time since its last one; 0 when that period is written.
#[allow(clippy::too_many_arguments)]
fn digest(engine: &Engine, store: &mut Store, clock: &dyn Clock, rng: &dyn Random, target: &str, name: &str, staff: &str, template: &str,
          figures: impl FnOnce(&Store, &str, &str) -> Result<serde_json::Value, StoreError>) -> Result<usize, DigestError> {
    let now = clock.now();
    let to = now.to_rfc3339();
    let from = store.last_digest(target)?.unwrap_or_else(|| (now - Duration::hours(24)).to_rfc3339());
    if !later(&to, &from) {
        return Ok(0);
    }
    let mut ctx = figures(store, &from, &to)?;
    ctx["mail_refused"] = json!(oauth_refusals(engine, store, |a| a.eq_ignore_ascii_case(target))?);
    ctx["date"] = json!(crate::text::format_era(now.date_naive()));
    ctx["period"] = json!(format!("{} ～ {}", from.get(..16).unwrap_or(&from).replace('T', " "), to.get(..16).unwrap_or(&to).replace('T', " ")));
    // The desk's address, when the web server says where people reach it.
    ctx["desk_url"] = json!(engine.config.web.as_ref().and_then(|w| w.public_url.as_ref()).map(|u| format!("{u}/desk/")));
    let out = compose(engine, "digest", template, ctx, target, &format!("esurety {name}"), staff, rng, clock)?;
    // Another daemon may have written this digest meanwhile: under the job's lock, only
    // if the last digest is still the one this one follows.
    let written = store.write(|tx| -> Result<bool, StoreError> {
        tx.lock_job(&format!("digest {target}"))?;
        if tx.last_digest(target)?.unwrap_or_else(|| (now - Duration::hours(24)).to_rfc3339()) != from {
            return Ok(false);
        }
        let id = tx.enqueue(&out, None, now)?;
        tx.record_digest(target, &from, &to, id)?;
        Ok(true)
    })?;
    Ok(written as usize)
}

/// The mail logins on OAuth 2.0 whose refresh token the provider refused (each waits for
/// `esurety mailbox authorize`), of the mailboxes `sees` lets through; the SMTP relay's
/// is everyone's (no mail leaves while it is refused).
pub fn oauth_refusals(engine: &Engine, store: &Store, sees: impl Fn(&str) -> bool) -> Result<Vec<serde_json::Value>, StoreError> {
    let configured = crate::oauth::logins(&engine.config.mail);
    Ok(store.oauth_states()?.into_iter()
        .filter(|s| s.refused.is_some() && configured.iter().any(|(l, _)| *l == s.login))
        .filter(|s| match s.login.split_once(':') {
            Some(("imap", address)) => sees(address),
            _ => true,
        })
        .map(|s| json!({
            "login": s.login, "who": crate::oauth::who(&s.login), "why": s.refused,
            "since": s.refused_at.map(|t| crate::clock::from_unix(t).format("%Y-%m-%d %H:%M").to_string()),
        }))
        .collect())
}

fn later(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

/// Tells the staff of the sending branch (or owner) about each mail given up on.
pub fn notify_failures(engine: &Engine, store: &mut Store, clock: &dyn Clock, rng: &dyn Random) -> Result<usize, DigestError> {
    let now = clock.now();
    let mut n = 0;
    for (id, sender, kind, recipients, subject, error) in store.failed_unnotified()? {
        let config = &engine.config;
        let staff = config.branch_by_address(&sender).map(|b| (b.staff_address.clone(), b.name.clone()))
            .or_else(|| config.owner_by_address(&sender).map(|o| (o.staff_address.clone(), o.name.clone())));
        // Nobody to tell, or a mail to staff that failed itself: record it and go on.
        let out = match staff {
            Some((Some(staff), name)) if kind != "staff" && kind != "digest" => {
                let to: Vec<String> = serde_json::from_str(&recipients).unwrap_or_default();
                let ctx = json!({"name": name, "subject": subject, "to": to.join(", "), "error": error.unwrap_or_default()});
                Some(compose(engine, "staff", "mail/send_failed.txt", ctx, &sender, &format!("esurety {name}"), &staff, rng, clock)?)
            }
            _ => {
                tracing::error!(event = "send_given_up", outbox = id, sender = %sender, "no staff address to tell");
                None
            }
        };
        // Told once, whichever daemon gets there first.
        let told = store.write(|tx| -> Result<bool, StoreError> {
            if !tx.set_staff_notified(id)? {
                return Ok(false);
            }
            if let Some(out) = &out {
                tx.enqueue(out, None, now)?;
            }
            Ok(true)
        })?;
        n += (told && out.is_some()) as usize;
    }
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
fn compose(engine: &Engine, kind: &'static str, template: &str, context: serde_json::Value, from: &str, from_name: &str, to: &str, rng: &dyn Random, clock: &dyn Clock) -> Result<crate::store::Outgoing, ComposeError> {
    engine.composer.compose(Draft {
        kind, template, context,
        from_name: from_name.to_string(),
        from: from.to_string(),
        to: vec![to.to_string()],
        reply: None,
        attachments: vec![],
    }, rng, clock.now())
}
