//! The documents as issued (signing.md): each PDF of each version as it was mailed, by its
//! SHA-256, with the file itself except the key notice's (it carries the key in clear; the
//! store keeps keys sealed only). The registry serves the kept certificate and gives every
//! hash, so an owner's system can compare a submitted file with what was issued.

use super::db::{Conn, OptionalExtension, params};
use super::{Result, Store, Tx};
use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One document of a version, as the registry's answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedDocument {
    /// `certificate` (a 契約保証予約's 予約証書 too), `notice` or `fee`.
    pub kind: String,
    /// Lower-case hex.
    pub sha256: String,
}

/// The kinds whose file is kept: all but the key notice.
fn keeps_file(kind: &str) -> bool {
    kind != "notice"
}

impl Tx<'_> {
    /// A document of `number`'s `version` as issued (mailed, or taken by staff). The same
    /// file twice is one row.
    pub fn put_issued_document(&self, number: &str, version: u32, kind: &str, pdf: &[u8], at: DateTime<FixedOffset>) -> Result<()> {
        let sha256 = crate::text::hex(&Sha256::digest(pdf));
        let file = keeps_file(kind).then_some(pdf);
        self.c().execute(
            "INSERT INTO issued_documents (number, version, kind, sha256, pdf, issued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![number, version, kind, sha256, file, at.to_rfc3339()],
        )?;
        Ok(())
    }
}

impl Conn {
    /// Every document of a version as issued, in the order they were issued.
    pub(super) fn issued_documents(&self, number: &str, version: u32) -> Result<Vec<IssuedDocument>> {
        self.query_map("SELECT kind, sha256 FROM issued_documents WHERE number = ?1 AND version = ?2 ORDER BY issued_at, kind, sha256", params![number, version],
            |r| Ok(IssuedDocument { kind: r.get(0)?, sha256: r.get(1)? }))
    }
}

impl Store {
    /// The kept file of a kind of a version as first issued (the certificate, the fee
    /// statement); none for the key notice, or for a version issued before files were kept.
    pub fn issued_pdf(&self, number: &str, version: u32, kind: &str) -> Result<Option<Vec<u8>>> {
        self.conn.query_row("SELECT pdf FROM issued_documents WHERE number = ?1 AND version = ?2 AND kind = ?3 AND pdf IS NOT NULL ORDER BY issued_at LIMIT 1",
            params![number, version, kind], |r| r.get(0)).optional()
    }
}
