//! The outbox: every outgoing message, written in the same transaction as the outcome it
//! reports, delivered afterwards, retried until a server (or the local Maildir) accepts
//! it, and kept after sending.

use super::{OutboxStatus, Result, Store, Tx};
use chrono::{DateTime, FixedOffset};
use super::db::{OptionalExtension, params};

/// A composed message waiting to be written to the outbox. A completion's bytes carry the
/// key, so `Debug` shows everything but them.
#[derive(Clone)]
pub struct Outgoing {
    pub message_id: String,
    pub kind: &'static str,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").field("message_id", &self.message_id).field("kind", &self.kind).field("sender", &self.sender)
            .field("recipients", &self.recipients).field("subject", &self.subject).field("raw", &format_args!("{} bytes", self.raw.len())).finish()
    }
}

/// Outgoing mail whose bytes carry a 認証キー (in the body or a key notice PDF): once every
/// recipient has it, the stored copy keeps its headers only.
pub const CARRIES_KEY: &[&str] = &["completion", "resend", "change_done"];

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub kind: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// Retries stop after this many attempts; the message is kept as `failed`.
pub const MAX_ATTEMPTS: u32 = 10;

impl Tx<'_> {
    pub fn enqueue(&self, m: &Outgoing, source: Option<i64>, now: DateTime<FixedOffset>) -> Result<i64> {
        let id: i64 = self.c().query_row(
            "INSERT INTO outbox (message_id, source, kind, sender, recipients, subject, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            params![m.message_id, source, m.kind, m.sender, serde_json::to_string(&m.recipients).unwrap_or_default(),
                    m.subject, now.timestamp(), now.to_rfc3339()],
            |r| r.get(0),
        )?;
        self.c().execute("INSERT INTO outbox_bodies (outbox, raw) VALUES (?1, ?2)", params![id, m.raw])?;
        Ok(id)
    }
}

impl Store {
    pub fn outbox(&self) -> Result<Vec<OutboxRow>> {
        self.outbox_where("TRUE")
    }

    /// How many mails wait in the outbox, and when the oldest of them was written (what
    /// `/readyz` and `/metrics` report).
    pub fn outbox_backlog(&self) -> Result<(u64, Option<DateTime<FixedOffset>>)> {
        let (n, oldest) = self.conn.query_row("SELECT count(*), min(created_at) FROM outbox WHERE status = 'pending'", (), |r| Ok((r.get::<i64>(0)?, r.get::<Option<String>>(1)?)))?;
        let oldest = match oldest {
            Some(t) => Some(DateTime::parse_from_rfc3339(&t).map_err(|e| super::StoreError::Corrupt(format!("outbox.created_at {t}: {e}")))?),
            None => None,
        };
        Ok((n.max(0) as u64, oldest))
    }

    /// One outgoing message by its Message-ID.
    pub fn outbox_row(&self, message_id: &str) -> Result<Option<OutboxRow>> {
        self.conn.query_row(&format!("SELECT {COLUMNS} FROM outbox WHERE message_id = ?1"), [message_id], row).optional()
    }

    pub(super) fn outbox_where(&self, condition: &str) -> Result<Vec<OutboxRow>> {
        self.conn.query_map(&format!("SELECT {COLUMNS} FROM outbox WHERE {condition} ORDER BY id"), (), row)
    }

