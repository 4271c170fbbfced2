//! One pass of `esurety run`: take every new message from every mailbox into the store,
//! process every message whose outcome is not committed yet, mark in its mailbox every
//! message whose outcome is committed but not marked, and deliver what the outbox has due.
//!
//! Exactly once: a message is stored (committed) before it is processed; its outcome and
//! its reply are committed together; marking comes after and is tracked in the store, so
//! a crash between them only means marking again (harmless). Deliveries are recorded per
//! recipient, and the Maildir transport recognises a delivery it already made.
//!
//! Each step commits in batches (`Store::batch`): one `fsync` per batch instead of several
//! per message. A batch closes after [`crate::store::BATCH`] messages or once it has worked
//! for [`crate::store::BATCH_TIME`], whichever comes first (the message in hand is
//! finished), so a daemon that lives longer than that and one message's work always
//! commits some work, however slow the machine: a crash loop still gets through the
//! queue. A message's outcome is a savepoint in its batch, still all or nothing; a crash
//! before the batch commits only means the batch is done again, since nothing was sent or
//! marked for it yet.

use crate::clock::{Clock, Random};
use crate::intake::{MailboxError, Mark};
use crate::outbound::{DeliveryReport, deliver};
use crate::store::{Store, StoreError};
use crate::domain::{MessageOutcome, Side};
use super::process::process_pending;
use super::report::{RunError, RunReport};
use crate::engine::{Adapters, Engine};

/// One pass over every mailbox and the outbox. A mailbox that cannot be reached is
/// reported and skipped; the rest of the pass goes on.
pub fn run_once(engine: &Engine, store: &mut Store, adapters: &mut Adapters, clock: &dyn Clock, rng: &dyn Random) -> Result<RunReport, RunError> {
    let mut report = RunReport::default();
    let started = std::time::Instant::now();

    // 1. Store every new message before anything else happens.
    for (_, mb) in adapters.mailboxes.iter_mut() {
        match mb.fetch_new(store, clock.now()) {
            Ok(n) => report.stored += n,
            Err(MailboxError::Store(e)) => return Err(e.into()),
            Err(MailboxError::Unavailable(e)) => {
                tracing::warn!(event = "mailbox_unavailable", mailbox = %mb.address(), error = %e);
                report.unavailable.push(mb.address().to_string());
                report.mailbox_errors.push((mb.address().to_string(), e.to_string()));
            }
        }
    }
    crate::faults::point("stored");
    report.timing.store = started.elapsed();

    // 2. Process what has no committed outcome yet (also what a crash left behind).
    let step = std::time::Instant::now();
    process_pending(engine, store, &mut report, clock, rng)?;
    report.timing.process = step.elapsed();
    let step = std::time::Instant::now();

    // 3. Mark in its mailbox what the store says is done and not yet marked.
    crate::faults::point("marked_before");
    for (side, mb) in adapters.mailboxes.iter_mut() {
        let unmarked = store.unmarked(mb.address())?;
        // Logged in before the store is held: never a login inside a batch.
        if !unmarked.is_empty()
            && let Err(e) = mb.ready()
        {
            tracing::warn!(event = "mark_failed", mailbox = %mb.address(), error = %e);
            continue;
        }
        for chunk in unmarked.chunks(crate::store::BATCH) {
            // The marks, then one sync of the mailbox, then one commit recording them.
            let done = store.batch(|store| -> Result<(), MarkStop> {
                for (id, uid, outcome) in chunk {
                    let mark = match (*side, outcome) {
                        (_, Some(MessageOutcome::Ignored | MessageOutcome::Error)) => None,
                        (Side::Owner, _) => Some(Mark::Checked),
                        (_, Some(MessageOutcome::Held)) => Some(Mark::Held),
                        _ => Some(Mark::Processed),
                    };
                    if let Some(mark) = mark {
                        mb.mark(uid, mark).map_err(MarkStop::Unavailable)?;
                    }
                    store.set_marked(*id)?;
                }
                mb.sync().map_err(MarkStop::Unavailable)
            });
            match done {
                Ok(()) => {}
                Err(MarkStop::Store(e)) => return Err(e.into()),
                Err(MarkStop::Unavailable(e)) => {
                    // Nothing of this chunk is recorded as marked: marked again next pass.
                    tracing::warn!(event = "mark_failed", mailbox = %mb.address(), error = %e);
                    break;
                }
            }
        }
    }
    crate::faults::point("marked");
    report.timing.mark = step.elapsed();

    // 4. Send what is due.
    let step = std::time::Instant::now();
    report.delivery = sweep_outbox(engine, store, adapters, clock, rng)?;
    report.timing.send = step.elapsed();
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let t = report.timing;
    tracing::info!(event = "pass", stored = report.stored, store_ms = ms(t.store), process_ms = ms(t.process), mark_ms = ms(t.mark), send_ms = ms(t.send), sent = report.delivery.sent);
    Ok(report)
}

/// Sends what the outbox has due, and tells staff about mail given up on.
pub fn sweep_outbox(engine: &Engine, store: &mut Store, adapters: &mut Adapters, clock: &dyn Clock, rng: &dyn Random) -> Result<DeliveryReport, RunError> {
    let report = deliver(store, adapters.transport.as_ref(), clock)?;
    match crate::desk::digest::notify_failures(engine, store, clock, rng) {
        Ok(0) => {}
        Ok(_) => {
            deliver(store, adapters.transport.as_ref(), clock)?;
        }
        Err(crate::desk::digest::DigestError::Store(e)) => return Err(e.into()),
        Err(e) => tracing::error!(event = "staff_notice_failed", error = %e),
    }
    // The owners' systems are told of events beside their mail (`lifecycle.md`).
    crate::outbound::webhook::sweep(&engine.config, store, clock)?;
    Ok(report)
}


/// Why marking a mailbox stopped.
enum MarkStop {
    Store(StoreError),
    Unavailable(MailboxError),
}

impl From<StoreError> for MarkStop {
    fn from(e: StoreError) -> Self {
        MarkStop::Store(e)
    }
}
