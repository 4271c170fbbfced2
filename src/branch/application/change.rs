//! A change request (変更申込, `application-form.md` § Change): text → [`RawChange`], and
//! with the certificate's current contents → [`ChangeDecision`]. Pure.
//!
//! The changed fields are laid over the current version's contents, and the result goes
//! through the same rules as an application ([`super::validate`]), so a change can never
//! produce contents that a new application could not. What a change may not touch (the
//! contractor, the owner, the product, the format) is a problem, not silently ignored.

use super::form::{self, RawApplication, RawProduct, Section};
use super::validate::{Decision, Existing, Problem, Sender, validate};
use super::Application;
use crate::config::{Branch, Config};
use crate::domain::Certificate;
use crate::domain::Product;
use crate::text::{format_era, group_thousands, nfkc, squash};

pub const SECTION_CHANGE: &str = "変更申込";

/// A change request as written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawChange {
    /// 保証契約番号 as written.
    pub number: Option<String>,
    /// 変更理由.
    pub reason: Option<String>,
    /// The changed fields: (label as normalised, value as written), in order.
    pub fields: Vec<(String, String)>,
    /// Lines that could not be read.
    pub warnings: Vec<String>,
}

/// Does this text carry a change request (a 【変更申込】 heading)?
pub fn has_change(text: &str) -> bool {
    text.lines().any(|l| heading(&squash(l)) == Some(SECTION_CHANGE))
}

fn heading(squashed: &str) -> Option<&str> {
    Some(squashed.strip_prefix('【')?.split_once('】')?.0)
}

/// Reads the 【変更申込】 section: `label：value` lines up to the next heading or the signature.
pub fn parse(text: &str) -> RawChange {
    let mut change = RawChange::default();
    let mut inside = false;
    for raw_line in text.lines() {
        if raw_line.trim_end() == "--" {
            break;
        }
        let line = nfkc(raw_line);
        let line = line.trim();
        if line.starts_with('【') {
            inside = heading(&squash(line)) == Some(SECTION_CHANGE);
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('>') || line.starts_with('※') || line.starts_with('#') {
            continue;
        }
        let Some((label, value, stripped)) = form::split_line(raw_line) else {
            change.warnings.push(format!("読み取れない行「{line}」は読み飛ばしました"));
            continue;
        };
        if stripped {
            change.warnings.push(format!("「{label}」から制御文字を取り除きました"));
        }
        match label.as_str() {
            "保証契約番号" => change.number = Some(value),
            "変更理由" | "変更の理由" => change.reason = Some(value),
            _ => change.fields.push((label, value)),
        }
    }
    change
}

/// What a change request comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeDecision {
    /// New contents for the next version, and the labels of the fields that changed.
    Change { contents: Certificate, changed: Vec<String> },
    /// Only 請負金額 changed: no change procedure is needed (the certificate's note 2).
    PriceOnly,
    /// Every problem, each naming its field.
    Reject(Vec<Problem>),
    /// The sender is not a registered address: held for staff, never answered.
    Hold(String),
}

/// Fields a change may not touch, and why.
const FIXED: &[(&str, &str)] = &[
    ("受注者名", "受注者は変更できません。新たに保証申込をお送りください"),
    ("請負契約者名", "受注者は変更できません。新たに保証申込をお送りください"),
    ("JV名", "JV名は変更できません。新たに保証申込をお送りください"),
    ("発注者名", "発注者は変更できません。新たに保証申込をお送りください"),
    ("申込", "保証の取り下げは変更申込ではお受けできません。支店にご連絡ください"),
    ("保証証書の形式", "保証証書の形式は変更申込では変更できません。支店にご連絡ください"),
];

/// Lays the request over `current` and applies the application rules to the result.
/// `issuing` is the branch that issued the certificate (its name goes in 申込送信先, so a
/// change sent to another branch gets R7's answer).
#[allow(clippy::too_many_arguments)]
pub fn decide(raw: &RawChange, current: &Certificate, config: &Config, branch: &Branch, issuing: &Branch, sender: &Sender, existing: &dyn Existing, now: chrono::DateTime<chrono::FixedOffset>) -> ChangeDecision {
    let mut app = raw_of(current, issuing);
    let mut problems = Vec::new();
    let push = |problems: &mut Vec<Problem>, rule: &'static str, field: &str, message: String| problems.push(Problem { rule, field: field.to_string(), message });
    if matches!(current.product, Product::Intermediate | Product::BidBond) {
        let name = current.product.name();
        return ChangeDecision::Reject(vec![Problem { rule: "R1", field: "保証契約番号".into(),
            message: format!("{} は{name}です。{name}の変更はこのメールでは受け付けていません（支店にご連絡ください）", current.number) }]);
    }
    let product_section = match current.product { Product::Advance => Section::Advance, Product::Contract => Section::Contract, Product::Intermediate => Section::Intermediate, Product::BidBond => Section::BidBond };
    let other_amount = match current.product { Product::Advance | Product::Intermediate | Product::BidBond => "契約保証金額", Product::Contract => "前払金保証金額" };
    for (label, value) in &raw.fields {
        if let Some((_, why)) = FIXED.iter().find(|(l, _)| l == label) {
            push(&mut problems, "R1", label, why.to_string());
        } else if label == other_amount {
            push(&mut problems, "R1", label, format!("保証契約番号 {} は{}です。{label}は変更できません", current.number, current.product.name()));
        } else if !form::assign(&mut app, Section::Works, label, value.clone())
            && !form::assign(&mut app, product_section, label, value.clone())
        {
            push(&mut problems, "R1", label, "変更申込で変更できる項目ではありません（項目名をご確認ください）".into());
        }
    }
    if raw.fields.is_empty() {
        push(&mut problems, "R1", "変更内容", "変更する項目が記入されていません（例：工期：令和8年7月10日 ～ 令和9年6月30日）".into());
    }

    // R10 against every other certificate: this one is not "already issued" for its own works.
    struct Except<'a>(&'a dyn Existing, &'a str);
    impl Existing for Except<'_> {
        fn issued_for(&self, works_key: &str) -> Option<String> {
            self.0.issued_for(works_key).filter(|n| n != self.1)
        }
    }
    let checked = match validate(&app, config, branch, sender, &Except(existing, &current.number)) {
        Decision::Hold(why) => return ChangeDecision::Hold(why),
        Decision::Reject(more) => {
            problems.extend(more);
            None
        }
        Decision::Issue(a) => Some(a),
    };
    if !problems.is_empty() {
        return ChangeDecision::Reject(problems);
    }
    let app = checked.expect("no problems means an application");
    let mut contents = next_version(current, &app, now);
    contents.fee = config.fee_rate(contents.product).map(|rate| crate::domain::IssuedFee::at(&contents, rate));
    let changed = differences(current, &contents);
    if changed.is_empty() {
        return ChangeDecision::Reject(vec![Problem { rule: "R1", field: "変更内容".into(), message: "記入された内容は現在の保証内容と同じです。変更する項目をご確認ください".into() }]);
    }
    if changed == ["請負金額"] {
        return ChangeDecision::PriceOnly;
    }
    ChangeDecision::Change { contents, changed }
}

