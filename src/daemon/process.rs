//! The pass's second step: every stored message whose outcome is not committed yet, through
//! the branch's or the owner's flow, in batches; typesetting pipelined across messages;
//! a message's fault (a panic, a render failure) is its own outcome, never the pass's.

use super::report::{RunError, RunReport};
use crate::branch::{BranchFlow, Outcome, Pending, Step};
use crate::error::ProcessError;
use crate::clock::{Clock, Random};
use crate::owner::{OwnerFlow, OwnerOutcome};
use crate::store::{Store, StoreError};
use crate::domain::{MessageOutcome, Side};
use crate::engine::Engine;

/// The engine's parts a pass processes with.
struct Process<'e>(&'e Engine);

impl std::ops::Deref for Process<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        self.0
    }
}

/// Every stored message without a committed outcome, in batches.
pub(super) fn process_pending(engine: &Engine, store: &mut Store, report: &mut RunReport, clock: &dyn Clock, rng: &dyn Random) -> Result<(), RunError> {
    Process(engine).pending(store, report, clock, rng)
}

impl Process<'_> {
    fn pending(&self, store: &mut Store, report: &mut RunReport, clock: &dyn Clock, rng: &dyn Random) -> Result<(), RunError> {
        let flow = BranchFlow { config: &self.config, composer: &self.composer, documents: &self.documents, auth: self.auth.as_ref(), secrets: &self.secrets, clock, rng };
        let local = self.local_registry();
        let registry = self.registry(&local);
        let owner_flow = OwnerFlow { config: &self.config, composer: &self.composer, reader: self.reader.as_ref(), registry, clock, rng };
        // One commit per batch of messages; each message's outcome is still all or nothing
        // (a savepoint), and nothing leaves before the commit (the outbox is swept after).
        // A batch is first tried as a pipeline (typesetting one application while the next
        // is decided); if anything but the store fails in it, it is rolled back and done
        // again one message at a time, where each failure becomes that message's outcome.
        let pending = store.pending_ids()?;
        if self.remote.is_some() {
            // An owner's own deployment asks the issuers' registries over the network: each
            // message on its own, and no transaction is held across a request (the desk,
            // `esurety` commands and other daemons write meanwhile). On PostgreSQL the
            // message is claimed by a lease instead of a row lock (`Store::claim`), and its
            // outcome commits only if no other daemon's did first.
            for id in pending {
                self.process_one(store, id, &flow, &owner_flow, report, clock)?;
            }
            return Ok(());
        }
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(crate::store::BATCH)];
            let budget = crate::store::Budget::start();
            let mut counted = RunReport::default();
            let mut taken = 0;
            let piped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.batch(|store| self.pipelined(store, chunk, &budget, &mut taken, &flow, &owner_flow, &mut counted))
            }));
            let why = match piped {
                Ok(Ok(())) => {
                    report.absorb(&counted);
                    rest = &rest[taken..];
                    continue;
                }
                Ok(Err(Stop::Store(e))) => return Err(e.into()),
                Ok(Err(Stop::Retry(why) | Stop::WouldWait(why))) => why,
                Err(_) => "a panic".to_string(),
            };
            // What the batch had taken is done again, one message and one commit at a
            // time, so each failure becomes that message's outcome.
            tracing::warn!(event = "batch_one_by_one", reason = %why);
            let taken = taken.clamp(1, chunk.len());
            for &id in &chunk[..taken] {
                store.batch(|store| self.process_one(store, id, &flow, &owner_flow, report, clock))?;
            }
            rest = &rest[taken..];
        }
        Ok(())
    }

    /// A batch as a pipeline on the one writer thread: while an application's PDFs are
    /// typeset (on another thread, itself using the pool), the one before it is mailed and
    /// the next message is decided and recorded.
    ///
    /// The batch stops taking messages when its budget is spent (time or count, see
    /// [`crate::store::Budget`]); `taken` says how many of `chunk` it took, all of which
    /// are finished when it returns `Ok`.
    #[allow(clippy::too_many_arguments)]
    fn pipelined(&self, store: &mut Store, chunk: &[i64], budget: &crate::store::Budget, taken: &mut usize, flow: &BranchFlow, owner_flow: &OwnerFlow, report: &mut RunReport) -> Result<(), Stop> {
        let (documents, config) = (&self.documents, &self.config);
        let mut recorded: Option<Box<Pending>> = None;
        let mut typeset: Option<(Box<Pending>, Vec<Vec<u8>>)> = None;
        // Set when a message would have waited for another daemon's lock: the batch takes
        // no more, and that message is the next batch's first.
        let mut ended = false;
        loop {
            let next = if !ended && *taken < chunk.len() && !budget.spent(*taken) { Some(chunk[*taken]) } else { None };
            *taken += next.is_some() as usize;
            if next.is_none() && recorded.is_none() && typeset.is_none() {
                return Ok(());
            }
            let to_typeset = recorded.take();
            let pdfs = std::thread::scope(|s| -> Result<Option<Vec<Vec<u8>>>, Stop> {
                let job = to_typeset.as_ref().map(|p| s.spawn(move || p.typeset(documents, config)));
                if let Some((p, pdfs)) = typeset.take() {
                    count(report, &flow.finish(store, *p, pdfs).map_err(Stop::from)?);
                    crate::faults::point("processed");
                }
                if let Some(id) = next {
                    // Each message a savepoint of its own, so one that stops half way
                    // leaves nothing in the batch.
                    store.next_message();
                    match store.batch(|store| self.start_one(store, id, flow, owner_flow, report)) {
                        Ok(r) => recorded = r,
                        Err(Stop::WouldWait(why)) => {
                            tracing::info!(event = "batch_ends_before_a_lock", message = id, reason = %why);
                            *taken -= 1;
                            ended = true;
                        }
                        Err(e) => return Err(e),
                    }
                }
                match job.map(|j| j.join()) {
                    None => Ok(None),
                    Some(Ok(Ok(pdfs))) => Ok(Some(pdfs)),
                    Some(Ok(Err(e))) => Err(Stop::from(e)),
                    Some(Err(_)) => Err(Stop::Retry("a panic while typesetting".into())),
                }
            })?;
            typeset = to_typeset.zip(pdfs);
        }
    }

    /// One message up to typesetting, in a pipelined batch.
    fn start_one(&self, store: &mut Store, id: i64, flow: &BranchFlow, owner_flow: &OwnerFlow, report: &mut RunReport) -> Result<Option<Box<Pending>>, Stop> {
        let Some(msg) = store.claim(id)? else { return Ok(None) };
        if msg.side == Side::Owner {
            let outcome = match owner_flow.process(store, &msg) {
                Err(ProcessError::Deferred(_)) => {
                    report.deferred += 1;
                    return Ok(None);
                }
                other => other.map_err(Stop::from)?,
            };
            count_owner(report, &outcome);
            crate::faults::point("processed");
            return Ok(None);
        }
        let started = match flow.start(store, &msg) {
            Err(ProcessError::Deferred(why)) => {
                tracing::info!(event = "deferred", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), reason = %why);
                report.deferred += 1;
                return Ok(None);
            }
            other => other.map_err(Stop::from)?,
        };
        match started {
            Step::Done(outcome) => {
                count(report, &outcome);
                crate::faults::point("processed");
                Ok(None)
            }
            Step::Typeset(p) => Ok(Some(p)),
        }
    }

    fn process_one(&self, store: &mut Store, id: i64, flow: &BranchFlow, owner_flow: &OwnerFlow, report: &mut RunReport, clock: &dyn Clock) -> Result<(), RunError> {
        let msg = match store.claim(id) {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(e) if e.stops_the_pass() => return Err(e.into()),
            Err(e) => {
                // The stored row cannot be read: an error outcome for it, the rest go on.
                tracing::error!(event = "process_failed", message = id, error = %e);
                report.errors += 1;
                return self.finish_failed(store, id, MessageOutcome::Error, &format!("保存したメールを読み取れません: {e}"), clock);
            }
        };
        if msg.side == Side::Owner {
            match guarded(|| owner_flow.process(store, &msg)) {
                Ok(outcome) => count_owner(report, &outcome),
                Err(ProcessError::Store(e)) if e.stops_the_pass() => return Err(e.into()),
                Err(ProcessError::Store(StoreError::Finished(_))) => return Ok(()),
                Err(ProcessError::Deferred(_)) => {
                    report.deferred += 1;
                    store.release(msg.id)?;
                    return Ok(());
                }
                Err(e) => {
                    // Our fault on this message: leave it to the people of the mailbox.
                    tracing::error!(event = "process_failed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), error = %e);
                    report.errors += 1;
                    metrics::counter!("esurety_messages_total", "side" => "owner", "outcome" => "error").increment(1);
                    self.finish_failed(store, msg.id, MessageOutcome::Error, &e.to_string(), clock)?;
                }
            }
            crate::faults::point("processed");
            return Ok(());
        }
        let outcome = match guarded(|| flow.process(store, &msg)) {
            Ok(o) => o,
            Err(ProcessError::Store(e)) if e.stops_the_pass() => return Err(e.into()),
            Err(ProcessError::Store(StoreError::Finished(_))) => return Ok(()),
            Err(ProcessError::Deferred(why)) => {
                tracing::info!(event = "deferred", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), reason = %why);
                report.deferred += 1;
                store.release(msg.id)?;
                return Ok(());
            }
            Err(e) => {
                // A fault of ours on this message (a template, typesetting, its data in the
                // store): hold it for staff with the reason rather than retrying forever.
                tracing::error!(event = "process_failed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), error = %e);
                report.errors += 1;
                let why = format!("処理できませんでした: {e}");
                self.finish_failed(store, msg.id, MessageOutcome::Held, &why, clock)?;
                Outcome::Held(why)
            }
        };
        crate::faults::point("processed");
        count(report, &outcome);
        Ok(())
    }

    /// Records a message's failure as its outcome. If even that cannot be written for this
    /// message alone, it is left for the next pass and the others go on.
    ///
    /// An error outcome keeps nothing of the mail but the fact (it may carry a 認証キー;
    /// the mail stays in its mailbox for people); a held one keeps it for staff.
    fn finish_failed(&self, store: &mut Store, id: i64, outcome: MessageOutcome, why: &str, clock: &dyn Clock) -> Result<(), RunError> {
        let done = store.write(|tx| -> Result<(), StoreError> {
            tx.finish_message(id, outcome, Some(why), clock.now())?;
            if outcome == MessageOutcome::Error {
                tx.forget_body(id)?;
            }
            Ok(())
        });
        match done {
            Ok(()) => Ok(()),
            Err(e) if e.stops_the_pass() => Err(e.into()),
            Err(e) => {
                tracing::error!(event = "outcome_not_recorded", message = id, error = %e);
                Ok(())
            }
        }
    }
}

