//! The staff's desk: what waits for branch and owner staff and what they do about it, from
//! the command line and the web alike. Held messages are released (processed as if from the registered contractor) or
//! rejected with a reason that is mailed; paper certificates are typeset for printing and
//! marked printed; mail given up on is retried; an owner's submission is settled. Every action is recorded with who did it
//! and when (`staff_actions`), in the transaction that does it.
//!
//! This folder is what staff do, the same functions for the command line (`esurety staff`,
//! `esurety render`) and the web desk (`web/desk/`): `mod.rs` the actions, [`digest`] the
//! mails to staff (the daily digest, a mail given up on), [`users`] the desk's users, roles,
//! passwords and sessions. The store keeps what they record (`store/desk.rs`).

pub mod certificates;
pub mod digest;
pub mod users;

use crate::branch::application::form;
use crate::clock::{Clock, Random};
use crate::config::Contractor;
use crate::branch::documents::DocumentKind;
use crate::intake::letter;
use crate::outbound::compose::{ComposeError, Draft, ReplyTo};
use crate::engine::Engine;
use crate::store::{ActionError, CertificateRow, OutboxRow, Store, StoreError, StoredMessage};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not in a state the action applies to (already released, not held, printed …).
    #[error("{0}")]
    NotApplicable(String),
    /// Someone else did it first (another person, perhaps on another server).
    #[error("{0}")]
    AlreadyDone(String),
    /// The action needs something the command did not say (who it is released as).
    #[error("{0}")]
    Needs(String),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error("cannot typeset {0}: {1}")]
    Render(String, String),
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

impl From<ActionError> for DeskError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Store(e) => DeskError::Store(e),
            ActionError::NotApplicable(s) => DeskError::NotApplicable(s),
            ActionError::AlreadyDone(s) => DeskError::AlreadyDone(s),
        }
    }
}

/// A held message as staff see it.
#[derive(Debug, Clone)]
pub struct Held {
    pub message: StoredMessage,
    pub from: Option<String>,
    pub subject: String,
    /// The contractor the form names (受注者名), when registered: the default to release as.
    pub named: Option<String>,
}

/// Every held message, oldest first. Each is read on its own and listed without its bytes
/// (`message.raw` is empty), so a long list of large held mails is never all in memory.
pub fn held(engine: &Engine, store: &Store) -> Result<Vec<Held>, DeskError> {
    let mut out = Vec::new();
    for id in store.held_ids()? {
        if let Some(mut h) = held_one(engine, store, id)? {
            h.message.raw = Vec::new();
            out.push(h);
        }
    }
    Ok(out)
}

/// One held message with its bytes, or `None` when `id` is not held.
pub fn held_one(engine: &Engine, store: &Store, id: i64) -> Result<Option<Held>, DeskError> {
    let Some(m) = store.message(id)?.filter(|m| m.side == crate::domain::Side::Branch && m.state == "done" && m.outcome == Some(crate::domain::MessageOutcome::Held)) else {
        return Ok(None);
    };
    let letter = letter::read_with(&m.raw, &engine.config.limits).ok();
    let named = letter.as_ref().and_then(|l| {
        let text = l.texts().map(|(_, t)| t).find(|t| form::has_form(t))?;
        let name = form::parse(text).contractor?;
        engine.config.contractor_by_name(&name)
            .or_else(|| engine.config.joint_venture(&name).and_then(|j| engine.config.contractor_by_name(&j.representative)))
            .map(|c| c.name.clone())
    });
    Ok(Some(Held {
        from: letter.as_ref().and_then(|l| l.from.clone()),
        subject: letter.map(|l| l.subject).unwrap_or_default(),
        named,
        message: m,
    }))
}

