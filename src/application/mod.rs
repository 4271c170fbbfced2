//! Branch side, step 2: the application. [`form`] reads the text into a `RawApplication`;
//! [`validate`] applies the rules R1–R10 of `application-form.md` and yields an
//! [`Application`] ready for issuance, a list of every problem, or a hold for staff.

pub mod bid_bond;
pub mod change;
pub mod form;
pub mod intermediate;
pub mod validate;

use crate::product::{Format, Product};
use chrono::NaiveDate;
use serde::Serialize;

pub use form::RawApplication;
pub use validate::{Decision, Existing, Problem, Sender, validate};

/// A valid application: every field checked, normalised where the spec says so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Application {
    /// 受注者名 as written.
    pub contractor: String,
    /// The registered contractor (its name as registered, postal address).
    pub contractor_registered: String,
    pub contractor_address: String,
    pub jv: Option<String>,
    /// The owner as configured (the name printed on certificates).
    pub owner: String,
    pub project: String,
    pub site: Option<String>,
    pub contract_price: u64,
    pub term_start: NaiveDate,
    pub term_end: NaiveDate,
    pub contract_date: NaiveDate,
    pub award_date: Option<NaiveDate>,
    pub products: Vec<ProductRequest>,
    /// The branch that received it (its office code).
    pub office_code: String,
    /// 電子保証発行完了のお知らせ: the address to notify when 希望する.
    pub notify: Option<String>,
    pub contact: Contact,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductRequest {
    pub product: Product,
    pub format: Format,
    pub amount: u64,
    pub this_year_amount: Option<u64>,
    /// Full-width, advance only.
    pub bank: Option<String>,
    pub redeposit: Option<bool>,
    pub payment_method: String,
    pub billing: String,
    pub fee_statement: bool,
    /// A 中間前払金保証's own facts.
    pub intermediate: Option<IntermediateOf>,
    /// A 契約保証予約's own facts.
    pub bid_bond: Option<BidBondOf>,
    /// A 契約保証's 契約保証予約番号 as written, when the form names the reservation it uses.
    pub reservation: Option<String>,
}

/// What a 契約保証予約 (入札ボンド) promises, printed on its 予約証書.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BidBondOf {
    /// 入札日.
    pub bid_date: NaiveDate,
    /// 予定価格.
    pub planned_price: u64,
    /// The last day a 契約保証 can use it: 入札日 + `days_after_bid`; the next day it lapses.
    pub valid_until: NaiveDate,
    /// 予約手数料 before tax, and its consumption tax, as charged on the day of issue.
    pub fee_yen: u64,
    pub tax_yen: u64,
    /// The tax rate as printed ("10").
    pub tax_percent: u32,
}

/// What a 中間前払金保証 adds to: the 前払金保証 it follows and the owner's certification
/// of the works' progress (認定調書), printed on its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IntermediateOf {
    /// The 前払金保証's 保証契約番号.
    pub advance: String,
    /// 認定日.
    pub certified_on: NaiveDate,
    /// 認定番号.
    pub certification_no: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Contact {
    pub department: Option<String>,
    pub title: Option<String>,
    pub person: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
}

/// The identity of "the same works" for R10: contractor, owner, 工事名, product.
pub fn works_key(contractor: &str, owner: &str, project: &str, product: Product) -> String {
    use crate::text::squash;
    format!("{}|{}|{}|{}", squash(contractor), squash(owner), squash(project), product.letter())
}
