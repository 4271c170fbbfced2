//! Incoming messages: stored raw before anything else happens, processed once.
//!
//! A message is known by (mailbox, source uid): the Maildir file's unique name or the IMAP
//! UIDVALIDITY:UID. Storing the same one again is a no-op, so a rescan after a crash finds
//! it already there; its `state` says whether its outcome was committed.

use super::{MessageOutcome, Result, Side, Store, Tx};
use chrono::{DateTime, FixedOffset};
use super::db::{OptionalExtension, params};
use sha2::{Digest, Sha256};

/// A message as it comes out of a mailbox.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub mailbox: String,
    pub side: Side,
    pub source_uid: String,
    pub raw: Vec<u8>,
    /// The message's size in its mailbox. Larger than `raw` when the message was over the
    /// size limit and only its head was read: the flows then give it the "too large"
    /// outcome without ever holding the whole of it.
    pub size: usize,
}

#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: i64,
    pub mailbox: String,
    pub side: Side,
    pub source_uid: String,
    pub message_id: Option<String>,
    pub raw: Vec<u8>,
    pub state: String,
    pub outcome: Option<MessageOutcome>,
    pub detail: Option<String>,
    pub received_at: String,
    /// Held, then released by staff to be processed as if from this registered contractor.
    pub released_as: Option<String>,
    /// The size in its mailbox (see [`Incoming::size`]).
    pub size: usize,
}

impl StoredMessage {
    /// Whether the message was over `limit` bytes in its mailbox.
    pub fn over(&self, limit: usize) -> bool {
        self.size.max(self.raw.len()) > limit
    }
}

/// The lock the copies of one mail share (one mailbox, one Message-ID).
fn copies(mailbox: &str, message_id: &str) -> String {
    format!("copies {mailbox} {message_id}")
}

/// How long a message claimed outside a transaction is left to the daemon that claimed it.
pub const LEASE_SECS: i64 = 300;

impl Store {
    /// Stores the message: its row and its bytes in one transaction (a savepoint inside a
    /// batch), so a crash or a full disk never leaves a row without its bytes.
    /// `Ok(None)` when already stored.
    ///
    /// A message the store refuses to take as it is (a value of its headers the database
    /// will not hold) is stored without its Message-ID and given its outcome at once: held
    /// for branch staff, left to the people of an owner's mailbox. It never stops the pass:
    /// one stranger's mail must not keep the others from being taken.
    pub fn record_incoming(&mut self, m: &Incoming, message_id: Option<&str>, now: DateTime<FixedOffset>) -> Result<Option<i64>> {
        match self.record(m, message_id, None, now) {
            Err(e) if !e.stops_the_pass() && !e.is_already_done() => {
                tracing::warn!(event = "store_refused_message", mailbox = %m.mailbox, uid = %m.source_uid, error = %e);
                let outcome = match m.side {
                    Side::Branch => MessageOutcome::Held,
                    Side::Owner => MessageOutcome::Error,
                };
                let why = format!("このメールはそのままでは保存できませんでした（ヘッダーの値）: {e}");
                self.record(m, None, Some((outcome, &why)), now)
            }
            other => other,
        }
    }

    fn record(&mut self, m: &Incoming, message_id: Option<&str>, done: Option<(MessageOutcome, &str)>, now: DateTime<FixedOffset>) -> Result<Option<i64>> {
        let sha: [u8; 32] = Sha256::digest(&m.raw).into();
        let (state, outcome, detail) = match done {
            Some((outcome, why)) => ("done", Some(outcome), Some(why)),
            None => ("new", None, None),
        };
        self.batch(|store| {
            // Stored once, whichever daemon sees it first: the other finds it there.
            let id: Option<i64> = store.conn.query_row(
                "INSERT INTO messages (mailbox, side, source_uid, message_id, sha256, size, received_at, state, outcome, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING RETURNING id",
                params![m.mailbox, m.side, m.source_uid, message_id, &sha[..], m.size.max(m.raw.len()) as i64, now.to_rfc3339(), state, outcome, detail],
                |r| r.get(0),
            ).optional()?;
            let Some(id) = id else {
                return Ok(None);
            };
            crate::faults::point("stored_row");
            // An owner-side mail given an error outcome here keeps no bytes (it may carry a
            // key); it stays in its mailbox.
            let raw: &[u8] = if outcome == Some(MessageOutcome::Error) { &[] } else { &m.raw };
            store.conn.execute("INSERT INTO message_bodies (message, raw) VALUES (?1, ?2)", params![id, raw])?;
            Ok(Some(id))
        })
    }

