//! The branch side, one message at a time: intake → application → issuance → documents
//! → outbound. Takes a stored message and commits its outcome (the application record,
//! certificates, registry entries and the reply in the outbox) in one transaction.
//!
//! Outcomes (`application-form.md` § Outcomes): `issued`, `rejected`, `held` (nothing
//! sent, flagged for staff), `form_sent` (a request for the blank form), `duplicate`
//! (the same Message-ID delivered again: a reply pointing to what was issued).
//!
//! This folder is the surety company's branch side: [`application`] (the form, the rules
//! R1–R10, a change, each product's own sections), [`issuance`] (numbers, keys, version 1),
//! [`documents`] (the Typst PDFs), [`classify`] (what a mail is for, pure), `draft.rs` (the
//! mails it writes), `reply.rs` (the outcomes that end in one reply or none), `requests.rs`
//! (再送, 保証契約一覧, 変更申込) and [`list`]. It publishes to the registry and stands on the
//! store and the mail adapters; it never imports the owner side.

pub mod application;
pub mod classify;
pub mod documents;
pub mod issuance;
pub mod lifecycle;
pub mod list;
mod draft;
mod reply;
mod requests;
mod reservation;

use draft::documents_of;
use reply::REJECT_APPLICATION;
use reservation::reservations;

use classify::Purpose;
use application::{Decision, Existing, Sender, form};
use crate::clock::{Clock, Random};
use crate::config::Config;
use documents::{DocumentKind, Documents};
use crate::intake::letter::{self};
use crate::domain::Issued;
use crate::domain::IssuedFee;
use crate::error::ProcessError;
use crate::outbound::compose::{Composer, ReplyTo};
use crate::domain::Format;
use crate::store::{Store, StoreError, StoredMessage, Tx};
use crate::domain::MessageOutcome;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Issued(Vec<String>),
    Rejected(usize),
    Held(String),
    FormSent,
    Duplicate,
    /// A resend of a certificate's documents (or the answer that none was found).
    Resent,
    /// A contractor's 保証契約一覧, answered.
    Listed,
    /// A change made a new version of this certificate.
    Changed(String),
    /// A change of 請負金額 alone: told that no procedure is needed; nothing changed.
    NoChangeNeeded,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Issued(_) => "issued",
            Outcome::Rejected(_) => "rejected",
            Outcome::Held(_) => "held",
            Outcome::FormSent => "form_sent",
            Outcome::Duplicate => "duplicate",
            Outcome::Resent => "resent",
            Outcome::Listed => "listed",
            Outcome::Changed(_) => "changed",
            Outcome::NoChangeNeeded => "no_change_needed",
        }
    }
}

pub struct BranchFlow<'a> {
    pub config: &'a Config,
    pub composer: &'a Composer,
    pub documents: &'a Documents,
    /// When set, an application or change must come with an aligned DKIM or SPF pass.
    pub auth: Option<&'a crate::sender_auth::SenderAuth>,
    /// Seals each key for the store and keys the registry's hash of it.
    pub secrets: &'a crate::secrets::Secrets,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Random,
}

/// R10's question put to the store. The rules are pure and ask through [`Existing`]; a
/// store that cannot answer is remembered here and turns the whole decision into an error
/// ([`TxExisting::answer`]): "could not read" must never pass for "not issued yet".
struct TxExisting<'t, 'c> {
    tx: &'t Tx<'c>,
    failed: std::cell::RefCell<Option<StoreError>>,
}

impl<'t, 'c> TxExisting<'t, 'c> {
    fn new(tx: &'t Tx<'c>) -> Self {
        TxExisting { tx, failed: std::cell::RefCell::new(None) }
    }

    /// The decision made with the store's answers, or the store's error if one failed.
    fn answer<T>(self, decision: T) -> Result<T, ProcessError> {
        match self.failed.into_inner() {
            Some(e) => Err(ProcessError::Store(e)),
            None => Ok(decision),
        }
    }
}

