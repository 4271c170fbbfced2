//! The store: one database holding every incoming message, every outcome, the
//! certificates and their versions, the registry and the outbox. A SQLite file (WAL) by
//! default; PostgreSQL for a company whose daemons share one store (`store.md`). The
//! flows see one interface (`Store`, `Tx`); each database has its folder (`sqlite/`,
//! `postgres/`) with its schema and connection.
//!
//! Schema changes are versioned migrations, numbered alike on both databases. Writes that
//! belong together (an outcome, its certificates, its registry entries and its outgoing
//! mail) happen in one transaction, so a crash leaves either all of them or none.
//!
//! Longer than 400 lines: the interface (`Store`, `Tx`, `StoreError`, batches, leases and
//! locks) reads as one, and its own tests take the last hundred lines; what each table
//! holds is in a file of its own beside it.

pub mod backup;
mod certificates;
pub mod check;
pub(crate) mod db;
mod desk;
mod documents;
mod events;
mod digests;
mod messages;
mod oauth;
pub mod migrate;
mod outbox;
mod owner_events;
mod registry;
pub mod postgres;
mod service;
mod sqlite;
mod state;
mod submissions;
mod users;
pub(crate) mod value;

pub use certificates::{CertificateRow, VersionRow};
pub use registry::{RegistryEntry, RegistryStore};
pub use db::Kind;
pub use desk::{ActionError, ActionRow};
pub use documents::IssuedDocument;
pub use events::WebhookRow;
pub use owner_events::OwnerEventRow;
pub use digests::{BranchFigures, OwnerFigures};
pub use messages::{Incoming, StoredMessage};
pub use oauth::{OAuthRow, OAuthState};
pub use outbox::{Hold, Outgoing, OutboxRow};
pub use service::{CheckRecord, CheckRow, TokenRow};
use crate::domain::{CertificateStatus, MessageOutcome, OutboxStatus, PrintState, Side};
pub use submissions::SubmissionRow;
pub use users::{SessionRow, UserRow};