/// Releases a held message to be processed by the next pass as if `contractor` (or, when
/// not given, the registered contractor its form names) had sent it from a registered
/// address. Returns the contractor's name.
pub fn release(engine: &Engine, store: &mut Store, id: i64, contractor: Option<&str>, by: &str, clock: &dyn Clock) -> Result<String, DeskError> {
    let entry = held_one(engine, store, id)?
        .ok_or_else(|| DeskError::NotApplicable(format!("message {id} is not held")))?;
    let c: &Contractor = match contractor {
        Some(name) => engine.config.contractor_by_name(name).ok_or_else(|| DeskError::Needs(format!("「{name}」 is not a registered contractor")))?,
        None => {
            let name = entry.named.ok_or_else(|| DeskError::Needs(format!("message {id} names no registered contractor: say which with --as NAME")))?;
            engine.config.contractor_by_name(&name).expect("named comes from the configuration")
        }
    };
    store.write(|tx| tx.release_held(id, &c.name, by, clock.now()))?;
    tracing::info!(event = "released", message = id, by = by);
    Ok(c.name.clone())
}

/// Rejects a held message with staff's reason, mailed to its sender. Returns the recipient.
pub fn reject(engine: &Engine, store: &mut Store, id: i64, reason: &str, by: &str, clock: &dyn Clock, rng: &dyn Random) -> Result<String, DeskError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DeskError::Needs("give the reason to mail with --reason".into()));
    }
    let msg = held_one(engine, store, id)?.map(|h| h.message)
        .ok_or_else(|| DeskError::NotApplicable(format!("message {id} is not held")))?;
    let letter = letter::read(&msg.raw).map_err(|_| DeskError::NotApplicable(format!("message {id} cannot be read as an email, so it cannot be answered")))?;
    let to = letter.from.clone().ok_or_else(|| DeskError::NotApplicable(format!("message {id} has no sender to answer")))?;
    let branch = engine.config.branch_by_address(&msg.mailbox)
        .ok_or_else(|| DeskError::NotApplicable(format!("message {id} did not arrive in a branch mailbox")))?;
    let reply = ReplyTo { message_id: letter.message_id.clone(), references: letter.references.clone(), subject: letter.subject.clone() };
    let now = clock.now();
    let ctx = json!({
        "company": {"name": engine.config.company.name},
        "branch": {"name": branch.name, "tel": branch.tel, "fax": branch.fax, "address": branch.address},
        "reason": reason, "subject": letter.subject,
        "received": crate::text::format_era(chrono::DateTime::parse_from_rfc3339(&msg.received_at).map(|t| t.date_naive()).unwrap_or(now.date_naive())),
    });
    let out = engine.composer.compose(Draft {
        kind: "staff_rejection", template: "mail/staff_rejection.txt", context: ctx,
        from_name: format!("{} {}", engine.config.company.name, branch.name),
        from: branch.address.clone(), to: vec![to.clone()], reply: Some(&reply), attachments: vec![],
    }, rng, now)?;
    store.write(|tx| -> Result<(), DeskError> {
        tx.reject_held(id, reason, by, now)?;
        tx.enqueue(&out, Some(id), now).map_err(DeskError::from)?;
        Ok(())
    })?;
    tracing::info!(event = "rejected_by_staff", message = id, by = by);
    Ok(to)
}

/// Paper certificates waiting to be printed.
pub fn paper(store: &Store) -> Result<Vec<CertificateRow>, DeskError> {
    Ok(store.paper_waiting()?)
}

/// Typesets the printable PDFs of a paper certificate (its current version: the
/// certificate, and the fee statement when asked for) into `dir`.
pub fn print(engine: &Engine, row: &CertificateRow, dir: &Path, clock: &dyn Clock) -> Result<Vec<PathBuf>, DeskError> {
    std::fs::create_dir_all(dir).map_err(|e| DeskError::Write(dir.to_path_buf(), e))?;
    let c = &row.latest;
    let mut kinds = vec![DocumentKind::Certificate];
    if c.fee_statement {
        kinds.push(DocumentKind::Fee);
    }
    let mut paths = Vec::new();
    for kind in kinds {
        let pdf = engine.documents.render(kind, &engine.config, c, None, clock.now()).map_err(|e| DeskError::Render(row.number.clone(), e.to_string()))?;
        // The name is built from the number and fixed words only (see documents::data).
        let path = dir.join(crate::branch::documents::data::file_name(kind, c));
        std::fs::write(&path, pdf).map_err(|e| DeskError::Write(path.clone(), e))?;
        paths.push(path);
    }
    Ok(paths)
}

