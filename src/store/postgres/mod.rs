//! PostgreSQL: the company's store, shared by several daemons and `esurety serve`s.
//!
//! One connection per [`super::Store`], through the `postgres` crate (it runs its own
//! small runtime: called from plain threads only). Statements are written once with
//! SQLite's `?N` parameters and turned into `$N` here, prepared once per connection and
//! kept. A connection the server closed (a restart, `pg_terminate_backend`, a failover) or
//! whose host no longer takes writes is dropped and made again at the next statement
//! outside a transaction, to whichever host is the primary then (a URL may name several:
//! `param.rs`, `connect.rs`); inside one, the transaction is lost and the caller's pass
//! stops and is tried again (nothing of it was committed).

use super::value::{Row, Value};
use super::{Result, StoreError};
use postgres::types::ToSql;
use types::{Out, Param};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use crate::config::PgTarget;
use std::time::{Duration, Instant};

mod connect;
mod param;
mod types;

/// A connection idle longer than this is asked whether its host still takes writes
/// before it is used again, when the store wants the primary (several hosts).
const RECHECK_AFTER: Duration = Duration::from_secs(2);

/// The schema, made at once at the version it stands for (PostgreSQL stores begin there);
/// later versions add files of their own, numbered like SQLite's.
pub(super) const BASELINE: (i64, &str) = (10, include_str!("schema_v10.sql"));
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(11, include_str!("schema_v11.sql")), (12, include_str!("schema_v12.sql")), (13, include_str!("schema_v13.sql")), (14, include_str!("schema_v14.sql")), (15, include_str!("schema_v15.sql")), (16, include_str!("schema_v16.sql")), (17, include_str!("schema_v17.sql")), (18, include_str!("schema_v18.sql")), (19, include_str!("schema_v19.sql")), (20, include_str!("schema_v20.sql"))];


pub struct Pg {
    target: PgTarget,
    client: RefCell<Option<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    in_tx: Cell<bool>,
    /// This transaction holds locks (advisory or row locks that others wait for).
    holding: Cell<bool>,
    /// It holds locks taken for an earlier message of its batch: it then never waits for
    /// another lock (see [`Pg::may_wait`]).
    prior: Cell<bool>,
    /// A connection was made before (the next one is a reconnect).
    connected: Cell<bool>,
    /// Only a host that takes writes will do (several hosts, or the URL says so).
    wants_primary: Cell<bool>,
    /// When the connection was last used.
    last_used: Cell<Instant>,
}

impl Pg {
    pub(super) fn open(target: &PgTarget) -> Result<Pg> {
        let pg = Pg::open_as_is(target)?;
        pg.migrate()?;
        Ok(pg)
    }

    /// Connects without touching the schema (`store check` only reads).
    pub(super) fn open_as_is(target: &PgTarget) -> Result<Pg> {
        let pg = Pg { target: target.clone(), client: RefCell::new(None), statements: RefCell::new(HashMap::new()), in_tx: Cell::new(false), holding: Cell::new(false), prior: Cell::new(false), connected: Cell::new(false), wants_primary: Cell::new(false), last_used: Cell::new(Instant::now()) };
        pg.connect()?;
        Ok(pg)
    }

    fn connect(&self) -> Result<()> {
        let (client, wants_primary) = connect::open(&self.target).map_err(|why| match why {
            Ok(why) => StoreError::Away { target: self.target.to_string(), why },
            Err(why) => StoreError::Refused { target: self.target.to_string(), why },
        })?;
        if let Some(old) = self.client.borrow_mut().replace(client) {
            connect::close(old);
        }
        if self.connected.replace(true) {
            metrics::counter!("esurety_store_reconnects_total").increment(1);
            tracing::info!(event = "store_reconnected", store = %self.target);
        }
        self.wants_primary.set(wants_primary);
        self.last_used.set(Instant::now());
        self.statements.borrow_mut().clear();
        self.end_tx();
        Ok(())
    }

