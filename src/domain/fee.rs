//! The guarantee fee: the rate configured per product and what it comes to for one version.

use crate::domain::{Certificate, Product};
use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct FeeRate {
    pub product: Product,
    /// Annual rate in millionths (0.31 % = 3100).
    pub annual_rate_ppm: u64,
    pub annual_rate_text: String,
    pub minimum_yen: u64,
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
        crate::domain::Product::Intermediate => cert.term_start.max(cert.issue_date),
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
    use crate::domain::{Certificate, Format, Product};
    use chrono::NaiveDate;

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
