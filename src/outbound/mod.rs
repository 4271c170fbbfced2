//! The last step on both sides: outbound. [`compose`] turns an outcome into a complete
//! RFC 5322 message (wording from the templates, PDFs attached, a real reply's headers);
//! the store keeps it in the outbox in the same transaction as the outcome; [`deliver`]
//! hands what is due to a [`Transport`] and records per recipient what was accepted.

pub mod compose;
pub mod maildir;
pub mod smtp;

use crate::clock::Clock;
use crate::store::{OutboxRow, Store};

/// Whether a failed attempt is worth retrying: callers act on this (see lettre's
/// `is_transient`/`is_permanent`).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
}

pub trait Transport {
    /// Hands `raw` to the mail system for one recipient. `unique` is stable for this
    /// (message, recipient) so a retry after a crash can be recognised by the transport.
    fn send(&self, unique: &str, sender: &str, recipient: &str, raw: &[u8]) -> Result<(), SendError>;

    /// Whether handing the same (`unique`) message over again is recognised and does not
    /// deliver it twice. Then the records of many deliveries can be committed together:
    /// a crash before that commit only hands them over again. Otherwise (SMTP) each
    /// delivery is recorded as soon as the server accepted it.
    fn recognises_redelivery(&self) -> bool {
        false
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Delivers every due outbox message; a message is `sent` once every recipient accepted it.
pub fn deliver(store: &mut Store, transport: &dyn Transport, clock: &dyn Clock) -> crate::store::Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    let due = store.due(clock.now())?;
    if transport.recognises_redelivery() {
        for chunk in due.chunks(crate::store::BATCH) {
            store.batch(|store| chunk.iter().try_for_each(|row| deliver_one(store, transport, clock, row, &mut report)))?;
        }
    } else {
        for row in &due {
            deliver_one(store, transport, clock, row, &mut report)?;
        }
    }
    Ok(report)
}

fn deliver_one(store: &Store, transport: &dyn Transport, clock: &dyn Clock, row: &OutboxRow, report: &mut DeliveryReport) -> crate::store::Result<()> {
    let raw = store.raw_of(row.id)?;
    let mut error: Option<SendError> = None;
    for (i, rcpt) in row.recipients.iter().enumerate() {
        if store.delivered_to(row.id, rcpt)? {
            continue;
        }
        let unique = format!("{}.M{}R{}.esurety", created_unix(&row.created_at), row.id, i);
        match transport.send(&unique, &row.sender, rcpt, &raw) {
            Ok(()) => {
                crate::faults::point("delivered_before_record");
                store.mark_delivered(row.id, rcpt, clock.now())?;
                crate::faults::point("delivered_one");
            }
            Err(e) => {
                tracing::warn!(event = "send_failed", outbox = row.id, message_id = %row.message_id, recipient = %rcpt, error = %e);
                error = Some(e);
            }
        }
    }
    match error {
        None => {
            store.mark_sent(row.id, clock.now())?;
            tracing::info!(event = "sent", outbox = row.id, message_id = %row.message_id, kind = %row.kind, recipients = row.recipients.len());
            report.sent += 1;
        }
        Some(e) => {
            let permanent = matches!(e, SendError::Permanent(_));
            store.mark_attempt_failed(row.id, &e.to_string(), permanent, clock.now())?;
            if permanent { report.failed += 1 } else { report.retrying += 1 }
        }
    }
    Ok(())
}

fn created_unix(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map(|t| t.timestamp()).unwrap_or(0)
}
