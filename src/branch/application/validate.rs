//! The rules R1–R10: `RawApplication` → [`Decision`]. Pure: the configuration, the sender,
//! the receiving branch and what was already issued come in as values.
//!
//! Every broken rule is one [`Problem`] naming the field by its label in the form; all of
//! them are collected, never only the first.
//!
//! Longer than 400 lines: the ten rules stand in one file in the order of the spec, so
//! that one reading checks them all; each product's own sections are in `bid_bond.rs` and
//! `intermediate.rs`.

use super::form::{RawApplication, RawProduct};
use super::{Application, Contact, ProductRequest};
use crate::config::{Branch, Config, Owner, is_email};
use crate::domain::{Format, Product};
use crate::text::{nfkc, parse_date, parse_yen, split_term, squash, to_fullwidth, format_yen};
use chrono::NaiveDate;
use serde::Serialize;

/// One line of the rejection: the field as labelled in the form and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub rule: &'static str,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}：{}", self.field, self.message)
    }
}

/// Who sent the message: the `From` address and the envelope sender (`Return-Path`).
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: String,
    pub envelope: Option<String>,
}

/// What was already issued, for R10.
pub trait Existing {
    /// The 保証契約番号 already issued for these works and product, if any.
    fn issued_for(&self, works_key: &str) -> Option<String>;
}

