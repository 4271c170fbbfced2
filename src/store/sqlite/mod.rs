//! SQLite: one file (WAL), the embedded default. One daemon at a time writes it (the lock
//! file of `daemon/mod.rs`); `esurety serve` and the CLI may read and write beside it.

use super::value::{Row, Value};
use super::{Result, StoreError};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::path::Path;
use std::time::Duration;

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"), include_str!("schema_v2.sql"), include_str!("schema_v3.sql"), include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"), include_str!("schema_v6.sql"), include_str!("schema_v7.sql"), include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"), include_str!("schema_v10.sql"), include_str!("schema_v11.sql"),
    include_str!("schema_v12.sql"), include_str!("schema_v13.sql"), include_str!("schema_v14.sql"), include_str!("schema_v15.sql"),
    include_str!("schema_v16.sql"), include_str!("schema_v17.sql"), include_str!("schema_v18.sql"),
    include_str!("schema_v19.sql"), include_str!("schema_v20.sql"),
];

pub(super) fn open(path: &Path) -> Result<Connection> {
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
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn, &p)?;
    Ok(conn)
}

/// Opens a store file as it is, to read only: no migration, no change of journal mode (what
/// `store check` reads, a backup among them). A file that is not there is an error, not a
/// new store. Opened for writing where it may be (a WAL store is read through its `-shm`,
/// which a reader may have to make) but `query_only`; read-only where it may not.
pub(super) fn open_as_is(path: &Path) -> Result<Connection> {
    let p = path.display().to_string();
    let open_err = |source| StoreError::Open { path: p.clone(), source };
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .or_else(|_| Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX))
        .map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(open_err)?;
    conn.pragma_update(None, "query_only", "ON").map_err(open_err)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &str) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::TooNew { path: path.to_string(), found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

/// The schema version of a store file.
pub(super) fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn bind(values: &[Value]) -> Vec<Param<'_>> {
    values.iter().map(Param).collect()
}

pub(super) fn execute(c: &Connection, sql: &str, values: &[Value]) -> Result<usize> {
    let mut st = c.prepare_cached(sql)?;
    Ok(st.execute(rusqlite::params_from_iter(bind(values)))?)
}

pub(super) fn query(c: &Connection, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
    let mut st = c.prepare_cached(sql)?;
    let n = st.column_count();
    let mut rows = st.query(rusqlite::params_from_iter(bind(values)))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                // Text that is not UTF-8 is read as bytes: as text it is damage.
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(s) => Value::Text(s.to_string()),
                    Err(_) => Value::Blob(t.to_vec()),
                },
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(Row(row));
    }
    Ok(out)
}