    /// Pending messages whose next attempt is due (without their bytes: see [`Store::raw_of`],
    /// so only one message's bytes are in memory at a time).
    pub fn due(&self, now: DateTime<FixedOffset>) -> Result<Vec<OutboxRow>> {
        self.conn.query_map(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id"
        ), [now.timestamp()], row)
    }

    /// An outgoing mail still pending and due at `now`, claimed for this transaction (on
    /// PostgreSQL its row stays locked until the transaction ends, so no other daemon sends
    /// it meanwhile). One that another daemon holds, that is sent already, or that another
    /// daemon tried and deferred since this pass listed it, is passed over: `false`. Both the
    /// status and the due time are read again here, under the lock: a list read at the start
    /// of a pass is stale once another daemon works beside it.
    pub fn claim_outgoing(&self, id: i64, now: DateTime<FixedOffset>) -> Result<bool> {
        let lock = match self.conn.kind() {
            super::Kind::Postgres => " FOR UPDATE SKIP LOCKED",
            super::Kind::Sqlite => "",
        };
        let sql = format!("SELECT 1 FROM outbox WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2{lock}");
        Ok(self.conn.query_row(&sql, params![id, now.timestamp()], |_| Ok(())).optional()?.is_some())
    }

    /// PostgreSQL: holds an outgoing mail still pending and due at `now` for this daemon
    /// while it sends it, outside any transaction, so that each recipient's delivery commits
    /// as it happens. `None` when another daemon holds it, sent it, or deferred it since
    /// this pass listed it. The hold is in the row (its next attempt put off by [`HOLD`]),
    /// not in the connection: it outlives a reconnect and works behind a pooler that hands
    /// each statement to any connection, and a daemon that dies holds the mail no longer
    /// than [`HOLD`].
    pub fn hold_outgoing(&self, id: i64, now: DateTime<FixedOffset>) -> Result<Option<Hold>> {
        let until = now.timestamp() + HOLD;
        let taken = self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2",
            params![id, now.timestamp(), until],
        )?;
        Ok((taken == 1).then_some(Hold { id, until }))
    }

    /// Renews a hold before each recipient and before the outcome is recorded: `false` when
    /// the mail is no longer this daemon's (its hold lapsed and another daemon took it, or
    /// it was sent meanwhile), and then the caller stops working on it. The renewal takes
    /// the row's lock for its statement, so a daemon taking the mail and this renewal do
    /// not both win.
    pub fn renew_hold(&self, hold: &mut Hold, now: DateTime<FixedOffset>) -> Result<bool> {
        let until = (now.timestamp() + HOLD).max(hold.until);
        let kept = self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND status = 'pending' AND next_attempt_at = ?2",
            params![hold.id, hold.until, until],
        )?;
        hold.until = until;
        Ok(kept == 1)
    }

    /// Lets a held mail go before its outcome is recorded (the pass stopped on it): due
    /// again at `now`, for the next pass of any daemon. Nothing when it is no longer held.
    pub fn release_hold(&self, hold: Hold, now: DateTime<FixedOffset>) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?3 WHERE id = ?1 AND status = 'pending' AND next_attempt_at = ?2",
            params![hold.id, hold.until, now.timestamp()],
        )?;
        Ok(())
    }

    /// Whether a mail of this kind was already written about an incoming message.
    pub fn has_mail_about(&self, source: i64, kind: &str) -> Result<bool> {
        Ok(self.conn.query_row("SELECT 1 FROM outbox WHERE source = ?1 AND kind = ?2", params![source, kind], |_| Ok(())).optional()?.is_some())
    }

    /// The bytes of one outgoing message.
    pub fn raw_of(&self, outbox: i64) -> Result<Vec<u8>> {
        self.conn.query_row("SELECT raw FROM outbox_bodies WHERE outbox = ?1", [outbox], |r| r.get(0))
    }

    pub fn delivered_to(&self, outbox: i64, recipient: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT 1 FROM outbox_deliveries WHERE outbox = ?1 AND recipient = ?2", params![outbox, recipient], |_| Ok(()),
        ).optional()?.is_some())
    }

    pub fn mark_delivered(&self, outbox: i64, recipient: &str, now: DateTime<FixedOffset>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outbox_deliveries (outbox, recipient, delivered_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![outbox, recipient, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Whether the server refused this recipient for good (until staff retry the mail).
    pub fn refused(&self, outbox: i64, recipient: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT 1 FROM outbox_refusals WHERE outbox = ?1 AND recipient = ?2", params![outbox, recipient], |_| Ok(()),
        ).optional()?.is_some())
    }

    pub fn mark_refused(&self, outbox: i64, recipient: &str, error: &str, now: DateTime<FixedOffset>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outbox_refusals (outbox, recipient, error, refused_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (outbox, recipient) DO UPDATE SET error = excluded.error, refused_at = excluded.refused_at",
            params![outbox, recipient, error, now.to_rfc3339()],
        )?;
        Ok(())
    }

    /// Every recipient has the mail. If it carries a key ([`CARRIES_KEY`]), its stored
    /// bytes are cut to the headers in the same transaction: the key leaves the store with
    /// the mail (`render` and a 再送 typeset it again from the sealed copy when needed).
    pub fn mark_sent(&self, outbox: i64, now: DateTime<FixedOffset>) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, sent_at = ?2 WHERE id = ?1",
            params![outbox, now.to_rfc3339()],
        )?;
        let kind: String = self.conn.query_row("SELECT kind FROM outbox WHERE id = ?1", [outbox], |r| r.get(0))?;
        if CARRIES_KEY.contains(&kind.as_str()) {
            let raw = self.raw_of(outbox)?;
            let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
            let mut kept = raw[..end].to_vec();
            kept.extend_from_slice("（本文と添付は送信後に削除しました：認証キーを含むため）\r\n".as_bytes());
            self.conn.execute("UPDATE outbox_bodies SET raw = ?2 WHERE outbox = ?1", params![outbox, kept])?;
        }
        Ok(())
    }

    /// A failed attempt: retried later with growing backoff, or given up for good.
    pub fn mark_attempt_failed(&self, outbox: i64, error: &str, permanent: bool, now: DateTime<FixedOffset>) -> Result<()> {
        let attempts: u32 = self.conn.query_row("SELECT attempts FROM outbox WHERE id = ?1", [outbox], |r| r.get(0))?;
        let attempts = attempts + 1;
        let give_up = permanent || attempts >= MAX_ATTEMPTS;
        let backoff = 30i64 << attempts.min(10); // 1 min, 2 min, 4 min … about 8.5 h
        self.conn.execute(
            "UPDATE outbox SET attempts = ?2, last_error = ?3, status = ?4, next_attempt_at = ?5 WHERE id = ?1",
            params![outbox, attempts, error, if give_up { "failed" } else { "pending" }, now.timestamp() + backoff],
        )?;
        Ok(())
    }
}

