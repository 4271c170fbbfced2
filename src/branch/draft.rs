//! The mails the branch side writes: the completion notice with its PDFs, and any other
//! answer from its template, in the branch's name, as a real reply. What to answer is
//! decided in `mod.rs`; this only words and typesets it.

use super::BranchFlow;
use crate::error::ProcessError;
use crate::branch::application;
use crate::config::Branch;
use crate::branch::documents::DocumentKind;
use crate::domain::Issued;
use crate::outbound::compose::{Draft, ReplyTo};
use crate::domain::Format;
use crate::store::Outgoing;
use serde_json::json;

impl BranchFlow<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn completion(&self, branch: &Branch, app: &application::Application, issued: &[Issued], warnings: &[String], reply: &ReplyTo, to: Vec<String>, attachments: Vec<(String, Vec<u8>)>) -> Result<Outgoing, ProcessError> {
        let mut certs = Vec::new();
        for i in issued {
            let c = &i.certificate;
            let electronic = c.format == Format::Electronic;
            let mut entry = json!({"product": c.product.name(), "format": c.format.name(), "number": c.number, "electronic": electronic, "reservation": c.reservation});
            if let Some(b) = &c.bid_bond {
                use crate::text::{format_era, format_yen};
                entry["bid_bond"] = json!({
                    "bid_date": format_era(b.bid_date), "valid_until": format_era(b.valid_until), "amount": format_yen(c.amount),
                    "fee": format_yen(b.fee_yen), "tax": format_yen(b.tax_yen), "tax_percent": b.tax_percent, "total": format_yen(b.fee_yen + b.tax_yen),
                });
            }
            if electronic {
                for kind in documents_of(c) {
                    entry[file_field(kind)] = json!(crate::branch::documents::data::file_name(kind, c));
                }
                entry["key"] = json!(i.key.as_ref().map(|k| k.reveal()));
            }
            certs.push(entry);
        }
        let any_electronic = issued.iter().any(|i| i.certificate.format == Format::Electronic);
        let ctx = json!({
            "contractor": app.jv.clone().unwrap_or_else(|| app.contractor.clone()),
            "project": app.project, "owner": app.owner,
            "any_bid_bond": issued.iter().any(|i| i.certificate.bid_bond.is_some()),
            "any_guarantee": issued.iter().any(|i| i.certificate.bid_bond.is_none()),
            "certificates": certs, "any_electronic": any_electronic, "warnings": warnings,
        });
        let (kind, template) = if any_electronic { ("completion", "mail/completion.txt") } else { ("paper_accepted", "mail/paper_accepted.txt") };
        self.draft(branch, kind, template, ctx, reply, to, attachments)
    }

    /// The PDFs, typeset in parallel, each with its file name.
    pub(super) fn typeset(&self, jobs: &[(DocumentKind, &crate::domain::Certificate, Option<&crate::domain::AuthKey>)], now: chrono::DateTime<chrono::FixedOffset>) -> Result<Vec<(String, Vec<u8>)>, ProcessError> {
        let pdfs = self.documents.render_all(jobs, self.config, now).map_err(super::render_failed)?;
        Ok(jobs.iter().zip(pdfs).map(|((kind, c, _), pdf)| (crate::branch::documents::data::file_name(*kind, c), pdf)).collect())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn draft(&self, branch: &Branch, kind: &'static str, template: &str, mut ctx: serde_json::Value, reply: &ReplyTo, to: Vec<String>, attachments: Vec<(String, Vec<u8>)>) -> Result<Outgoing, ProcessError> {
        ctx["company"] = json!({"name": self.config.company.name});
        ctx["branch"] = json!({"name": branch.name, "tel": branch.tel, "fax": branch.fax, "address": branch.address});
        Ok(self.composer.compose(Draft {
            kind, template, context: ctx,
            from_name: format!("{} {}", self.config.company.name, branch.name),
            from: branch.address.clone(),
            to, reply: Some(reply), attachments,
        }, self.rng, self.clock.now())?)
    }
}

/// The documents an electronic certificate is mailed with: the key notice, the
/// certificate, and the fee statement when it was asked for.
pub(super) fn documents_of(c: &crate::domain::Certificate) -> Vec<DocumentKind> {
    let mut kinds = vec![DocumentKind::Notice, DocumentKind::Certificate];
    if c.fee_statement {
        kinds.push(DocumentKind::Fee);
    }
    kinds
}

/// The completion mail's field naming a document's attachment.
pub(super) fn file_field(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Notice => "notice_file",
        DocumentKind::Certificate => "certificate_file",
        DocumentKind::Fee => "fee_file",
        DocumentKind::Reservation => "reservation_file",
    }
}
