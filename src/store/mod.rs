//! The store: one SQLite file (WAL) holding every incoming message, every outcome, the
//! certificates and their versions, the registry and the outbox.
//!
//! Schema changes are versioned migrations keyed on `PRAGMA user_version`. Writes that
//! belong together (an outcome, its certificates, its registry entries and its outgoing
//! mail) happen in one transaction, so a crash leaves either all of them or none.

mod certificates;
mod desk;
mod digests;
mod messages;
mod outbox;
mod service;
mod state;
mod submissions;
mod users;

pub use certificates::{CertificateRow, RegistryEntry, RegistryStore, VersionRow};
pub use desk::{ActionError, ActionRow};
pub use digests::{BranchFigures, OwnerFigures};
pub use messages::{Incoming, StoredMessage};
pub use outbox::{Outgoing, OutboxRow};
pub use service::{CheckRecord, CheckRow, TokenRow};
pub use state::{MessageOutcome, OutboxStatus, Side};
pub use submissions::SubmissionRow;
pub use users::{SessionRow, UserRow};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql"), include_str!("schema_v2.sql"), include_str!("schema_v3.sql"), include_str!("schema_v4.sql"), include_str!("schema_v5.sql"), include_str!("schema_v6.sql"), include_str!("schema_v7.sql"), include_str!("schema_v8.sql"), include_str!("schema_v9.sql"), include_str!("schema_v10.sql")];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {}", explain(source))]
    Open { path: String, source: rusqlite::Error },
    #[error("the store {path} was written by a newer esurety (schema {found}, this one knows {known})")]
    TooNew { path: String, found: i64, known: i64 },
    #[error("store: {}", explain(.0))]
    Sql(#[from] rusqlite::Error),
    #[error("store: stored data is damaged: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// The store cannot be written at all (a full disk, a read-only file system): no new
    /// work can be taken until it can; retrying later is right.
    pub fn is_unwritable(&self) -> bool {
        matches!(self, StoreError::Sql(e) | StoreError::Open { source: e, .. } if unwritable(e).is_some())
    }

    /// Whether the error is the store's as a whole (it cannot be written, is busy, or is
    /// not open), so the pass stops and waits; otherwise it is about one message's data
    /// (a damaged row, a value of the wrong type), which becomes that message's error
    /// outcome while the others go on.
    pub fn stops_the_pass(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Open { .. } | StoreError::TooNew { .. } => true,
            StoreError::Sql(e) => unwritable(e).is_some() || matches!(e.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked | OutOfMemory | CannotOpen | NotADatabase | DatabaseCorrupt)),
            StoreError::Corrupt(_) => false,
        }
    }
}

fn unwritable(e: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code()? {
        DiskFull => Some("the disk is full"),
        ReadOnly => Some("the store is read-only"),
        SystemIoFailure => Some("the store's disk cannot be written (an I/O error: full, read-only or failing)"),
        _ => None,
    }
}

fn explain(e: &rusqlite::Error) -> String {
    match unwritable(e) {
        Some(why) => format!("the store cannot be written: {why} ({e}); no new mail is taken until it can be"),
        None => e.to_string(),
    }
}