    /// The state of a stored message, if this (mailbox, uid) is known.
    pub fn known(&self, mailbox: &str, source_uid: &str) -> Result<Option<(i64, String, Option<MessageOutcome>)>> {
        self.conn.query_row(
            "SELECT id, state, outcome FROM messages WHERE mailbox = ?1 AND source_uid = ?2",
            params![mailbox, source_uid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ).optional()
    }

    /// Messages whose outcome is not committed yet, oldest first.
    /// The ids of messages whose outcome is not committed yet, oldest first (each is then
    /// read on its own, so only one message's bytes are in memory at a time).
    pub fn pending_ids(&self) -> Result<Vec<i64>> {
        self.conn.query_map("SELECT id FROM messages WHERE state = 'new' ORDER BY id", (), |r| r.get(0))
    }

    /// A message still waiting for its outcome, claimed for this transaction: on
    /// PostgreSQL its row stays locked until the transaction that commits its outcome ends
    /// (or its connection does: a daemon that dies lets it go), and a message another
    /// daemon holds is passed over (`None`), as is one already done. On SQLite the write
    /// lock of the batch and the one daemon per store do the same.
    ///
    /// Copies of one mail (the same Message-ID in one mailbox: a resend, a second
    /// delivery) are never processed at once by two daemons: the claim takes the copies'
    /// lock too, so a copy waits for the other's outcome and is then its duplicate.
    ///
    /// Outside a transaction on PostgreSQL (an owner's deployment asks remote registries
    /// over HTTP, and no transaction is held across a request) the claim is a lease of
    /// [`LEASE_SECS`] on the server's clock instead: another daemon passes the message over
    /// until then (and passes over its copies while one is leased), and if this one dies
    /// the lease runs out and another takes it. Whichever finishes first commits; a later
    /// [`Tx::finish_message`] finds it done and writes nothing
    /// ([`super::StoreError::Finished`]).
    pub fn claim(&self, id: i64) -> Result<Option<StoredMessage>> {
        match self.conn.kind() {
            super::Kind::Sqlite => self.conn.query_row(&format!("{SELECT} WHERE id = ?1 AND state = 'new'"), [id], row).optional(),
            super::Kind::Postgres if !self.batching => self.lease(id),
            super::Kind::Postgres => {
                let Some(m) = self.conn.query_row(&format!("{SELECT} WHERE id = ?1 AND state = 'new' FOR UPDATE OF messages SKIP LOCKED"), [id], row).optional()? else {
                    return Ok(None);
                };
                if let Some(mid) = &m.message_id {
                    Tx(&self.conn).lock_job(&copies(&m.mailbox, mid))?;
                }
                Ok(Some(m))
            }
        }
    }

    /// PostgreSQL, outside a transaction: leases the message (see [`Store::claim`]) unless
    /// it or a copy of it is leased by another daemon. A short transaction under the
    /// copies' lock, so two daemons never lease two copies at once.
    fn lease(&self, id: i64) -> Result<Option<StoredMessage>> {
        let head: Option<(String, Option<String>)> = self.conn.query_row(
            "SELECT mailbox, message_id FROM messages WHERE id = ?1 AND state = 'new'", [id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        let Some((mailbox, mid)) = head else { return Ok(None) };
        let now = "CAST(extract(epoch FROM now()) AS BIGINT)";
        self.conn.execute_batch("BEGIN")?;
        let leased = (|| -> Result<usize> {
            if let Some(mid) = &mid {
                self.conn.query_row("SELECT pg_advisory_xact_lock(hashtext(?1))::text", [copies(&mailbox, mid)], |_| Ok(()))?;
            }
            self.conn.execute(&format!(
                "UPDATE messages SET lease_until = {now} + ?2
                 WHERE id = ?1 AND state = 'new' AND (lease_until IS NULL OR lease_until < {now})
                   AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.mailbox = ?3 AND o.message_id = ?4 AND o.id <> ?1
                                   AND o.state = 'new' AND o.lease_until >= {now})"),
                params![id, LEASE_SECS, mailbox, mid],
            )
        })();
        match leased {
            Ok(n) => {
                self.conn.execute_batch("COMMIT")?;
                if n == 0 {
                    return Ok(None);
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        self.conn.query_row(&format!("{SELECT} WHERE id = ?1 AND state = 'new'"), [id], row).optional()
    }

    /// Gives a leased message back at once (it was left for a later pass), so the next
    /// pass of any daemon takes it without waiting for the lease to run out.
    pub fn release(&self, id: i64) -> Result<()> {
        self.conn.execute("UPDATE messages SET lease_until = NULL WHERE id = ?1 AND state = 'new'", [id])?;
        Ok(())
    }

    pub fn message(&self, id: i64) -> Result<Option<StoredMessage>> {
        self.conn.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row).optional()
    }

    /// Done messages not yet marked in their mailbox: (id, source uid, outcome).
    pub fn unmarked(&self, mailbox: &str) -> Result<Vec<(i64, String, Option<MessageOutcome>)>> {
        self.conn.query_map("SELECT id, source_uid, outcome FROM messages WHERE mailbox = ?1 AND state = 'done' AND marked = 0 ORDER BY id", [mailbox], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    }

    pub fn set_marked(&self, id: i64) -> Result<()> {
        self.conn.execute("UPDATE messages SET marked = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The highest IMAP UID stored for a mailbox under one UIDVALIDITY.
    pub fn imap_highwater(&self, mailbox: &str, validity: u32) -> Result<Option<u32>> {
        let prefix = format!("{validity}:");
        self.conn.query_row(
            "SELECT max(CAST(substr(source_uid, length(?2) + 1) AS INTEGER)) FROM messages WHERE mailbox = ?1 AND substr(source_uid, 1, length(?2)) = ?2",
            params![mailbox, prefix], |r| r.get::<Option<u32>>(0),
        )
    }

    /// Whether a mailbox has messages stored under another UIDVALIDITY than this one.
    pub fn other_validity(&self, mailbox: &str, validity: u32) -> Result<bool> {
        let prefix = format!("{validity}:");
        self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE mailbox = ?1 AND substr(source_uid, 1, length(?2)) <> ?2)",
            params![mailbox, prefix], |r| r.get(0),
        )
    }

    /// A resync after a UIDVALIDITY change: the UID it has reached and whether it is done.
    pub fn resync_state(&self, mailbox: &str, validity: u32) -> Result<Option<(u32, bool)>> {
        self.conn.query_row(
            "SELECT through, done FROM imap_resyncs WHERE mailbox = ?1 AND validity = ?2", params![mailbox, validity],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ).optional()
    }

    pub fn set_resync(&self, mailbox: &str, validity: u32, through: u32, done: bool) -> Result<()> {
        self.conn.execute(
            "INSERT INTO imap_resyncs (mailbox, validity, through, done) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (mailbox, validity) DO UPDATE SET through = excluded.through, done = excluded.done",
            params![mailbox, validity, through, done],
        )?;
        Ok(())
    }

    /// How many messages with this Message-ID were stored under another UIDVALIDITY (and
    /// wait to be matched to their new UIDs).
    pub fn stored_elsewhere(&self, mailbox: &str, message_id: &str, validity: u32) -> Result<i64> {
        let prefix = format!("{validity}:");
        self.conn.query_row(
            "SELECT count(*) FROM messages WHERE mailbox = ?1 AND message_id = ?2 AND substr(source_uid, 1, length(?3)) <> ?3",
            params![mailbox, message_id, prefix], |r| r.get(0),
        )
    }

    /// After a UIDVALIDITY change: the message stored with this Message-ID takes its new
    /// UID, and will be marked again in the new mailbox. `false` when there is none.
    pub fn rekey_by_message_id(&self, mailbox: &str, message_id: &str, source_uid: &str) -> Result<bool> {
        let prefix = source_uid.split_once(':').map(|(v, _)| format!("{v}:")).unwrap_or_default();
        let n = self.conn.execute(
            "UPDATE messages SET source_uid = ?3, marked = 0 WHERE id = (SELECT id FROM messages WHERE mailbox = ?1 AND message_id = ?2
                 AND substr(source_uid, 1, length(?4)) <> ?4 ORDER BY id LIMIT 1)",
            params![mailbox, message_id, source_uid, prefix],
        )?;
        Ok(n == 1)
    }

    pub fn messages(&self) -> Result<Vec<StoredMessage>> {
        self.conn.query_map(&format!("{SELECT} ORDER BY id"), (), row)
    }
}

pub(super) const SELECT: &str = "SELECT id, mailbox, side, source_uid, message_id, (SELECT raw FROM message_bodies WHERE message_bodies.message = messages.id), state, outcome, detail, received_at, released_as, size FROM messages";

pub(super) fn row(r: &super::db::Row) -> Result<StoredMessage> {
    Ok(StoredMessage {
        id: r.get(0)?,
        mailbox: r.get(1)?,
        side: r.get(2)?,
        source_uid: r.get(3)?,
        message_id: r.get(4)?,
        raw: r.get(5)?,
        state: r.get(6)?,
        outcome: r.get(7)?,
        detail: r.get(8)?,
        received_at: r.get(9)?,
        released_as: r.get(10)?,
        size: r.get::<i64>(11)?.max(0) as usize,
    })
}

impl Tx<'_> {
    /// An earlier message with the same Message-ID in the same mailbox that has an outcome.
    pub fn earlier_with_message_id(&self, mailbox: &str, message_id: &str, id: i64) -> Result<Option<(i64, MessageOutcome)>> {
        self.c().query_row(
            "SELECT id, outcome FROM messages WHERE mailbox = ?1 AND message_id = ?2 AND id <> ?3 AND state = 'done' ORDER BY id LIMIT 1",
            params![mailbox, message_id, id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ).optional()
    }

    /// Commits the message's outcome; the caller's other writes share the transaction.
    /// A message another daemon has finished meanwhile is not finished twice: the error
    /// ([`super::StoreError::Finished`]) rolls back everything written with it (a second
    /// reply among them).
    pub fn finish_message(&self, id: i64, outcome: MessageOutcome, detail: Option<&str>, now: DateTime<FixedOffset>) -> Result<()> {
        let n = self.c().execute(
            "UPDATE messages SET state = 'done', outcome = ?2, detail = ?3, processed_at = ?4, lease_until = NULL WHERE id = ?1 AND state = 'new'",
            params![id, outcome, detail, now.to_rfc3339()],
        )?;
        if n == 0 {
            return Err(super::StoreError::Finished(id));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record_application(&self, message: i64, office_code: &str, outcome: &str, sender: &str, contractor: Option<&str>, problems: &serde_json::Value, warnings: &[String], form: Option<&str>, now: DateTime<FixedOffset>) -> Result<i64> {
        self.c().query_row(
            "INSERT INTO applications (message, office_code, outcome, sender, contractor, problems, warnings, form, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
            params![message, office_code, outcome, sender, contractor, problems.to_string(), serde_json::to_string(warnings).unwrap_or_default(), form, now.to_rfc3339()],
            |r| r.get(0),
        )
    }
}
