//! A registered contractor's requests besides an application: 再送 (the documents again),
//! 保証契約一覧 (its certificates, narrowed as asked) and 変更申込 (a change of a
//! certificate, checked by the application rules).

use super::{BranchFlow, Outcome, TxExisting, application, lifecycle, list};
use super::draft::{documents_of, file_field};
use super::reply::REJECT_CHANGE;
use super::application::change::{self, ChangeDecision};
use super::application::Sender;
use crate::config::{Branch, Contractor};
use super::documents::DocumentKind;
use crate::intake::letter::Letter;
use crate::domain::CertificateNumber;
use crate::error::ProcessError;
use crate::outbound::compose::ReplyTo;
use crate::domain::Format;
use crate::store::{CertificateRow, Store, StoredMessage};
use crate::domain::{EventKind, MessageOutcome};
use serde_json::json;

impl BranchFlow<'_> {
    /// 再送: the current version's key notice and certificate, to the registered addresses
    /// of the certificate's contractor only, whatever address the request names. A number
    /// that is unknown, or not this sender's contractor's, gets the same answer.
    pub(super) fn resend(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, letter: &Letter, reply: &ReplyTo, from: &str) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let number = letter.texts().flat_map(|(_, t)| crate::domain::certificate_numbers(t)).next();
        let sender = self.config.contractor_by_email(from);
        let found = match (&number, sender) {
            (Some(n), Some(s)) => self.certificate_of(store, n, s)?,
            _ => None,
        };
        let Some(row) = found else {
            let ctx = json!({"number": number.as_deref().unwrap_or("（記載なし）")});
            return self.reply_only(store, msg, branch, reply, MessageOutcome::Resent, "not_found", "mail/not_found.txt", from, ctx);
        };
        let contractor = sender.expect("a found certificate has the sender's contractor");
        let c = &row.latest;
        let mut entry = json!({"product": c.product.name(), "format": c.format.name(), "number": c.number, "project": c.project, "owner": c.owner, "electronic": c.format == Format::Electronic});
        let mut attachments = Vec::new();
        let mut typeset: Vec<(&str, Vec<u8>)> = Vec::new();
        if c.format == Format::Electronic {
            let key = store.key_of(&c.number, self.secrets)?;
            let kinds = [DocumentKind::Notice, DocumentKind::Certificate];
            for kind in kinds {
                entry[file_field(kind)] = json!(crate::branch::documents::data::file_name(kind, c));
            }
            // The certificate as first mailed, when it was kept (its hash is the one the
            // registry gives); the key notice is typeset again (its file is never kept).
            let kept = store.issued_pdf(&c.number, c.version, DocumentKind::Certificate.as_str())?;
            let jobs: Vec<_> = kinds.into_iter().filter(|k| *k == DocumentKind::Notice || kept.is_none()).map(|k| (k, c, key.as_ref())).collect();
            attachments = self.typeset(&jobs, now)?;
            for ((kind, _, _), (_, pdf)) in jobs.iter().zip(&attachments) {
                typeset.push((kind.as_str(), pdf.clone()));
            }
            if let Some(pdf) = kept {
                attachments.push((crate::branch::documents::data::file_name(DocumentKind::Certificate, c), pdf));
            }
        }
        let ctx = json!({"contractor": c.jv.clone().unwrap_or_else(|| c.contractor.clone()), "c": entry});
        let out = self.draft(branch, "resend", "mail/resend.txt", ctx, reply, contractor.emails.clone(), attachments)?;
        store.write(|tx| -> Result<(), ProcessError> {
            tx.enqueue(&out, Some(msg.id), now)?;
            for (kind, pdf) in &typeset {
                tx.put_issued_document(&c.number, c.version, kind, pdf, now)?;
            }
            tx.finish_message(msg.id, MessageOutcome::Resent, Some(&row.number), now)?;
            Ok(())
        })?;
        tracing::info!(event = "resent", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), number = %row.number);
        Ok(Outcome::Resent)
    }
}