use crate::config::StoreAt;
use db::Conn;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {}", explain(source))]
    Open { path: String, source: rusqlite::Error },
    /// The PostgreSQL server cannot be reached, refused us, or closed the connection.
    #[error("the store's server {target} is away: {why}; no new mail is taken until it is back")]
    Away { target: String, why: String },
    /// The server answers but will not let us in (a password missing or wrong, no such
    /// database): a configuration to correct, not a wait.
    #[error("the store's server {target} refuses us: {why}")]
    Refused { target: String, why: String },
    #[error("the store {path} was written by a newer esurety (schema {found}, this one knows {known})")]
    TooNew { path: String, found: i64, known: i64 },
    #[error("store: {}", explain(.0))]
    Sql(#[from] rusqlite::Error),
    #[error("store: {}", postgres::describe(.0))]
    Pg(#[from] ::postgres::Error),
    /// A query for one row found none (see `db::OptionalExtension`).
    #[error("store: no such row")]
    NoRow,
    #[error("store: stored data is damaged: {0}")]
    Corrupt(String),
    /// A lock held by another transaction, while this one holds locks of an earlier
    /// message of its batch: waiting could close a circle, so the batch ends before the
    /// message in hand, which waits for the next batch.
    #[error("another daemon holds {0}; the message waits for the next batch")]
    WouldWait(String),
    /// The message's outcome was committed meanwhile (by another daemon): nothing of this
    /// transaction is written.
    #[error("message {0} was finished by another daemon meanwhile")]
    Finished(i64),
}

pub type Result<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// The store cannot be written at all (a full disk, a read-only file system): no new
    /// work can be taken until it can; retrying later is right.
    pub fn is_unwritable(&self) -> bool {
        match self {
            StoreError::Sql(e) | StoreError::Open { source: e, .. } => unwritable(e).is_some(),
            StoreError::Pg(e) => postgres::unwritable(e),
            StoreError::Away { .. } => true,
            _ => false,
        }
    }

    /// The store's server cannot be reached, is shutting down, or no longer takes writes
    /// (after a failover): trying again soon is right; the next connection goes to
    /// whichever host is the primary then.
    pub fn is_away(&self) -> bool {
        matches!(self, StoreError::Away { .. })
    }

    /// Whether the error is the store's as a whole (it cannot be written, is busy, is
    /// away, or is not open), so the pass stops and waits (and is tried again: nothing of
    /// it was committed); otherwise it is about one message's data (a damaged row, a value
    /// of the wrong type), which becomes that message's error outcome while the others go on.
    pub fn stops_the_pass(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Open { .. } | StoreError::TooNew { .. } | StoreError::Away { .. } | StoreError::Refused { .. } => true,
            StoreError::Sql(e) => unwritable(e).is_some() || matches!(e.sqlite_error_code(), Some(DatabaseBusy | DatabaseLocked | OutOfMemory | CannotOpen | NotADatabase | DatabaseCorrupt)),
            StoreError::Pg(e) => postgres::stops_the_pass(e),
            StoreError::Corrupt(_) | StoreError::NoRow | StoreError::Finished(_) | StoreError::WouldWait(_) => false,
        }
    }

    /// PostgreSQL ended the transaction to break a deadlock (40P01) or a serialization
    /// conflict (40001): nothing of it was committed, and the same work done again in
    /// smaller transactions (one message each, whose locks are taken in one order) goes
    /// through.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Pg(e) => e.code().is_some_and(|c| matches!(c.code(), "40P01" | "40001")),
            _ => false,
        }
    }

    /// A unique constraint refused the write: what it would have written is there already
    /// (another daemon did it first).
    pub fn is_already_done(&self) -> bool {
        match self {
            StoreError::Sql(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation),
            StoreError::Pg(e) => e.code().is_some_and(|c| c.code() == "23505"),
            _ => false,
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
    conn: Conn,
    /// Inside [`Store::batch`]: writes are savepoints of the batch's one transaction.
    batching: bool,
}

impl Store {
    /// Opens the store and brings its schema up to date.
    pub fn open(at: &StoreAt) -> Result<Store> {
        let conn = match at {
            StoreAt::File(path) => Conn::Sqlite(sqlite::open(path)?),
            StoreAt::Postgres(target) => Conn::Postgres(Box::new(postgres::Pg::open(target)?)),
        };
        Ok(Store { conn, batching: false })
    }

    /// Opens a SQLite store file.
    pub fn open_file(path: &Path) -> Result<Store> {
        Store::open(&StoreAt::File(path.to_path_buf()))
    }

    /// Which database this store is on.
    pub fn kind(&self) -> Kind {
        self.conn.kind()
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64> {
        match &self.conn {
            Conn::Sqlite(c) => sqlite::version(c),
            Conn::Postgres(c) => c.version(),
        }
    }

    /// Runs `f` in one transaction (on SQLite, immediate: write-locked): all of it or none
    /// of it. Inside [`Store::batch`] it is a savepoint: all of it or none of it, made
    /// durable when the batch commits.
    pub fn write<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&Tx) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        let (begin, commit, rollback) = if self.batching {
            ("SAVEPOINT esurety_write", "RELEASE esurety_write", "ROLLBACK TO esurety_write; RELEASE esurety_write")
        } else {
            self.recover();
            (self.begin(), "COMMIT", "ROLLBACK")
        };
        self.conn.execute_batch(begin)?;
        let guard = Undo { conn: &self.conn, rollback, armed: true };
        let out = f(&Tx(&self.conn));
        let mut guard = guard;
        match out {
            Ok(v) => {
                guard.armed = false;
                if let Err(e) = self.conn.execute_batch(commit) {
                    let _ = self.conn.execute_batch(rollback);
                    return Err(e.into());
                }
                Ok(v)
            }
            // The guard rolls back.
            Err(e) => Err(e),
        }
    }

    fn begin(&self) -> &'static str {
        match self.conn.kind() {
            Kind::Sqlite => "BEGIN IMMEDIATE",
            // Read committed: each statement sees what others committed before it; rows
            // claimed with FOR UPDATE stay ours until the commit.
            Kind::Postgres => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }

    /// Runs `f` with every write in it (each [`Store::write`], and single statements)
    /// in one transaction, committed (one `fsync`) when `f` returns `Ok`, rolled back
    /// entirely when it returns `Err` or panics. A write in it that fails rolls back only
    /// itself; a batch inside a batch is a savepoint of the outer one (all or nothing,
    /// durable when the outer one commits). Used to take a pass's many small writes in a
    /// few commits; the write lock is held meanwhile, so a batch should be short (see
    /// [`BATCH`]).
    /// Inside a batch of several messages: the next one begins. On PostgreSQL, locks the
    /// batch holds from now on belong to earlier messages, and no further lock is waited
    /// for (a lock that is taken is [`StoreError::WouldWait`]); see `Pg::may_wait`.
    pub fn next_message(&self) {
        if let Conn::Postgres(pg) = &self.conn {
            pg.next_message();
        }
    }

    pub fn batch<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&mut Store) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        let nested = self.batching;
        let (begin, commit, rollback) = if nested {
            ("SAVEPOINT esurety_batch", "RELEASE esurety_batch", "ROLLBACK TO esurety_batch; RELEASE esurety_batch")
        } else {
            self.recover();
            (self.begin(), "COMMIT", "ROLLBACK")
        };
        self.conn.execute_batch(begin)?;
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
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch(rollback);
                Err(e)
            }
        }
    }

    /// A transaction left open by a batch that was unwound by a panic (or lost with its
    /// connection) is rolled back.
    fn recover(&mut self) {
        match &self.conn {
            Conn::Sqlite(c) => {
                if !c.is_autocommit() {
                    let _ = c.execute_batch("ROLLBACK");
                }
            }
            Conn::Postgres(c) => c.reset(),
        }
        self.batching = false;
    }
}