impl Existing for TxExisting<'_, '_> {
    fn issued_for(&self, works_key: &str) -> Option<String> {
        match self.tx.issued_for_works(works_key) {
            Ok(found) => found,
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

/// Documents that could not be made: without a timestamp the message waits and is tried
/// again (signing.md: never an unsigned or unstamped document instead); anything else is a
/// fault of the message.
pub(crate) fn render_failed(e: documents::RenderError) -> ProcessError {
    match e {
        documents::RenderError::Timestamp(why) | documents::RenderError::SignerOutOfValidity(why) => ProcessError::Deferred(why),
        e => ProcessError::Render(e.to_string()),
    }
}

/// What [`BranchFlow::start`] leaves to do.
pub enum Step {
    /// The outcome is committed (in the open batch), reply included.
    Done(Outcome),
    /// Certificates issued and recorded (in the open batch); their documents are to be
    /// typeset ([`Pending::typeset`], on any thread) and mailed ([`BranchFlow::finish`]),
    /// in the same batch.
    Typeset(Box<Pending>),
}

/// An application whose certificates are recorded and whose completion mail is not
/// composed yet.
pub struct Pending {
    msg_id: i64,
    mailbox: String,
    message_id: Option<String>,
    office_code: String,
    app: application::Application,
    issued: Vec<Issued>,
    warnings: Vec<String>,
    reply: ReplyTo,
    to: Vec<String>,
    now: chrono::DateTime<chrono::FixedOffset>,
}

impl Pending {
    /// Every document of every electronic certificate, in the completion mail's order.
    fn jobs(&self) -> Vec<(DocumentKind, &crate::domain::Certificate, Option<&crate::domain::AuthKey>)> {
        let electronic = self.issued.iter().filter(|i| i.certificate.format == Format::Electronic);
        electronic.flat_map(|i| documents_of(&i.certificate).into_iter().map(move |kind| (kind, &i.certificate, i.key.as_ref()))).collect()
    }

    /// The PDFs, typeset in parallel on the worker pool. Pure: touches no store.
    pub fn typeset(&self, documents: &Documents, config: &Config) -> Result<Vec<Vec<u8>>, ProcessError> {
        crate::faults::panic_at("typesetting", self.message_id.as_deref());
        documents.render_all(&self.jobs(), config, self.now).map_err(render_failed)
    }
}

impl BranchFlow<'_> {
    /// Decides and commits the outcome of one stored message: all of it or nothing (a
    /// batch of its own, or a savepoint of the open one).
    pub fn process(&self, store: &mut Store, msg: &StoredMessage) -> Result<Outcome, ProcessError> {
        store.batch(|store| match self.start(store, msg)? {
            Step::Done(outcome) => Ok(outcome),
            Step::Typeset(pending) => {
                let pdfs = pending.typeset(self.documents, self.config)?;
                self.finish(store, *pending, pdfs)
            }
        })
    }

    /// The completion mail of a [`Pending`] application with its typeset PDFs, into the
    /// outbox.
    pub fn finish(&self, store: &mut Store, p: Pending, pdfs: Vec<Vec<u8>>) -> Result<Outcome, ProcessError> {
        let branch = self.config.branch_by_code(&p.office_code).ok_or_else(|| ProcessError::Bug(format!("no branch {}", p.office_code)))?;
        let jobs = p.jobs();
        let out = {
            let attachments = jobs.iter().zip(&pdfs).map(|((kind, c, _), pdf)| (crate::branch::documents::data::file_name(*kind, c), pdf.clone())).collect();
            self.completion(branch, &p.app, &p.issued, &p.warnings, &p.reply, p.to.clone(), attachments)?
        };
        store.write(|tx| -> Result<(), ProcessError> {
            tx.enqueue(&out, Some(p.msg_id), p.now)?;
            // The files as mailed, for the registry to serve and to give their hashes.
            for ((kind, c, _), pdf) in jobs.iter().zip(&pdfs) {
                tx.put_issued_document(&c.number, c.version, kind.as_str(), pdf, p.now)?;
            }
            Ok(())
        })?;
        let numbers: Vec<String> = p.issued.iter().map(|i| i.certificate.number.clone()).collect();
        for n in &numbers {
            tracing::info!(event = "issued", mailbox = %p.mailbox, message_id = p.message_id.as_deref().unwrap_or(""), number = %n);
        }
        Ok(Outcome::Issued(numbers))
    }

    /// Everything of one stored message up to typesetting: the outcome committed (in the
    /// open batch), or the certificates recorded and their documents left to typeset.
    pub fn start(&self, store: &mut Store, msg: &StoredMessage) -> Result<Step, ProcessError> {
        let mut pending = None;
        let outcome = self.decide(store, msg, &mut pending)?;
        Ok(match pending {
            Some(p) => Step::Typeset(p),
            None => Step::Done(outcome),
        })
    }

    /// The outcome of one message; an issue leaves its documents in `pending`.
    fn decide(&self, store: &mut Store, msg: &StoredMessage, pending: &mut Option<Box<Pending>>) -> Result<Outcome, ProcessError> {
        crate::faults::panic_on(msg.message_id.as_deref());
        let Some(branch) = self.config.branch_by_address(&msg.mailbox) else {
            return self.hold(store, msg, format!("{} は支店のメールボックスではありません", msg.mailbox));
        };
        let limits = &self.config.limits;
        if msg.over(limits.max_message_bytes()) {
            return self.hold(store, msg, format!("大きすぎるメールです（{} MB、上限 {} MB）", msg.size.max(msg.raw.len()) >> 20, limits.max_message_mib));
        }
        let letter = match letter::read_with(&msg.raw, limits) {
            Ok(l) => l,
            Err(e) => return self.hold(store, msg, format!("メールとして読み取れません（{e}）")),
        };
        let reply = ReplyTo { message_id: letter.message_id.clone(), references: letter.references.clone(), subject: letter.subject.clone() };
        // A message staff released is processed as if its registered contractor had sent it
        // from its first registered address; replies go there, never to the original sender.
        let (from, contractor, envelope) = match &msg.released_as {
            Some(name) => {
                let Some(c) = self.config.contractor_by_name(name).filter(|c| !c.emails.is_empty()) else {
                    return self.hold(store, msg, format!("解除先の事業者「{name}」が登録されていません"));
                };
                (c.emails[0].clone(), c, None)
            }
            None => {
                let Some(from) = letter.from.clone() else {
                    return self.hold(store, msg, "送信者（From）がありません".into());
                };
                let Some(c) = self.config.contractor_by_email(&from) else {
                    return self.hold(store, msg, format!("送信者 {from} は登録されたアドレスではありません"));
                };
                (from, c, letter.envelope.clone())
            }
        };
        let now = self.clock.now();

        // A second delivery of the same message: point to what the first one got.
        if let Some(mid) = &letter.message_id {
            let earlier = store.write(|tx| tx.earlier_with_message_id(&msg.mailbox, mid, msg.id).map_err(ProcessError::from))?;
            if let Some((first, first_outcome)) = earlier {
                return self.duplicate(store, msg, branch, &letter, &reply, first, Some(first_outcome.as_str()), contractor, &from);
            }
        }

        let classified = classify::classify(&letter);
        if classified.authenticate
            && msg.released_as.is_none()
            && let Some(auth) = self.auth
        {
            match auth.check(&msg.raw, &from, envelope.as_deref()) {
                crate::sender_auth::Verdict::Aligned { .. } => {}
                crate::sender_auth::Verdict::NotAligned(why) => return self.hold(store, msg, format!("送信元を確認できません（DKIM・SPF）：{why}")),
                crate::sender_auth::Verdict::Unsure(why) => {
                    // DNS did not answer: try again later, and hold only once that has
                    // gone on for `retry_hours`.
                    let hours = self.config.sender_auth.as_ref().map_or(24, |a| a.retry_hours);
                    let waited = chrono::DateTime::parse_from_rfc3339(&msg.received_at).map(|t| now - t).unwrap_or_default();
                    if waited < chrono::Duration::hours(hours.into()) {
                        return Err(ProcessError::Deferred(why));
                    }
                    return self.hold(store, msg, format!("送信元を {hours} 時間確認できませんでした（DNS の一時的な障害）：{why}"));
                }
            }
        }
        let form_text = match classified.purpose {
            Purpose::Change => {
                let sender = Sender { from: from.clone(), envelope };
                return self.change(store, msg, branch, &letter, &reply, &sender, contractor);
            }
            Purpose::Resend => return self.resend(store, msg, branch, &letter, &reply, &from),
            Purpose::List => return self.list(store, msg, branch, &letter, &reply, contractor),
            Purpose::FormRequest => {
                return self.reply_only(store, msg, branch, &reply, MessageOutcome::FormSent, "blank_form", "mail/blank_form.txt", &from, json!({"contractor": contractor.name}));
            }
            Purpose::MissingForm => {
                let problems = vec!["申込書：本文または添付の .txt ファイルに申込書（【請負工事の情報】などの見出し）が見つかりませんでした".to_string()];
                return self.reject(store, msg, branch, &reply, &from, Some(&contractor.name), problems, vec![], None, REJECT_APPLICATION);
            }
            Purpose::Other => return self.hold(store, msg, "申込書を含まないメールです（職員が確認します）".into()),
            Purpose::Application { form } => form,
        };

        let raw = form::parse(&form_text);
        let sender = Sender { from: from.clone(), envelope };
        let config = self.config;
        let decision = store.write(|tx| {
            let existing = TxExisting::new(tx);
            let others = [&raw.advance, &raw.contract].iter().any(|p| p.as_ref().is_some_and(application::validate::applies_to))
                || raw.intermediate.as_ref().is_some_and(application::intermediate::applied);
            if let Some(br) = raw.bid_bond.as_ref().filter(|b| application::bid_bond::applied(b)) {
                // 契約保証予約: before the bid, for an owner that takes bid bonds; paper only.
                let decision = application::bid_bond::decide(br, !others, contractor, config, branch, &existing, now.date_naive());
                return existing.answer(decision);
            }
            let decision = match raw.intermediate.as_ref().filter(|i| application::intermediate::applied(i)) {
                // 中間前払金保証: against a 前払金保証 of ours, its works taken from it.
                Some(ir) => {
                    let named = ir.advance_number.as_deref().and_then(crate::domain::CertificateNumber::parse);
                    let advance = match named {
                        Some(n) => tx.certificate(&n.to_string())?,
                        None => None,
                    };
                    let alone = [&raw.advance, &raw.contract].iter().all(|p| p.as_ref().is_none_or(|p| !application::validate::applies_to(p)));
                    application::intermediate::decide(ir, alone, contractor, advance.as_ref().map(|r| (&r.latest, r.status)), config, branch, &existing, now.date_naive())
                }
                None => application::validate(&raw, config, branch, &sender, &existing),
            };
            let decision = existing.answer(decision)?;
            // A 契約保証 uses the contractor's open 契約保証予約 for the same works, or the one
            // its form names (which must be usable, else that is a problem of the reply).
            Ok(match decision {
                Decision::Issue(mut app) => match reservations(tx, &mut app)? {
                    Some(problem) => Decision::Reject(vec![application::Problem { rule: "Y6", field: "【契約保証】契約保証予約番号".into(), message: problem }]),
                    None => Decision::Issue(app),
                },
                other => other,
            })
        })?;
        match decision {
            Decision::Hold(why) => self.hold(store, msg, why),
            Decision::Reject(problems) => {
                let lines = problems.iter().map(ToString::to_string).collect();
                self.reject(store, msg, branch, &reply, &from, raw.contractor.as_deref(), lines, raw.warnings.clone(), Some(&form_text), REJECT_APPLICATION)
            }
            Decision::Issue(app) => {
                let issued = store.write(|tx| -> Result<Vec<Issued>, ProcessError> {
                    let app_id = tx.record_application(msg.id, &branch.office_code, "issued", &from, Some(&app.contractor), &json!([]), &raw.warnings, Some(&form_text), now)?;
                    let serials = app.products.iter().map(|_| tx.next_serial(&branch.office_code)).collect::<Result<Vec<_>, _>>()?;
                    let mut issued = issuance::issue(&app, &serials, self.rng, now);
                    for i in &mut issued {
                        let c = &i.certificate;
                        i.certificate.fee = config.fee_rate(c.product).map(|rate| IssuedFee::at(c, rate));
                    }
                    for i in &issued {
                        let c = &i.certificate;
                        let mut salt = [0u8; 16];
                        self.rng.fill(&mut salt);
                        let works = application::works_key(&app.contractor, &app.owner, &app.project, c.product);
                        tx.insert_certificate(i, &works, app_id, letter.message_id.as_deref(), &salt, self.secrets, self.rng)?;
                        if let Some(reserved) = &c.reservation {
                            tx.fulfil_reservation(reserved, &c.number, now)?;
                        }
                        // A 中間前払金保証's 認定調書: the PDFs attached to the application
                        // itself, kept with it (at most five).
                        if c.product == crate::domain::Product::Intermediate {
                            let pdfs = letter.pieces.iter().filter_map(|p| match p {
                                crate::intake::letter::Piece::Pdf { name, depth: 0, bytes } => Some((name, bytes)),
                                _ => None,
                            });
                            for (name, bytes) in pdfs.take(5) {
                                tx.keep_document(&c.number, "認定調書", name.as_deref().unwrap_or("認定調書.pdf"), bytes, now)?;
                            }
                        }
                    }
                    let numbers: Vec<String> = issued.iter().map(|i| i.certificate.number.clone()).collect();
                    tx.finish_message(msg.id, MessageOutcome::Issued, Some(&numbers.join(" ")), now)?;
                    Ok(issued)
                })?;
                let mut to = vec![from.clone()];
                if let Some(n) = &app.notify && !to.contains(n) {
                    to.push(n.clone());
                }
                let numbers = issued.iter().map(|i| i.certificate.number.clone()).collect();
                *pending = Some(Box::new(Pending {
                    msg_id: msg.id, mailbox: msg.mailbox.clone(), message_id: msg.message_id.clone(),
                    office_code: branch.office_code.clone(), app, issued, warnings: raw.warnings, reply, to, now,
                }));
                Ok(Outcome::Issued(numbers))
            }
        }
    }
}