impl Existing for Vec<(String, String)> {
    fn issued_for(&self, key: &str) -> Option<String> {
        self.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Issue(Application),
    Reject(Vec<Problem>),
    /// R6: the sender is not a registered address. Nothing is sent.
    Hold(String),
}

pub fn validate(raw: &RawApplication, config: &Config, branch: &Branch, sender: &Sender, existing: &dyn Existing) -> Decision {
    let mut v = Validator { problems: Vec::new() };

    // R6 first: an unverified sender is held, never answered.
    let Some(sender_contractor) = config.contractor_by_email(&sender.from) else {
        return Decision::Hold(format!("送信者 {} は登録されたアドレスではありません", sender.from));
    };
    if let Some(env) = &sender.envelope
        && !env.is_empty() && config.contractor_by_email(env).is_none_or(|c| c.name != sender_contractor.name)
    {
        return Decision::Hold(format!("エンベロープ送信者 {env} は登録されたアドレスではありません"));
    }

    let contractor = v.required("受注者名", &raw.contractor);
    let jv = raw.jv.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(name) = &contractor {
        // The contractor named must be the sender's, directly or as the JV's representative.
        let named = config.contractor_by_name(name)
            .or_else(|| config.joint_venture(name).and_then(|j| config.contractor_by_name(&j.representative)));
        if named.is_none_or(|c| c.name != sender_contractor.name) {
            v.push("R6", "受注者名", format!("「{name}」は、送信元のメールアドレス（{}）の登録事業者「{}」と一致しません", sender.from, sender_contractor.name));
        }
    }
    if let Some(j) = &jv
        && let Some(known) = config.joint_venture(j)
        && squash(&known.representative) != squash(&sender_contractor.name)
    {
        v.push("R6", "JV名", format!("「{j}」の代表者は「{}」として登録されています", known.representative));
    }

    let owner_name = v.required("発注者名", &raw.owner);
    let owner = owner_name.as_deref().and_then(|n| {
        let o = config.owner_by_name(n);
        if o.is_none() {
            v.push("R5", "発注者名", format!("「{n}」は登録されていない発注者です。発注者名をご確認ください"));
        }
        o
    });
    let project = v.required("工事名", &raw.project);
    let contract_price = v.amount("請負金額", &raw.contract_price, true);
    let term = v.required("工期", &raw.term).and_then(|t| {
        let t = nfkc(&t);
        let Some((a, b)) = split_term(&t) else {
            v.push("R4", "工期", "開始日と終了日を「～」でつないで記入してください（例：令和8年7月10日 ～ 令和9年3月31日）".into());
            return None;
        };
        let (start, end) = (v.date_value("工期", a, "開始日"), v.date_value("工期", b, "終了日"));
        let (start, end) = (start?, end?);
        if start > end {
            v.push("R4", "工期", "開始日が終了日より後になっています".into());
            return None;
        }
        Some((start, end))
    });
    let contract_date = v.date("請負契約日", &raw.contract_date, true);
    let award_date = v.date("落札決定日", &raw.award_date, false);
    if let (Some(cd), Some((_, end))) = (contract_date, term)
        && cd > end
    {
        v.push("R4", "請負契約日", "工期の終了日より後の日付です".into());
    }

    // Products: a missing section or 申し込まない is not applied for.
    let mut products = Vec::new();
    for (product, raw_p) in [(Product::Advance, &raw.advance), (Product::Contract, &raw.contract)] {
        let Some(p) = raw_p else { continue };
        if let Some(req) = v.product(product, p, contract_price, owner, contract_date, award_date) {
            products.push(req);
        }
    }
    let applied_any = [&raw.advance, &raw.contract].iter().any(|p| p.as_ref().is_some_and(|p| applies(p) == Some(true)));
    if !applied_any {
        v.push("R2", "申込", "前払金保証・契約保証のいずれも「申し込む」になっていません。少なくとも一つの保証をお申し込みください".into());
    }

    // 【インフォメーション】
    if let Some(to) = v.required("申込送信先", &raw.send_to)
        && squash(&to) != squash(&branch.name)
    {
        let owners_branch = owner.and_then(|o| config.branch_by_name(&o.branch)).filter(|b| b.name != branch.name);
        let named = config.branch_by_name(&to);
        let hint = match (owners_branch, named) {
            (Some(b), _) => format!("{}の工事は{}の取扱いです。{} 宛にお送りください", owner.map(|o| o.name.as_str()).unwrap_or(""), b.name, b.address),
            (None, Some(b)) => format!("{}へのお申込みであれば申込送信先を「{}」としてください（{}へは {} 宛にお送りください）", branch.name, branch.name, b.name, b.address),
            (None, None) => format!("申込送信先を「{}」としてください", branch.name),
        };
        v.push("R7", "申込送信先", format!("「{to}」となっていますが、このお申込みは{}（{}）に届きました。{hint}", branch.name, branch.address));
    }
    let notify = v.yes_no("電子保証発行完了のお知らせ", &raw.notify, &["希望する"], &["希望しない"]);
    let email = match notify {
        Some(true) => v.required("メールアドレス", &raw.email).and_then(|e| {
            let e = nfkc(&e).to_ascii_lowercase();
            if is_email(&e) { Some(e) } else {
                v.push("R8", "メールアドレス", format!("「{e}」はメールアドレスとして正しくありません"));
                None
            }
        }),
        _ => None,
    };

    // R10: the same works and product already issued.
    if let (Some(c), Some(o), Some(pj)) = (&contractor, owner, &project) {
        for req in &products {
            let key = super::works_key(c, &o.name, pj, req.product);
            if let Some(number) = existing.issued_for(&key) {
                v.push("R10", req.product.name(), format!("この工事の{}は既に発行済みです（保証契約番号 {number}）。変更の場合は変更申込をお送りください", req.product.name()));
            }
        }
    }

    if !v.problems.is_empty() {
        return Decision::Reject(v.problems);
    }
    let (Some(contractor), Some(owner), Some(project), Some(contract_price), Some((term_start, term_end)), Some(contract_date)) =
        (contractor, owner, project, contract_price, term, contract_date)
    else {
        unreachable!("every required field without a value added a problem")
    };
    Decision::Issue(Application {
        contractor,
        contractor_registered: sender_contractor.name.clone(),
        contractor_address: sender_contractor.address.clone(),
        jv,
        owner: owner.name.clone(),
        project,
        site: raw.site.clone().filter(|s| !s.trim().is_empty()),
        contract_price,
        term_start,
        term_end,
        contract_date,
        award_date,
        products,
        office_code: branch.office_code.clone(),
        notify: email,
        contact: Contact {
            department: raw.department.clone().filter(|s| !s.is_empty()),
            title: raw.title.clone().filter(|s| !s.is_empty()),
            person: raw.person.clone().filter(|s| !s.is_empty()),
            phone: raw.phone.clone().filter(|s| !s.is_empty()),
            message: raw.message.clone().filter(|s| !s.is_empty()),
        },
    })
}

/// Whether a product section applies (申込：申し込む).
pub fn applies_to(p: &RawProduct) -> bool {
    applies(p) == Some(true)
}

/// `Some(true)` 申し込む, `Some(false)` 申し込まない, `None` blank or unreadable.
fn applies(p: &RawProduct) -> Option<bool> {
    match squash(p.apply.as_deref().unwrap_or("")).as_str() {
        "申し込む" | "申込む" | "申込" | "申し込みする" => Some(true),
        "申し込まない" | "申込まない" | "申し込みしない" | "" => Some(false),
        _ => None,
    }
}

pub(super) struct Validator {
    pub(super) problems: Vec<Problem>,
}

impl Validator {
    pub(super) fn push(&mut self, rule: &'static str, field: &str, message: String) {
        self.problems.push(Problem { rule, field: field.to_string(), message });
    }

