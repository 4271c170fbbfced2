//! `esurety store migrate --to URL`: a SQLite store copied into an empty PostgreSQL
//! database, in one transaction that commits only once the copy is checked (the rows of
//! every table counted, the serial counters and the registry's key hashes compared). The
//! file is read in one read transaction, a snapshot, and under the daemon's lock.
//! The sealed keys are copied as they are: the copy opens them with the same secret file.

use super::db::{Conn, Row, Value};
use super::postgres::Pg;
use crate::config::PgTarget;
use super::{Result, Store, StoreError};
use sha2::{Digest, Sha256};

/// Every table, parents before children (the foreign keys).
pub(super) const TABLES: &[&str] = &[
    "messages", "message_bodies", "applications", "serials", "certificates", "certificate_versions", "certificate_keys",
    "sealed_keys", "certificate_documents", "issued_documents", "reservations", "registry", "registry_versions", "registry_failures", "outbox", "outbox_bodies", "outbox_deliveries",
    "outbox_refusals", "submissions", "digests", "staff_actions", "imap_resyncs", "api_tokens", "registry_checks", "users",
    "sessions", "login_failures", "known_callers", "oauth_tokens", "certificate_events", "webhook_deliveries", "token_numbers", "owner_events",
];

/// What was copied, and the checks that passed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Migrated {
    pub tables: Vec<(String, i64)>,
    pub serials: Vec<(String, i64)>,
    pub registry_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store to copy is not a SQLite file")]
    NotSqlite,
    #[error("{0} is not empty ({1}): a store is copied only into an empty database")]
    NotEmpty(String, String),
    #[error("the copy differs from the store: {0}; nothing was committed")]
    Differs(String),
}

/// Copies `from` (a SQLite store) into the empty database at `to`.
pub fn to_postgres(from: &Store, to: &PgTarget) -> std::result::Result<Migrated, MigrateError> {
    let Conn::Sqlite(src) = &from.conn else { return Err(MigrateError::NotSqlite) };
    let dst = Pg::open(to)?;
    for t in TABLES {
        let n = count(&dst, t)?;
        if n > 0 {
            return Err(MigrateError::NotEmpty(to.to_string(), format!("{t} has {n} row(s)")));
        }
    }
    dst.batch("BEGIN")?;
    // One read transaction on the file: every table is read as of one moment, whatever
    // `esurety serve` or a command writes meanwhile (WAL keeps that moment for us).
    src.execute_batch("BEGIN DEFERRED").map_err(StoreError::from)?;
    let out = copy(src, &dst);
    let _ = src.execute_batch("COMMIT");
    match out {
        Ok(m) => {
            dst.batch("COMMIT")?;
            Ok(m)
        }
        Err(e) => {
            let _ = dst.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn copy(src: &rusqlite::Connection, dst: &Pg) -> std::result::Result<Migrated, MigrateError> {
    let mut tables = Vec::new();
    for table in TABLES {
        // The database's columns, in its order: SQLite has each (its `rowid` is implicit).
        let columns: Vec<String> = dst
            .query("SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
                   &[Value::Text(table.to_string())])?
            .iter().map(|r| r.get::<String>(0)).collect::<Result<_>>()?;
        let list = columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let marks = (1..=columns.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let insert = format!("INSERT INTO {table} ({list}) VALUES ({marks})");
        // In pieces by rowid, so a large store is never read whole into memory.
        let select = format!("SELECT rowid, {list} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT 500");
        let (mut after, mut copied) = (i64::MIN, 0i64);
        loop {
            let rows: Vec<Row> = super::sqlite::query(src, &select, &[Value::Int(after)])?;
            let Some(last) = rows.last() else { break };
            after = last.get(0)?;
            for r in &rows {
                dst.execute(&insert, &r.0[1..])?;
            }
            copied += rows.len() as i64;
        }
        // Ids made later continue after the copied ones.
        for (column, default) in dst.query(
            "SELECT column_name::text, column_default::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 AND column_default LIKE 'nextval%'", &[Value::Text(table.to_string())])?
            .iter().map(|r| Ok((r.get::<String>(0)?, r.get::<String>(1)?))).collect::<Result<Vec<_>>>()?
        {
            let _ = default;
            dst.query(&format!("SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce(max(\"{column}\"), 0) + 1, false)::text FROM {table}"), &[])?;
        }
        let there = count(dst, table)?;
        if there != copied {
            return Err(MigrateError::Differs(format!("{table}: {copied} row(s) read, {there} in the copy")));
        }
        let here: i64 = super::sqlite::query(src, &format!("SELECT count(*) FROM {table}"), &[])?[0].get(0)?;
        if here != there {
            return Err(MigrateError::Differs(format!("{table}: {here} row(s) in the store, {there} in the copy")));
        }
        tables.push((table.to_string(), there));
    }
    let serials_sql = "SELECT office_code, last FROM serials ORDER BY office_code";
    let read = |rows: Vec<Row>| rows.iter().map(|r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?))).collect::<Result<Vec<(String, i64)>>>();
    let serials = read(super::sqlite::query(src, serials_sql, &[])?)?;
    if read(dst.query(serials_sql, &[])?)? != serials {
        return Err(MigrateError::Differs("the serial counters".into()));
    }
    let registry_sql = "SELECT number, key_salt, key_hash, key_mac, owner, status FROM registry ORDER BY number";
    let hash = |rows: Vec<Row>| -> Result<String> {
        let mut h = Sha256::new();
        for r in &rows {
            for v in &r.0 {
                match v {
                    Value::Text(s) => h.update(s.as_bytes()),
                    Value::Blob(b) => h.update(b),
                    Value::Int(i) => h.update(i.to_be_bytes()),
                    Value::Real(f) => h.update(f.to_be_bytes()),
                    Value::Null => h.update([0xff]),
                }
                h.update([0]);
            }
        }
        Ok(crate::text::hex(&h.finalize()))
    };
    let registry_hash = hash(super::sqlite::query(src, registry_sql, &[])?)?;
    if hash(dst.query(registry_sql, &[])?)? != registry_hash {
        return Err(MigrateError::Differs("the registry's numbers and key hashes".into()));
    }
    Ok(Migrated { tables, serials, registry_hash })
}

fn count(c: &Pg, table: &str) -> Result<i64> {
    c.query(&format!("SELECT count(*) FROM {table}"), &[])?[0].get(0)
}
