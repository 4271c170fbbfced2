//! What a pass did (its counts, the mailboxes it could not read, its deliveries, its
//! steps' times) and what stops it: written by `process.rs` and `pass.rs`, read by the
//! loop, the demo and the command line.

use crate::engine::SetupError;
use crate::outbound::DeliveryReport;
use crate::store::StoreError;

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
    /// Owner side: companies' notices of events, confirmed and registered.
    pub notices: usize,
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
        self.notices += b.notices;
        self.errors += b.errors;
        self.deferred += b.deferred;
    }
}
