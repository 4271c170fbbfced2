//! The life of a guarantee in the store (`lifecycle.md`): each certificate's events after
//! its issue, the state they lead to (in `certificates` and in the registry together), the
//! webhooks queued for its owner's systems, and the numbers each API token may follow.

use super::db::{Conn, OptionalExtension, Value, params};
use super::{ActionError, CertificateStatus, Result, Store, Tx};
use crate::domain::{Event, EventKind};
use chrono::{DateTime, FixedOffset};

/// One webhook waiting to go (or gone): its event, the endpoint (the owner's name), how
/// often it was tried and what the last try said.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: i64,
    pub endpoint: String,
    pub number: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub event: Event,
}

const EVENT_COLUMNS: &str = "e.event_id, e.number, e.kind, e.status, e.at, e.effective, e.by, e.reason, e.version";

fn event_row(r: &super::db::Row) -> Result<Event> {
    event_at(r, 0)
}

/// The event whose columns ([`EVENT_COLUMNS`]) begin at column `b`.
fn event_at(r: &super::db::Row, b: usize) -> Result<Event> {
    let kind: String = r.get(b + 2)?;
    Ok(Event {
        id: r.get(b)?,
        number: r.get(b + 1)?,
        kind: EventKind::parse(&kind).ok_or_else(|| super::StoreError::Corrupt(format!("an event of kind {kind:?}")))?,
        status: r.get(b + 3)?,
        at: r.get(b + 4)?,
        effective: r.get(b + 5)?,
        by: r.get(b + 6)?,
        reason: r.get(b + 7)?,
        version: r.get(b + 8)?,
    })
}