pub fn printed(store: &mut Store, number: &str, by: &str, clock: &dyn Clock) -> Result<(), DeskError> {
    let number = crate::domain::CertificateNumber::parse(number).map(|n| n.to_string()).unwrap_or_else(|| number.to_string());
    store.write(|tx| tx.mark_printed(&number, by, clock.now()))?;
    tracing::info!(event = "printed", number = %number, by = by);
    Ok(())
}

/// Outgoing mail given up on.
pub fn failed(store: &Store) -> Result<Vec<OutboxRow>, DeskError> {
    Ok(store.outbox()?.into_iter().filter(|r| r.status == crate::domain::OutboxStatus::Failed).collect())
}

/// Puts a failed mail back in the outbox; the next sweep sends it.
pub fn retry(store: &mut Store, message_id: &str, by: &str, clock: &dyn Clock) -> Result<(), DeskError> {
    let id = message_id.trim();
    let id = if id.starts_with('<') { id.to_string() } else { format!("<{id}>") };
    store.write(|tx| tx.retry_failed(&id, by, clock.now()))?;
    tracing::info!(event = "retry", message_id = %id, by = by);
    Ok(())
}

/// What a document of a certificate's current version is typeset from: the version, and
/// its key for the key notice (electronic only).
pub struct DocumentSource {
    row: CertificateRow,
    key: Option<crate::domain::AuthKey>,
    /// The file as first issued, when it was kept (all but the key notice): given
    /// again byte for byte, so its hash is the one the registry lists.
    kept: Option<Vec<u8>>,
}

/// Reads what [`typeset`] needs (the store is needed only for this, not for typesetting).
pub fn document_source(engine: &Engine, store: &Store, number: &str, kind: DocumentKind) -> Result<DocumentSource, DeskError> {
    let row = store.certificate(number)?.ok_or_else(|| DeskError::NotApplicable(format!("no certificate {number}")))?;
    let key = if kind == DocumentKind::Notice {
        Some(store.key_of(number, &engine.secrets)?.ok_or_else(|| DeskError::NotApplicable(format!("{number} is a paper certificate: it has no key notice")))?)
    } else {
        None
    };
    let kept = if kind == DocumentKind::Notice { None } else { store.issued_pdf(number, row.latest.version, kind.as_str())? };
    Ok(DocumentSource { row, key, kept })
}

/// [`document_source`] for a person who takes the document (`by`, from the desk): a key
/// notice carries the key in clear, so its taking is recorded (who, when, which
/// certificate and version) before it is typeset.
pub fn take_document(engine: &Engine, store: &mut Store, number: &str, kind: DocumentKind, by: &str, clock: &dyn Clock) -> Result<DocumentSource, DeskError> {
    let source = document_source(engine, store, number, kind)?;
    if kind == DocumentKind::Notice {
        // Recorded before it is typeset: no notice leaves without its record.
        store.write(|tx| tx.record_action(by, "notice_download", &source.row.number, Some(&format!("version {}", source.row.latest.version)), clock.now()))?;
        tracing::info!(event = "notice_taken", number = %number, by = by);
    }
    Ok(source)
}

/// Typesets a document read by [`document_source`]: `(file name, PDF)`.
pub fn typeset(engine: &Engine, source: &DocumentSource, kind: DocumentKind, clock: &dyn Clock) -> Result<(String, Vec<u8>), DeskError> {
    crate::faults::pause("desk_typesetting");
    let c = &source.row.latest;
    if let Some(kept) = &source.kept {
        return Ok((crate::branch::documents::data::file_name(kind, c), kept.clone()));
    }
    let pdf = engine.documents.render(kind, &engine.config, c, source.key.as_ref(), clock.now()).map_err(|e| DeskError::Render(source.row.number.clone(), e.to_string()))?;
    Ok((crate::branch::documents::data::file_name(kind, c), pdf))
}

/// A document of a certificate's current version, typeset again: the key notice (with
/// its key, electronic only), the certificate or the fee statement. `(file name, PDF)`.
pub fn document(engine: &Engine, store: &Store, number: &str, kind: DocumentKind, clock: &dyn Clock) -> Result<(String, Vec<u8>), DeskError> {
    typeset(engine, &document_source(engine, store, number, kind)?, kind, clock)
}

