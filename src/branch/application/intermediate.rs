//! 中間前払金保証 (`products.md`): an application with the section 【中間前払金保証】,
//! against a 前払金保証 of ours. Its works are that guarantee's (current version), so the
//! form carries no 【請負工事の情報】. Every failure is one problem in the one reply:
//!
//! - R1: the section's fields are there and readable;
//! - C1: the named 前払金保証 exists, is current, and is this contractor's (an unknown
//!   number and another contractor's get one and the same answer);
//! - C2: its owner pays 中間前払金 (`intermediate_advance` in the configuration);
//! - C3: the amount is at most the owner's ratio of the current 請負金額, and with the
//!   前払金保証金額 at most 6/10 of it;
//! - C4: 認定日 is on or after the middle of 工期 and not after today;
//! - C5: one 中間前払金保証 per 前払金保証 (R10's works key with the product's letter);
//! - R5: electronic only for an owner that takes electronic guarantees.

use super::form::RawIntermediate;
use super::validate::{Decision, Existing, Validator, electronic_refusal};
use super::{Application, Contact, ProductRequest, works_key};
use crate::domain::IntermediateOf;
use crate::config::{Branch, Config, Contractor};
use crate::domain::Certificate;
use crate::domain::{Format, Product};
use crate::text::{format_era, format_yen, squash};
use chrono::NaiveDate;

/// Advances together may not pass this share of the contract price (public rule).
pub const ADVANCES_MAX_PERCENT: u64 = 60;

fn field(label: &str) -> String {
    format!("【中間前払金保証】{label}")
}

/// `advance`: the named number's latest contents and status, when it exists.
/// Whether the section applies (申込：申し込む); a blank one (the blank form pasted whole)
/// is no application for it.
pub fn applied(raw: &RawIntermediate) -> bool {
    matches!(squash(raw.apply.as_deref().unwrap_or("")).as_str(), "申し込む" | "申込む" | "申込" | "申し込みする")
}

