//! 契約保証予約 (入札ボンド, `products.md`): an application with the section 【契約保証予約】,
//! made before a bid. It promises the 契約保証 if the contractor wins, and is issued on
//! paper only. Every failure is one problem in the one reply:
//!
//! - R1: the section's fields are there and readable (発注者名, 工事名, 入札日, 予定価格,
//!   契約保証金額);
//! - Y1: the owner is known and takes bid bonds (`bid_bond = true`);
//! - Y2: paper only: a request for 電子保証 is answered with why;
//! - Y3: 入札日 is not past (a bid already held cannot be reserved);
//! - Y4: 契約保証金額 is at most 予定価格 (the contract price itself comes with the award);
//! - Y5: one open reservation per contractor, owner and works (R10 with the letter Y);
//! - R7: the owner's branch takes it (the reply names the right address).
//!
//! Then [`reservation_problem`] decides whether a later 契約保証 may use a reservation it
//! names by number.

use super::form::RawBidBond;
use super::validate::{Decision, Existing, Validator};
use super::{Application, Contact, ProductRequest, works_key};
use crate::domain::BidBondOf;
use crate::config::{Branch, Config, Contractor};
use crate::domain::Certificate;
use crate::domain::{Format, Product};
use crate::text::{format_era, format_yen, squash};
use chrono::NaiveDate;
use crate::domain::CertificateStatus;

fn field(label: &str) -> String {
    format!("【契約保証予約】{label}")
}

/// Whether the section applies (申込：申し込む); a blank one is no application for it.
pub fn applied(raw: &RawBidBond) -> bool {
    matches!(squash(raw.apply.as_deref().unwrap_or("")).as_str(), "申し込む" | "申込む" | "申込" | "申し込みする")
}

/// `alone`: the form applies for no other product (a reservation is applied for alone).
pub fn decide(raw: &RawBidBond, alone: bool, contractor: &Contractor, config: &Config, branch: &Branch, existing: &dyn Existing, today: NaiveDate) -> Decision {
    let mut v = Validator { problems: Vec::new() };
    if !alone {
        v.push("R1", "【契約保証予約】", "契約保証予約は、ほかの保証とは別のメールでお申し込みください".into());
    }
    let owner_name = v.required(&field("発注者名"), &raw.owner);
    let project = v.required(&field("工事名"), &raw.project);
    let bid_date = v.date(&field("入札日"), &raw.bid_date, true);
    let planned_price = v.amount(&field("予定価格"), &raw.planned_price, true);
    let amount = v.amount(&field("契約保証金額"), &raw.amount, true);

    // Y2: paper only, whatever else is wrong.
    if let Some(f) = raw.format.as_deref().map(squash).filter(|f| !f.is_empty()) {
        match f.as_str() {
            "証書(紙)" | "紙" | "証書" => {}
            "電子保証" | "電子" => v.push("Y2", &field("保証証書の形式"), "契約保証予約は電子保証の対象外です（電子保証の約款が予約を除いているため）。予約証書（書面）で発行しますので、「証書(紙)」としてお申し込みください".into()),
            _ => v.push("R1", &field("保証証書の形式"), format!("「{f}」ではなく「証書(紙)」と記入してください（契約保証予約は書面のみです）")),
        }
    }
    // Y1: the owner takes bid bonds; R7: at its branch.
    let owner = owner_name.as_deref().and_then(|n| match config.owner_by_name(n) {
        None => {
            v.push("Y1", &field("発注者名"), format!("「{n}」は登録されていない発注者です。発注者名をご確認ください"));
            None
        }
        Some(o) if !o.bid_bond => {
            v.push("Y1", &field("発注者名"), format!("{}は契約保証予約（入札ボンド）の取扱いがありません（入札保証金の納付方法は発注者にご確認ください）", o.name));
            None
        }
        Some(o) => Some(o),
    });
    if let Some(o) = owner
        && let Some(b) = config.branch_by_name(&o.branch).filter(|b| b.name != branch.name)
    {
        v.push("R7", &field("発注者名"), format!("{}の工事は{}の取扱いです。{} 宛にお送りください", o.name, b.name, b.address));
    }
    // Y3: the bid is still to come.
    if let Some(d) = bid_date
        && d < today
    {
        v.push("Y3", &field("入札日"), format!("{} は過ぎています。入札日前にお申し込みください", format_era(d)));
    }
    // Y4: the amounts.
    if let (Some(a), Some(p)) = (amount, planned_price)
        && a > p
    {
        v.push("Y4", &field("契約保証金額"), format!("{}は予定価格（{}）を超えています", format_yen(a), format_yen(p)));
    }
    // Y5: one open reservation per works.
    if let (Some(o), Some(pj)) = (owner, &project)
        && let Some(n) = existing.issued_for(&works_key(&contractor.name, &o.name, pj, Product::BidBond))
    {
        v.push("Y5", &field("工事名"), format!("この工事の契約保証予約は {n} として発行済みです"));
    }
    if !v.problems.is_empty() {
        return Decision::Reject(v.problems);
    }
    let (Some(owner), Some(project), Some(bid_date), Some(planned_price), Some(amount)) = (owner, project, bid_date, planned_price, amount) else {
        return Decision::Reject(v.problems);
    };
    let rates = &config.bid_bonds;
    let valid_until = bid_date + chrono::Days::new(rates.days_after_bid.into());
    Decision::Issue(Application {
        contractor: contractor.name.clone(),
        contractor_registered: contractor.name.clone(),
        contractor_address: contractor.address.clone(),
        jv: None,
        owner: owner.name.clone(),
        project,
        site: None,
        // Until the award, the 予定価格 stands for the contract price, and the bid day for
        // the term and the contract date (none is printed on the 予約証書).
        contract_price: planned_price,
        term_start: bid_date,
        term_end: bid_date,
        contract_date: bid_date,
        award_date: None,
        products: vec![ProductRequest {
            product: Product::BidBond,
            format: Format::Paper,
            amount,
            this_year_amount: None,
            bank: None,
            redeposit: None,
            payment_method: String::new(),
            billing: String::new(),
            fee_statement: false,
            intermediate: None,
            bid_bond: Some(BidBondOf {
                bid_date,
                planned_price,
                valid_until,
                fee_yen: rates.reservation_fee_yen,
                tax_yen: rates.tax_yen(),
                tax_percent: rates.consumption_tax_percent,
            }),
            reservation: None,
        }],
        office_code: branch.office_code.clone(),
        notify: None,
        contact: Contact::default(),
    })
}