/// Counts a branch message's outcome, in the pass's report and in the metrics.
fn count(report: &mut RunReport, outcome: &Outcome) {
    metrics::counter!("esurety_messages_total", "side" => "branch", "outcome" => outcome.name()).increment(1);
    if let Outcome::Issued(numbers) = outcome {
        for n in numbers.iter().filter_map(|n| crate::domain::CertificateNumber::parse(n)) {
            metrics::counter!("esurety_certificates_issued_total", "product" => n.product.name()).increment(1);
        }
    }
    match outcome {
        Outcome::Issued(_) => report.issued += 1,
        Outcome::Rejected(_) => report.rejected += 1,
        Outcome::Held(_) => report.held += 1,
        Outcome::Changed(_) => report.changed += 1,
        Outcome::FormSent | Outcome::Duplicate | Outcome::Resent | Outcome::Listed | Outcome::NoChangeNeeded => report.replied += 1,
    }
}


/// Why a pipelined batch stopped: the store failed (the pass stops), or something else
/// did (the batch is done again one message at a time).
enum Stop {
    Store(StoreError),
    Retry(String),
    /// A message would have waited for a lock while the batch holds earlier messages'
    /// (PostgreSQL): the batch ends before it.
    WouldWait(String),
}

impl From<StoreError> for Stop {
    /// A batch that met another daemon's batch in a deadlock (PostgreSQL broke it by
    /// ending this one) is done again one message per transaction: several messages' locks
    /// held together are what can form a circle, one message's locks are taken in one order.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WouldWait(what) => Stop::WouldWait(what),
            e if e.stops_the_pass() && !e.is_conflict() => Stop::Store(e),
            e => Stop::Retry(e.to_string()),
        }
    }
}

impl From<ProcessError> for Stop {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::Store(e) => Stop::from(e),
            e => Stop::Retry(e.to_string()),
        }
    }
}


/// Runs one message's processing so that a bug of ours on it (a panic) becomes that
/// message's error outcome instead of stopping the daemon. Whatever the message had
/// written is rolled back with its unfinished transaction.
fn guarded<T>(f: impl FnOnce() -> Result<T, ProcessError>) -> Result<T, ProcessError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "a panic".into());
        Err(ProcessError::Bug(what))
    })
}

/// Counts an owner message's outcome, in the pass's report and in the metrics.
fn count_owner(report: &mut RunReport, outcome: &OwnerOutcome) {
    let word = match outcome {
        OwnerOutcome::Ignored => {
            report.ignored += 1;
            "ignored"
        }
        OwnerOutcome::Duplicate => {
            report.replied += 1;
            "duplicate"
        }
        OwnerOutcome::Notice => {
            report.notices += 1;
            "notice"
        }
        OwnerOutcome::Checked { accepted, rejected } => {
            report.submissions += 1;
            report.accepted += accepted;
            report.refused += rejected;
            "submission"
        }
    };
    metrics::counter!("esurety_messages_total", "side" => "owner", "outcome" => word).increment(1);
}
