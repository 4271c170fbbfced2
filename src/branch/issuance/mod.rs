//! Branch side, step 3: issuance. An [`Application`] becomes one certificate per product:
//! its 保証契約番号 (office code, a serial never reused, the product letter), for 電子保証 an
//! [`AuthKey`], and the contents of version 1 (新規). Pure: serials come from the store, the
//! random source and the time are passed in. The store records the result and publishes
//! electronic ones to the registry; the documents are typeset from [`Certificate`].

use crate::branch::application::Application;
use crate::clock::Random;
use crate::domain::{AuthKey, Certificate, CertificateNumber, Issued};
use crate::domain::Format;
use chrono::{DateTime, FixedOffset};

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