impl BranchFlow<'_> {
    /// 保証契約一覧: the contractor's certificates (its own and its joint ventures'),
    /// narrowed as the body asks, in the reply's text and as a CSV, to its registered
    /// addresses (whatever address asked).
    pub(super) fn list(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, letter: &Letter, reply: &ReplyTo, contractor: &Contractor) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let body: String = letter.texts().map(|(_, t)| t).collect::<Vec<_>>().join("\n");
        let request = list::request(&body);
        let mut rows = Vec::new();
        for c in store.certificates()?.into_iter().filter(|c| self.belongs(c, contractor)) {
            let first = store.versions(&c.number)?.first().and_then(|v| chrono::DateTime::parse_from_rfc3339(&v.issued_at).ok())
                .map(|t| t.with_timezone(&crate::clock::jst()).date_naive()).unwrap_or(c.latest.issue_date);
            let l = &c.latest;
            let row = list::ListRow { number: c.number.clone(), product: l.product.name().into(), project: l.project.clone(), owner: l.owner.clone(), amount: l.amount,
                                      format: l.format.name().into(), status: c.status, version: l.version, issued: first };
            if request.keeps(&row) {
                rows.push(row);
            }
        }
        rows.sort_by(|a, b| a.issued.cmp(&b.issued).then(a.number.cmp(&b.number)));
        let name = format!("保証契約一覧_{}.csv", now.format("%Y%m%d"));
        let ctx = json!({"contractor": contractor.name, "rows": list::text_rows(&rows), "count": rows.len(), "narrowed": request.describe(), "file": name});
        let out = self.draft(branch, "list", "mail/list.txt", ctx, reply, contractor.emails.clone(), vec![(name, list::csv(&rows))])?;
        store.write(|tx| -> Result<(), ProcessError> {
            tx.enqueue(&out, Some(msg.id), now)?;
            tx.finish_message(msg.id, MessageOutcome::Listed, Some(&format!("{} certificate(s)", rows.len())), now)?;
            Ok(())
        })?;
        tracing::info!(event = "listed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), count = rows.len());
        Ok(Outcome::Listed)
    }

    /// The certificate with this number if it is `contractor`'s (directly or as a JV's
    /// representative). Someone else's number is treated exactly like an unknown one.
    pub(super) fn certificate_of(&self, store: &Store, number: &str, contractor: &Contractor) -> Result<Option<CertificateRow>, ProcessError> {
        let Some(n) = CertificateNumber::parse(number) else { return Ok(None) };
        Ok(store.certificate(&n.to_string())?.filter(|c| self.belongs(c, contractor)))
    }

    /// Whether a certificate is `contractor`'s (its own, or its joint venture's).
    pub(super) fn belongs(&self, c: &CertificateRow, contractor: &Contractor) -> bool {
        let owner_of = self.config.contractor_by_name(&c.latest.contractor)
            .or_else(|| c.latest.jv.as_deref().and_then(|j| self.config.joint_venture(j)).and_then(|j| self.config.contractor_by_name(&j.representative)));
        owner_of.is_some_and(|a| a.name == contractor.name)
    }

    /// 変更申込: the changed fields over the current version, checked by the application
    /// rules; a new version with new documents, the answer that a change of 請負金額 alone
    /// needs no procedure, or every problem in one reply.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn change(&self, store: &mut Store, msg: &StoredMessage, branch: &Branch, letter: &Letter, reply: &ReplyTo, sender: &Sender, contractor: &Contractor) -> Result<Outcome, ProcessError> {
        let now = self.clock.now();
        let from = sender.from.as_str();
        let Some(text) = letter.texts().map(|(_, t)| t).find(|t| change::has_change(t)) else {
            let problems = vec!["変更申込：本文に【変更申込】の欄が見つかりませんでした。下記の様式でお送りください".to_string()];
            return self.reject(store, msg, branch, reply, from, Some(&contractor.name), problems, vec![], None, REJECT_CHANGE);
        };
        let raw = change::parse(text);
        let found = match raw.number.as_deref() {
            Some(n) => self.certificate_of(store, n, contractor)?,
            None => None,
        };
        let Some(row) = found else {
            let problem = match raw.number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                Some(n) => format!("保証契約番号：「{n}」に該当する保証が見つかりません。ご登録の事業者の保証契約番号をご確認ください"),
                None => "保証契約番号：記入されていません（必須項目です）".to_string(),
            };
            return self.reject(store, msg, branch, reply, from, Some(&contractor.name), vec![problem], raw.warnings.clone(), Some(text), REJECT_CHANGE);
        };
        // Only a guarantee in force is changed: one that has ended or was withdrawn is told so.
        if row.status != crate::domain::CertificateStatus::Valid {
            let problem = format!("保証契約番号：{} は「{}」のため変更できません。ご不明な点は担当支店までお問い合わせください", row.number, row.status.label());
            return self.reject(store, msg, branch, reply, from, Some(&contractor.name), vec![problem], raw.warnings.clone(), Some(text), REJECT_CHANGE);
        }
        let issuing = self.config.branch_by_code(&row.latest.office_code).unwrap_or(branch);
        let config = self.config;
        let decision = store.write(|tx| {
            let existing = TxExisting::new(tx);
            let decision = change::decide(&raw, &row.latest, config, branch, issuing, sender, &existing, now);
            existing.answer(decision)
        })?;
        let (contents, changed) = match decision {
            ChangeDecision::Hold(why) => return self.hold(store, msg, why),
            ChangeDecision::Reject(problems) => {
                let lines = problems.iter().map(ToString::to_string).collect();
                return self.reject(store, msg, branch, reply, from, Some(&contractor.name), lines, raw.warnings.clone(), Some(text), REJECT_CHANGE);
            }
            ChangeDecision::PriceOnly => {
                let ctx = json!({"contractor": contractor.name, "number": row.number, "project": row.latest.project});
                return self.reply_only(store, msg, branch, reply, MessageOutcome::NoChangeNeeded, "change_not_needed", "mail/change_not_needed.txt", from, ctx);
            }
            ChangeDecision::Change { contents, changed } => (contents, changed),
        };
        let c = &contents;
        let electronic = c.format == Format::Electronic;
        let mut entry = json!({"product": c.product.name(), "format": c.format.name(), "number": c.number, "label": c.change_label(), "electronic": electronic});
        let mut attachments = Vec::new();
        let mut typeset: Vec<(&str, Vec<u8>)> = Vec::new();
        if electronic {
            let key = store.key_of(&c.number, self.secrets)?;
            let kinds = documents_of(c);
            for &kind in &kinds {
                entry[file_field(kind)] = json!(crate::branch::documents::data::file_name(kind, c));
            }
            let jobs: Vec<_> = kinds.into_iter().map(|k| (k, c, key.as_ref())).collect();
            attachments = self.typeset(&jobs, now)?;
            for ((kind, _, _), (_, pdf)) in jobs.iter().zip(&attachments) {
                typeset.push((kind.as_str(), pdf.clone()));
            }
        }
        let ctx = json!({
            "contractor": c.jv.clone().unwrap_or_else(|| c.contractor.clone()),
            "project": c.project, "owner": c.owner, "c": entry, "changed": changed,
            "reason": raw.reason, "warnings": raw.warnings,
        });
        let out = self.draft(branch, "change_done", "mail/change_done.txt", ctx, reply, vec![from.to_string()], attachments)?;
        let works = application::works_key(&c.contractor, &c.owner, &c.project, c.product);
        // The owner is told of the 変更 (`lifecycle.md`); the contractor has its completion mail.
        let why = raw.reason.clone().filter(|r| !r.trim().is_empty()).unwrap_or_else(|| format!("変更（{}）：{}", c.change_label().unwrap_or_default(), changed.join("、")));
        let event = lifecycle::new_event(&c.number, EventKind::Changed, row.status, from, &why, None, Some(c.version), self.rng, now);
        let notices = lifecycle::notices(self.config, self.composer, c, &event, false, self.rng, now)?;
        store.write(|tx| -> Result<(), ProcessError> {
            tx.record_application(msg.id, &c.office_code, "changed", from, Some(&contractor.name), &json!([]), &raw.warnings, Some(text), now)?;
            tx.append_version(c, &works, now)?;
            let id = tx.insert_event(&event)?;
            notices.write(tx, id, &c.number, Some(msg.id), now)?;
            tx.enqueue(&out, Some(msg.id), now)?;
            for (kind, pdf) in &typeset {
                tx.put_issued_document(&c.number, c.version, kind, pdf, now)?;
            }
            tx.finish_message(msg.id, MessageOutcome::Changed, Some(&format!("{} {}", c.number, c.change_label().unwrap_or_default())), now)?;
            Ok(())
        })?;
        tracing::info!(event = "changed", mailbox = %msg.mailbox, message_id = msg.message_id.as_deref().unwrap_or(""), number = %c.number, version = c.version);
        Ok(Outcome::Changed(c.number.clone()))
    }
}
