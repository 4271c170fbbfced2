//! Branch side, step 3: issuance. An [`Application`] becomes one certificate per product:
//! its 保証契約番号 (office code, a serial never reused, the product letter), for 電子保証 an
//! [`AuthKey`], and the contents of version 1 (新規). Pure: serials come from the store, the
//! random source and the time are passed in. The store records the result and publishes
//! electronic ones to the registry; the documents are typeset from [`Certificate`].

pub mod key;

use crate::application::Application;
use crate::clock::Random;
use crate::config::FeeRate;
use crate::product::{Format, Product};
use chrono::{DateTime, FixedOffset, NaiveDate};
pub use key::AuthKey;
use serde::{Deserialize, Serialize};

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
    pub intermediate: Option<crate::application::IntermediateOf>,
    /// A 契約保証予約's bid, price and 予約手数料 (none for the other products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_bond: Option<crate::application::BidBondOf>,
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

/// A certificate just issued, with its key in clear (electronic only) until the store has
/// kept the key and the registry its hash.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: Certificate,
    pub key: Option<AuthKey>,
    pub issued_at: DateTime<FixedOffset>,
}

/// One certificate per applied product, numbered with `serials` in order.
pub fn issue(app: &Application, serials: &[u32], rng: &dyn Random, now: DateTime<FixedOffset>) -> Vec<Issued> {
    assert_eq!(serials.len(), app.products.len(), "one serial per product");
    app.products.iter().zip(serials).map(|(req, &serial)| {
        let number = CertificateNumber { office: app.office_code.clone(), serial, product: req.product };
        let key = (req.format == Format::Electronic).then(|| AuthKey::generate(rng));
        Issued {
            certificate: Certificate {
                number: number.to_string(),
                product: req.product,
                format: req.format,
                contractor: app.contractor.clone(),
                contractor_address: app.contractor_address.clone(),
                jv: app.jv.clone(),
                owner: app.owner.clone(),
                project: app.project.clone(),
                site: app.site.clone(),
                amount: req.amount,
                contract_price: app.contract_price,
                this_year_amount: req.this_year_amount,
                term_start: app.term_start,
                term_end: app.term_end,
                // A reservation's: the last day a 契約保証 can use it.
                guarantee_end: req.bid_bond.as_ref().map_or(app.term_end, |b| b.valid_until),
                contract_date: app.contract_date,
                award_date: app.award_date,
                bank: req.bank.clone(),
                redeposit: req.redeposit,
                payment_method: req.payment_method.clone(),
                billing: req.billing.clone(),
                fee_statement: req.fee_statement,
                office_code: app.office_code.clone(),
                version: 1,
                issue_date: now.date_naive(),
                fee: None,
                intermediate: req.intermediate.clone(),
                bid_bond: req.bid_bond.clone(),
                reservation: req.reservation.clone(),
            },
            key,
            issued_at: now,
        }
    }).collect()
}

/// The guarantee fee: amount × annual rate × days / 365, whole yen (rounded down), at least
/// the minimum. Days count 工期 inclusive; a 中間前払金保証's from its issue (it guarantees
/// from then to the 保証期限).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fee {
    pub days: i64,
    pub fee: u64,
}

/// The first day the fee counts.
pub fn fee_from(cert: &Certificate) -> NaiveDate {
    match cert.product {
        crate::product::Product::Intermediate => cert.term_start.max(cert.issue_date),
        _ => cert.term_start,
    }
}

pub fn fee(cert: &Certificate, rate: &FeeRate) -> Fee {
    let days = (cert.term_end - fee_from(cert)).num_days() + 1;
    let raw = cert.amount as u128 * rate.annual_rate_ppm as u128 * days.max(0) as u128 / (1_000_000 * 365);
    Fee { days, fee: (raw as u64).max(rate.minimum_yen) }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn fee_is_whole_yen_over_the_term() {
        let rate = FeeRate { product: Product::Advance, annual_rate_ppm: 3100, annual_rate_text: "0.31".into(), minimum_yen: 5000 };
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut c = Certificate {
            number: "35075-00001M".into(), product: Product::Advance, format: Format::Electronic,
            contractor: "c".into(), contractor_address: "a".into(), jv: None, owner: "o".into(), project: "p".into(), site: None,
            amount: 20_000_000, contract_price: 50_000_000, this_year_amount: None,
            term_start: d("2026-07-10"), term_end: d("2027-03-31"), guarantee_end: d("2027-03-31"),
            contract_date: d("2026-07-10"), award_date: None, bank: None, redeposit: None,
            payment_method: "一括納付".into(), billing: "本社".into(), fee_statement: true, office_code: "35075".into(),
            version: 1, issue_date: d("2026-07-04"), fee: None, intermediate: None, bid_bond: None, reservation: None,
        };
        // 265 days: 20,000,000 × 0.31 % × 265 / 365 = 45,013.69…
        assert_eq!(fee(&c, &rate), Fee { days: 265, fee: 45_013 });
        c.amount = 100_000;
        assert_eq!(fee(&c, &rate).fee, 5000);
    }
}
