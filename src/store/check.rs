//! `esurety store check`: whether a store (the live one, a restored backup, a PostgreSQL
//! database) holds together: its pages (SQLite's `integrity_check` and foreign keys) or
//! its catalog (PostgreSQL), its schema version, the rows of every table, each office's
//! serials without a gap, and every registry entry's HMAC matching the key the branch keeps
//! sealed, both read with the company's secret; and, in a copy `esurety backup` made, the
//! fingerprint of the secret it was taken under. It only reads: the store is opened as it
//! is (no migration), SQLite read-only. The report goes to the CLI, as text or JSON.

use super::backup::{BackupMeta, meta};
use super::db::{Conn, Row, Value};
use super::{Kind, Result};
use crate::config::StoreAt;
use crate::secrets::Secrets;

/// Registry entries read per query (a large registry is never read whole into memory).
const PAGE: i64 = 5_000;
/// Numbers named per failure in the report, at most.
const NAMED: usize = 20;

/// One check and what it found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// An office's serials.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Serials {
    pub office: String,
    /// The counter: the last serial handed out.
    pub last: i64,
    pub certificates: i64,
    /// Serials up to `last` no certificate has (the first [`NAMED`]).
    pub missing: Vec<i64>,
    /// Serials held twice, or past `last` (the first [`NAMED`]).
    pub extra: Vec<i64>,
}

/// The registry's entries, as read with the secret.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegistryFigures {
    pub entries: i64,
    /// Entries whose HMAC matches the branch's sealed key, opened with the secret.
    pub verified: i64,
    /// Sealed keys that do not open with this secret (another secret, or damage).
    pub unopened: i64,
    /// Keys that open, but whose entry's HMAC does not match them.
    pub mismatched: i64,
    /// Entries with an unkeyed hash from before version 8 (the daemon keys them at start).
    pub unkeyed: i64,
    /// Entries without a sealed key of the branch's to check them against.
    pub without_key: i64,
    /// Electronic certificates, or sealed keys, with no registry entry.
    pub unpublished: i64,
    /// The first [`NAMED`] numbers that failed, each with why.
    pub failures: Vec<String>,
}

/// What `store check` found; `ok` when every check holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub ok: bool,
    pub store: String,
    pub kind: &'static str,
    pub schema_version: Option<i64>,
    pub secret_fingerprint: String,
    pub checks: Vec<Check>,
    pub tables: Vec<(String, i64)>,
    pub serials: Vec<Serials>,
    pub registry: RegistryFigures,
    pub backup: Option<BackupMeta>,
}

/// Checks the store at `at` with the company's `secrets`. An error is returned only when the
/// store cannot be reached at all; whatever is wrong inside it is a failed check.
pub fn check(at: &StoreAt, secrets: &Secrets) -> Result<Report> {
    let conn = match at {
        StoreAt::File(path) => Conn::Sqlite(super::sqlite::open_as_is(path)?),
        StoreAt::Postgres(target) => Conn::Postgres(Box::new(super::postgres::Pg::open_as_is(target)?)),
    };
    let mut r = Report {
        ok: false, store: at.to_string(), kind: match conn.kind() { Kind::Sqlite => "sqlite", Kind::Postgres => "postgres" },
        schema_version: None, secret_fingerprint: secrets.fingerprint(), checks: Vec::new(), tables: Vec::new(), serials: Vec::new(),
        registry: RegistryFigures::default(), backup: None,
    };
    let integrity = outcome("integrity", integrity(&conn));
    let intact = integrity.ok;
    r.checks.push(integrity);
    let schema = schema(&conn, &mut r);
    let known = schema.as_ref().is_ok_and(|ok| *ok);
    r.checks.push(outcome("schema", schema.map(|ok| (ok, match (ok, r.schema_version) {
        (true, Some(v)) => format!("version {v}, as this esurety writes it"),
        (_, v) => format!("version {}, this esurety knows {}: start this esurety on it once (it brings the schema up to date), or check it with the esurety that wrote it",
                          v.map_or("none".into(), |v| v.to_string()), known_version(conn.kind())),
    }))));
    // A store whose pages are damaged or whose tables are not the ones known is not read
    // further: what its rows say cannot be trusted (and reading them may fail anywhere).
    if intact && known {
        let counts = counts(&conn, &mut r);
        r.checks.push(outcome("counts", counts));
        let serials = serials(&conn, &mut r);
        r.checks.push(outcome("serials", serials));
        let registry = registry(&conn, secrets, &mut r);
        r.checks.push(outcome("registry", registry));
        let secret = secret(&conn, secrets, &mut r);
        r.checks.push(outcome("secret", secret));
    }
    r.ok = r.checks.iter().all(|c| c.ok) && intact && known;
    Ok(r)
}

