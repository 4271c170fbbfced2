//! The registry as a service: the owner systems' API tokens (only their hashes) and the
//! record of every check made through the web or the command line (never the key, and of
//! the number only a well-formed one; kept [`CHECKS_KEPT_DAYS`] days).

use super::{Result, Store, Tx};
use chrono::{DateTime, FixedOffset};
use super::db::{Conn, OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// One check, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub at: String,
    pub via: String,
    pub token: Option<i64>,
    pub address: Option<String>,
    pub number: String,
    pub result: String,
}

/// How a check came in, for its record.
#[derive(Debug, Clone, Copy)]
pub struct CheckRecord<'a> {
    pub via: &'a str,
    pub token: Option<i64>,
    pub address: Option<&'a str>,
    pub number: &'a str,
    pub result: &'a str,
}

impl Tx<'_> {
    pub fn add_token(&self, name: &str, hash: &[u8], at: DateTime<FixedOffset>) -> Result<i64> {
        self.c().query_row("INSERT INTO api_tokens (name, hash, created_at) VALUES (?1, ?2, ?3) RETURNING id", params![name, hash, at.to_rfc3339()], |r| r.get(0))
    }

    /// Revokes a token; `false` when there is no such token or it was revoked already.
    pub fn revoke_token(&self, id: i64, at: DateTime<FixedOffset>) -> Result<bool> {
        Ok(self.c().execute("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, at.to_rfc3339()])? == 1)
    }

    /// The live token with this hash, if any; its last use is noted (at most once a minute).
    /// The live token with this hash, if any (nothing written).
    pub fn token_id(&self, hash: &[u8]) -> Result<Option<i64>> {
        self.c().query_row("SELECT id FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL", [hash], |r| r.get(0)).optional()
    }

    pub fn use_token(&self, hash: &[u8], at: DateTime<FixedOffset>) -> Result<Option<i64>> {
        let id: Option<i64> = self.c().query_row("SELECT id FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL", [hash], |r| r.get(0)).optional()?;
        if let Some(id) = id {
            let stale = (at - chrono::Duration::seconds(60)).to_rfc3339();
            self.c().execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![id, at.to_rfc3339(), stale],
            )?;
        }
        Ok(id)
    }

    pub fn record_check(&self, check: CheckRecord<'_>, at: DateTime<FixedOffset>) -> Result<()> {
        record_check(self.c(), check, at)
    }
}

impl Store {
    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        self.conn.query_map("SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id", (), |r| Ok(TokenRow { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)?, last_used_at: r.get(3)?, revoked_at: r.get(4)? }))
    }

    /// What a token may take of a number's documents (signing.md): `None` for a token not
    /// known or revoked, else whether that token has had a `valid` answer for the number
    /// (within the record's [`CHECKS_KEPT_DAYS`] days).
    pub fn token_checked(&self, hash: &[u8], number: &str) -> Result<Option<bool>> {
        let id: Option<i64> = self.conn.query_row("SELECT id FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL", [hash], |r| r.get(0)).optional()?;
        let Some(id) = id else { return Ok(None) };
        let checked: bool = self.conn.query_row("SELECT EXISTS (SELECT 1 FROM registry_checks WHERE token = ?1 AND number = ?2 AND result = 'valid')", params![id, number], |r| r.get(0))?;
        Ok(Some(checked))
    }

    /// A token's id, when it is known and not revoked.
    pub fn token_of(&self, hash: &[u8]) -> Result<Option<i64>> {
        self.conn.query_row("SELECT id FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL", [hash], |r| r.get(0)).optional()
    }

    /// The latest `limit` checks, newest first.
    pub fn checks(&self, limit: u32) -> Result<Vec<CheckRow>> {
        self.conn.query_map("SELECT at, via, token, address, number, result FROM registry_checks ORDER BY id DESC LIMIT ?1", [limit], |r| Ok(CheckRow { at: r.get(0)?, via: r.get(1)?, token: r.get(2)?, address: r.get(3)?, number: r.get(4)?, result: r.get(5)? }))
    }

    /// Records a check made outside a transaction (`esurety verify`).
    pub fn record_check(&self, check: CheckRecord<'_>, at: DateTime<FixedOffset>) -> Result<()> {
        record_check(&self.conn, check, at)
    }
}

/// How long the record of checks is kept.
pub const CHECKS_KEPT_DAYS: i64 = 90;

/// What a check's record keeps of the number asked: the number in its canonical form, or
/// [`MALFORMED`] for anything else (what a person typed may be their key, in the wrong field).
pub fn recorded_number(asked: &str) -> String {
    crate::domain::CertificateNumber::parse(asked).map(|n| n.to_string()).unwrap_or_else(|| MALFORMED.to_string())
}

/// The record's number of a check whose number was not one.
pub const MALFORMED: &str = "(malformed)";

fn record_check(c: &Conn, check: CheckRecord<'_>, at: DateTime<FixedOffset>) -> Result<()> {
    // Records older than the retention go as new ones come, as failures do (the times are
    // RFC 3339 in the clock's one offset, so they compare as text).
    c.execute("DELETE FROM registry_checks WHERE at < ?1", [(at - chrono::Duration::days(CHECKS_KEPT_DAYS)).to_rfc3339()])?;
    c.execute("INSERT INTO registry_checks (at, via, token, address, number, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", params![at.to_rfc3339(), check.via, check.token, check.address, recorded_number(check.number), check.result])?;
    Ok(())
}
