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
use crate::engine::{Adapters, Engine, SetupError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub stored: usize,
    pub issued: usize,
    /// Changes that made a new version.
    pub changed: usize,
    pub rejected: usize,
    pub held: usize,
    pub replied: usize,
    /// Owner side: submissions checked, pairs accepted and rejected, other mail left alone.
    pub submissions: usize,
    pub accepted: usize,
    pub refused: usize,
    pub ignored: usize,
    pub errors: usize,
    /// Messages left for a later pass (a temporary DNS failure while checking the sender).
    pub deferred: usize,
    /// Mailboxes that could not be reached in this pass (tried again next pass).
    pub unavailable: Vec<String>,
    /// The same mailboxes with why each could not be read (for `/readyz`).
    pub mailbox_errors: Vec<(String, String)>,
    pub delivery: DeliveryReport,
    /// How long each step of the pass took (store, process, mark, send), for the log.
    pub timing: Timing,
}

/// Wall-clock time of each step of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub store: std::time::Duration,
    pub process: std::time::Duration,
    pub mark: std::time::Duration,
    pub send: std::time::Duration,
}

impl Engine {
    /// One pass over every mailbox and the outbox. A mailbox that cannot be reached is
    /// reported and skipped; the rest of the pass goes on.
    pub fn run_once(&self, store: &mut Store, adapters: &mut Adapters, clock: &dyn Clock, rng: &dyn Random) -> Result<RunReport, RunError> {
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
        self.process_pending(store, &mut report, clock, rng)?;
        report.timing.process = step.elapsed();
        let step = std::time::Instant::now();

        // 3. Mark in its mailbox what the store says is done and not yet marked.
        crate::faults::point("marked_before");
        for (side, mb) in adapters.mailboxes.iter_mut() {
            let unmarked = store.unmarked(mb.address())?;
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
        report.delivery = self.sweep_outbox(store, adapters, clock, rng)?;
        report.timing.send = step.elapsed();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let t = report.timing;
        tracing::info!(event = "pass", stored = report.stored, store_ms = ms(t.store), process_ms = ms(t.process), mark_ms = ms(t.mark), send_ms = ms(t.send), sent = report.delivery.sent);
        Ok(report)
    }

    /// Sends what the outbox has due, and tells staff about mail given up on.
    pub fn sweep_outbox(&self, store: &mut Store, adapters: &mut Adapters, clock: &dyn Clock, rng: &dyn Random) -> Result<DeliveryReport, RunError> {
        let report = deliver(store, adapters.transport.as_ref(), clock)?;
        match crate::desk::digest::notify_failures(self, store, clock, rng) {
            Ok(0) => {}
            Ok(_) => {
                deliver(store, adapters.transport.as_ref(), clock)?;
            }
            Err(crate::desk::digest::StaffError::Store(e)) => return Err(e.into()),
            Err(e) => tracing::error!(event = "staff_notice_failed", error = %e),
        }
        Ok(report)
    }
}

impl RunReport {
    /// Adds the outcome counts of a batch (once it is committed).
    pub(super) fn absorb(&mut self, b: &RunReport) {
        self.issued += b.issued;
        self.changed += b.changed;
        self.rejected += b.rejected;
        self.held += b.held;
        self.replied += b.replied;
        self.submissions += b.submissions;
        self.accepted += b.accepted;
        self.refused += b.refused;
        self.ignored += b.ignored;
        self.errors += b.errors;
        self.deferred += b.deferred;
    }
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
