//! A certificate: its 保証契約番号 and the contents of one version, as printed and as the
//! registry shows it, with what a 中間前払金保証 and a 契約保証予約 add.

use crate::domain::{AuthKey, FeeRate, Format, Product, fee};
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

/// A certificate just issued, with its key in clear (electronic only) until the store has
/// kept the key and the registry its hash.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: Certificate,
    pub key: Option<AuthKey>,
    pub issued_at: DateTime<FixedOffset>,
}

/// `35075-00001M`: office code, serial, product letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateNumber {
    pub office: String,
    pub serial: u32,
    pub product: Product,
}

impl std::fmt::Display for CertificateNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{:05}{}", self.office, self.serial, self.product.letter())
    }
}

impl CertificateNumber {
    /// Reads a number as typed or extracted (NFKC, spaces ignored, `ー`/`－` as hyphen).
    pub fn parse(s: &str) -> Option<CertificateNumber> {
        let t: String = crate::text::squash(s).replace(['ー', '－', '‐', '−', '—'], "-").to_ascii_uppercase();
        let (office, rest) = t.split_once('-')?;
        let letter = rest.chars().last()?;
        let serial = &rest[..rest.len() - letter.len_utf8()];
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(office, 5) || !digits(serial, 5) {
            return None;
        }
        Some(CertificateNumber { office: office.to_string(), serial: serial.parse().ok()?, product: Product::from_letter(letter)? })
    }
}

/// The contents of one version of a certificate, as printed and as the registry shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub number: String,
    pub product: Product,
    pub format: Format,
    pub contractor: String,
    pub contractor_address: String,
    pub jv: Option<String>,
    pub owner: String,
    pub project: String,
    pub site: Option<String>,
    pub amount: u64,
    pub contract_price: u64,
    pub this_year_amount: Option<u64>,
    pub term_start: NaiveDate,
    pub term_end: NaiveDate,
    /// 保証期限: the last day of 工期.
    pub guarantee_end: NaiveDate,
    pub contract_date: NaiveDate,
    pub award_date: Option<NaiveDate>,
    pub bank: Option<String>,
    pub redeposit: Option<bool>,
    pub payment_method: String,
    pub billing: String,
    pub fee_statement: bool,
    pub office_code: String,
    /// 1 for 新規, N+1 for 変更-N.
    pub version: u32,
    pub issue_date: NaiveDate,
    /// The fee as issued with this version, at that day's rate. Every later print (a
    /// resend, a paper copy, `render`) shows this one, whatever the rates are by then.
    /// Absent only in versions stored before the fee was kept (they are computed at the
    /// current rate, as then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<IssuedFee>,
    /// A 中間前払金保証's 前払金保証 and 認定 (none for the other products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<IntermediateOf>,
    /// A 契約保証予約's bid, price and 予約手数料 (none for the other products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_bond: Option<BidBondOf>,
    /// A 契約保証's 契約保証予約 that it fulfilled (履行済), named on the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<String>,
}

/// The fee of a version as issued: what the fee statement prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedFee {
    pub days: i64,
    pub fee: u64,
    /// The annual rate as printed ("0.31").
    pub rate_text: String,
}

impl IssuedFee {
    pub fn at(cert: &Certificate, rate: &FeeRate) -> IssuedFee {
        let f = fee(cert, rate);
        IssuedFee { days: f.days, fee: f.fee, rate_text: rate.annual_rate_text.clone() }
    }
}

impl Certificate {
    /// `変更-N` for version N+1, nothing for the first.
    pub fn change_label(&self) -> Option<String> {
        (self.version > 1).then(|| format!("変更-{}", self.version - 1))
    }
}

/// Every 保証契約番号 in a text, in order (spacing and full-width forms allowed).
pub fn certificate_numbers(text: &str) -> Vec<String> {
    let s = crate::text::squash(text).replace(['ー', '－', '‐', '−', '—'], "-");
    numbers_anywhere(&s).into_iter().map(|(_, n)| n).collect()
}

/// Every `35075-00001M` in squashed text that is not the tail of a longer digit run.
pub fn numbers_anywhere(s: &str) -> Vec<(usize, String)> {
    let b = s.as_bytes();
    let mut out: Vec<(usize, String)> = Vec::new();
    for i in 0..b.len().saturating_sub(11) {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) && s.is_char_boundary(i) && s.is_char_boundary(i + 12)
            && let Some(c) = CertificateNumber::parse(&s[i..i + 12])
            && !out.iter().any(|(_, n)| *n == c.to_string())
        {
            out.push((i, c.to_string()));
        }
    }
    out
}

/// What a 契約保証予約 (入札ボンド) promises, printed on its 予約証書.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntermediateOf {
    /// The 前払金保証's 保証契約番号.
    pub advance: String,
    /// 認定日.
    pub certified_on: NaiveDate,
    /// 認定番号.
    pub certification_no: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Product;

    #[test]
    fn numbers_read_back() {
        let n = CertificateNumber { office: "35075".into(), serial: 1, product: Product::Advance };
        assert_eq!(n.to_string(), "35075-00001M");
        assert_eq!(CertificateNumber::parse("３５０７５－０００１２ｋ").unwrap().to_string(), "35075-00012K");
        assert_eq!(CertificateNumber::parse("35075-00001M"), Some(n));
        for bad in ["35075-0001M", "35075-00001X", "3507A-00001M", "", "35075 00001M"] {
            assert_eq!(CertificateNumber::parse(bad), None, "{bad}");
        }
    }
}
