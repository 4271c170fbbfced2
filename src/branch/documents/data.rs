//! Certificate → the JSON the Typst templates read as `/data.json`. Display values are
//! formatted here (era dates, yen), so templates stay free of logic; `machine` is the raw
//! record attached inside every PDF (read back quickly on the owner side, never trusted).

use crate::config::Config;
use crate::domain::{AuthKey, Certificate, IssuedFee};
use crate::text::{format_era, format_yen};
use serde_json::{Value, json};

pub fn document_data(config: &Config, cert: &Certificate, key: Option<&AuthKey>) -> Value {
    let branch = config.branch_by_code(&cert.office_code);
    let jv = cert.jv.as_ref().map(|name| json!({
        "name": name,
        "representative": config.joint_venture(name).map(|j| j.representative.clone()).unwrap_or_else(|| cert.contractor.clone()),
    }));
    // The fee as issued; only versions stored before it was kept are computed again.
    let issued = cert.fee.clone().or_else(|| config.fee_rate(cert.product).map(|rate| IssuedFee::at(cert, rate)));
    let fee_value = issued.map(|f| {
        json!({
            "amount": format_yen(cert.amount),
            "days": f.days,
            "rate": format!("年 {} %", f.rate_text),
            "fee": format_yen(f.fee),
            "fee_yen": f.fee,
            "payment_method": cert.payment_method,
            "billing": cert.billing,
        })
    });
    json!({
        "issue_date": format_era(cert.issue_date),
        "number": cert.number,
        "key": key.map(AuthKey::reveal),
        "product": cert.product.name(),
        "product_terms": cert.product.terms(),
        "procedure": cert.product.procedure(),
        "electronic": cert.format == crate::domain::Format::Electronic,
        "change_label": cert.change_label(),
        "contractor": {"name": cert.contractor, "address": cert.contractor_address},
        "jv": jv,
        "addressee": cert.jv.clone().unwrap_or_else(|| cert.contractor.clone()),
        "owner": cert.owner,
        "project": cert.project,
        "site": cert.site,
        "amount": format_yen(cert.amount),
        "contract_price": format_yen(cert.contract_price),
        "this_year_amount": cert.this_year_amount.map(format_yen),
        "guarantee_end": format_era(cert.guarantee_end),
        "term_from": format_era(cert.term_start),
        "fee_from": format_era(crate::domain::fee_from(cert)),
        "term_to": format_era(cert.term_end),
        "contract_date": format_era(cert.contract_date),
        "bank": cert.bank,
        "redeposit": cert.redeposit.map(|r| if r { "再預託を利用する" } else { "再預託を利用しない" }),
        // A 中間前払金保証's 前払金保証 and the owner's certification of progress.
        "advance_number": cert.intermediate.as_ref().map(|i| i.advance.clone()),
        "certified": cert.intermediate.as_ref().map(|i| format!("{}（{}）", format_era(i.certified_on), i.certification_no)),
        // A 契約保証 that used a 契約保証予約, and a 契約保証予約's own promise.
        "reservation": cert.reservation,
        "bid_bond": cert.bid_bond.as_ref().map(|b| json!({
            "bid_date": format_era(b.bid_date),
            "planned_price": format_yen(b.planned_price),
            "valid_until": format_era(b.valid_until),
            "fee": format_yen(b.fee_yen),
            "tax": format_yen(b.tax_yen),
            "tax_percent": b.tax_percent,
            "total": format_yen(b.fee_yen + b.tax_yen),
        })),
        "company": {
            "name": config.company.name,
            "address": config.company.address,
            "representative": config.company.representative,
            "registry_name": config.company.registry_name,
        },
        "branch": {
            "name": branch.map(|b| b.name.clone()).unwrap_or_default(),
            "tel": branch.map(|b| b.tel.clone()).unwrap_or_default(),
            "fax": branch.map(|b| b.fax.clone()).unwrap_or_default(),
            "email": branch.map(|b| b.address.clone()).unwrap_or_default(),
        },
        "fee": fee_value,
        "lookup": lookup(config, cert),
        "machine": {
            "schema": "esurety/1",
            "number": cert.number,
            "key": key.map(AuthKey::reveal),
            "product": cert.product.name(),
            "project": cert.project,
            "contractor": cert.contractor,
            "owner": cert.owner,
            "version": cert.version,
        },
    })
}

/// The registry's lookup page for this certificate's number (`[web] public_url`,
/// signing.md), with its QR code as SVG: an electronic certificate's only, and never the
/// key. Null without a public address.
fn lookup(config: &Config, cert: &Certificate) -> Value {
    let Some(base) = config.web.as_ref().and_then(|w| w.public_url.as_deref()) else { return Value::Null };
    if cert.format != crate::domain::Format::Electronic {
        return Value::Null;
    }
    let number: String = url::form_urlencoded::byte_serialize(cert.number.as_bytes()).collect();
    let url = format!("{base}/?number={number}");
    // Level M: a printed page may be folded or stamped on.
    let svg = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
        .map(|code| code.render::<qrcode::render::svg::Color>().module_dimensions(1, 1).quiet_zone(true).build())
        .ok();
    json!({"url": url, "qr_svg": svg})
}

/// Attachment file names: Japanese, as the contractor files them.
pub fn file_name(kind: super::DocumentKind, cert: &Certificate) -> String {
    let stem = match kind.of(cert) {
        super::DocumentKind::Notice => "認証キーのお知らせ",
        super::DocumentKind::Certificate => "保証証書",
        super::DocumentKind::Fee => "保証料計算書",
        super::DocumentKind::Reservation => "契約保証予約証書",
    };
    match cert.change_label() {
        Some(label) => format!("{stem}_{}_{label}.pdf", cert.number),
        None => format!("{stem}_{}.pdf", cert.number),
    }
}
