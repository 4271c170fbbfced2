//! `store`: where the store is, a SQLite file (the embedded default) or a PostgreSQL
//! database, as the configuration names it. The store opens what this names.

use std::path::{Path, PathBuf};

/// Where the store is: a SQLite file (the embedded default) or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    File(PathBuf),
    Postgres(PgTarget),
}

impl StoreAt {
    /// `store` as written in the configuration (or `ESURETY_STORE`): a `postgres://` or
    /// `postgresql://` URL, else a path, relative to `base`.
    pub fn parse(text: &str, base: &Path, password_env: Option<String>, ca_file: Option<PathBuf>) -> StoreAt {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreAt::Postgres(PgTarget { url: text.to_string(), password_env, ca_file: ca_file.map(|f| base.join(f)) })
        } else {
            StoreAt::File(base.join(text))
        }
    }

    /// The SQLite file, when the store is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            StoreAt::File(p) => Some(p),
            StoreAt::Postgres(_) => None,
        }
    }
}

/// A path, or the URL without its password.
impl std::fmt::Display for StoreAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreAt::File(p) => write!(f, "{}", p.display()),
            StoreAt::Postgres(t) => write!(f, "{t}"),
        }
    }
}


/// Where a PostgreSQL store is: its URL (without the password), where the password comes
/// from, and the CA that signs the server's certificate (TLS when given).
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub url: String,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// The URL with any password in it replaced by `***`: what is logged and printed.
impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.url) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                // Query parameters may carry a password too (`?password=`).
                if u.query().is_some_and(|q| q.contains("password")) {
                    u.set_query(Some("…"));
                }
                f.write_str(u.as_str())
            }
            Err(_) => f.write_str("postgres://(unreadable URL)"),
        }
    }
}
