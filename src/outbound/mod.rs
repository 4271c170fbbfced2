//! The last step on both sides: outbound. [`compose`] turns an outcome into a complete
//! RFC 5322 message (wording from the templates, PDFs attached, a real reply's headers);
//! the store keeps it in the outbox in the same transaction as the outcome; [`deliver`]
//! hands what is due to a [`Transport`] and records per recipient what was accepted.
//!
//! This folder holds the composer and the transports only (`maildir.rs`, `smtp.rs`); what
//! to answer is decided by the flows, the desk and the digests.

pub mod compose;
pub mod maildir;
pub mod webhook;
pub mod smtp;

use crate::clock::Clock;
use crate::store::{Hold, OutboxRow, Store};

/// Whether a failed attempt is worth retrying: callers act on this (see lettre's
/// `is_transient`/`is_permanent`).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Our own login to the relay has no credentials now (an OAuth 2.0 refresh token the
    /// provider refused): not the recipient's failure and not an attempt; the mail waits
    /// as it is until someone authorizes the relay again.
    #[error("cannot log in to the relay: {0}")]
    LoginRefused(String),
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
    crate::faults::pause("outbox_listed");
    if transport.recognises_redelivery() {
        let mut rest = due.as_slice();
        while !rest.is_empty() {
            let budget = crate::store::Budget::start();
            rest = store.batch(|store| -> crate::store::Result<&[OutboxRow]> {
                let mut rest = rest;
                let mut taken = 0;
                while let Some((row, tail)) = rest.split_first().filter(|_| !budget.spent(taken)) {
                    deliver_one(store, transport, clock, row, None, &mut report)?;
                    (rest, taken) = (tail, taken + 1);
                }
                Ok(rest)
            })?;
        }
    } else if store.kind() == crate::store::Kind::Postgres {
        // Daemons share the store: each mail is held by this daemon while it is sent (passed
        // over when another daemon holds it), and what became of each recipient commits as
        // it happens, as on SQLite: a daemon that dies between two recipients leaves the
        // rest to the next pass once its hold has lapsed. The hold lives in the mail's row,
        // so a reconnect to the store does not lose it.
        for row in &due {
            let Some(mut hold) = store.hold_outgoing(row.id, clock.now())? else {
                continue;
            };
            if let Err(e) = deliver_one(store, transport, clock, row, Some(&mut hold), &mut report) {
                let _ = store.release_hold(hold, clock.now());
                return Err(e);
            }
        }
    } else {
        for row in &due {
            deliver_one(store, transport, clock, row, None, &mut report)?;
        }
    }
    Ok(report)
}

/// Tries every recipient that neither has the mail nor refused it for good. Each recipient
/// has its own state: a 4xx for one is retried later while a 5xx for another is recorded
/// as that recipient's refusal; the mail is `sent` when every recipient has it, `failed`
/// when none is left to retry and one refused it, and otherwise waits for its next attempt.
/// Without a `hold` the mail is claimed here for the caller's transaction (or SQLite's one
/// daemon); with one, the hold is renewed before each recipient and before the outcome is
/// recorded, and a mail that is no longer this daemon's is left at once.
fn deliver_one(store: &Store, transport: &dyn Transport, clock: &dyn Clock, row: &OutboxRow, mut hold: Option<&mut Hold>, report: &mut DeliveryReport) -> crate::store::Result<()> {
    if hold.is_none() && !store.claim_outgoing(row.id, clock.now())? {
        return Ok(());
    }
    // Whether the mail is still this daemon's to work on (always, when claimed).
    let mut still_held = |store: &Store| -> crate::store::Result<bool> {
        let Some(hold) = hold.as_deref_mut() else { return Ok(true) };
        let kept = store.renew_hold(hold, clock.now())?;
        if !kept {
            tracing::warn!(event = "hold_lost", outbox = row.id, message_id = %row.message_id, why = "another daemon took the mail after this daemon's hold lapsed, or it was sent");
        }
        Ok(kept)
    };
    if row.recipients.is_empty() {
        if !still_held(store)? {
            return Ok(());
        }
        tracing::error!(event = "send_failed", outbox = row.id, message_id = %row.message_id, error = "no recipient can be read");
        store.mark_attempt_failed(row.id, "no recipient can be read from the stored mail", true, clock.now())?;
        report.failed += 1;
        metrics::counter!("esurety_deliveries_total", "result" => "failed").increment(1);
        return Ok(());
    }
    let raw = store.raw_of(row.id)?;
    let mut temporary: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for (i, rcpt) in row.recipients.iter().enumerate() {
        if store.delivered_to(row.id, rcpt)? {
            continue;
        }
        if store.refused(row.id, rcpt)? {
            refused.push(format!("{rcpt}: refused earlier"));
            continue;
        }
        let unique = format!("{}.M{}R{}.esurety", created_unix(&row.created_at), row.id, i);
        crate::faults::pause("sending");
        if !still_held(store)? {
            return Ok(());
        }
        match transport.send(&unique, &row.sender, rcpt, &raw) {
            Ok(()) => {
                crate::faults::point("delivered_before_record");
                store.mark_delivered(row.id, rcpt, clock.now())?;
                crate::faults::point("delivered_one");
            }
            Err(e) => {
                tracing::warn!(event = "send_failed", outbox = row.id, message_id = %row.message_id, recipient = %rcpt, error = %e);
                match e {
                    SendError::Permanent(why) => {
                        store.mark_refused(row.id, rcpt, &why, clock.now())?;
                        refused.push(format!("permanent failure: {why}"));
                    }
                    SendError::Transient(why) => temporary.push(format!("temporary failure: {why}")),
                    SendError::LoginRefused(_) => {
                        report.retrying += 1;
                        return Ok(());
                    }
                }
            }
        }
    }
    if !still_held(store)? {
        return Ok(());
    }
    if temporary.is_empty() && refused.is_empty() {
        store.mark_sent(row.id, clock.now())?;
        tracing::info!(event = "sent", outbox = row.id, message_id = %row.message_id, kind = %row.kind, recipients = row.recipients.len());
        report.sent += 1;
        metrics::counter!("esurety_deliveries_total", "result" => "sent").increment(1);
        return Ok(());
    }
    // Retried while any recipient's failure is temporary; given up when only refusals remain.
    let permanent = temporary.is_empty();
    let error = temporary.into_iter().chain(refused).collect::<Vec<_>>().join("; ");
    store.mark_attempt_failed(row.id, &error, permanent, clock.now())?;
    if permanent { report.failed += 1 } else { report.retrying += 1 }
    metrics::counter!("esurety_deliveries_total", "result" => if permanent { "failed" } else { "retrying" }).increment(1);
    Ok(())
}