impl Tx<'_> {
    /// Records an event on a certificate that moves it from `from` to the event's state,
    /// in `certificates` and in the registry alike. Only from `from`: of two staff acting
    /// at once (on two servers), the second finds it done. Returns the event's row.
    pub fn record_event(&self, e: &Event, from: CertificateStatus) -> std::result::Result<i64, ActionError> {
        let n = self.c().execute("UPDATE certificates SET status = ?2 WHERE number = ?1 AND status = ?3", params![e.number, e.status, from.as_str()])?;
        if n != 1 {
            return Err(ActionError::AlreadyDone(format!("{} is no longer {}: someone else changed it first", e.number, from.label())));
        }
        self.c().execute("UPDATE registry SET status = ?2 WHERE number = ?1", params![e.number, e.status])?;
        Ok(self.insert_event(e)?)
    }

    /// An event that leaves the state as it is (a 変更).
    pub fn insert_event(&self, e: &Event) -> Result<i64> {
        self.c().query_row(
            "INSERT INTO certificate_events (event_id, number, kind, status, at, effective, by, reason, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
            params![e.id, e.number, e.kind.as_str(), e.status, e.at, e.effective, e.by, e.reason, e.version], |r| r.get(0),
        )
    }

    /// Queues an event's webhook to an owner's endpoint (once per event and endpoint).
    pub fn queue_webhook(&self, event: i64, endpoint: &str, number: &str, now: DateTime<FixedOffset>) -> Result<()> {
        self.c().execute(
            "INSERT INTO webhook_deliveries (event, endpoint, number, next_attempt_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![event, endpoint, number, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Takes a due webhook for one try: it is not due again for `lease_secs` (so another
    /// daemon leaves it alone, and a crash mid-try retries it then). False when another
    /// daemon took it first or it is no longer due.
    pub fn claim_webhook(&self, id: i64, now: DateTime<FixedOffset>, lease_secs: i64) -> Result<bool> {
        let until = (now + chrono::Duration::seconds(lease_secs)).to_rfc3339();
        Ok(self.c().execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?3 WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2",
            params![id, now.to_rfc3339(), until],
        )? == 1)
    }

    pub fn webhook_sent(&self, id: i64, now: DateTime<FixedOffset>) -> Result<()> {
        self.c().execute("UPDATE webhook_deliveries SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now.to_rfc3339()])?;
        Ok(())
    }

    /// A try failed: tried again at `next` (it is never given up: later events of the
    /// certificate wait behind it, so the owner gets them in order).
    pub fn webhook_failed(&self, id: i64, error: &str, next: DateTime<FixedOffset>) -> Result<()> {
        self.c().execute("UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, next.to_rfc3339()])?;
        Ok(())
    }

    /// An API token got the right key for a number: it may follow its events.
    pub fn remember_token_number(&self, token: i64, number: &str, now: DateTime<FixedOffset>) -> Result<()> {
        self.c().execute("INSERT INTO token_numbers (token, number, since) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![token, number, now.to_rfc3339()])?;
        Ok(())
    }

    /// Valid certificates whose 保証期限 is before `today` (by the index on state and
    /// 保証期限), for the daily job, under its lock: one daemon does it.
    pub fn due_to_expire(&self, today: chrono::NaiveDate) -> Result<Vec<String>> {
        self.lock_job("expiry")?;
        let rows: Vec<(String, String)> = self.c().query_map(
            "SELECT number, guarantee_end FROM certificates
             WHERE status = 'valid' AND guarantee_end < ?1 AND product <> '契約保証予約' ORDER BY guarantee_end, number",
            [today.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.into_iter().filter_map(|(n, end)| {
            let end = end.parse::<chrono::NaiveDate>().ok()?;
            crate::domain::lifecycle::expires(CertificateStatus::Valid, end, today).then_some(n)
        }).collect())
    }

    pub fn events_of(&self, number: &str) -> Result<Vec<Event>> {
        self.c().events_of(number)
    }
}

impl Conn {
    pub fn events_of(&self, number: &str) -> Result<Vec<Event>> {
        self.query_map(&format!("SELECT {EVENT_COLUMNS} FROM certificate_events e WHERE e.number = ?1 ORDER BY e.id"), [number], event_row)
    }
}

impl Store {
    /// A certificate's events, oldest first.
    pub fn events_of(&self, number: &str) -> Result<Vec<Event>> {
        self.conn.events_of(number)
    }

    /// One event by its id.
    pub fn event(&self, event_id: &str) -> Result<Option<Event>> {
        self.conn.query_row(&format!("SELECT {EVENT_COLUMNS} FROM certificate_events e WHERE e.event_id = ?1"), [event_id], event_row).optional()
    }

    /// Whether an API token has checked this number with the right key.
    pub fn token_follows(&self, token: i64, number: &str) -> Result<bool> {
        self.conn.query_row("SELECT EXISTS (SELECT 1 FROM token_numbers WHERE token = ?1 AND number = ?2)", params![token, number], |r| r.get(0))
    }

    /// The endpoints with a webhook due now.
    pub fn due_endpoints(&self, now: DateTime<FixedOffset>) -> Result<Vec<String>> {
        self.conn.query_map("SELECT DISTINCT endpoint FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY endpoint",
            [now.to_rfc3339()], |r| r.get(0))
    }

    /// An endpoint's webhooks due now, each the first of its certificate not yet sent (the
    /// later ones wait for it: in order per certificate), oldest first.
    pub fn due_webhooks(&self, endpoint: &str, now: DateTime<FixedOffset>, limit: u32) -> Result<Vec<WebhookRow>> {
        self.webhooks_where(
            "w.endpoint = ?1 AND w.status = 'pending' AND w.next_attempt_at <= ?2 AND NOT EXISTS (
                 SELECT 1 FROM webhook_deliveries p WHERE p.endpoint = w.endpoint AND p.number = w.number AND p.status = 'pending' AND p.event < w.event)",
            vec![Value::Text(endpoint.to_string()), Value::Text(now.to_rfc3339()), Value::Int(limit.into())])
    }

    /// Every webhook still pending after at least one failed try: what the desk shows.
    pub fn failing_webhooks(&self) -> Result<Vec<WebhookRow>> {
        self.webhooks_where("w.status = 'pending' AND w.attempts > 0", vec![Value::Int(1000)])
    }

    /// Every webhook, newest first (`esurety webhooks`).
    pub fn webhooks(&self, limit: u32) -> Result<Vec<WebhookRow>> {
        self.webhooks_where("TRUE", vec![Value::Int(limit.into())])
    }

    /// The webhooks meeting `condition`; the last parameter is the limit.
    fn webhooks_where(&self, condition: &str, p: Vec<Value>) -> Result<Vec<WebhookRow>> {
        let limit = p.len();
        self.conn.query_map(
            &format!("SELECT w.id, w.endpoint, w.number, w.status, w.attempts, w.next_attempt_at, w.last_error, {EVENT_COLUMNS}
                      FROM webhook_deliveries w JOIN certificate_events e ON e.id = w.event WHERE {condition} ORDER BY w.event, w.id LIMIT ?{limit}"),
            p,
            |r| Ok(WebhookRow {
                id: r.get(0)?, endpoint: r.get(1)?, number: r.get(2)?, status: r.get(3)?, attempts: r.get(4)?, next_attempt_at: r.get(5)?,
                last_error: r.get(6)?,
                event: event_at(r, 7)?,
            }),
        )
    }
}
