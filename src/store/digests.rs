//! What the staff's digests and failure notices read and record.

use super::{Result, Store, Tx};
use super::db::{OptionalExtension, params};

/// An outgoing mail given up on: (id, sender, kind, recipients, subject, last error).
pub type FailedMail = (i64, String, String, String, String, Option<String>);

/// A branch's figures for a period (and the waiting ones, whenever they came).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BranchFigures {
    pub received: u32,
    pub issued: u32,
    pub rejected: u32,
    pub held: u32,
    pub held_waiting: u32,
    pub failed_mails: u32,
    /// Paper certificates (and 予約証書) of the branch waiting to be printed.
    pub paper_waiting: u32,
    /// 契約保証予約 of the branch that lapsed (失効) in the period.
    pub lapsed: u32,
    /// The branch's numbers on which checks failed often in the period, whoever failed
    /// (someone may be guessing keys; nobody is locked by it): most failures first.
    pub guessed: Vec<Guessed>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Guessed {
    pub number: String,
    pub failures: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnerFigures {
    pub submissions: u32,
    pub accepted: u32,
    pub rejected: u32,
    /// Pairs no registry here could check, in the period: the staff check them by hand.
    pub unchecked: u32,
    /// Unchecked pairs still waiting for staff, whenever they came.
    pub unchecked_waiting: u32,
    /// Messages of the mailbox not yet answered (a registry away, a lock), now.
    pub pending: u32,
    /// Pairs of the period whose PDF's signature is broken (the file was altered): number
    /// and sender, for staff to look at.
    pub broken_signatures: Vec<BrokenSignature>,
    /// What the companies told in the period about certificates this owner accepted
    /// (`lifecycle.md`): number, what happened (as people read it), the state now, why.
    pub events: Vec<(String, String, String, String)>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenSignature {
    pub number: String,
    pub from: String,
    pub result: String,
}

impl Store {
    pub fn last_digest(&self, target: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT max(period_end) FROM digests WHERE target = ?1", [target], |r| r.get(0)).optional()?.flatten())
    }

    /// `alert`: failures on one number in the period that make it one of
    /// [`BranchFigures::guessed`].
    pub fn branch_figures(&self, address: &str, office_code: &str, from: &str, to: &str, alert: u32) -> Result<BranchFigures> {
        let count = |sql: &str, p: &[&dyn super::db::ToValue]| -> Result<u32> { self.conn.query_row(sql, p, |r| r.get(0)) };
        let in_period = "mailbox = ?1 AND received_at > ?2 AND received_at <= ?3";
        Ok(BranchFigures {
            received: count(&format!("SELECT count(*) FROM messages WHERE {in_period}"), &[&address, &from, &to])?,
            issued: count(&format!("SELECT count(*) FROM messages WHERE {in_period} AND outcome = 'issued'"), &[&address, &from, &to])?,
            rejected: count(&format!("SELECT count(*) FROM messages WHERE {in_period} AND outcome = 'rejected'"), &[&address, &from, &to])?,
            held: count(&format!("SELECT count(*) FROM messages WHERE {in_period} AND outcome = 'held'"), &[&address, &from, &to])?,
            held_waiting: count("SELECT count(*) FROM messages WHERE mailbox = ?1 AND outcome = 'held'", &[&address])?,
            failed_mails: count("SELECT count(*) FROM outbox WHERE sender = ?1 AND status = 'failed'", &[&address])?,
            paper_waiting: count("SELECT count(*) FROM certificates WHERE office_code = ?1 AND print_state = 'waiting'", &[&office_code])?,
            lapsed: count("SELECT count(*) FROM reservations r JOIN certificates c ON c.number = r.number
                           WHERE c.office_code = ?1 AND c.status = 'lapsed' AND r.closed_at > ?2 AND r.closed_at <= ?3", &[&office_code, &from, &to])?,
            guessed: {
                let unix = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|t| t.timestamp()).unwrap_or(0);
                self.conn.query_map(
                    "SELECT number, count(*) AS n FROM registry_failures WHERE substr(number, 1, length(?1) + 1) = ?1 || '-' AND at > ?2 AND at <= ?3
                     GROUP BY number HAVING count(*) >= ?4 ORDER BY n DESC, number LIMIT 20",
                    params![office_code, unix(from), unix(to), alert], |r| Ok(Guessed { number: r.get(0)?, failures: r.get(1)? }),
                )?
            },
        })
    }

    pub fn owner_figures(&self, owner: &str, mailbox: &str, from: &str, to: &str) -> Result<OwnerFigures> {
        let mut f = self.conn.query_row(
            "SELECT count(DISTINCT message), count(*) FILTER (WHERE result = 'accepted'), count(*) FILTER (WHERE result = 'rejected'), count(*) FILTER (WHERE result = 'unchecked')
             FROM submissions WHERE owner = ?1 AND checked_at > ?2 AND checked_at <= ?3",
            params![owner, from, to], |r| Ok(OwnerFigures { submissions: r.get(0)?, accepted: r.get(1)?, rejected: r.get(2)?, unchecked: r.get(3)?, unchecked_waiting: 0, pending: 0, broken_signatures: vec![], events: vec![] }),
        )?;
        f.unchecked_waiting = self.conn.query_row("SELECT count(*) FROM submissions WHERE owner = ?1 AND result = 'unchecked'", [owner], |r| r.get(0))?;
        f.pending = self.conn.query_row("SELECT count(*) FROM messages WHERE mailbox = ?1 AND side = 'owner' AND state = 'new'", [mailbox], |r| r.get(0))?;
        f.broken_signatures = self.conn.query_map(
            "SELECT number, sender, result FROM submissions WHERE owner = ?1 AND checked_at > ?2 AND checked_at <= ?3 AND signature = 'broken' ORDER BY id LIMIT 50",
            params![owner, from, to], |r| Ok(BrokenSignature { number: r.get(0)?, from: r.get(1)?, result: r.get(2)? }),
        )?;
        let label = |k: &str| crate::domain::EventKind::parse(k).map(|k| k.label().to_string()).unwrap_or_default();
        let state = |s: &str| super::CertificateStatus::parse(s).map(|s| s.label().to_string()).unwrap_or_default();
        f.events = self.conn.query_map(
            "SELECT e.number, e.kind, e.status, e.reason FROM owner_events e
             WHERE e.received_at > ?2 AND e.received_at <= ?3 AND EXISTS (SELECT 1 FROM submissions s WHERE s.number = e.number AND s.owner = ?1 AND s.result = 'accepted')
             ORDER BY e.received_at, e.id LIMIT 200",
            params![owner, from, to], |r| Ok((r.get::<String>(0)?, label(&r.get::<String>(1)?), state(&r.get::<String>(2)?), r.get::<String>(3)?)),
        )?;
        Ok(f)
    }

    /// Outgoing mails given up on that staff have not been told about: (id, sender, kind, recipients, subject, last error).
    pub fn failed_unnotified(&self) -> Result<Vec<FailedMail>> {
        self.conn.query_map("SELECT id, sender, kind, recipients, subject, last_error FROM outbox WHERE status = 'failed' AND staff_notified = 0 ORDER BY id", (), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
    }
}

impl Tx<'_> {
    pub fn record_digest(&self, target: &str, from: &str, to: &str, outbox: i64) -> Result<()> {
        self.c().execute("INSERT INTO digests (target, period_start, period_end, outbox) VALUES (?1, ?2, ?3, ?4)", params![target, from, to, outbox])?;
        Ok(())
    }

    /// Marks the staff told about a failed mail; `false` when they were already (another
    /// daemon did it: its row lock made this wait for its commit).
    pub fn set_staff_notified(&self, outbox: i64) -> Result<bool> {
        Ok(self.c().execute("UPDATE outbox SET staff_notified = 1 WHERE id = ?1 AND staff_notified = 0", [outbox])? == 1)
    }

    /// Takes a job's lock for the rest of this transaction (PostgreSQL: an advisory lock
    /// keyed by the name; SQLite: the write lock the transaction holds already), so a job
    /// that several daemons may start at once runs in one; the others then see its result.
    pub fn lock_job(&self, name: &str) -> Result<()> {
        if self.c().kind() == super::Kind::Postgres {
            let k: i64 = self.c().query_row("SELECT hashtext(?1)::int8", [name], |r| r.get(0))?;
            self.advisory(k, name)?;
        }
        Ok(())
    }

    /// One advisory lock for the rest of the transaction: waited for, or tried once when
    /// the transaction may not wait (it holds an earlier message's locks).
    fn advisory(&self, k: i64, name: &str) -> Result<()> {
        let super::db::Conn::Postgres(pg) = self.c() else { return Ok(()) };
        if pg.may_wait() {
            self.c().query_row("SELECT pg_advisory_xact_lock(?1)::text", [k], |_| Ok(()))?;
        } else if !self.c().query_row("SELECT pg_try_advisory_xact_lock(?1)", [k], |r| r.get::<bool>(0))? {
            return Err(super::StoreError::WouldWait(name.to_string()));
        }
        pg.took_lock();
        Ok(())
    }

    /// Takes several named locks for the rest of this transaction (PostgreSQL; SQLite's
    /// write lock serializes already), always in the order of the locks themselves, so two
    /// transactions taking overlapping sets never wait for each other in a circle.
    pub fn lock_all(&self, names: &[String]) -> Result<()> {
        if self.c().kind() != super::Kind::Postgres || names.is_empty() {
            return Ok(());
        }
        let values = (1..=names.len()).map(|i| format!("(?{i})")).collect::<Vec<_>>().join(", ");
        let params: Vec<super::db::Value> = names.iter().map(|n| super::db::Value::Text(n.clone())).collect();
        let mut keys: Vec<i64> = self.c().query_map(&format!("SELECT DISTINCT hashtext(k)::int8 FROM (VALUES {values}) AS t (k)"), params, |r| r.get(0))?;
        keys.sort_unstable();
        for k in keys {
            self.advisory(k, "a registry check's lock")?;
        }
        Ok(())
    }

    /// The end of a target's last digest, as this transaction sees it.
    pub fn last_digest(&self, target: &str) -> Result<Option<String>> {
        Ok(self.c().query_row("SELECT max(period_end) FROM digests WHERE target = ?1", [target], |r| r.get(0)).optional()?.flatten())
    }
}