fn created_unix(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map(|t| t.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::Outgoing;
    use std::sync::Mutex;

    /// A mail system that answers each recipient as a real server might: `ok@` accepts,
    /// `busy@` says 4xx the first time and accepts after, `gone@` says 5xx every time.
    #[derive(Default)]
    struct Answers(Mutex<Vec<String>>);

    impl Transport for Answers {
        fn send(&self, _unique: &str, _sender: &str, recipient: &str, _raw: &[u8]) -> Result<(), SendError> {
            let mut tried = self.0.lock().unwrap();
            let before = tried.iter().filter(|r| *r == recipient).count();
            tried.push(recipient.to_string());
            match recipient.split('@').next() {
                Some("busy") if before == 0 => Err(SendError::Transient(format!("{recipient}: 451 try again later"))),
                Some("gone") => Err(SendError::Permanent(format!("{recipient}: 550 no such user"))),
                _ => Ok(()),
            }
        }
    }

    fn at(s: &str) -> FixedClock {
        FixedClock::parse(s).unwrap()
    }

    fn store_with(recipients: &[&str]) -> (crate::testing::TempDir, Store) {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        let m = Outgoing { message_id: "<m@x>".into(), kind: "completion", sender: "b@x".into(), recipients: recipients.iter().map(|r| r.to_string()).collect(), subject: "s".into(), raw: b"Subject: s\r\n\r\nx\r\n".to_vec() };
        let now = at("2026-07-04T10:00:00+09:00").now();
        store.write(|tx| tx.enqueue(&m, None, now)).unwrap();
        (dir, store)
    }

    #[test]
    fn each_recipient_has_its_own_state() {
        let (_d, mut store) = store_with(&["ok@x", "busy@x", "gone@x"]);
        let t = Answers::default();
        let first = deliver(&mut store, &t, &at("2026-07-04T10:00:00+09:00")).unwrap();
        // The 4xx is retried later; the 5xx does not decide for it.
        assert_eq!((first.sent, first.retrying, first.failed), (0, 1, 0));
        assert_eq!(store.outbox().unwrap()[0].status, "pending");
        let second = deliver(&mut store, &t, &at("2026-07-04T11:00:00+09:00")).unwrap();
        assert_eq!((second.sent, second.retrying, second.failed), (0, 0, 1));
        let row = &store.outbox().unwrap()[0];
        assert_eq!(row.status, "failed", "only the refusal is left");
        assert!(row.last_error.as_deref().unwrap().contains("gone@x"), "{row:?}");
        // Each recipient tried as its state says: ok once, busy twice, gone once (refused for good).
        let tried = t.0.lock().unwrap().clone();
        assert_eq!(tried, ["ok@x", "busy@x", "gone@x", "busy@x"]);
        assert!(store.delivered_to(row.id, "busy@x").unwrap() && store.delivered_to(row.id, "ok@x").unwrap());
    }

    #[test]
    fn an_unreadable_recipient_list_is_a_failure_not_a_sent_mail() {
        let (d, mut store) = store_with(&["ok@x"]);
        let raw = rusqlite::Connection::open(d.path().join("s.db")).unwrap();
        raw.execute("UPDATE outbox SET recipients = '[\"ok@x\", tru'", []).unwrap();
        let t = Answers::default();
        let r = deliver(&mut store, &t, &at("2026-07-04T10:00:00+09:00")).unwrap();
        assert_eq!((r.sent, r.failed), (0, 1));
        assert_eq!(store.outbox().unwrap()[0].status, "failed");
        assert!(t.0.lock().unwrap().is_empty());
    }
}