    pub(super) fn required(&mut self, field: &str, value: &Option<String>) -> Option<String> {
        match value.as_deref().map(str::trim) {
            Some(v) if !v.is_empty() => Some(v.to_string()),
            _ => {
                self.push("R1", field, "記入されていません（必須項目です）".into());
                None
            }
        }
    }

    pub(super) fn amount(&mut self, field: &str, value: &Option<String>, required: bool) -> Option<u64> {
        let v = if required { self.required(field, value)? } else {
            value.as_deref().map(str::trim).filter(|s| !s.is_empty())?.to_string()
        };
        match parse_yen(&v) {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.push("R3", field, format!("「{v}」は金額として読めません。円単位の正の整数で記入してください（例：20,000,000円）"));
                None
            }
        }
    }

    fn date_value(&mut self, field: &str, v: &str, part: &str) -> Option<NaiveDate> {
        let d = parse_date(v);
        if d.is_none() {
            let which = if part.is_empty() { String::new() } else { format!("{part}の") };
            self.push("R4", field, format!("{which}「{v}」は正しい日付ではありません（例：令和8年7月10日）"));
        }
        d
    }

    pub(super) fn date(&mut self, field: &str, value: &Option<String>, required: bool) -> Option<NaiveDate> {
        let v = if required { self.required(field, value)? } else {
            value.as_deref().map(str::trim).filter(|s| !s.is_empty())?.to_string()
        };
        self.date_value(field, &v, "")
    }

    pub(super) fn yes_no(&mut self, field: &str, value: &Option<String>, yes: &[&str], no: &[&str]) -> Option<bool> {
        let v = self.required(field, value)?;
        let s = squash(&v);
        if yes.contains(&s.as_str()) {
            Some(true)
        } else if no.contains(&s.as_str()) {
            Some(false)
        } else {
            self.push("R1", field, format!("「{v}」ではなく「{}」または「{}」と記入してください", yes[0], no[0]));
            None
        }
    }

    fn product(&mut self, product: Product, p: &RawProduct, contract_price: Option<u64>, owner: Option<&Owner>, contract_date: Option<NaiveDate>, award_date: Option<NaiveDate>) -> Option<ProductRequest> {
        let sec = format!("【{}】", product.name());
        let f = |label: &str| format!("{sec}{label}");
        match applies(p) {
            Some(true) => {}
            Some(false) => {
                let filled = p.format.as_deref().or(p.amount.as_deref()).is_some_and(|s| !s.trim().is_empty());
                if filled && p.apply.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    self.push("R1", &f("申込"), "「申し込む」または「申し込まない」と記入してください".into());
                }
                return None;
            }
            None => {
                self.push("R1", &f("申込"), format!("「{}」ではなく「申し込む」または「申し込まない」と記入してください", p.apply.as_deref().unwrap_or("")));
                return None;
            }
        }
        let before = self.problems.len();
        let format = self.required(&f("保証証書の形式"), &p.format).and_then(|v| match squash(&v).as_str() {
            "電子保証" | "電子保証(認証キーを含む)" | "電子" => Some(Format::Electronic),
            "証書(紙)" | "紙" | "証書" => Some(Format::Paper),
            _ => {
                self.push("R1", &f("保証証書の形式"), format!("「{v}」ではなく「電子保証」または「証書(紙)」と記入してください"));
                None
            }
        });
        let amount_label = match product { Product::Advance => "前払金保証金額", Product::Contract => "契約保証金額", Product::Intermediate => "中間前払金保証金額", Product::BidBond => "契約保証金額" };
        let amount = self.amount(&f(amount_label), &p.amount, true);
        let this_year = if product == Product::Advance { self.amount(&f("今年度対象額"), &p.this_year_amount, false) } else { None };
        let payment_method = self.required(&f("保証料支払方法"), &p.payment_method);
        let billing = self.required(&f("保証料請求先"), &p.billing);
        let fee_statement = self.yes_no(&f("保証料計算書(紙)"), &p.fee_statement, &["希望する"], &["希望しない"]);
        let (mut bank, mut redeposit) = (None, None);
        if product == Product::Advance {
            bank = self.required(&f("預託金融機関"), &p.bank).and_then(|b| {
                if is_bank_and_branch(&b) { Some(to_fullwidth(&b)) } else {
                    self.push("R9", &f("預託金融機関"), format!("「{b}」には金融機関名（○○銀行、○○信用金庫など）と支店名（○○支店、本店など）を記入してください"));
                    None
                }
            });
            redeposit = self.yes_no(&f("再預託利用区分"), &p.redeposit.as_ref().map(|r| r.replace("再預託を", "")), &["利用する"], &["利用しない"]);
        }