    /// The connection, made again if the server closed it: outside a transaction only.
    /// Inside one, the transaction is lost with the connection, and every statement fails
    /// until the caller's `ROLLBACK` (its error path) ends it; so nothing meant for that
    /// transaction is ever run on a new connection on its own.
    ///
    /// Outside a transaction, a connection idle for more than [`RECHECK_AFTER`] to a store
    /// that wants the primary is asked first whether its host still takes writes: after a
    /// failover the old primary may be back as a standby (or kept read-only), and the work
    /// goes to the new one at once instead of failing there.
    fn client(&self) -> Result<std::cell::RefMut<'_, postgres::Client>> {
        let closed = self.client.borrow().as_ref().is_none_or(|c| c.is_closed());
        if closed {
            if self.in_tx.get() {
                return Err(self.lost());
            }
            self.connect()?;
        } else if !self.in_tx.get() && self.wants_primary.get() && self.last_used.get().elapsed() > RECHECK_AFTER && !self.still_primary() {
            tracing::warn!(event = "store_not_primary", store = %self.target, why = "the host no longer takes writes; connecting to the primary");
            self.connect()?;
        }
        self.last_used.set(Instant::now());
        Ok(std::cell::RefMut::map(self.client.borrow_mut(), |c| c.as_mut().expect("connected above")))
    }

    /// Whether the connection's host still takes writes (`SHOW transaction_read_only`, as
    /// the driver asks when it connects); `false` when it cannot answer.
    fn still_primary(&self) -> bool {
        let mut client = self.client.borrow_mut();
        let Some(c) = client.as_mut() else { return false };
        match c.simple_query("SHOW transaction_read_only") {
            Ok(answer) => answer.iter().any(|m| matches!(m, postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("off"))),
            Err(_) => false,
        }
    }

    /// A driver error from the connection in use. One that ends the connection (see
    /// [`connect::ends_the_connection`]) drops it, so the next statement outside a
    /// transaction connects again, to whichever host is the primary then, and becomes
    /// [`StoreError::Away`]: the caller's pass stops and is tried again (inside a
    /// transaction, nothing of it was committed).
    fn failed(&self, e: postgres::Error) -> StoreError {
        if !connect::ends_the_connection(&e) {
            return StoreError::Pg(e);
        }
        if let Some(old) = self.client.borrow_mut().take() {
            connect::close(old);
        }
        let why = describe(&e);
        let why = if e.code().is_some_and(|c| c.code() == "25006") { format!("{why}: the host no longer takes writes (a standby, or a primary demoted by a failover)") } else { why };
        StoreError::Away { target: self.target.to_string(), why }
    }

    fn lost(&self) -> StoreError {
        StoreError::Away { target: self.target.to_string(), why: "the connection was lost inside a transaction; nothing of it was committed".into() }
    }

    fn statement(&self, client: &mut postgres::Client, sql: &str) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = client.prepare(&dollars(sql))?;
        self.statements.borrow_mut().insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// `sql` prepared (once per connection) and run by `f`; a failure is seen by
    /// [`Pg::failed`] once the connection is no longer borrowed.
    fn run<T>(&self, sql: &str, f: impl FnOnce(&mut postgres::Client, &postgres::Statement) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut client = self.client()?;
        let r = self.statement(&mut client, sql).and_then(|st| f(&mut client, &st));
        drop(client);
        r.map_err(|e| self.failed(e))
    }

    pub(super) fn execute(&self, sql: &str, values: &[Value]) -> Result<usize> {
        let params: Vec<Param> = values.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.run(sql, |c, st| c.execute(st, &refs))? as usize)
    }

    pub(super) fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let params: Vec<Param> = values.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.run(sql, |c, st| c.query(st, &refs))?;
        rows.iter().map(|r| (0..r.len()).map(|i| Ok(r.try_get::<_, Out>(i)?.0)).collect::<Result<Vec<Value>>>().map(Row)).collect()
    }

    /// Transaction control and other text without parameters.
    pub(super) fn batch(&self, sql: &str) -> Result<()> {
        let head = sql.trim_start().to_ascii_uppercase();
        let closed = self.client.borrow().as_ref().is_none_or(|c| c.is_closed());
        if closed && self.in_tx.get() && head == "ROLLBACK" {
            // The server ended the transaction with the connection.
            self.end_tx();
            return Ok(());
        }
        let mut client = self.client()?;
        let r = client.batch_execute(sql);
        if head.starts_with("BEGIN") {
            self.in_tx.set(r.is_ok());
            self.holding.set(false);
            self.prior.set(false);
        } else if head.starts_with("COMMIT") || head == "ROLLBACK" {
            self.end_tx();
        }
        drop(client);
        r.map_err(|e| self.failed(e))
    }

    fn end_tx(&self) {
        self.in_tx.set(false);
        self.holding.set(false);
        self.prior.set(false);
    }

    /// Whether a lock may be waited for now. Not while the transaction holds locks of an
    /// earlier message of its batch: two daemons' batches, each holding one message's
    /// locks and waiting for the other's, would wait in a circle (a deadlock). Each
    /// message's own locks are taken in one order, so a transaction that holds only the
    /// message in hand's may wait. A lock that cannot be had at once is then
    /// [`StoreError::WouldWait`]: the batch ends before that message.
    pub(super) fn may_wait(&self) -> bool {
        !self.prior.get()
    }

    pub(super) fn took_lock(&self) {
        self.holding.set(true);
    }

    /// The batch goes on to its next message: what is held now belongs to earlier ones.
    pub(super) fn next_message(&self) {
        self.prior.set(self.holding.get());
    }

    /// After a panic or a lost connection: whatever transaction was open is rolled back.
    pub(super) fn reset(&self) {
        if self.in_tx.get() {
            if let Some(c) = self.client.borrow_mut().as_mut().filter(|c| !c.is_closed()) {
                let _ = c.batch_execute("ROLLBACK");
            }
            self.end_tx();
        }
    }

    /// Makes the schema, or brings it up to date, under a lock that makes two daemons
    /// starting at once take turns.
    fn migrate(&self) -> Result<()> {
        let known = MIGRATIONS.last().map_or(BASELINE.0, |m| m.0);
        // Up to date (the usual start): nothing to lock.
        let exists: i64 = self.query("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_version'", &[])?[0].get(0)?;
        if exists == 1 {
            let v = self.version()?;
            if v > known {
                return Err(StoreError::TooNew { path: self.target.to_string(), found: v, known });
            }
            if v == known {
                return Ok(());
            }
        }
        self.batch("BEGIN")?;
        let out = (|| -> Result<()> {
            self.batch("SELECT pg_advisory_xact_lock(7158296431)")?;
            self.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
            let found: Option<i64> = self.query("SELECT max(version) FROM schema_version", &[])?.first().map(|r| r.get(0)).transpose()?.flatten();
            let found = found.unwrap_or(0);
            if found > known {
                return Err(StoreError::TooNew { path: self.target.to_string(), found, known });
            }
            if found == 0 {
                self.batch(BASELINE.1)?;
                self.execute("INSERT INTO schema_version (version) VALUES (?1)", &[Value::Int(BASELINE.0)])?;
            }
            for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found.max(BASELINE.0)) {
                self.batch(sql)?;
                self.execute("INSERT INTO schema_version (version) VALUES (?1)", &[Value::Int(*v)])?;
            }
            Ok(())
        })();
        match out {
            Ok(()) => self.batch("COMMIT"),
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The schema version of the database.
    pub(super) fn version(&self) -> Result<i64> {
        let v: Option<i64> = self.query("SELECT max(version) FROM schema_version", &[])?.first().map(|r| r.get(0)).transpose()?.flatten();
        Ok(v.unwrap_or(0))
    }
}

