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
mod submissions;

pub use certificates::{CertificateRow, RegistryStore, VersionRow};
pub use desk::{ActionError, ActionRow};
pub use digests::{BranchFigures, OwnerFigures};
pub use messages::{Incoming, StoredMessage};
pub use outbox::{Outgoing, OutboxRow};
pub use submissions::SubmissionRow;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

const MIGRATIONS: &[&str] = &[include_str!("schema_v1.sql"), include_str!("schema_v2.sql"), include_str!("schema_v3.sql"), include_str!("schema_v4.sql"), include_str!("schema_v5.sql")];

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
        migrate(&mut conn, &p)?;
        Ok(Store { conn })
    }

    /// Runs `f` in one immediate (write-locked) transaction: all of it or none of it.
    pub fn write<T, E: From<StoreError>>(&mut self, f: impl FnOnce(&Tx) -> std::result::Result<T, E>) -> std::result::Result<T, E> {
        let tx = Tx(self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?);
        let out = f(&tx)?;
        tx.0.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A write transaction; commits when [`Store::write`]'s closure returns `Ok`.
pub struct Tx<'c>(Transaction<'c>);

impl<'c> std::ops::Deref for Tx<'c> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
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
