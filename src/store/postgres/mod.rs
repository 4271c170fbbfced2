//! PostgreSQL: the company's store, shared by several daemons and `esurety serve`s.
//!
//! One connection per [`super::Store`], through the `postgres` crate (it runs its own
//! small runtime: called from plain threads only). Statements are written once with
//! SQLite's `?N` parameters and turned into `$N` here, prepared once per connection and
//! kept. A connection the server closed (a restart, `pg_terminate_backend`) is made again
//! at the next statement outside a transaction; inside one, the transaction is lost and
//! the caller's pass stops and is tried again (nothing of it was committed).

use super::value::{Row, Value};
use super::{Result, StoreError};
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use crate::config::PgTarget;
use std::time::Duration;

/// The schema, made at once at the version it stands for (PostgreSQL stores begin there);
/// later versions add files of their own, numbered like SQLite's.
pub(super) const BASELINE: (i64, &str) = (10, include_str!("schema_v10.sql"));
pub(super) const MIGRATIONS: &[(i64, &str)] = &[(11, include_str!("schema_v11.sql")), (12, include_str!("schema_v12.sql")), (13, include_str!("schema_v13.sql")), (14, include_str!("schema_v14.sql")), (15, include_str!("schema_v15.sql"))];


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
}

impl Pg {
    pub(super) fn open(target: &PgTarget) -> Result<Pg> {
        let pg = Pg::open_as_is(target)?;
        pg.migrate()?;
        Ok(pg)
    }

    /// Connects without touching the schema (`store check` only reads).
    pub(super) fn open_as_is(target: &PgTarget) -> Result<Pg> {
        let pg = Pg { target: target.clone(), client: RefCell::new(None), statements: RefCell::new(HashMap::new()), in_tx: Cell::new(false), holding: Cell::new(false), prior: Cell::new(false) };
        pg.connect()?;
        Ok(pg)
    }

    fn connect(&self) -> Result<()> {
        let away = |why: String| StoreError::Away { target: self.target.to_string(), why };
        let refused = |why: String| StoreError::Refused { target: self.target.to_string(), why };
        let mut config: postgres::Config = self.target.url.parse().map_err(|e: postgres::Error| refused(format!("the URL cannot be read: {e}")))?;
        if let Some(var) = &self.target.password_env {
            match std::env::var(var) {
                Ok(pw) => {
                    config.password(pw);
                }
                Err(_) => return Err(refused(format!("{var} is not set (the store's password)"))),
            }
        }
        config.connect_timeout(Duration::from_secs(10));
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        config.application_name("esurety");
        let client = match &self.target.ca_file {
            Some(ca) => config.connect(tls(ca).map_err(refused)?),
            None => config.connect(postgres::NoTls),
        };
        // A wrong password or an unknown database is the configuration's to correct; anything
        // else (refused connections, a server starting or stopping) is waited out.
        let client = client.map_err(|e| match e.code().map(|c| c.code()) {
            Some(c) if c.starts_with("28") || c == "3D000" => refused(describe(&e)),
            _ => away(describe(&e)),
        })?;
        *self.client.borrow_mut() = Some(client);
        self.statements.borrow_mut().clear();
        self.end_tx();
        Ok(())
    }

    /// The connection, made again if the server closed it: outside a transaction only.
    /// Inside one, the transaction is lost with the connection, and every statement fails
    /// until the caller's `ROLLBACK` (its error path) ends it; so nothing meant for that
    /// transaction is ever run on a new connection on its own.
    fn client(&self) -> Result<std::cell::RefMut<'_, postgres::Client>> {
        let closed = self.client.borrow().as_ref().is_none_or(|c| c.is_closed());
        if closed {
            if self.in_tx.get() {
                return Err(self.lost());
            }
            self.connect()?;
        }
        Ok(std::cell::RefMut::map(self.client.borrow_mut(), |c| c.as_mut().expect("connected above")))
    }

    fn lost(&self) -> StoreError {
        StoreError::Away { target: self.target.to_string(), why: "the connection was lost inside a transaction; nothing of it was committed".into() }
    }

    fn statement(&self, client: &mut postgres::Client, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = client.prepare(&dollars(sql))?;
        self.statements.borrow_mut().insert(sql.to_string(), st.clone());
        Ok(st)
    }

    pub(super) fn execute(&self, sql: &str, values: &[Value]) -> Result<usize> {
        let mut client = self.client()?;
        let st = self.statement(&mut client, sql)?;
        let params: Vec<Param> = values.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(client.execute(&st, &refs)? as usize)
    }

    pub(super) fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let mut client = self.client()?;
        let st = self.statement(&mut client, sql)?;
        let params: Vec<Param> = values.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&st, &refs)?;
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
        Ok(r?)
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
/// connection is always closed on a thread of its own, waited for.
impl Drop for Pg {
    fn drop(&mut self) {
        let Some(client) = self.client.get_mut().take() else { return };
        // Without a thread to be had, the connection is left for the server to end.
        if let Ok(closing) = std::thread::Builder::new().name("esurety-pg-close".into()).spawn(move || drop(client)) {
            let _ = closing.join();
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

fn tls(ca: &std::path::Path) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("cannot read the store's CA file {}: {e}", ca.display()))?;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("the store's CA file {} is not PEM: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("the store's CA file {}: {e}", ca.display()))?;
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
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

#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::TEXT | &Type::VARCHAR | &Type::UNKNOWN) => i.to_string().to_sql(&Type::TEXT, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            // PostgreSQL's text cannot hold U+0000 (22021): the flows keep it out of what
            // they store, and whatever still brings one (a value we did not think of) is
            // stored with U+FFFD in its place rather than failing its whole transaction.
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) if s.contains('\0') => s.replace('\0', "\u{FFFD}").as_str().to_sql(&Type::TEXT, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) => s.as_str().to_sql(&Type::TEXT, out),
            (Value::Text(s), &Type::BYTEA) => s.as_bytes().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, ty) => Err(format!("a {} parameter cannot take {v:?}", ty.name()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

struct Out(Value);

impl<'a> FromSql<'a> for Out {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Out(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)? as i64),
            Type::OID => Value::Int(u32::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Int(bool::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("a column of type {} (cast it in the query)", ty.name()).into()),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Out(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
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
