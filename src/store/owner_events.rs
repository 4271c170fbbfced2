//! The owner side's record of what it was told about the certificates it accepted
//! (`lifecycle.md` § What the owner is told): once per event id and registry, whichever way
//! it came first (mail, webhook, its daily question), kept against the accepted submission.

use super::db::{OptionalExtension, params};
use super::{Result, Store, Tx};
use crate::domain::Event;
use chrono::{DateTime, FixedOffset};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct OwnerEventRow {
    pub registry: String,
    pub id: String,
    pub number: String,
    pub kind: String,
    pub status: String,
    pub at: String,
    pub reason: String,
    /// `mail`, `webhook` or `poll`: how it came first.
    pub via: String,
    pub received_at: String,
    /// The accepted submission it was registered against.
    pub submission: Option<i64>,
}

/// An accepted certificate the owner side follows: its issuer and number.
#[derive(Debug, Clone)]
pub struct Followed {
    pub issuer: Option<String>,
    pub number: String,
}

const COLUMNS: &str = "registry, event_id, number, kind, status, at, reason, via, received_at, submission";

fn row(r: &super::db::Row) -> Result<OwnerEventRow> {
    Ok(OwnerEventRow {
        registry: r.get(0)?, id: r.get(1)?, number: r.get(2)?, kind: r.get(3)?, status: r.get(4)?, at: r.get(5)?, reason: r.get(6)?,
        via: r.get(7)?, received_at: r.get(8)?, submission: r.get(9)?,
    })
}

impl Tx<'_> {
    /// Registers an event from `registry` (once per id: a second notice of it changes
    /// nothing), against the latest accepted submission of its number. True when new.
    pub fn register_owner_event(&self, registry: &str, e: &Event, via: &str, now: DateTime<FixedOffset>) -> Result<bool> {
        let n = self.c().execute(
            &format!("INSERT INTO owner_events ({COLUMNS})
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                              (SELECT max(id) FROM submissions WHERE number = ?3 AND result = 'accepted' AND (issuer IS NULL OR issuer = ?1)))
                      ON CONFLICT (registry, event_id) DO NOTHING"),
            params![registry, e.id, e.number, e.kind.as_str(), e.status, e.at, e.reason, via, now.to_rfc3339()],
        )?;
        Ok(n == 1)
    }
}

impl Store {
    /// What was told about a number, oldest first.
    pub fn owner_events_of(&self, number: &str) -> Result<Vec<OwnerEventRow>> {
        self.conn.query_map(&format!("SELECT {COLUMNS} FROM owner_events WHERE number = ?1 ORDER BY at, id"), [number], row)
    }

    /// Every event received, newest first.
    pub fn owner_events(&self, limit: u32) -> Result<Vec<OwnerEventRow>> {
        self.conn.query_map(&format!("SELECT {COLUMNS} FROM owner_events ORDER BY received_at DESC, id DESC LIMIT ?1"), [limit], row)
    }

    /// Events received in `[from, to)` (RFC 3339), for the digest.
    pub fn owner_events_between(&self, from: &str, to: &str) -> Result<Vec<OwnerEventRow>> {
        self.conn.query_map(&format!("SELECT {COLUMNS} FROM owner_events WHERE received_at >= ?1 AND received_at < ?2 ORDER BY received_at, id"), params![from, to], row)
    }

    /// The company a number was accepted from (its latest accepted submission's issuer):
    /// the only registry whose events about it count.
    pub fn accepted_issuer(&self, number: &str) -> Result<Option<String>> {
        self.conn.query_row("SELECT issuer FROM submissions WHERE number = ?1 AND result = 'accepted' ORDER BY id DESC LIMIT 1", [number], |r| r.get(0))
            .optional().map(Option::flatten)
    }

    /// The accepted certificates still in force as far as the owner knows (no event yet
    /// from the registry it was accepted from, or the latest it received says `valid` or
    /// `claimed`): what the daily question asks about.
    pub fn followed(&self) -> Result<Vec<Followed>> {
        self.conn.query_map(
            "SELECT f.issuer, f.number, NULL,
                    (SELECT e.status FROM owner_events e WHERE e.number = f.number AND (f.issuer IS NULL OR e.registry = f.issuer) ORDER BY e.id DESC LIMIT 1)
             FROM (SELECT max(s.issuer) AS issuer, s.number AS number FROM submissions s WHERE s.result = 'accepted' GROUP BY s.number) f ORDER BY f.number",
            (),
            |r| Ok((r.get::<Option<String>>(0)?, r.get::<String>(1)?, r.get::<Option<String>>(2)?, r.get::<Option<String>>(3)?)),
        ).map(|rows| rows.into_iter()
            .filter(|(_, _, _, status)| status.as_deref().is_none_or(|s| s == "valid" || s == "claimed"))
            .map(|(issuer, number, _, _)| Followed { issuer, number }).collect())
    }
}
