//! The owner side, one message at a time: intake → submission → check → register → reply.
//! A message without a number/key pair is not a submission: it is left exactly as it was
//! and only a log line tells of it (its content is not kept). A submission's register
//! entries, the registry's failure counts and the reply commit in one transaction.
//!
//! This folder is the owner's side: [`submission`] (every number/key pair in a message:
//! PDFs at any depth through the PDF worker, bodies, forwards) and [`check`](mod@check) (the checks of
//! `owner-side.md`, pure). It asks through the [`crate::registry::Registry`] interface (the
//! company's registry, local or remote) and never imports the branch side.

pub mod check;
pub mod events;
pub mod submission;

use crate::error::ProcessError;
use crate::owner::check::check;
use crate::clock::{Clock, Random};
use crate::config::{Config, Owner};
use crate::intake::letter;
use crate::outbound::compose::{Composer, Draft, ReplyTo};
use crate::registry::{Registry, RegistryError, Route, Verification};
use crate::store::{Store, StoredMessage, SubmissionRow};
use crate::domain::MessageOutcome;
use crate::signature::verify::{SignatureCheck, SignatureStatus, judge};
use submission::worker::PdfReader;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerOutcome {
    /// Not a submission: untouched.
    Ignored,
    /// The same Message-ID was already checked and answered.
    Duplicate,
    /// A company's notice of an event, confirmed and registered (`events`).
    Notice,
    Checked { accepted: usize, rejected: usize },
}

/// What became of one pair before anything is written.
enum Answer {
    Checked { issuer: Option<String>, verdict: Verification },
    Unchecked { issuer: Option<String>, reason: String },
}

/// How long a submission waits on a lock before the owner's staff are told.
pub const LOCK_NOTICE_HOURS: i64 = 2;

pub struct OwnerFlow<'a> {
    pub config: &'a Config,
    pub composer: &'a Composer,
    pub reader: &'a dyn PdfReader,
    /// Where number + key are checked (this store's registry, or a remote one).
    pub registry: &'a dyn Registry,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

