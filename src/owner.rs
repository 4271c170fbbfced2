//! The owner side, one message at a time: intake → submission → check → register → reply.
//! A message without a number/key pair is not a submission: it is left exactly as it was
//! and only a log line tells of it (its content is not kept). A submission's register
//! entries, the registry's failure counts and the reply commit in one transaction.

use crate::branch::ProcessError;
use crate::check::{Checked, check};
use crate::clock::{Clock, Random};
use crate::config::{Config, Owner};
use crate::intake::letter;
use crate::outbound::compose::{Composer, Draft, ReplyTo};
use crate::registry::Registry;
use crate::store::{MessageOutcome, Store, StoredMessage, SubmissionRow};
use crate::submission::{self, worker::PdfReader};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerOutcome {
    /// Not a submission: untouched.
    Ignored,
    /// The same Message-ID was already checked and answered.
    Duplicate,
    Checked { accepted: usize, rejected: usize },
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
                store.write(|tx| tx.finish_message(msg.id, MessageOutcome::Duplicate, Some(&format!("受付番号 {first} と同じメール")), now))?;
                tracing::info!(event = "duplicate", mailbox = %msg.mailbox, message_id = %mid, first = first);
                return Ok(OwnerOutcome::Duplicate);
            }
        }
        let from = letter.from.clone().unwrap_or_default();
        // A lock in force on any of its numbers (or on its sender): the submission waits
        // for it to lift and is checked then; it is never answered "locked".
        let sender = (!from.is_empty()).then_some(from.as_str());
        for f in &reading.found {
            if let Some(lock) = self.registry.lock(store, &f.number, sender, now)? {
                return self.wait_for_lock(store, msg, owner, &letter, &lock);
            }
        }
        // The registry is asked first, each answer on its own; then what they mean is
        // registered and answered in one transaction. Asked again for this message (after
        // a crash), a failure is not counted twice.
        let asked_for = format!("message {}", msg.id);
        let verdicts = reading.found.iter().map(|f| self.registry.verify(store, &f.number, &f.key, sender, &asked_for, now))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = ReplyTo { message_id: letter.message_id.clone(), references: letter.references.clone(), subject: letter.subject.clone() };
        let checked_at = now.to_rfc3339();
        let (accepted, rejected) = store.write(|tx| -> Result<(usize, usize), ProcessError> {
            let mut results: Vec<(submission::Found, Checked, Option<crate::store::VersionRow>)> = Vec::new();
            for (f, v) in reading.found.iter().zip(verdicts) {
                let latest = match &v { crate::registry::Verification::Valid { latest, .. } => Some(latest.clone()), _ => None };
                let c = check(f, &v, owner, owner.contracts.as_deref());
                tx.register(msg.id, &SubmissionRow {
                    owner: owner.name.clone(),
                    message_id: letter.message_id.clone(),
                    from: from.clone(),
                    received_at: msg.received_at.clone(),
                    number: f.number.clone(),
                    source: f.source.clone(),
                    product: latest.as_ref().map(|l| l.contents.product.name().to_string()).or(f.product.clone()),
                    project: latest.as_ref().map(|l| l.contents.project.clone()).or(f.project.clone()),
                    result: if c.accepted { "accepted" } else { "rejected" }.into(),
                    reasons: c.reasons.clone(),
                    version: c.version,
                    checked_at: checked_at.clone(),
                })?;
                tracing::info!(event = "checked", mailbox = %msg.mailbox, message_id = letter.message_id.as_deref().unwrap_or(""), number = %f.number, accepted = c.accepted);
                results.push((f.clone(), c, latest));
            }
            let accepted: Vec<_> = results.iter().filter(|(_, c, _)| c.accepted).map(|(f, ch, l)| {
                let c = &l.as_ref().expect("accepted implies the registry's contents").contents;
                json!({"number": f.number, "project": c.project, "product": c.product.name(), "label": c.change_label(), "notes": ch.notes,
                       "checked_at": crate::text::format_era(now.date_naive()) + &now.format(" %H:%M").to_string()})
            }).collect();
            // Nothing of the registry for pairs whose key was not proven.
            let rejected: Vec<_> = results.iter().filter(|(_, c, _)| !c.accepted).map(|(f, c, _)| json!({"number": f.number, "reasons": c.reasons})).collect();
            if !from.is_empty() {
                let out = self.reply(owner, &reply, &from, &accepted, &rejected)?;
                tx.enqueue(&out, Some(msg.id), now)?;
            }
            let detail = format!("accepted {}, rejected {}", accepted.len(), rejected.len());
            tx.finish_message(msg.id, MessageOutcome::Submission, Some(&detail), now)?;
            tx.forget_body(msg.id)?;
            Ok((accepted.len(), rejected.len()))
        })?;
        Ok(OwnerOutcome::Checked { accepted, rejected })
    }

    /// Leaves a submission that met a lock for a later pass; once it has waited
    /// [`LOCK_NOTICE_HOURS`], tells the owner's staff (once).
    fn wait_for_lock(&self, store: &mut Store, msg: &StoredMessage, owner: &Owner, letter: &crate::intake::letter::Letter, lock: &crate::registry::Verification) -> Result<OwnerOutcome, ProcessError> {
        let now = self.clock.now();
        let (what, until) = match lock {
            crate::registry::Verification::SenderLocked { until } => ("送信者について確認の失敗が続いています", until),
            crate::registry::Verification::Locked { until } => ("保証契約番号について確認の失敗が続いています", until),
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

    fn reply(&self, owner: &Owner, reply: &ReplyTo, to: &str, accepted: &[serde_json::Value], rejected: &[serde_json::Value]) -> Result<crate::store::Outgoing, ProcessError> {
        let ctx = json!({"owner": owner.name, "address": owner.contracts_address, "sender": to, "accepted": accepted, "rejected": rejected});
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