/// Rolls a transaction or savepoint back unless disarmed (an error or a panic in it).
struct Undo<'c> {
    conn: &'c Conn,
    rollback: &'static str,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.conn.execute_batch(self.rollback);
        }
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
pub struct Tx<'c>(&'c Conn);

impl Tx<'_> {
    /// The transaction's connection, for the store's own modules only: nothing outside
    /// `store/` names a database type.
    fn c(&self) -> &Conn {
        self.0
    }
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
        let mut store = Store::open_file(&path).unwrap();
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
            let other = Store::open_file(&path).unwrap();
            assert!(other.message(a).unwrap().is_none());
            Ok(vec![a, b])
        }).unwrap();
        let other = Store::open_file(&path).unwrap();
        let a = other.message(ids[0]).unwrap().unwrap();
        let b = other.message(ids[1]).unwrap().unwrap();
        assert_eq!((a.state.as_str(), a.outcome), ("new", None));
        assert_eq!((b.state.as_str(), b.outcome), ("done", Some(MessageOutcome::Held)));
        assert_eq!(b.raw, b"Subject: b\r\n\r\nbody");
    }

    #[test]
    fn a_batch_in_a_batch_is_all_or_nothing_and_lasts_with_the_outer_one() {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
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
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
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
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            for (i, sql) in sqlite::MIGRATIONS[..5].iter().enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
            }
            let tx = conn.transaction().unwrap();
            tx.execute("INSERT INTO messages (mailbox, side, source_uid, sha256, raw, size, received_at) VALUES ('m@x.example', 'branch', 'u1', x'00', x'616263', 3, '2026-07-04T10:00:00+09:00')", []).unwrap();
            tx.execute("INSERT INTO outbox (message_id, kind, sender, recipients, subject, raw, next_attempt_at, created_at) VALUES ('<o@x>', 'completion', 's@x.example', '[\"r@x.example\"]', 'subj', x'787978', 0, '2026-07-04T10:00:00+09:00')", []).unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open_file(&path).unwrap();
        assert_eq!(store.messages().unwrap()[0].raw, b"abc");
        let out = store.outbox().unwrap();
        assert_eq!(store.outbox_raw(out[0].id).unwrap().unwrap(), b"xyx");
    }
}