/// The current contents written out as an application form would carry them.
fn raw_of(c: &Certificate, issuing: &Branch) -> RawApplication {
    let yen = |n: u64| format!("{}円", group_thousands(n));
    let yes = |b: bool, y: &str, n: &str| if b { y.to_string() } else { n.to_string() };
    let product = RawProduct {
        apply: Some("申し込む".into()),
        format: Some(c.format.name().to_string()),
        this_year_amount: c.this_year_amount.map(yen),
        amount: Some(yen(c.amount)),
        bank: c.bank.clone(),
        redeposit: c.redeposit.map(|r| yes(r, "再預託を利用する", "再預託を利用しない")),
        payment_method: Some(c.payment_method.clone()),
        billing: Some(c.billing.clone()),
        fee_statement: Some(yes(c.fee_statement, "希望する", "希望しない")),
        reservation: None,
    };
    let (advance, contract) = match c.product {
        Product::Advance => (Some(product), None),
        Product::Contract => (None, Some(product)),
        Product::Intermediate | Product::BidBond => (None, None),
    };
    RawApplication {
        contractor: Some(c.contractor.clone()),
        jv: c.jv.clone(),
        owner: Some(c.owner.clone()),
        project: Some(c.project.clone()),
        site: c.site.clone(),
        contract_price: Some(yen(c.contract_price)),
        term: Some(format!("{} ～ {}", format_era(c.term_start), format_era(c.term_end))),
        contract_date: Some(format_era(c.contract_date)),
        award_date: c.award_date.map(format_era),
        advance,
        contract,
        send_to: Some(issuing.name.clone()),
        notify: Some("希望しない".into()),
        ..RawApplication::default()
    }
}

/// Version N+1: the validated contents, same number, product and format.
fn next_version(current: &Certificate, app: &Application, now: chrono::DateTime<chrono::FixedOffset>) -> Certificate {
    let req = app.products.iter().find(|r| r.product == current.product).expect("the change keeps its product");
    Certificate {
        number: current.number.clone(),
        product: current.product,
        format: current.format,
        contractor: current.contractor.clone(),
        contractor_address: current.contractor_address.clone(),
        jv: current.jv.clone(),
        owner: current.owner.clone(),
        project: app.project.clone(),
        site: app.site.clone(),
        amount: req.amount,
        contract_price: app.contract_price,
        this_year_amount: req.this_year_amount,
        term_start: app.term_start,
        term_end: app.term_end,
        guarantee_end: app.term_end,
        contract_date: app.contract_date,
        award_date: app.award_date,
        bank: req.bank.clone(),
        redeposit: req.redeposit,
        payment_method: req.payment_method.clone(),
        billing: req.billing.clone(),
        fee_statement: req.fee_statement,
        office_code: current.office_code.clone(),
        version: current.version + 1,
        issue_date: now.date_naive(),
        fee: None,
        intermediate: current.intermediate.clone(),
        bid_bond: current.bid_bond.clone(),
        reservation: current.reservation.clone(),
    }
}

/// The labels (as in the form) of what differs between two versions' contents.
pub fn differences(a: &Certificate, b: &Certificate) -> Vec<String> {
    let amount = match a.product { Product::Advance => "前払金保証金額", Product::Contract => "契約保証金額", Product::Intermediate => "中間前払金保証金額", Product::BidBond => "契約保証金額" };
    let mut out = Vec::new();
    let mut diff = |label: &str, same: bool| if !same { out.push(label.to_string()) };
    diff("工事名", a.project == b.project);
    diff("工事場所", a.site == b.site);
    diff("請負金額", a.contract_price == b.contract_price);
    diff("工期", (a.term_start, a.term_end) == (b.term_start, b.term_end));
    diff("請負契約日", a.contract_date == b.contract_date);
    diff("落札決定日", a.award_date == b.award_date);
    diff("今年度対象額", a.this_year_amount == b.this_year_amount);
    diff(amount, a.amount == b.amount);
    diff("預託金融機関", a.bank == b.bank);
    diff("再預託利用区分", a.redeposit == b.redeposit);
    diff("保証料支払方法", a.payment_method == b.payment_method);
    diff("保証料請求先", a.billing == b.billing);
    diff("保証料計算書(紙)", a.fee_statement == b.fee_statement);
    out
}

#[cfg(test)]
#[path = "change_tests.rs"]
mod tests;
