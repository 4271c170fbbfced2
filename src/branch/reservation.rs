//! The 契約保証予約 a 契約保証 uses: the one its form names, checked, or else the
//! contractor's open one for the same owner and works.

use super::application;
use crate::domain::CertificateNumber;
use crate::store::{StoreError, Tx};

/// The 契約保証予約 each 契約保証 of `app` uses: the one its form names (checked; a problem
/// when it may not be used), else the contractor's open one for the same owner and works.
/// Found ones are set on the request, in their canonical form.
pub(super) fn reservations(tx: &Tx<'_>, app: &mut application::Application) -> Result<Option<String>, StoreError> {
    let (contractor, owner, project) = (app.contractor_registered.clone(), app.owner.clone(), app.project.clone());
    for req in app.products.iter_mut().filter(|r| r.product == crate::domain::Product::Contract) {
        req.reservation = match req.reservation.take() {
            Some(named) => {
                let number = CertificateNumber::parse(&named).filter(|n| n.product == crate::domain::Product::BidBond).map(|n| n.to_string());
                if let Some(n) = &number {
                    tx.lock_job(&format!("reservation {n}"))?;
                }
                let found = match &number {
                    Some(n) => tx.certificate(n)?,
                    None => None,
                };
                if let Some(problem) = application::bid_bond::reservation_problem(&named, found.as_ref().map(|r| (&r.latest, r.status)), &contractor, &owner) {
                    return Ok(Some(problem));
                }
                number
            }
            None => match tx.issued_for_works(&application::works_key(&contractor, &owner, &project, crate::domain::Product::BidBond))? {
                // Under the reservation's own lock (as a 契約保証 naming it takes), and read
                // again: another daemon may have used it meanwhile.
                Some(n) => {
                    tx.lock_job(&format!("reservation {n}"))?;
                    tx.certificate(&n)?.filter(|r| r.status == crate::domain::CertificateStatus::Valid).map(|r| r.number)
                }
                None => None,
            },
        };
    }
    Ok(None)
}
