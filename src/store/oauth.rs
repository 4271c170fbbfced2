//! Mailboxes' OAuth 2.0 tokens (`auth = "oauth2"`): per login (`imap:ADDRESS` or
//! `smtp:USERNAME`), the refresh token and the current access token, both sealed by the
//! caller with the company's secret (this module never sees them in clear), the access
//! token's expiry, and why the provider last refused the refresh token.
//!
//! Several daemons share one store: a refresh is made inside [`Store::write`] after
//! [`Tx::lock_oauth`], so one daemon refreshes while the others wait and then read what it
//! saved (a provider that rotates refresh tokens would otherwise refuse all but one).

use super::db::{OptionalExtension, params};
use super::{Kind, Result, Store, Tx};
use serde::Serialize;

/// A login's tokens as stored (sealed).
#[derive(Debug, Clone)]
pub struct OAuthRow {
    pub refresh_sealed: Vec<u8>,
    pub access_sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub access_expires: Option<i64>,
    pub refused: Option<String>,
}

/// What staff and operators see of a login: never a token.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthState {
    pub login: String,
    /// Unix seconds.
    pub access_expires: Option<i64>,
    pub refused: Option<String>,
    pub refused_at: Option<i64>,
    pub updated_at: i64,
}

const ROW: &str = "SELECT refresh_sealed, access_sealed, access_expires, refused FROM oauth_tokens WHERE login = ?1";

fn row(r: &super::value::Row) -> Result<OAuthRow> {
    Ok(OAuthRow { refresh_sealed: r.get(0)?, access_sealed: r.get(1)?, access_expires: r.get(2)?, refused: r.get(3)? })
}

impl Tx<'_> {
    /// Holds the login's row until the transaction ends (PostgreSQL: `FOR UPDATE`; SQLite's
    /// write transaction holds the whole file already) and reads it.
    pub fn lock_oauth(&self, login: &str) -> Result<Option<OAuthRow>> {
        let sql = match self.c().kind() {
            Kind::Postgres => format!("{ROW} FOR UPDATE"),
            Kind::Sqlite => ROW.to_string(),
        };
        self.c().query_row(&sql, [login], row).optional()
    }

    /// A new refresh token (from `esurety mailbox authorize`): clears any refusal and the
    /// old access token.
    pub fn put_oauth_refresh(&self, login: &str, refresh_sealed: &[u8], at: i64) -> Result<()> {
        self.c().execute(
            "INSERT INTO oauth_tokens (login, refresh_sealed, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (login) DO UPDATE SET refresh_sealed = excluded.refresh_sealed, access_sealed = NULL, access_expires = NULL, refused = NULL, refused_at = NULL, updated_at = excluded.updated_at",
            params![login, refresh_sealed, at],
        )?;
        Ok(())
    }

    /// A refresh that succeeded: the new access token and, when the provider rotated it, the
    /// new refresh token.
    pub fn put_oauth_access(&self, login: &str, access_sealed: &[u8], expires: i64, refresh_sealed: Option<&[u8]>, at: i64) -> Result<()> {
        self.c().execute(
            "UPDATE oauth_tokens SET access_sealed = ?2, access_expires = ?3, refresh_sealed = COALESCE(?4, refresh_sealed), refused = NULL, refused_at = NULL, updated_at = ?5 WHERE login = ?1",
            params![login, access_sealed, expires, refresh_sealed, at],
        )?;
        Ok(())
    }

    /// The provider refused the refresh token: the login waits for a new one.
    pub fn put_oauth_refused(&self, login: &str, why: &str, at: i64) -> Result<()> {
        self.c().execute(
            "UPDATE oauth_tokens SET access_sealed = NULL, access_expires = NULL, refused = ?2, refused_at = ?3, updated_at = ?3 WHERE login = ?1",
            params![login, why, at],
        )?;
        Ok(())
    }

    /// The access token a server refused: forgotten, so the next use refreshes.
    pub fn forget_oauth_access(&self, login: &str, access_sealed: &[u8]) -> Result<()> {
        self.c().execute("UPDATE oauth_tokens SET access_sealed = NULL, access_expires = NULL WHERE login = ?1 AND access_sealed = ?2", params![login, access_sealed])?;
        Ok(())
    }
}

impl Store {
    /// The login's tokens (sealed), without a lock.
    pub fn oauth_row(&self, login: &str) -> Result<Option<OAuthRow>> {
        self.conn.query_row(ROW, [login], row).optional()
    }

    /// Every OAuth login's state, by login.
    pub fn oauth_states(&self) -> Result<Vec<OAuthState>> {
        self.conn.query_map("SELECT login, access_expires, refused, refused_at, updated_at FROM oauth_tokens ORDER BY login", (), |r| {
            Ok(OAuthState { login: r.get(0)?, access_expires: r.get(1)?, refused: r.get(2)?, refused_at: r.get(3)?, updated_at: r.get(4)? })
        })
    }
}