/// `alone`: the form has no other product section (a 中間前払金保証 is applied for alone).
#[allow(clippy::too_many_arguments)]
pub fn decide(raw: &RawIntermediate, alone: bool, contractor: &Contractor, advance: Option<(&Certificate, crate::domain::CertificateStatus)>, config: &Config, branch: &Branch, existing: &dyn Existing, today: NaiveDate) -> Decision {
    let mut v = Validator { problems: Vec::new() };
    if !alone {
        v.push("R1", "【中間前払金保証】", "中間前払金保証は、前払金保証・契約保証とは別のメールでお申し込みください".into());
    }
    match squash(raw.apply.as_deref().unwrap_or("")).as_str() {
        "申し込む" | "申込む" | "申込" | "申し込みする" => {}
        _ => {
            v.push("R1", &field("申込"), "「申し込む」と記入してください".into());
        }
    }
    let number = v.required(&field("前払金保証の保証契約番号"), &raw.advance_number);
    let format = v.required(&field("保証証書の形式"), &raw.format).and_then(|f| match squash(&f).as_str() {
        "電子保証" | "電子" => Some(Format::Electronic),
        "証書(紙)" | "紙" | "証書" => Some(Format::Paper),
        _ => {
            v.push("R1", &field("保証証書の形式"), format!("「{f}」ではなく「電子保証」または「証書(紙)」と記入してください"));
            None
        }
    });
    let amount = v.amount(&field("中間前払金保証金額"), &raw.amount, true);
    let certified_on = v.date(&field("認定日"), &raw.certified_on, true);
    let certification_no = v.required(&field("認定番号"), &raw.certification_no);
    let fee_statement = v.yes_no(&field("保証料計算書(紙)"), &raw.fee_statement, &["希望する"], &["希望しない"]);

    // C1: ours, current, this contractor's. One answer for unknown and not yours.
    let advance = match (number.as_deref(), advance) {
        (None, _) => None,
        (Some(_), Some((c, status))) if c.product == Product::Advance && status == crate::domain::CertificateStatus::Valid && squash(&c.contractor) == squash(&contractor.name) => Some(c),
        (Some(n), _) => {
            v.push("C1", &field("前払金保証の保証契約番号"), format!("{n} は、貴社の有効な前払金保証として見つかりません（番号をご確認ください）"));
            None
        }
    };
    let Some(advance) = advance else { return Decision::Reject(v.problems) };
    let owner = config.owners.iter().find(|o| squash(&o.name) == squash(&advance.owner));
    // C2: the owner pays 中間前払金.
    let percent = match owner.and_then(|o| o.intermediate_percent) {
        Some(p) => Some(p),
        None => {
            v.push("C2", &field("申込"), format!("{}は中間前払金の対象ではありません（前払金保証 {} の発注者）", advance.owner, advance.number));
            None
        }
    };
    // C3: the amounts against the current 請負金額.
    if let (Some(amount), Some(percent)) = (amount, percent) {
        let price = advance.contract_price;
        let cap = (price as u128 * percent as u128 / 100) as u64;
        if amount > cap {
            v.push("C3", &field("中間前払金保証金額"), format!("{}は請負金額（{}）の{percent}%（{}）を超えています", format_yen(amount), format_yen(price), format_yen(cap)));
        }
        let together = (price as u128 * ADVANCES_MAX_PERCENT as u128 / 100) as u64;
        if amount as u128 + advance.amount as u128 > together as u128 {
            v.push("C3", &field("中間前払金保証金額"), format!("前払金保証金額（{}）と合わせて{}となり、請負金額の6/10（{}）を超えています",
                format_yen(advance.amount), format_yen(amount + advance.amount), format_yen(together)));
        }
    }
    // C4: certified on or after the middle of 工期, and not in the future.
    if let Some(on) = certified_on {
        let middle = advance.term_start + (advance.term_end - advance.term_start) / 2;
        if on < middle {
            v.push("C4", &field("認定日"), format!("{} は工期（{} ～ {}）の半ば（{}）より前です", format_era(on), format_era(advance.term_start), format_era(advance.term_end), format_era(middle)));
        }
        if on > today {
            v.push("C4", &field("認定日"), format!("{} はまだ来ていません", format_era(on)));
        }
    }
    // R5: electronic only where the owner takes it.
    if format == Some(Format::Electronic)
        && let Some(o) = owner
        && let Some(why) = electronic_refusal(o, Some(advance.contract_date), advance.award_date)
    {
        v.push("R5", &field("保証証書の形式"), format!("{why}「証書(紙)」でお申し込みください"));
    }
    // C5: one per 前払金保証 (its works, this product).
    if let Some(n) = existing.issued_for(&works_key(&advance.contractor, &advance.owner, &advance.project, Product::Intermediate)) {
        v.push("C5", &field("前払金保証の保証契約番号"), format!("{} の中間前払金保証は {n} として発行済みです", advance.number));
    }
    if !v.problems.is_empty() {
        return Decision::Reject(v.problems);
    }
    let (Some(format), Some(amount), Some(certified_on), Some(certification_no), Some(fee_statement)) = (format, amount, certified_on, certification_no, fee_statement) else {
        return Decision::Reject(v.problems);
    };
    Decision::Issue(Application {
        contractor: advance.contractor.clone(),
        contractor_registered: contractor.name.clone(),
        contractor_address: advance.contractor_address.clone(),
        jv: advance.jv.clone(),
        owner: advance.owner.clone(),
        project: advance.project.clone(),
        site: advance.site.clone(),
        contract_price: advance.contract_price,
        term_start: advance.term_start,
        term_end: advance.term_end,
        contract_date: advance.contract_date,
        award_date: advance.award_date,
        products: vec![ProductRequest {
            product: Product::Intermediate,
            format,
            amount,
            this_year_amount: None,
            bank: None,
            redeposit: None,
            payment_method: advance.payment_method.clone(),
            billing: advance.billing.clone(),
            fee_statement,
            intermediate: Some(IntermediateOf { advance: advance.number.clone(), certified_on, certification_no }),
            bid_bond: None,
            reservation: None,
        }],
        office_code: branch.office_code.clone(),
        notify: None,
        contact: Contact::default(),
    })
}