const COLUMNS: &str = "id, message_id, kind, sender, recipients, subject, status, attempts, last_error, created_at, sent_at";

fn row(r: &super::db::Row) -> Result<OutboxRow> {
    let recipients: String = r.get(4)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        message_id: r.get(1)?,
        kind: r.get(2)?,
        sender: r.get(3)?,
        // An unreadable list reads as none, which delivery treats as a permanent failure
        // (a mail is never without recipients), never as "sent to everyone".
        recipients: serde_json::from_str(&recipients).unwrap_or_default(),
        subject: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        sent_at: r.get(10)?,
    })
}

impl Store {
    /// The message as it was handed to the transport.
    pub fn outbox_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.conn.query_row("SELECT raw FROM outbox_bodies WHERE outbox = ?1", [id], |r| r.get(0)).optional()
    }
}

/// How long (seconds) a daemon's hold on a mail it sends lasts unless renewed. Renewed
/// before each recipient, so it must outlast one recipient's delivery: an SMTP transaction
/// of about ten exchanges, each given up after the server's `timeout_seconds` (30 s by
/// default). A hold that lapsed under a daemon still sending could let another daemon send
/// that recipient a second copy; a daemon that dies leaves its mail for this long.
pub const HOLD: i64 = 600;

/// A daemon's hold on an outgoing mail (see [`Store::hold_outgoing`]): the mail's next
/// attempt put off to `until`. That time is also whose hold it is: another daemon can take
/// the mail only once `until` has passed, and then puts it off to a later time of its own
/// (or records its outcome), so a renewal that no longer finds `until` knows the mail has
/// gone to another.
#[derive(Debug)]
pub struct Hold {
    id: i64,
    until: i64,
}
