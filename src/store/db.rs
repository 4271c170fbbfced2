//! The one SQL interface the store's modules write to, over either database: values and
//! rows of our own (so no module names a driver's types), statements written once with
//! `?N` parameters in the SQL both databases share (`ON CONFLICT`, `RETURNING`,
//! `count(*) FILTER (WHERE …)`, `TRUE`), and each backend's connection in its folder
//! ([`super::sqlite`], [`super::postgres`]).

use super::{Result, StoreError};

pub use super::value::{FromValue, OptionalExtension, Params, Row, ToValue, Value};
pub(crate) use super::value::params;

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A connection to the store's database.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<super::postgres::Pg>),
}

impl Conn {
    pub fn kind(&self) -> Kind {
        match self {
            Conn::Sqlite(_) => Kind::Sqlite,
            Conn::Postgres(_) => Kind::Postgres,
        }
    }

    /// Runs one statement; how many rows it changed.
    pub fn execute(&self, sql: &str, p: impl Params) -> Result<usize> {
        match self {
            Conn::Sqlite(c) => super::sqlite::execute(c, sql, &p.values()),
            Conn::Postgres(c) => c.execute(sql, &p.values()),
        }
    }

    /// Every row of a query, each made into a `T`.
    pub fn query_map<T>(&self, sql: &str, p: impl Params, mut f: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
        let rows = match self {
            Conn::Sqlite(c) => super::sqlite::query(c, sql, &p.values())?,
            Conn::Postgres(c) => c.query(sql, &p.values())?,
        };
        rows.iter().map(&mut f).collect()
    }

    /// The first row of a query; [`StoreError::NoRow`] when there is none (see
    /// [`OptionalExtension::optional`]).
    pub fn query_row<T>(&self, sql: &str, p: impl Params, f: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        let rows = match self {
            Conn::Sqlite(c) => super::sqlite::query(c, sql, &p.values())?,
            Conn::Postgres(c) => c.query(sql, &p.values())?,
        };
        match rows.first() {
            Some(r) => f(r),
            None => Err(StoreError::NoRow),
        }
    }

    /// Statements without parameters or results, run as one text (transaction control).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => c.batch(sql),
        }
    }
}
