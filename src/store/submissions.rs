//! The owner side's register: every checked pair with its message, sender, time, result
//! and reasons, and the registry version it was checked against. Never the key.

use super::{Result, Store, Tx};
use super::db::params;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct SubmissionRow {
    /// The register's own number (0 before it is registered).
    pub id: i64,
    pub owner: String,
    pub message_id: Option<String>,
    pub from: String,
    pub received_at: String,
    pub number: String,
    pub source: String,
    pub product: Option<String>,
    pub project: Option<String>,
    pub result: String,
    pub reasons: Vec<String>,
    pub version: Option<u32>,
    pub checked_at: String,
    /// The company that issued it, when the notice names one or a registry answered.
    pub issuer: Option<String>,
    /// Who settled it by hand, when it was `unchecked` (desk).
    pub settled_by: Option<String>,
    /// What the PDF's signature said: `valid`, `broken`, `untrusted` or `none` (`None`:
    /// registered before signatures were checked).
    pub signature: Option<String>,
    /// Why, when the signature is not `valid` (nor `none`).
    pub signature_reason: Option<String>,
}

impl Tx<'_> {
    pub fn register(&self, message: i64, row: &SubmissionRow) -> Result<()> {
        self.c().execute(
            "INSERT INTO submissions (message, owner, message_id, sender, received_at, number, source, product, project, result, reasons, version, checked_at, issuer, signature, signature_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![message, row.owner, row.message_id, row.from, row.received_at, row.number, row.source, row.product, row.project,
                    row.result, serde_json::to_string(&row.reasons).unwrap_or_default(), row.version, row.checked_at, row.issuer,
                    row.signature, row.signature_reason],
        )?;
        Ok(())
    }

    /// A checked submission keeps what was checked (its register rows), not the mail that
    /// carried the key: its bytes are dropped with the outcome; its Message-ID stays, so a
    /// second delivery is still recognised. The same for every other end of an owner-side
    /// message that may carry a key (a second delivery, an error of ours): the mail itself
    /// stays in the owner's mailbox, for its people.
    pub fn forget_body(&self, message: i64) -> Result<()> {
        self.c().execute("UPDATE message_bodies SET raw = ?2 WHERE message = ?1", params![message, Vec::<u8>::new()])?;
        Ok(())
    }

    /// Forgets the content of a message that turned out not to be for us (people's mail in
    /// a shared mailbox): only the fact that it was looked at stays.
    pub fn forget_content(&self, message: i64) -> Result<()> {
        self.c().execute("UPDATE messages SET message_id = NULL WHERE id = ?1", [message])?;
        self.c().execute("UPDATE message_bodies SET raw = ?2 WHERE message = ?1", params![message, Vec::<u8>::new()])?;
        Ok(())
    }
}

impl Store {
    pub fn submissions(&self) -> Result<Vec<SubmissionRow>> {
        self.submissions_where("TRUE ORDER BY id", &[])
    }

    /// The latest `limit` entries of these owners' registers (all owners when `None`),
    /// newest first.
    pub fn submissions_of(&self, owners: Option<&[String]>, limit: u32) -> Result<Vec<SubmissionRow>> {
        match owners {
            None => self.submissions_where("TRUE ORDER BY id DESC LIMIT ?1", &[&limit]),
            Some(list) => {
                let marks = (0..list.len()).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(",");
                let mut params: Vec<&dyn super::db::ToValue> = vec![&limit];
                params.extend(list.iter().map(|o| o as &dyn super::db::ToValue));
                self.submissions_where(&format!("owner IN ({}) ORDER BY id DESC LIMIT ?1", if marks.is_empty() { "NULL".into() } else { marks }), &params)
            }
        }
    }

    /// One register entry.
    pub fn submission(&self, id: i64) -> Result<Option<SubmissionRow>> {
        Ok(self.submissions_where("id = ?1", &[&id])?.pop())
    }

    /// How many entries wait to be checked by hand, per owner.
    pub fn unchecked_counts(&self) -> Result<Vec<(String, u32)>> {
        self.conn.query_map("SELECT owner, count(*) FROM submissions WHERE result = 'unchecked' GROUP BY owner", (), |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn submissions_where(&self, condition: &str, params: &[&dyn super::db::ToValue]) -> Result<Vec<SubmissionRow>> {
        self.conn.query_map(&format!(
            "SELECT owner, message_id, sender, received_at, number, source, product, project, result, reasons, version, checked_at, issuer, id, settled_by,
                    signature, signature_reason
             FROM submissions WHERE {condition}"), params, |r| {
            let reasons: String = r.get(9)?;
            Ok(SubmissionRow {
                owner: r.get(0)?, message_id: r.get(1)?, from: r.get(2)?, received_at: r.get(3)?, number: r.get(4)?,
                source: r.get(5)?, product: r.get(6)?, project: r.get(7)?, result: r.get(8)?,
                reasons: serde_json::from_str(&reasons).unwrap_or_default(), version: r.get(10)?, checked_at: r.get(11)?,
                issuer: r.get(12)?, id: r.get(13)?, settled_by: r.get(14)?, signature: r.get(15)?, signature_reason: r.get(16)?,
            })
        })
    }
}
