//! What waits for branch staff (held messages, paper certificates to print, mail given up
//! on) and the record of what they did about it: who, when, to what. Each action changes
//! its target and writes its record in one transaction, and only from the state it acts
//! on, so an action done twice (or by two people at once) happens once.

use super::{Result, Store, StoreError, Tx};
use chrono::{DateTime, FixedOffset};
use super::db::{OptionalExtension, params};

#[derive(Debug, Clone)]
pub struct ActionRow {
    pub id: i64,
    pub at: String,
    pub by: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// Why a staff action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target is not in the state the action applies to.
    #[error("{0}")]
    NotApplicable(String),
    /// The target was in that state, and another person (on this server or another) acted
    /// on it first: the write found it no longer so.
    #[error("{0}")]
    AlreadyDone(String),
}


impl Tx<'_> {
    pub fn record_action(&self, by: &str, action: &str, target: &str, detail: Option<&str>, at: DateTime<FixedOffset>) -> Result<()> {
        self.c().execute(
            "INSERT INTO staff_actions (at, by, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at.to_rfc3339(), by, action, target, detail],
        )?;
        Ok(())
    }

    /// A held branch message goes back to be processed as if `contractor` had sent it.
    pub fn release_held(&self, id: i64, contractor: &str, by: &str, at: DateTime<FixedOffset>) -> std::result::Result<(), ActionError> {
        let why: Option<String> = self.c().query_row("SELECT detail FROM messages WHERE id = ?1", [id], |r| r.get(0)).ok().flatten();
        let n = self.c().execute(
            "UPDATE messages SET state = 'new', outcome = NULL, detail = NULL, released_as = ?2, marked = 0
             WHERE id = ?1 AND side = 'branch' AND state = 'done' AND outcome = 'held'",
            params![id, contractor],
        )?;
        if n == 0 {
            return Err(ActionError::NotApplicable(format!("message {id} is not held")));
        }
        let detail = format!("as {contractor}; held because: {}", why.unwrap_or_default());
        self.record_action(by, "release", &id.to_string(), Some(&detail), at)?;
        Ok(())
    }

    /// A held branch message is answered with staff's reason (the reply is enqueued by the
    /// caller in the same transaction).
    pub fn reject_held(&self, id: i64, reason: &str, by: &str, at: DateTime<FixedOffset>) -> std::result::Result<(), ActionError> {
        let n = self.c().execute(
            "UPDATE messages SET outcome = 'rejected', detail = ?2, marked = 0, processed_at = ?3
             WHERE id = ?1 AND side = 'branch' AND state = 'done' AND outcome = 'held'",
            params![id, reason, at.to_rfc3339()],
        )?;
        if n == 0 {
            return Err(ActionError::NotApplicable(format!("message {id} is not held")));
        }
        self.record_action(by, "reject", &id.to_string(), Some(reason), at)?;
        Ok(())
    }

    pub fn mark_printed(&self, number: &str, by: &str, at: DateTime<FixedOffset>) -> std::result::Result<(), ActionError> {
        let n = self.c().execute(
            "UPDATE certificates SET print_state = 'printed', printed_at = ?2 WHERE number = ?1 AND print_state = 'waiting'",
            params![number, at.to_rfc3339()],
        )?;
        if n == 0 {
            return Err(ActionError::NotApplicable(format!("{number} is not a paper certificate waiting to be printed")));
        }
        let version: u32 = self.c().query_row("SELECT current_version FROM certificates WHERE number = ?1", [number], |r| r.get(0))?;
        self.record_action(by, "printed", number, Some(&format!("version {version}")), at)?;
        Ok(())
    }

    /// A mail given up on goes back to the outbox for a new round of attempts. The update
    /// is guarded by the state it acts on (`failed`), so of two staff retrying it at once
    /// (on two servers of one store) one puts it back and the other is told it was done.
    pub fn retry_failed(&self, message_id: &str, by: &str, at: DateTime<FixedOffset>) -> std::result::Result<(), ActionError> {
        let before: Option<(u32, Option<String>)> = self.c().query_row(
            "SELECT attempts, last_error FROM outbox WHERE message_id = ?1 AND status = 'failed'", [message_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ).ok();
        let Some((attempts, last_error)) = before else {
            return Err(ActionError::NotApplicable(format!("{message_id} is not a failed outgoing mail")));
        };
        let n = self.c().execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?2, staff_notified = 0 WHERE message_id = ?1 AND status = 'failed'",
            params![message_id, at.timestamp()],
        )?;
        if n == 0 {
            return Err(ActionError::AlreadyDone(format!("{message_id} was put back in the outbox by someone else meanwhile")));
        }
        // Recipients refused before are tried again; those that have the mail are not.
        self.c().execute("DELETE FROM outbox_refusals WHERE outbox = (SELECT id FROM outbox WHERE message_id = ?1)", [message_id])?;
        let detail = format!("after {attempts} attempt(s): {}", last_error.unwrap_or_default());
        self.record_action(by, "retry", message_id, Some(&detail), at)?;
        Ok(())
    }
}