/// The driver closes its connection by blocking on its own runtime, which must not happen
/// on a thread that drives (or is shutting down) a tokio runtime: the web server drops its
/// store there when it stops, when the runtime's own context may already be gone. So the
/// connection is always closed on a thread of its own, waited for ([`connect::close`]).
impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            connect::close(client);
        }
    }
}

/// `?N` → `$N`, outside quoted text.
fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quoted = false;
    for ch in sql.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(ch),
        }
    }
    out
}

/// A driver error as people read it: the server's message and code when it sent one.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s = format!("{s}: {inner}");
                source = inner.source();
            }
            s
        }
    }
}

/// Whether a driver error is about the server or the connection as a whole (it is away,
/// shutting down, out of room, or the transaction must be tried again), not about one
/// message's data.
pub(super) fn stops_the_pass(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            // 08 connection, 53 resources, 57 operator intervention (shutdown, terminated),
            // 58 system error, 40 serialization failure and deadlock, 55P03 lock timeout,
            // 25P02 a transaction already aborted.
            ["08", "53", "57", "58", "40", "XX"].iter().any(|p| c.starts_with(p)) || c == "55P03" || c == "25P02"
        }
    }
}

/// Whether the server could not write (its disk is full).
pub(super) fn unwritable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "53100")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollars_outside_quoted_text() {
        assert_eq!(dollars("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"), "SELECT '?1', x FROM t WHERE a = $1 AND b = $12");
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let t = PgTarget { url: "postgres://esurety:s3cret@db.example:5432/esurety".into(), password_env: None, ca_file: None };
        assert_eq!(t.to_string(), "postgres://esurety:***@db.example:5432/esurety");
        let t = PgTarget { url: "postgres://db.example/esurety?user=e&password=s3cret".into(), password_env: None, ca_file: None };
        assert!(!t.to_string().contains("s3cret"));
    }
}
