//! `esurety run`: one pass takes every waiting message from every mailbox into the store,
//! processes every message whose outcome is not committed yet, marks each in its mailbox,
//! then delivers what the outbox has due.
//!
//! Exactly once: a message is stored (committed) before it is processed; its outcome and
//! its reply are committed together; marking it in the mailbox comes last and is repeated
//! on the next pass if a crash came in between, because the store, not the mailbox,
//! says what is done. Deliveries are recorded per recipient and the Maildir transport
//! recognises a delivery it already made.

use crate::branch::{BranchFlow, Outcome, ProcessError};
use crate::clock::{Clock, Random};
use crate::config::Config;
use crate::documents::Documents;
use crate::intake::Mark;
use crate::intake::maildir::Maildir;
use crate::outbound::compose::Composer;
use crate::outbound::maildir::MaildirTransport;
use crate::outbound::{DeliveryReport, deliver};
use crate::owner::{OwnerFlow, OwnerOutcome};
use crate::registry::Lockout;
use crate::submission::worker::{Isolated, PdfReader};
use crate::store::{Incoming, Store, StoreError};
use crate::templates::TemplateSet;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the mailbox {path}: {source}")]
    Mailbox { path: String, source: std::io::Error },
    #[error("cannot load the templates: {0}")]
    Templates(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub stored: usize,
    pub issued: usize,
    pub rejected: usize,
    pub held: usize,
    pub replied: usize,
    /// Owner side: submissions checked, pairs accepted and rejected, other mail left alone.
    pub submissions: usize,
    pub accepted: usize,
    pub refused: usize,
    pub ignored: usize,
    pub errors: usize,
    pub delivery: DeliveryReport,
}

/// What a pass needs that lives as long as the process: templates parsed, fonts loaded.
pub struct Engine {
    pub config: Config,
    pub composer: Composer,
    pub documents: Documents,
    pub reader: Box<dyn PdfReader>,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, RunError> {
        let templates = TemplateSet::load(config.templates.as_deref()).map_err(|e| RunError::Templates(e.to_string()))?;
        let composer = Composer::new(&templates).map_err(|e| RunError::Templates(e.to_string()))?;
        let documents = Documents::new(&templates).map_err(|e| RunError::Templates(e.to_string()))?;
        // PDFs are read by a worker process of this same binary (see submission::worker).
        let exe = std::env::current_exe().map_err(|e| RunError::Templates(format!("cannot find the esurety binary: {e}")))?;
        let reader = Box::new(Isolated::new(exe, std::time::Duration::from_secs(10), 1 << 30));
        Ok(Engine { config, composer, documents, reader })
    }

    /// Every watched mailbox: (address, side, Maildir).
    fn mailboxes(&self) -> Vec<(String, &'static str, Maildir)> {
        let root = &self.config.mail.maildir_root;
        let branches = self.config.branches.iter().map(|b| (b.address.clone(), "branch"));
        let owners = self.config.owners.iter().map(|o| (o.contracts_address.clone(), "owner"));
        let mut all: Vec<(String, &'static str, Maildir)> = Vec::new();
        for (a, side) in branches.chain(owners) {
            if !all.iter().any(|(x, _, _)| *x == a) {
                let md = Maildir::new(root.join(&a));
                all.push((a, side, md));
            }
        }
        all
    }

    /// One pass over every mailbox and the outbox.
    pub fn run_once(&self, store: &mut Store, clock: &dyn Clock, rng: &dyn Random) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        let boxes = self.mailboxes();

        // 1. Store every waiting message before anything else happens.
        for (address, side, md) in &boxes {
            let waiting = md.waiting().map_err(|source| RunError::Mailbox { path: md.path.display().to_string(), source })?;
            for entry in waiting {
                if store.known(address, &entry.uid)?.is_some() {
                    continue;
                }
                let raw = match std::fs::read(&entry.path) {
                    Ok(raw) => raw,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // moved by a client meanwhile
                    Err(source) => return Err(RunError::Mailbox { path: entry.path.display().to_string(), source }),
                };
                let message_id = crate::intake::letter::read(&raw).ok().and_then(|l| l.message_id);
                let incoming = Incoming { mailbox: address.clone(), side, source_uid: entry.uid.clone(), raw };
                if store.record_incoming(&incoming, message_id.as_deref(), clock.now())?.is_some() {
                    report.stored += 1;
                    tracing::info!(event = "received", mailbox = %address, message_id = message_id.as_deref().unwrap_or(""), uid = %entry.uid);
                }
            }
        }

        crate::faults::point("stored");

        // 2. Process what has no committed outcome yet (also what a crash left behind).
        let flow = BranchFlow { config: &self.config, composer: &self.composer, documents: &self.documents, clock, rng };
        let owner_flow = OwnerFlow { config: &self.config, composer: &self.composer, reader: self.reader.as_ref(), clock, rng, lockout: Lockout::default() };
        for msg in store.pending_messages()? {
            if msg.side == "owner" {
                match owner_flow.process(store, &msg) {
                    Ok(OwnerOutcome::Ignored) => report.ignored += 1,
                    Ok(OwnerOutcome::Duplicate) => report.replied += 1,
                    Ok(OwnerOutcome::Checked { accepted, rejected }) => {
                        report.submissions += 1;
                        report.accepted += accepted;
                        report.refused += rejected;
                    }
                    Err(ProcessError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        // Our fault on this message: leave it to the people of the mailbox.
                        tracing::error!(event = "process_failed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), error = %e);
                        report.errors += 1;
                        store.write(|tx| tx.finish_message(msg.id, "error", Some(&e.to_string()), clock.now()))?;
                    }
                }
                crate::faults::point("processed");
                continue;
            }
            let outcome = match flow.process(store, &msg) {
                Ok(o) => o,
                Err(ProcessError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    // A fault of ours on this message (a template, typesetting): hold it for
                    // staff with the reason rather than retrying forever.
                    tracing::error!(event = "process_failed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), error = %e);
                    report.errors += 1;
                    let why = format!("処理できませんでした: {e}");
                    store.write(|tx| tx.finish_message(msg.id, "held", Some(&why), clock.now()))?;
                    Outcome::Held(why)
                }
            };
            crate::faults::point("processed");
            match outcome {
                Outcome::Issued(_) => report.issued += 1,
                Outcome::Rejected(_) => report.rejected += 1,
                Outcome::Held(_) => report.held += 1,
                Outcome::FormSent | Outcome::Duplicate => report.replied += 1,
            }
        }

        // 3. Mark in the mailbox what the store says is done (again after a crash).
        for (address, side, md) in &boxes {
            let waiting = md.waiting().map_err(|source| RunError::Mailbox { path: md.path.display().to_string(), source })?;
            for entry in waiting {
                if let Some((_, state, outcome)) = store.known(address, &entry.uid)?
                    && state == "done"
                {
                    let mark = match (*side, outcome.as_deref()) {
                        (_, Some("ignored" | "error")) => continue,
                        ("owner", _) => Mark::Checked,
                        (_, Some("held")) => Mark::Held,
                        _ => Mark::Processed,
                    };
                    if let Err(e) = md.mark(&entry, mark) {
                        tracing::warn!(event = "mark_failed", mailbox = %address, uid = %entry.uid, error = %e);
                    }
                }
            }
        }

        crate::faults::point("marked");

        // 4. Send what is due.
        let transport = MaildirTransport { root: self.config.mail.maildir_root.clone() };
        report.delivery = deliver(store, &transport, clock)?;
        Ok(report)
    }
}