fn outcome(name: &'static str, found: Result<(bool, String)>) -> Check {
    match found {
        Ok((ok, detail)) => Check { name, ok, detail },
        Err(e) => Check { name, ok: false, detail: format!("cannot be read: {e}") },
    }
}

fn integrity(conn: &Conn) -> Result<(bool, String)> {
    match conn.kind() {
        Kind::Sqlite => {
            // Damage can stop the check itself: then which tables cannot be read says where.
            let found = match conn.query_map("PRAGMA integrity_check(20)", (), |r| r.get::<String>(0)) {
                Ok(rows) if rows == ["ok"] => None,
                Ok(rows) => Some(rows.join("; ")),
                Err(e) => Some(format!("it stops: {e}")),
            };
            if let Some(found) = found {
                let unreadable: Vec<&str> = super::migrate::TABLES.iter().copied()
                    .filter(|t| conn.query_row(&format!("SELECT count(*) FROM {t} NOT INDEXED"), (), |r| r.get::<i64>(0)).is_err()).collect();
                let tables = if unreadable.is_empty() { String::new() } else { format!("; tables that cannot be read: {}", unreadable.join(", ")) };
                return Ok((false, format!("SQLite's integrity_check: {found}{tables}")));
            }
            let orphans = conn.query_map("PRAGMA foreign_key_check", (), |r| Ok(format!("a row of {} whose {} is gone", r.get::<String>(0)?, r.get::<String>(2)?)))?;
            if !orphans.is_empty() {
                return Ok((false, format!("{} row(s) point at nothing: {}", orphans.len(), orphans.into_iter().take(NAMED).collect::<Vec<_>>().join("; "))));
            }
            Ok((true, "SQLite's integrity_check: ok; no row points at nothing".into()))
        }
        Kind::Postgres => {
            let server: String = conn.query_row("SELECT current_setting('server_version')", (), |r| r.get(0))?;
            let standby: bool = conn.query_row("SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END", (), |r| r.get(0))?;
            let invalid = conn.query_map(
                "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)", (), |r| r.get::<String>(0))?;
            if !invalid.is_empty() {
                return Ok((false, format!("index(es) not valid (an interrupted CREATE INDEX CONCURRENTLY, or damage): {}; REINDEX them", invalid.join(", "))));
            }
            Ok((true, format!("PostgreSQL {server}{}: the catalog answers, every index is valid", if standby { " (a standby, read-only)" } else { "" })))
        }
    }
}

fn known_version(kind: Kind) -> i64 {
    match kind {
        Kind::Sqlite => super::sqlite::MIGRATIONS.len() as i64,
        Kind::Postgres => super::postgres::MIGRATIONS.last().map_or(super::postgres::BASELINE.0, |m| m.0),
    }
}

/// The schema version is the one this esurety writes, and every table it knows is there.
fn schema(conn: &Conn, r: &mut Report) -> Result<bool> {
    let version = match conn.kind() {
        Kind::Sqlite => conn.query_row("PRAGMA user_version", (), |r| r.get::<i64>(0))?,
        Kind::Postgres => {
            let there: i64 = conn.query_row("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_version'", (), |r| r.get(0))?;
            if there == 0 { 0 } else { conn.query_row("SELECT coalesce(max(version), 0) FROM schema_version", (), |r| r.get::<i64>(0))? }
        }
    };
    r.schema_version = Some(version);
    Ok(version == known_version(conn.kind()))
}

fn counts(conn: &Conn, r: &mut Report) -> Result<(bool, String)> {
    for table in super::migrate::TABLES {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?;
        r.tables.push((table.to_string(), n));
    }
    let of = |t: &str| r.tables.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n);
    Ok((true, format!("{} tables read: {} message(s), {} certificate(s), {} registry entr(ies), {} outgoing mail(s)",
        r.tables.len(), of("messages"), of("certificates"), of("registry"), of("outbox"))))
}

