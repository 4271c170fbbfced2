//! The outcomes that end in one reply or none: held for staff, rejected with every
//! problem, a reply from a template alone, and a duplicate pointed to what was issued.

use super::{BranchFlow, Outcome};
use crate::config::{Branch, Contractor};
use crate::intake::letter::Letter;
use crate::error::ProcessError;
use crate::outbound::compose::ReplyTo;
use crate::store::{CertificateRow, Store, StoredMessage};
use crate::domain::MessageOutcome;
use serde_json::json;

pub(super) const REJECT_APPLICATION: (&str, &str) = ("rejection", "mail/rejection.txt");
pub(super) const REJECT_CHANGE: (&str, &str) = ("change_rejection", "mail/change_rejection.txt");

impl BranchFlow<'_> {
    pub(super) fn hold(&self, store: &mut Store, msg: &StoredMessage, why: String) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        store.write(|tx| tx.finish_message(msg.id, MessageOutcome::Held, Some(&why), now))?;
        tracing::info!(event = "held", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), reason = %why);
        Ok(Outcome::Held(why))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, reply: &ReplyTo, from: &str, contractor: Option<&str>, problems: Vec<String>, warnings: Vec<String>, form: Option<&str>, (kind, template): (&'static str, &str)) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let ctx = json!({"contractor": contractor, "problems": problems, "warnings": warnings, "form": form.map(|f| crate::text::printable(f.trim()))});
        let out = self.draft(branch, kind, template, ctx, reply, vec![from.to_string()], vec![])?;
        let n = problems.len();
        store.write(|tx| -> Result<(), ProcessError> {
            tx.record_application(msg.id, &branch.office_code, "rejected", from, contractor, &json!(problems), &warnings, form, now)?;
            tx.enqueue(&out, Some(msg.id), now)?;
            tx.finish_message(msg.id, MessageOutcome::Rejected, Some(&problems.join("\n")), now)?;
            Ok(())
        })?;
        tracing::info!(event = "rejected", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), problems = n);
        Ok(Outcome::Rejected(n))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply_only(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, reply: &ReplyTo, outcome: MessageOutcome, kind: &'static str, template: &str, to: &str, ctx: serde_json::Value) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let out = self.draft(branch, kind, template, ctx, reply, vec![to.to_string()], vec![])?;
        store.write(|tx| -> Result<(), ProcessError> {
            tx.enqueue(&out, Some(msg.id), now)?;
            tx.finish_message(msg.id, outcome, None, now)?;
            Ok(())
        })?;
        tracing::info!(event = "replied", outcome = outcome.as_str(), mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""));
        Ok(match outcome {
            MessageOutcome::Duplicate => Outcome::Duplicate,
            MessageOutcome::Resent => Outcome::Resent,
            MessageOutcome::NoChangeNeeded => Outcome::NoChangeNeeded,
            _ => Outcome::FormSent,
        })
    }

    /// The same Message-ID again. If the first delivery was issued, the sender is told the
    /// numbers (never the keys); otherwise it was already answered or held, and this copy
    /// is only recorded.
    #[allow(clippy::too_many_arguments)]
    ///
    /// The answer goes to `from`, a registered address of `contractor` (the sender's when it
    /// is registered, the contractor's first when staff released the copy), and names only
    /// certificates of that contractor: a copy of a message released from an untrusted
    /// address never tells that address anything.
    pub(super) fn duplicate(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, letter: &Letter, reply: &ReplyTo, first: i64, first_outcome: Option<&str>, contractor: &Contractor, from: &str) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let first_msg = store.message(first)?;
        let certs: Vec<CertificateRow> = store.write(|tx| tx.certificates_of_message(first))?.into_iter().filter(|c| self.belongs(c, contractor)).collect();
        if first_outcome != Some("issued") || certs.is_empty() {
            let detail = format!("同じ Message-ID のメール（受付番号 {first}）は処理済みです");
            store.write(|tx| tx.finish_message(msg.id, MessageOutcome::Duplicate, Some(&detail), now))?;
            tracing::info!(event = "duplicate", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), first = first);
            return Ok(Outcome::Duplicate);
        }
        let ctx = json!({
            "contractor": contractor.name,
            "original_message_id": letter.message_id,
            "original_date": first_msg.and_then(|m| chrono::DateTime::parse_from_rfc3339(&m.received_at).ok()).map(|t| crate::text::format_era(t.date_naive())),
            "certificates": certs.iter().map(|c| json!({"product": c.latest.product.name(), "format": c.latest.format.name(), "number": c.number})).collect::<Vec<_>>(),
        });
        self.reply_only(store, msg, branch, reply, MessageOutcome::Duplicate, "duplicate", "mail/duplicate.txt", from, ctx)
    }
}

