//! What branch staff do to a certificate after its issue (`lifecycle.md` § Staff): 取消,
//! 解約, 履行請求 and its settling, at the terminal (`esurety certificate NUMBER ACTION`)
//! and on the desk alike. Each is an event in the certificate's history, a staff action,
//! a mail to the contractor and a notice to the owner, in one transaction. And the daily
//! job's expiry of certificates past their 保証期限 ([`expire_due`]), told alike.

use super::DeskError;
use crate::branch::lifecycle::{SYSTEM, new_event, notices};
use crate::clock::{Clock, Random};
use crate::domain::lifecycle::{StaffAction, act as transition};
use crate::domain::{CertificateStatus, Event, EventKind};
use crate::engine::Engine;
use crate::store::Store;

/// The longest reason kept (characters): a sentence or two, as staff write it.
pub const MAX_REASON: usize = 500;

/// Staff's text as it is recorded and mailed: one line, without control characters or
/// the invisible and direction-changing ones (nothing in it shows other than it reads).
pub fn staff_text(s: &str) -> String {
    let invisible = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}');
    crate::outbound::compose::one_line(&s.chars().filter(|&c| !invisible(c)).collect::<String>())
}

/// Does `action` to certificate `number` with staff's `reason`; `effective` is the day a
/// 解約 takes effect (default: today). Returns the event recorded.
#[allow(clippy::too_many_arguments)]
pub fn act(engine: &Engine, store: &mut Store, number: &str, action: StaffAction, reason: &str, by: &str, effective: Option<chrono::NaiveDate>, clock: &dyn Clock, rng: &dyn Random) -> Result<Event, DeskError> {
    let reason = staff_text(reason);
    if reason.is_empty() {
        return Err(DeskError::Needs("give the reason with --reason (it is recorded, and told to the contractor and the owner)".into()));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(DeskError::Needs(format!("the reason is longer than {MAX_REASON} characters")));
    }
    let by = &staff_text(by);
    if by.is_empty() {
        return Err(DeskError::Needs("say who does it with --by NAME".into()));
    }
    if effective.is_some() && action != StaffAction::Terminate {
        return Err(DeskError::Needs("--date is the day a 解約 (terminate) takes effect; the other actions take effect when recorded".into()));
    }
    let number = crate::domain::CertificateNumber::parse(number).map(|n| n.to_string()).unwrap_or_else(|| number.trim().to_string());
    let row = store.certificate(&number)?.ok_or_else(|| DeskError::NotApplicable(format!("there is no certificate {number}")))?;
    let now = clock.now();
    let today = now.with_timezone(&crate::clock::jst()).date_naive();
    let (status, kind) = transition(row.status, action, row.latest.guarantee_end, today).map_err(|e| DeskError::NotApplicable(format!("{number}: {e}")))?;
    // A 解約 takes effect within a year of today either way: anything further is a typo,
    // and the notice it makes cannot be taken back.
    if let Some(d) = effective
        && (d < today - chrono::Days::new(366) || d > today + chrono::Days::new(366))
    {
        return Err(DeskError::Needs(format!("--date {d} is more than a year from today ({today}): give the day the 解約 takes effect")));
    }
    let effective = (action == StaffAction::Terminate).then(|| effective.unwrap_or(today));
    let e = new_event(&number, kind, status, by, &reason, effective, None, rng, now);
    let n = notices(&engine.config, &engine.composer, &row.latest, &e, true, rng, now)?;
    store.write(|tx| -> Result<(), DeskError> {
        let id = tx.record_event(&e, row.status)?;
        n.write(tx, id, &number, None, now)?;
        tx.record_action(by, &format!("certificate {}", action.as_str()), &number, Some(&reason), now)?;
        Ok(())
    })?;
    tracing::info!(event = "certificate_state_changed", number = %number, kind = kind.as_str(), by = by, event_id = %e.id);
    Ok(e)
}

/// The daily job: every 有効 certificate whose 保証期限 has passed becomes 期限満了, and its
/// contractor and owner are told. Once, whichever daemon runs it first. Returns the numbers.
pub fn expire_due(engine: &Engine, store: &mut Store, clock: &dyn Clock, rng: &dyn Random) -> Result<Vec<String>, DeskError> {
    if !engine.config.sides.branch {
        return Ok(Vec::new());
    }
    let now = clock.now();
    let today = now.with_timezone(&crate::clock::jst()).date_naive();
    let mut done = Vec::new();
    // One certificate per transaction: a mail that cannot be composed for one (a broken
    // template) leaves the others expired.
    for number in store.write(|tx| tx.due_to_expire(today))? {
        let Some(row) = store.certificate(&number)? else { continue };
        let c = &row.latest;
        let reason = format!("保証期限（{}）を過ぎました", crate::text::format_era(c.guarantee_end));
        let e = new_event(&number, EventKind::Expired, CertificateStatus::Expired, SYSTEM, &reason, Some(c.guarantee_end + chrono::Days::new(1)), None, rng, now);
        let n = match notices(&engine.config, &engine.composer, c, &e, true, rng, now) {
            Ok(n) => n,
            Err(err) => {
                tracing::error!(event = "expiry_notice_failed", number = %number, error = %err);
                continue;
            }
        };
        // Only from 有効: another daemon's job (or staff) that got there first wins.
        let expired = store.write(|tx| -> Result<bool, DeskError> {
            match tx.record_event(&e, CertificateStatus::Valid) {
                Ok(id) => {
                    n.write(tx, id, &number, None, now)?;
                    Ok(true)
                }
                Err(crate::store::ActionError::Store(s)) => Err(s.into()),
                Err(_) => Ok(false),
            }
        })?;
        if expired {
            tracing::info!(event = "certificate_expired", number = %number, event_id = %e.id);
            done.push(number);
        }
    }
    Ok(done)
}