/// The serial of a number `OOOOO-SSSSSP` (office, serial, product letter), in SQL both
/// databases read alike.
const SERIAL: &str = "CAST(substr(number, 7, 5) AS BIGINT)";

/// Each office's certificates hold the serials 1 to its counter, each once.
fn serials(conn: &Conn, r: &mut Report) -> Result<(bool, String)> {
    let offices = conn.query_map(
        &format!("SELECT s.office_code, s.last, count(c.number), count(DISTINCT c.serial), coalesce(min(c.serial), 0), coalesce(max(c.serial), 0)
                  FROM serials s LEFT JOIN (SELECT office_code, number, {SERIAL} AS serial FROM certificates) c ON c.office_code = s.office_code
                  GROUP BY s.office_code, s.last ORDER BY s.office_code"), (),
        |row| Ok((row.get::<String>(0)?, row.get::<i64>(1)?, row.get::<i64>(2)?, row.get::<i64>(3)?, row.get::<i64>(4)?, row.get::<i64>(5)?)))?;
    let mut problems = Vec::new();
    for (office, last, n, distinct, min, max) in offices {
        let whole = n == last && distinct == last && (last == 0 || (min == 1 && max == last));
        let mut s = Serials { office: office.clone(), last, certificates: n, missing: vec![], extra: vec![] };
        if !whole {
            let mut held = conn.query_map(&format!("SELECT {SERIAL} FROM certificates WHERE office_code = ?1"), [&office], |row| row.get::<i64>(0))?;
            held.sort_unstable();
            let mut seen = std::collections::HashSet::new();
            s.extra = held.iter().copied().filter(|&x| x < 1 || x > last || !seen.insert(x)).take(NAMED).collect();
            let mut gaps = (1..=last).filter(|x| held.binary_search(x).is_err());
            let gap_count = (1..=last).filter(|x| held.binary_search(x).is_err()).count();
            s.missing = gaps.by_ref().take(NAMED).collect();
            problems.push(format!("office {office}: counter at {last}, {n} certificate(s); {gap_count} serial(s) missing{}{}", list(&s.missing, " ("),
                if s.extra.is_empty() { String::new() } else { format!("; held twice or past the counter{}", list(&s.extra, " (")) }));
        }
        r.serials.push(s);
    }
    let strays = conn.query_map("SELECT office_code, count(*) FROM certificates WHERE office_code NOT IN (SELECT office_code FROM serials) GROUP BY office_code ORDER BY office_code", (),
        |row| Ok(format!("office {}: {} certificate(s) and no serial counter", row.get::<String>(0)?, row.get::<i64>(1)?)))?;
    problems.extend(strays);
    let misnumbered: i64 = conn.query_row("SELECT count(*) FROM certificates WHERE substr(number, 1, 5) <> office_code", (), |r| r.get(0))?;
    if misnumbered > 0 {
        problems.push(format!("{misnumbered} certificate(s) whose number names another office"));
    }
    if problems.is_empty() {
        Ok((true, format!("{} office(s), each numbered 1 to its counter without a gap", r.serials.len())))
    } else {
        Ok((false, problems.join("; ")))
    }
}

fn list(serials: &[i64], open: &str) -> String {
    if serials.is_empty() {
        return String::new();
    }
    format!("{open}{})", serials.iter().map(|s| format!("{s:05}")).collect::<Vec<_>>().join(", "))
}

/// Every registry entry's HMAC against the branch's sealed key of the same number, both
/// read with the secret; every electronic certificate and sealed key published.
fn registry(conn: &Conn, secrets: &Secrets, r: &mut Report) -> Result<(bool, String)> {
    use rayon::prelude::*;
    let f = &mut r.registry;
    let mut after = String::new();
    loop {
        let rows: Vec<Row> = conn.query_map(
            "SELECT r.number, r.key_salt, r.key_hash, r.key_mac, s.sealed FROM registry r LEFT JOIN sealed_keys s ON s.number = r.number
             WHERE r.number > ?1 ORDER BY r.number LIMIT ?2", [Value::Text(after.clone()), Value::Int(PAGE)], |row| Ok(Row(row.0.clone())))?;
        let Some(last) = rows.last() else { break };
        after = last.get(0)?;
        let read: Vec<(String, Entry)> = rows.par_iter().map(|row| entry(row, secrets)).collect::<Result<_>>()?;
        for (number, e) in read {
            f.entries += 1;
            let why = match e {
                Entry::Verified => { f.verified += 1; None }
                Entry::Unkeyed => { f.unkeyed += 1; Some("an unkeyed hash from before version 8") }
                Entry::WithoutKey => { f.without_key += 1; None }
                Entry::Unopened => { f.unopened += 1; Some("its sealed key does not open with this secret") }
                Entry::Mismatched => { f.mismatched += 1; Some("its HMAC does not match its key") }
                Entry::Malformed => { f.mismatched += 1; Some("its hash is not 32 bytes") }
            };
            if let (Some(why), true) = (why, f.failures.len() < NAMED) {
                f.failures.push(format!("{number}: {why}"));
            }
        }
    }
    let unpublished = conn.query_map(
        "SELECT c.number FROM certificates c WHERE (c.format = ?1 OR c.number IN (SELECT number FROM sealed_keys)) AND c.number NOT IN (SELECT number FROM registry) ORDER BY c.number",
        [crate::domain::Format::Electronic.name()], |row| row.get::<String>(0))?;
    f.unpublished = unpublished.len() as i64;
    for n in unpublished.into_iter().take(NAMED.saturating_sub(f.failures.len())) {
        f.failures.push(format!("{n}: electronic, with no registry entry (an owner's check of it would fail)"));
    }
    let bad = f.unopened + f.mismatched + f.unkeyed + f.unpublished;
    let mut detail = format!("{} entr(ies): {} verified with the secret ({} without a sealed key to check against)", f.entries, f.verified, f.without_key);
    if f.unopened > 0 && f.unopened == f.entries - f.without_key - f.unkeyed {
        detail.push_str(&format!("; no sealed key opens with this secret (fingerprint {}): the store was written under another secret", secrets.fingerprint()));
    }
    for (n, what) in [(f.unopened, "sealed key(s) that do not open"), (f.mismatched, "HMAC(s) that do not match"), (f.unkeyed, "unkeyed hash(es) (start the daemon once to key them)"), (f.unpublished, "electronic certificate(s) missing from the registry")] {
        if n > 0 {
            detail.push_str(&format!("; {n} {what}"));
        }
    }
    if !f.failures.is_empty() {
        detail.push_str(&format!("; first: {}", f.failures.join(", ")));
    }
    Ok((bad == 0, detail))
}

enum Entry {
    Verified,
    Unkeyed,
    WithoutKey,
    Unopened,
    Mismatched,
    Malformed,
}

fn entry(row: &Row, secrets: &Secrets) -> Result<(String, Entry)> {
    let number: String = row.get(0)?;
    let (salt, hash, mac, sealed): (Vec<u8>, Vec<u8>, bool, Option<Vec<u8>>) = (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
    let e = if hash.len() != 32 {
        Entry::Malformed
    } else if !mac {
        Entry::Unkeyed
    } else {
        match sealed {
            None => Entry::WithoutKey,
            Some(sealed) => match secrets.open(&number, &sealed) {
                None => Entry::Unopened,
                Some(key) if secrets.mac_matches(&salt, &key, &hash) => Entry::Verified,
                Some(_) => Entry::Mismatched,
            },
        }
    };
    Ok((number, e))
}

/// A copy made by `esurety backup` (or a store restored from one) names the secret it was
/// taken under: it must be the one in use.
fn secret(conn: &Conn, secrets: &Secrets, r: &mut Report) -> Result<(bool, String)> {
    r.backup = meta(conn)?;
    let mine = secrets.fingerprint();
    Ok(match &r.backup {
        None => (true, format!("the secret in use has fingerprint {mine}; this store carries no backup's fingerprint")),
        Some(b) if b.secret_fingerprint == mine => (true, format!("a backup taken at {} under the secret in use (fingerprint {mine})", b.taken_at)),
        Some(b) => (false, format!("a backup taken at {} under the secret with fingerprint {}, but the secret in use has {mine}: restore the secret file of that time", b.taken_at, b.secret_fingerprint)),
    })
}