        // R3: amounts against the owner's ratios.
        if let (Some(amount), Some(price)) = (amount, contract_price) {
            let ratio_owner = owner.map(|o| (o.advance_ratio_percent, o.contract_ratio_percent)).unwrap_or((40, 10));
            match product {
                Product::Advance => {
                    if let Some(ty) = this_year
                        && ty > price
                    {
                        self.push("R3", &f("今年度対象額"), format!("請負金額（{}）を超えています", format_yen(price)));
                    }
                    let (base, base_name) = match this_year { Some(ty) => (ty, "今年度対象額"), None => (price, "請負金額") };
                    let limit = base as u128 * ratio_owner.0 as u128 / 100;
                    if amount as u128 > limit {
                        self.push("R3", &f(amount_label), format!("{}は{base_name}の{}%（{}）を超えています", format_yen(amount), ratio_owner.0, format_yen(limit as u64)));
                    }
                }
                // Applied for with their own sections (`intermediate.rs`, `bid_bond.rs`), never here.
                Product::Intermediate | Product::BidBond => {}
                Product::Contract => {
                    let floor = (price as u128 * ratio_owner.1 as u128).div_ceil(100);
                    if (amount as u128) < floor {
                        self.push("R3", &f(amount_label), format!("{}は請負金額の{}%（{}）以上としてください", format_yen(amount), ratio_owner.1, format_yen(floor as u64)));
                    }
                    if amount > price {
                        self.push("R3", &f(amount_label), format!("{}は請負金額（{}）を超えています", format_yen(amount), format_yen(price)));
                    }
                }
            }
        }

        // R5: electronic only where the owner accepts it.
        if let (Some(Format::Electronic), Some(o)) = (format, owner)
            && let Some(why) = electronic_refusal(o, contract_date, award_date) {
                self.push("R5", &f("保証証書の形式"), format!("{why}「証書(紙)」でお申し込みください"));
            }
        if self.problems.len() > before {
            return None;
        }
        Some(ProductRequest {
            intermediate: None,
            bid_bond: None,
            reservation: if product == Product::Contract { p.reservation.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string) } else { None },
            product,
            format: format?,
            amount: amount?,
            this_year_amount: this_year,
            bank,
            redeposit,
            payment_method: payment_method?,
            billing: billing?,
            fee_statement: fee_statement?,
        })
    }
}

/// Why the owner does not accept 電子保証 for this application, if it does not.
pub(super) fn electronic_refusal(o: &Owner, contract_date: Option<NaiveDate>, award_date: Option<NaiveDate>) -> Option<String> {
    if !o.accepts_electronic {
        return Some(format!("{}は電子保証に対応していません。", o.name));
    }
    if let Some(from) = o.electronic_contract_date_from
        && contract_date.is_some_and(|d| d < from)
    {
        return Some(format!("{}の電子保証は請負契約日が{}以降の工事に限られます。", o.name, crate::text::format_era(from)));
    }
    if let Some(from) = o.electronic_award_date_from {
        match award_date {
            None => return Some(format!("{}の電子保証は落札決定日が{}以降の工事に限られます。落札決定日を記入するか、", o.name, crate::text::format_era(from))),
            Some(d) if d < from => return Some(format!("{}の電子保証は落札決定日が{}以降の工事に限られます。", o.name, crate::text::format_era(from))),
            _ => {}
        }
    }
    None
}

const INSTITUTIONS: [&str; 14] = ["銀行", "信用金庫", "信用組合", "農業協同組合", "労働金庫", "漁業協同組合", "信金", "信組", "農協", "労金", "漁協", "商工組合中央金庫", "JA", "信用農業協同組合連合会"];
const BRANCHES: [&str; 8] = ["支店", "本店", "出張所", "営業部", "支所", "本所", "営業所", "事務所"];

/// R9: a financial institution followed by one of its branches.
pub fn is_bank_and_branch(s: &str) -> bool {
    let t = squash(s);
    let inst = INSTITUTIONS.iter().filter_map(|w| t.find(w).map(|i| i + w.len())).min();
    match inst {
        Some(end) => {
            let rest = &t[end..];
            BRANCHES.iter().any(|b| rest.ends_with(b) && !rest.is_empty())
        }
        None => false,
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
