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

/// The URL with any password in it replaced by `***`: what is logged and printed. Read by
/// hand, as a URL with several hosts (`db1:5432,db2:5432`) is not one a URL parser takes.
impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some((scheme, rest)) = self.url.split_once("://") else { return f.write_str("postgres://(unreadable URL)") };
        let (head, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = head.split_at(head.find('/').unwrap_or(head.len()));
        write!(f, "{scheme}://")?;
        match authority.rsplit_once('@') {
            Some((user, hosts)) => match user.split_once(':') {
                Some((name, _)) => write!(f, "{name}:***@{hosts}")?,
                None => write!(f, "{user}@{hosts}")?,
            },
            None => f.write_str(authority)?,
        }
        f.write_str(path)?;
        match query {
            // Query parameters may carry a password too (`?password=`).
            Some(q) if q.to_ascii_lowercase().contains("password") => f.write_str("?…"),
            Some(q) => write!(f, "?{q}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_several_hosts_is_shown_whole_without_its_password() {
        let t = PgTarget { url: "postgres://esurety:s3cret@db1:5432,db2:5433/esurety?target_session_attrs=read-write".into(), password_env: None, ca_file: None };
        assert_eq!(t.to_string(), "postgres://esurety:***@db1:5432,db2:5433/esurety?target_session_attrs=read-write");
        let t = PgTarget { url: "postgres://db1,db2/esurety?user=e&password=s3cret".into(), password_env: None, ca_file: None };
        assert_eq!(t.to_string(), "postgres://db1,db2/esurety?…");
    }
}