/// 再送 by staff: the current version's documents (key notice and certificate for an
/// electronic one, the certificate for paper) to the registered addresses of the
/// certificate's contractor. Returns the recipients.
pub fn resend(engine: &Engine, store: &mut Store, number: &str, by: &str, clock: &dyn Clock, rng: &dyn Random) -> Result<Vec<String>, DeskError> {
    let row = store.certificate(number)?.ok_or_else(|| DeskError::NotApplicable(format!("no certificate {number}")))?;
    let c = &row.latest;
    let contractor_name = c.jv.as_deref().and_then(|jv| engine.config.joint_venture(jv)).map(|j| j.representative.clone()).unwrap_or_else(|| c.contractor.clone());
    let contractor = engine.config.contractor_by_name(&contractor_name)
        .ok_or_else(|| DeskError::NotApplicable(format!("{} is not a registered contractor: no address to send to", c.contractor)))?;
    let branch = engine.config.branch_by_code(&c.office_code).ok_or_else(|| DeskError::NotApplicable(format!("no branch with office code {}", c.office_code)))?;
    let now = clock.now();
    let electronic = c.format == crate::domain::Format::Electronic;
    let kinds: &[DocumentKind] = if electronic { &[DocumentKind::Notice, DocumentKind::Certificate] } else { &[DocumentKind::Certificate] };
    let mut entry = json!({"product": c.product.name(), "format": c.format.name(), "number": c.number, "project": c.project, "owner": c.owner, "electronic": electronic});
    let mut attachments = Vec::new();
    let mut issued = Vec::new();
    for kind in kinds {
        let source = document_source(engine, store, number, *kind)?;
        // A 変更 committed meanwhile: the documents would be of two versions.
        if source.row.latest.version != c.version {
            return Err(DeskError::NotApplicable(format!("{number} changed while it was being resent; resend it again")));
        }
        let (name, pdf) = typeset(engine, &source, *kind, clock)?;
        issued.push((kind.as_str(), pdf.clone()));
        entry[match kind { DocumentKind::Notice => "notice_file", DocumentKind::Certificate => "certificate_file", DocumentKind::Fee => "fee_file", DocumentKind::Reservation => "reservation_file" }] = json!(name);
        attachments.push((name, pdf));
    }
    let ctx = json!({
        "contractor": c.jv.clone().unwrap_or_else(|| c.contractor.clone()), "c": entry,
        "company": {"name": engine.config.company.name},
        "branch": {"name": branch.name, "tel": branch.tel, "fax": branch.fax, "address": branch.address},
    });
    let out = engine.composer.compose(Draft {
        kind: "resend", template: "mail/resend.txt", context: ctx,
        from_name: format!("{} {}", engine.config.company.name, branch.name),
        from: branch.address.clone(), to: contractor.emails.clone(), reply: None, attachments,
    }, rng, now)?;
    store.write(|tx| -> Result<(), DeskError> {
        tx.enqueue(&out, None, now)?;
        // What is mailed is listed by the registry (a kept file again is the same row).
        for (kind, pdf) in &issued {
            tx.put_issued_document(number, c.version, kind, pdf, now)?;
        }
        tx.record_action(by, "resend", number, Some(&contractor.emails.join(", ")), now)?;
        Ok(())
    })?;
    tracing::info!(event = "resent_by_staff", number = %number, by = by);
    Ok(contractor.emails.clone())
}

/// An `unchecked` submission settled by a person (checked by hand): accepted or rejected,
/// with a note (required when rejected: it is the reason).
pub fn settle(store: &mut Store, id: i64, accepted: bool, note: &str, by: &str, clock: &dyn Clock) -> Result<(), DeskError> {
    let note = note.trim();
    if !accepted && note.is_empty() {
        return Err(DeskError::Needs("give the reason for rejecting it".into()));
    }
    store.write(|tx| tx.settle_submission(id, accepted, note, by, clock.now()))?;
    tracing::info!(event = "settled_by_hand", submission = id, accepted, by = by);
    Ok(())
}