impl OwnerFlow<'_> {
    pub fn process(&self, store: &mut Store, msg: &StoredMessage) -> Result<OwnerOutcome, ProcessError> {
        crate::faults::panic_on(msg.message_id.as_deref());
        let now = self.clock.now();
        let ignore = |store: &mut Store, why: &str| -> Result<OwnerOutcome, ProcessError> {
            store.write(|tx| -> Result<(), ProcessError> {
                tx.forget_content(msg.id)?;
                tx.finish_message(msg.id, MessageOutcome::Ignored, None, now)?;
                Ok(())
            })?;
            tracing::info!(event = "not_a_submission", mailbox = %msg.mailbox, reason = why);
            Ok(OwnerOutcome::Ignored)
        };
        let Some(owner) = self.config.owner_by_address(&msg.mailbox) else { return ignore(store, "not an owner's mailbox") };
        if msg.over(self.config.limits.max_message_bytes()) {
            return ignore(store, "larger than limits.max_message_mib");
        }
        let Ok(letter) = letter::read_with(&msg.raw, &self.config.limits) else { return ignore(store, "not a readable email") };
        let reading = submission::read(&letter, self.reader);
        // A company's notice names one number (its subject's) and carries no key, though
        // its reason may hold text that reads like one: a mail with a pair of any other
        // number is a submission and is checked as one, whatever its headers say; and a
        // header the registry does not confirm changes nothing.
        let subject_number = crate::domain::certificate_numbers(&letter.subject).into_iter().next();
        if let Some(id) = letter.event.clone()
            && reading.found.iter().all(|f| crate::domain::CertificateNumber::parse(&f.number).map(|n| n.to_string()) == subject_number)
            && let Some(told) = self.notice(store, msg, &letter, &id)?
        {
            return Ok(told);
        }
        if reading.found.is_empty() {
            let why = if reading.unreadable.is_empty() { "no number/key pair" } else { "no number/key pair; a PDF could not be read" };
            return ignore(store, why);
        }
        if reading.found.len() > self.config.limits.max_pairs {
            // Not a submission anyone makes; checking them all would be a registry check
            // each (and failures counted against real numbers): left to the owner's staff.
            return ignore(store, "more number/key pairs than limits.max_pairs");
        }
        if let Some(mid) = &letter.message_id {
            let earlier = store.write(|tx| tx.earlier_with_message_id(&msg.mailbox, mid, msg.id))?;
            if let Some((first, outcome)) = earlier
                && outcome != MessageOutcome::Ignored
            {
                store.write(|tx| -> Result<(), ProcessError> {
                    tx.finish_message(msg.id, MessageOutcome::Duplicate, Some(&format!("受付番号 {first} と同じメール")), now)?;
                    tx.forget_body(msg.id)?;
                    Ok(())
                })?;
                tracing::info!(event = "duplicate", mailbox = %msg.mailbox, message_id = %mid, first = first);
                return Ok(OwnerOutcome::Duplicate);
            }
        }
        let from = letter.from.clone().unwrap_or_default();
        let sender = (!from.is_empty()).then_some(from.as_str());
        // Where each pair is checked; a pair no registry here can check is `unchecked`.
        let routes: Vec<Route> = reading.found.iter().map(|f| self.registry.route(f)).collect();
        // A lock in force on any of its numbers (or on its sender): the submission waits
        // for it to lift and is checked then; it is never answered "locked".
        for (f, route) in reading.found.iter().zip(&routes) {
            if matches!(route, Route::Ask(_))
                && let Some(lock) = self.registry.lock(store, &f.number, sender, now)?
            {
                return self.wait_for_lock(store, msg, owner, &letter, &lock);
            }
        }
        // The registry is asked first, each answer on its own; then what they mean is
        // registered and answered in one transaction. Asked again for this message (after
        // a crash, or a registry that was away), a failure is not counted twice.
        let asked_for = format!("message {}", msg.id);
        let mut answers: Vec<Answer> = Vec::new();
        for (f, route) in reading.found.iter().zip(routes) {
            // The lock again before each pair: this message's own wrong keys may have
            // just locked its sender.
            if matches!(route, Route::Ask(_))
                && let Some(lock) = self.registry.lock(store, &f.number, sender, now)?
            {
                return self.wait_for_lock(store, msg, owner, &letter, &lock);
            }
            answers.push(match route {
                Route::Unchecked { issuer, reason } => Answer::Unchecked { issuer, reason },
                Route::Ask(issuer) => match self.registry.verify(store, issuer.as_deref(), &f.number, &f.key, sender, &asked_for, now) {
                    Ok(lock @ (Verification::Locked { .. } | Verification::SenderLocked { .. })) => return self.wait_for_lock(store, msg, owner, &letter, &lock),
                    Ok(v) => Answer::Checked { issuer: issuer.or_else(|| (!self.config.company.name.is_empty()).then(|| self.config.company.name.clone())), verdict: v },
                    Err(RegistryError::Store(e)) => return Err(e.into()),
                    // Asking again would get the same refusal: a person checks it.
                    Err(e @ RegistryError::Unanswerable { .. }) => Answer::Unchecked { issuer, reason: format!("確認サービスがこの問い合わせを受け付けませんでした（{e}）。担当者が確認します") },
                    Err(e) => return self.wait_for_registry(store, msg, owner, &letter, &e),
                },
            });
        }
        // Each PDF's signature, judged with the certificates trusted for its issuer. It is
        // registered beside the registry's answer, which alone decides.
        let signatures: Vec<SignatureCheck> = reading.found.iter().zip(&answers).map(|(f, a)| {
            let issuer = match a {
                Answer::Checked { issuer, .. } | Answer::Unchecked { issuer, .. } => issuer.as_deref(),
            };
            let inspected = reading.signatures.get(&f.number).and_then(Option::as_ref);
            judge(inspected, &self.registry.trust(issuer), now.into())
        }).collect();
        let reply = ReplyTo { message_id: letter.message_id.clone(), references: letter.references.clone(), subject: letter.subject.clone() };
        let checked_at = now.to_rfc3339();
        let (accepted, rejected) = store.write(|tx| -> Result<(usize, usize), ProcessError> {
            let mut accepted = Vec::new();
            let mut rejected = Vec::new();
            let mut unchecked = Vec::new();
            for ((f, a), sig) in reading.found.iter().zip(answers).zip(&signatures) {
                if sig.status == SignatureStatus::Broken {
                    tracing::warn!(event = "signature_broken", mailbox = %msg.mailbox, message_id = letter.message_id.as_deref().unwrap_or(""), number = %f.number, reason = sig.reason.as_deref().unwrap_or(""));
                }
                let mut row = SubmissionRow {
                    id: 0,
                    settled_by: None,
                    owner: owner.name.clone(),
                    message_id: letter.message_id.clone(),
                    from: from.clone(),
                    received_at: msg.received_at.clone(),
                    number: f.number.clone(),
                    source: f.source.clone(),
                    product: f.product.clone(),
                    project: f.project.clone(),
                    result: String::new(),
                    reasons: vec![],
                    version: None,
                    checked_at: checked_at.clone(),
                    issuer: None,
                    signature: Some(sig.status.as_str().to_string()),
                    signature_reason: sig.reason.clone(),
                };
                match a {
                    Answer::Unchecked { issuer, reason } => {
                        row.result = "unchecked".into();
                        row.reasons = vec![reason.clone()];
                        row.issuer = issuer;
                        tx.register(msg.id, &row)?;
                        tracing::info!(event = "unchecked", mailbox = %msg.mailbox, message_id = letter.message_id.as_deref().unwrap_or(""), number = %f.number);
                        unchecked.push(json!({"number": f.number, "project": f.project, "reason": reason}));
                    }
                    Answer::Checked { issuer, verdict } => {
                        let latest = match &verdict { Verification::Valid { latest, .. } => Some(latest.clone()), _ => None };
                        let c = check(f, &verdict, owner, owner.contracts.as_deref());
                        row.product = latest.as_ref().map(|l| l.contents.product.name().to_string()).or(row.product);
                        row.project = latest.as_ref().map(|l| l.contents.project.clone()).or(row.project);
                        row.result = if c.accepted { "accepted" } else { "rejected" }.into();
                        row.reasons = c.reasons.clone();
                        row.version = c.version;
                        row.issuer = issuer;
                        tx.register(msg.id, &row)?;
                        tracing::info!(event = "checked", mailbox = %msg.mailbox, message_id = letter.message_id.as_deref().unwrap_or(""), number = %f.number, accepted = c.accepted);
                        if c.accepted {
                            let l = &latest.as_ref().expect("accepted implies the registry's contents").contents;
                            accepted.push(json!({"number": f.number, "project": l.project, "product": l.product.name(), "label": l.change_label(), "notes": c.notes,
                                   "checked_at": crate::text::format_era(now.date_naive()) + &now.format(" %H:%M").to_string()}));
                        } else {
                            // Nothing of the registry for pairs whose key was not proven.
                            rejected.push(json!({"number": f.number, "reasons": c.reasons}));
                        }
                    }
                }
            }
            if !from.is_empty() {
                let out = self.reply(owner, &reply, &from, &accepted, &rejected, &unchecked)?;
                tx.enqueue(&out, Some(msg.id), now)?;
            }
            let detail = format!("accepted {}, rejected {}, unchecked {}", accepted.len(), rejected.len(), unchecked.len());
            tx.finish_message(msg.id, MessageOutcome::Submission, Some(&detail), now)?;
            tx.forget_body(msg.id)?;
            Ok((accepted.len(), rejected.len()))
        })?;
        Ok(OwnerOutcome::Checked { accepted, rejected })
    }

    /// Leaves a submission whose registry cannot answer now (unreachable, or refusing our
    /// token) for a later pass; once it has waited `registry_wait_hours`, tells the
    /// owner's staff (once). Nothing is rejected meanwhile.
    fn wait_for_registry(&self, store: &mut Store, msg: &StoredMessage, owner: &Owner, letter: &crate::intake::letter::Letter, e: &RegistryError) -> Result<OwnerOutcome, ProcessError> {
        let now = self.clock.now();
        let reason = e.to_string();
        let hours = self.config.registry_wait_hours as i64;
        let received = chrono::DateTime::parse_from_rfc3339(&msg.received_at).unwrap_or(now);
        if let Some(staff) = &owner.staff_address
            && now - received >= chrono::Duration::hours(hours)
            && !store.has_mail_about(msg.id, "registry_wait")?
        {
            let ctx = json!({"name": owner.name, "hours": hours, "received": received.format("%Y-%m-%d %H:%M").to_string(),
                             "from": letter.from, "subject": letter.subject, "message_id": letter.message_id, "reason": reason});
            let out = self.composer.compose(Draft {
                kind: "registry_wait", template: "mail/registry_wait.txt", context: ctx,
                from_name: format!("esurety {}", owner.name), from: owner.contracts_address.clone(),
                to: vec![staff.clone()], reply: None, attachments: vec![],
            }, self.rng, now)?;
            store.write(|tx| tx.enqueue(&out, Some(msg.id), now))?;
        }
        tracing::warn!(event = "registry_wait", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), reason = %reason);
        Err(ProcessError::Deferred(reason))
    }

    /// Leaves a submission that met a lock for a later pass; once it has waited
    /// [`LOCK_NOTICE_HOURS`], tells the owner's staff (once).
    fn wait_for_lock(&self, store: &mut Store, msg: &StoredMessage, owner: &Owner, letter: &crate::intake::letter::Letter, lock: &crate::registry::Verification) -> Result<OwnerOutcome, ProcessError> {
        let now = self.clock.now();
        let (what, until) = match lock {
            Verification::SenderLocked { until } => ("送信者について、またはこのシステムから確認サービスへの問い合わせについて確認の失敗が続いています", until),
            Verification::Locked { until } => ("保証契約番号について確認の失敗が続いています", until),
            _ => ("", &now),
        };
        let reason = format!("{what}（{} にロックが解けます）", until.format("%Y-%m-%d %H:%M"));
        let received = chrono::DateTime::parse_from_rfc3339(&msg.received_at).unwrap_or(now);
        if let Some(staff) = &owner.staff_address
            && now - received >= chrono::Duration::hours(LOCK_NOTICE_HOURS)
            && !store.has_mail_about(msg.id, "lock_wait")?
        {
            let ctx = json!({"name": owner.name, "hours": LOCK_NOTICE_HOURS, "received": received.format("%Y-%m-%d %H:%M").to_string(),
                             "from": letter.from, "subject": letter.subject, "message_id": letter.message_id, "reason": reason});
            let out = self.composer.compose(Draft {
                kind: "lock_wait", template: "mail/lock_wait.txt", context: ctx,
                from_name: format!("esurety {}", owner.name), from: owner.contracts_address.clone(),
                to: vec![staff.clone()], reply: None, attachments: vec![],
            }, self.rng, now)?;
            store.write(|tx| tx.enqueue(&out, Some(msg.id), now))?;
        }
        tracing::info!(event = "deferred", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), reason = %reason);
        Err(ProcessError::Deferred(reason))
    }

    fn reply(&self, owner: &Owner, reply: &ReplyTo, to: &str, accepted: &[serde_json::Value], rejected: &[serde_json::Value], unchecked: &[serde_json::Value]) -> Result<crate::store::Outgoing, ProcessError> {
        let ctx = json!({"owner": owner.name, "address": owner.contracts_address, "sender": to, "accepted": accepted, "rejected": rejected, "unchecked": unchecked});
        Ok(self.composer.compose(Draft {
            kind: "receipt",
            template: "mail/receipt.txt",
            context: ctx,
            from_name: format!("{} 契約担当", owner.name),
            from: owner.contracts_address.clone(),
            to: vec![to.to_string()],
            reply: Some(reply),
            attachments: vec![],
        }, self.rng, self.clock.now())?)
    }
}
