//! Branch side, step 2: the application. [`form`] reads the text into a `RawApplication`;
//! [`validate`] applies the rules R1–R10 of `application-form.md` and yields an
//! [`Application`] ready for issuance, a list of every problem, or a hold for staff.

pub mod bid_bond;
pub mod change;
pub mod form;
pub mod intermediate;
pub mod validate;

use crate::domain::{BidBondOf, Format, IntermediateOf, Product};
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