pub struct Store {
    conn: Connection,
    /// Inside [`Store::batch`]: writes are savepoints of the batch's one transaction.
    batching: bool,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let p = path.display().to_string();
        let open_err = |source| StoreError::Open { path: p.clone(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        // What is deleted or cut (a sent mail's key-carrying bytes, a checked submission)
        // is overwritten, not left in free pages of the file.
        conn.pragma_update(None, "secure_delete", "ON").map_err(open_err)?;
        migrate(&mut conn, &p)?;
        Ok(Store { conn, batching: false })
    }

    /// Runs `f` in one immediate (write-locked) transaction: all of it or none of it.
    /// Inside [`Store::batch`] it is a savepoint: all of it or none of it, made durable
    /// when the batch commits.
    pub fn write<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&Tx) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        let tx = if self.batching {
            Tx(Inner::Savepoint(self.conn.savepoint().map_err(StoreError::from)?))
        } else {
            self.recover();
            Tx(Inner::Transaction(self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?))
        };
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` with every write in it (each [`Store::write`], and single statements)
    /// in one transaction, committed (one `fsync`) when `f` returns `Ok`, rolled back
    /// entirely when it returns `Err` or panics. A write in it that fails rolls back only
    /// itself; a batch inside a batch is a savepoint of the outer one (all or nothing,
    /// durable when the outer one commits). Used to take a pass's many small writes in a
    /// few commits; the write lock is held meanwhile, so a batch should be short (see
    /// [`BATCH`]).
    pub fn batch<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Store) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        let nested = self.batching;
        let (begin, commit, rollback) = if nested {
            ("SAVEPOINT esurety_batch", "RELEASE esurety_batch", "ROLLBACK TO esurety_batch; RELEASE esurety_batch")
        } else {
            self.recover();
            ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        };
        self.conn.execute_batch(begin).map_err(StoreError::from)?;
        self.batching = true;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.batching = nested;
        let out = out.unwrap_or_else(|panic| {
            let _ = self.conn.execute_batch(rollback);
            std::panic::resume_unwind(panic)
        });
        match out {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch(commit) {
                    let _ = self.conn.execute_batch(rollback);
                    return Err(StoreError::from(e).into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch(rollback);
                Err(e)
            }
        }
    }

    /// A transaction left open by a batch that was unwound by a panic is rolled back.
    fn recover(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.batching = false;
    }
}

/// How many messages, or outgoing mails, one batch commit covers at most.
pub const BATCH: usize = 50;

/// How long a batch takes new work: after this, it finishes what it has and commits.
/// Bounds the work a crash can undo, so progress never depends on the machine's speed.
pub const BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(250);

/// When a batch stops taking work: [`BATCH`] items or [`BATCH_TIME`], whichever first.
/// The first item is always taken, so every batch makes progress.
pub struct Budget(std::time::Instant);

impl Budget {
    pub fn start() -> Budget {
        Budget(std::time::Instant::now())
    }

    /// Whether a batch that has taken `taken` items should take no more.
    pub fn spent(&self, taken: usize) -> bool {
        taken >= BATCH || (taken > 0 && self.0.elapsed() >= BATCH_TIME)
    }
}

/// A write transaction (or a savepoint inside a batch); commits when [`Store::write`]'s
/// closure returns `Ok`.
pub struct Tx<'c>(Inner<'c>);

enum Inner<'c> {
    Transaction(Transaction<'c>),
    Savepoint(rusqlite::Savepoint<'c>),
}

impl Tx<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self.0 {
            Inner::Transaction(t) => t.commit(),
            Inner::Savepoint(s) => s.commit(),
        }
    }
}

impl Tx<'_> {
    /// The transaction's connection, for the store's own modules only: nothing outside
    /// `store/` names a database type.
    fn c(&self) -> &Connection {
        match &self.0 {
            Inner::Transaction(t) => t,
            Inner::Savepoint(s) => s,
        }
    }
}

fn migrate(conn: &mut Connection, path: &str) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew { path: path.to_string(), found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Incoming;

    fn incoming(uid: &str) -> Incoming {
        Incoming { mailbox: "kanagawa@ejcs.example".into(), side: Side::Branch, source_uid: uid.into(), raw: format!("Subject: {uid}\r\n\r\nbody").into_bytes(), size: 0 }
    }

    fn now() -> chrono::DateTime<chrono::FixedOffset> {
        chrono::DateTime::parse_from_rfc3339("2026-07-04T10:00:00+09:00").unwrap()
    }

    #[test]
    fn a_batch_commits_its_writes_together_and_a_failed_write_in_it_rolls_back_alone() {
        let dir = crate::testing::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        let ids = store.batch(|s| -> Result<Vec<i64>> {
            let a = s.record_incoming(&incoming("a"), None, now())?.unwrap();
            let b = s.record_incoming(&incoming("b"), None, now())?.unwrap();
            // One message's outcome fails half-way: only its own writes are undone.
            let failed: Result<()> = s.write(|tx| {
                tx.finish_message(a, MessageOutcome::Issued, None, now())?;
                Err(StoreError::Corrupt("half-way".into()))
            });
            assert!(failed.is_err());
            s.write(|tx| tx.finish_message(b, MessageOutcome::Held, Some("why"), now()))?;
            // Not visible to another connection before the batch commits.
            let other = Store::open(&path).unwrap();
            assert!(other.message(a).unwrap().is_none());
            Ok(vec![a, b])
        }).unwrap();
        let other = Store::open(&path).unwrap();
        let a = other.message(ids[0]).unwrap().unwrap();
        let b = other.message(ids[1]).unwrap().unwrap();
        assert_eq!((a.state.as_str(), a.outcome), ("new", None));
        assert_eq!((b.state.as_str(), b.outcome), ("done", Some(MessageOutcome::Held)));
        assert_eq!(b.raw, b"Subject: b\r\n\r\nbody");
    }

    #[test]
    fn a_batch_in_a_batch_is_all_or_nothing_and_lasts_with_the_outer_one() {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        store.batch(|s| -> Result<()> {
            s.record_incoming(&incoming("a"), None, now())?;
            let inner: Result<()> = s.batch(|s| {
                s.record_incoming(&incoming("b"), None, now())?;
                Err(StoreError::Corrupt("undo b".into()))
            });
            assert!(inner.is_err());
            s.batch(|s| s.record_incoming(&incoming("c"), None, now()).map(|_| ()))?;
            Ok(())
        }).unwrap();
        let uids: Vec<String> = store.messages().unwrap().into_iter().map(|m| m.source_uid).collect();
        assert_eq!(uids, ["a", "c"]);
    }

    #[test]
    fn a_batch_that_fails_or_panics_leaves_nothing_and_the_store_goes_on() {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let r: Result<()> = store.batch(|s| {
            s.record_incoming(&incoming("a"), None, now())?;
            Err(StoreError::Corrupt("stop".into()))
        });
        assert!(r.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<()> = store.batch(|s| {
                s.record_incoming(&incoming("b"), None, now())?;
                panic!("a bug in the middle of a batch");
            });
        }));
        assert!(panicked.is_err());
        assert!(store.messages().unwrap().is_empty());
        store.record_incoming(&incoming("c"), None, now()).unwrap();
        assert_eq!(store.messages().unwrap().len(), 1);
    }

    #[test]
    fn a_version_5_store_keeps_every_message_and_outgoing_mail_when_upgraded() {
        let dir = crate::testing::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..5].iter().enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
            }
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO messages (mailbox, side, source_uid, sha256, raw, size, received_at) VALUES ('m@x.example', 'branch', 'u1', x'00', x'616263', 3, '2026-07-04T10:00:00+09:00')", []).unwrap();
            tx.execute("INSERT INTO outbox (message_id, kind, sender, recipients, subject, raw, next_attempt_at, created_at) VALUES ('<o@x>', 'completion', 's@x.example', '[\"r@x.example\"]', 'subj', x'787978', 0, '2026-07-04T10:00:00+09:00')", []).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.messages().unwrap()[0].raw, b"abc");
        let out = store.outbox().unwrap();
        assert_eq!(store.outbox_raw(out[0].id).unwrap().unwrap(), b"xyx");
    }
}