impl Store {
    /// The ids of held branch messages, oldest first (each is then read on its own).
    pub fn held_ids(&self) -> Result<Vec<i64>> {
        self.conn.query_map("SELECT id FROM messages WHERE side = 'branch' AND state = 'done' AND outcome = 'held' ORDER BY id", (), |r| r.get(0))
    }

    /// Paper certificates waiting to be printed (their current version).
    pub fn paper_waiting(&self) -> Result<Vec<super::CertificateRow>> {
        let numbers: Vec<String> = {
            self.conn.query_map("SELECT number FROM certificates WHERE print_state = 'waiting' ORDER BY created_at, number", (), |r| r.get(0))?
        };
        numbers.iter().filter_map(|n| self.certificate(n).transpose()).collect()
    }

    /// Held branch messages: (id, mailbox), oldest first.
    pub fn held_mailboxes(&self) -> Result<Vec<(i64, String)>> {
        self.conn.query_map("SELECT id, mailbox FROM messages WHERE side = 'branch' AND state = 'done' AND outcome = 'held' ORDER BY id", (), |r| Ok((r.get(0)?, r.get(1)?)))
    }

    /// Outgoing mail given up on.
    pub fn failed_outbox(&self) -> Result<Vec<super::OutboxRow>> {
        self.outbox_where("status = 'failed'")
    }

    /// Certificates whose number or contents contain `q` (all when empty), of the offices
    /// given (all when `None`), newest first, at most `limit`.
    pub fn search_certificates(&self, q: &str, offices: Option<&[String]>, limit: u32) -> Result<Vec<super::CertificateRow>> {
        let pattern = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let mut sql = String::from(
            "SELECT c.number FROM certificates c JOIN certificate_versions v ON v.number = c.number AND v.version = c.current_version
             WHERE (?1 = '' OR c.number LIKE ?2 ESCAPE '\\' OR v.contents LIKE ?2 ESCAPE '\\')");
        if let Some(offices) = offices {
            let list: Vec<String> = offices.iter().filter(|o| o.len() == 5 && o.bytes().all(|b| b.is_ascii_digit())).map(|o| format!("'{o}'")).collect();
            sql += &format!(" AND substr(c.number, 1, 5) IN ({})", if list.is_empty() { "''".to_string() } else { list.join(",") });
        }
        sql += " ORDER BY c.rowid DESC LIMIT ?3";
        let numbers: Vec<String> = {
            self.conn.query_map(&sql, params![q, pattern, limit], |r| r.get(0))?
        };
        let mut out = Vec::new();
        for n in numbers {
            if let Some(c) = self.certificate(&n)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Staff actions newest first, older than `before` (an id; all when `None`), at most
    /// `limit`: a page of the log, read without reading the rest.
    pub fn actions_before(&self, before: Option<i64>, limit: u32) -> Result<Vec<ActionRow>> {
        self.conn.query_map("SELECT id, at, by, action, target, detail FROM staff_actions WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            params![before.unwrap_or(i64::MAX), limit],
            action_row)
    }

    /// The mailbox a message arrived in (without reading its bytes).
    pub fn message_mailbox(&self, id: i64) -> Result<Option<String>> {
        self.conn.query_row("SELECT mailbox FROM messages WHERE id = ?1", [id], |r| r.get(0)).optional()
    }

    /// The sender of an outgoing mail (without reading its bytes).
    pub fn outbox_sender(&self, message_id: &str) -> Result<Option<String>> {
        self.conn.query_row("SELECT sender FROM outbox WHERE message_id = ?1", [message_id], |r| r.get(0)).optional()
    }

    /// Every staff action, oldest first (`esurety staff actions`).
    pub fn actions(&self) -> Result<Vec<ActionRow>> {
        self.conn.query_map("SELECT id, at, by, action, target, detail FROM staff_actions ORDER BY id", (), action_row)
    }
}

fn action_row(r: &super::db::Row) -> Result<ActionRow> {
    Ok(ActionRow { id: r.get(0)?, at: r.get(1)?, by: r.get(2)?, action: r.get(3)?, target: r.get(4)?, detail: r.get(5)? })
}