/// Whether a 契約保証 (of `contractor`, for `owner`) may use the reservation its form names:
/// `found` is that number's latest contents and status. `None` when it may; else the
/// problem's text. An unknown number and another contractor's get one and the same answer.
pub fn reservation_problem(named: &str, found: Option<(&Certificate, CertificateStatus)>, contractor: &str, owner: &str) -> Option<String> {
    let Some((c, status)) = found.filter(|(c, _)| c.product == Product::BidBond && squash(&c.contractor) == squash(contractor)) else {
        return Some(format!("{named} は、貴社の契約保証予約として見つかりません（番号をご確認ください）"));
    };
    match status {
        CertificateStatus::Valid if squash(&c.owner) == squash(owner) => None,
        CertificateStatus::Valid => Some(format!("{} は{}への入札の予約です（このお申込みの発注者は{owner}）", c.number, c.owner)),
        CertificateStatus::Fulfilled => Some(format!("{} は既に契約保証に使われています（履行済）", c.number)),
        CertificateStatus::Lapsed => Some(format!("{} は失効しています（入札日 {} から期限が過ぎました）", c.number, c.bid_bond.as_ref().map(|b| format_era(b.bid_date)).unwrap_or_default())),
        // Ended or withdrawn by staff (`lifecycle.md`).
        other => Some(format!("{} は使えません（{}）", c.number, other.label())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(contractor: &str, owner: &str) -> Certificate {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        Certificate {
            number: "08075-00001Y".into(), product: Product::BidBond, format: Format::Paper, contractor: contractor.into(), contractor_address: String::new(),
            jv: None, owner: owner.into(), project: "取手駅西口広場整備工事".into(), site: None, amount: 6_000_000, contract_price: 60_000_000,
            this_year_amount: None, term_start: d("2027-01-20"), term_end: d("2027-01-20"), guarantee_end: d("2027-02-19"), contract_date: d("2027-01-20"),
            award_date: None, bank: None, redeposit: None, payment_method: String::new(), billing: String::new(), fee_statement: false,
            office_code: "08075".into(), version: 1, issue_date: d("2026-12-10"), fee: None, intermediate: None,
            bid_bond: Some(BidBondOf { bid_date: d("2027-01-20"), planned_price: 60_000_000, valid_until: d("2027-02-19"), fee_yen: 3000, tax_yen: 300, tax_percent: 10 }),
            reservation: None,
        }
    }

    #[test]
    fn a_named_reservation_is_usable_only_open_by_its_contractor_for_its_owner() {
        let r = reservation("取手興業株式会社", "取手市長");
        let ask = |found: Option<(&Certificate, CertificateStatus)>, contractor: &str, owner: &str| reservation_problem("08075-00001Y", found, contractor, owner);
        assert_eq!(ask(Some((&r, CertificateStatus::Valid)), "取手興業株式会社", "取手市長"), None);
        assert_eq!(ask(Some((&r, CertificateStatus::Valid)), "取手興業 株式会社", "取手市長"), None, "names compared as the form's are");
        assert!(ask(Some((&r, CertificateStatus::Valid)), "取手興業株式会社", "三島市長").unwrap().contains("取手市長への入札の予約です"));
        assert!(ask(Some((&r, CertificateStatus::Fulfilled)), "取手興業株式会社", "取手市長").unwrap().contains("履行済"));
        assert!(ask(Some((&r, CertificateStatus::Lapsed)), "取手興業株式会社", "取手市長").unwrap().contains("失効しています（入札日 令和9年1月20日"));
        // Another contractor's and an unknown number: the same words.
        assert_eq!(ask(Some((&r, CertificateStatus::Valid)), "丸一建設株式会社", "取手市長"), ask(None, "丸一建設株式会社", "取手市長"));
        let mut advance = r.clone();
        advance.product = Product::Advance;
        assert_eq!(ask(Some((&advance, CertificateStatus::Valid)), "取手興業株式会社", "取手市長"), ask(None, "取手興業株式会社", "取手市長"), "not a reservation");
    }
}
