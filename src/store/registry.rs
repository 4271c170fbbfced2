//! The registry's part of the store (保証確認サービス): what it keeps of each number (a salted
//! HMAC of the key, never the key), the failures counted per number and caller, the callers
//! known to have given a right key, and the locks two daemons take on one check.

use super::{Result, Store, Tx};
use super::certificates::versions;
use super::VersionRow;
use crate::domain::Caller;
use super::db::{Conn, OptionalExtension, params};

/// What the registry keeps of a number: the key's salt and hash (an HMAC under the secret
/// when `mac`, a salted SHA-256 from before v8 otherwise), its status and owner.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub mac: bool,
    pub status: super::CertificateStatus,
    pub owner: String,
}

/// The registry's tables, read and written inside or outside a transaction (both a
/// `Store`'s connection and a `Tx` are a `Connection`).
pub trait RegistryStore {
    /// The registry's record of a number.
    fn registry_entry(&self, number: &str) -> Result<Option<RegistryEntry>>;
    /// The registry's published versions (its history), oldest first.
    fn registry_versions(&self, number: &str) -> Result<Vec<VersionRow>>;
    /// The documents of a version as issued (kind and SHA-256).
    fn issued_documents(&self, number: &str, version: u32) -> Result<Vec<super::IssuedDocument>>;
    /// A number's events as owners see them (who did it left out), oldest first.
    fn registry_events(&self, number: &str) -> Result<Vec<crate::domain::Event>>;
    /// Failed checks on a number by every caller since a time, and the latest.
    fn failures_since(&self, number: &str, since: i64) -> Result<(u32, Option<i64>)>;
    /// Failed checks on a number by one caller (its sender if it has one, else its
    /// address, else neither: staff at the command line) since a time, and the latest.
    fn caller_failures_since(&self, number: &str, caller: Caller<'_>, since: i64) -> Result<(u32, Option<i64>)>;
    /// Failed checks by one sender (any number) since a time, and the latest.
    fn sender_failures_since(&self, sender: &str, since: i64) -> Result<(u32, Option<i64>)>;
    /// Failed checks from one client address (any number) since a time, and the latest;
    /// with `strangers_only`, only those of callers not known (see [`Self::known_caller`]).
    fn address_failures_since(&self, address: &str, since: i64, strangers_only: bool) -> Result<(u32, Option<i64>)>;
    /// Whether an API token's end sender (its caller, `token:ID sender:ADDRESS`) has had a
    /// right key through that token: someone its owner really deals with.
    fn known_caller(&self, caller: &str) -> Result<bool>;
    /// Remembers an end sender that gave a right key through its token.
    fn remember_caller(&self, caller: &str, at: i64) -> Result<()>;
    /// A failed check; `asked_for` (what asked, e.g. a message) makes it count once.
    fn record_failure(&self, number: &str, caller: Caller<'_>, asked_for: Option<&str>, at: i64) -> Result<()>;
    /// Serializes checks that count the same failures (their number, sender, address):
    /// held to the end of the transaction, so the count a check reads is the one it adds to.
    fn lock_checks(&self, keys: &[String]) -> Result<()>;
}

/// Inside a transaction (the owner side checks in the one that records the result).
impl RegistryStore for Tx<'_> {
    fn registry_entry(&self, number: &str) -> Result<Option<RegistryEntry>> {
        self.c().registry_entry(number)
    }
    fn registry_versions(&self, number: &str) -> Result<Vec<VersionRow>> {
        self.c().registry_versions(number)
    }
    fn issued_documents(&self, number: &str, version: u32) -> Result<Vec<super::IssuedDocument>> {
        self.c().issued_documents(number, version)
    }
    fn registry_events(&self, number: &str) -> Result<Vec<crate::domain::Event>> {
        self.c().registry_events(number)
    }
    fn failures_since(&self, number: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.c().failures_since(number, since)
    }
    fn caller_failures_since(&self, number: &str, caller: Caller<'_>, since: i64) -> Result<(u32, Option<i64>)> {
        self.c().caller_failures_since(number, caller, since)
    }
    fn sender_failures_since(&self, sender: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.c().sender_failures_since(sender, since)
    }
    fn address_failures_since(&self, address: &str, since: i64, strangers_only: bool) -> Result<(u32, Option<i64>)> {
        self.c().address_failures_since(address, since, strangers_only)
    }
    fn known_caller(&self, caller: &str) -> Result<bool> {
        self.c().known_caller(caller)
    }
    fn remember_caller(&self, caller: &str, at: i64) -> Result<()> {
        self.c().remember_caller(caller, at)
    }
    fn record_failure(&self, number: &str, caller: Caller<'_>, asked_for: Option<&str>, at: i64) -> Result<()> {
        self.c().record_failure(number, caller, asked_for, at)
    }
    fn lock_checks(&self, keys: &[String]) -> Result<()> {
        self.lock_all(keys)
    }
}

/// Outside one (`esurety verify`: each failure recorded is its own commit).
impl RegistryStore for Store {
    fn registry_entry(&self, number: &str) -> Result<Option<RegistryEntry>> {
        self.conn.registry_entry(number)
    }
    fn registry_versions(&self, number: &str) -> Result<Vec<VersionRow>> {
        self.conn.registry_versions(number)
    }
    fn issued_documents(&self, number: &str, version: u32) -> Result<Vec<super::IssuedDocument>> {
        self.conn.issued_documents(number, version)
    }
    fn registry_events(&self, number: &str) -> Result<Vec<crate::domain::Event>> {
        self.conn.registry_events(number)
    }
    fn failures_since(&self, number: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.conn.failures_since(number, since)
    }
    fn caller_failures_since(&self, number: &str, caller: Caller<'_>, since: i64) -> Result<(u32, Option<i64>)> {
        self.conn.caller_failures_since(number, caller, since)
    }
    fn sender_failures_since(&self, sender: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.conn.sender_failures_since(sender, since)
    }
    fn address_failures_since(&self, address: &str, since: i64, strangers_only: bool) -> Result<(u32, Option<i64>)> {
        self.conn.address_failures_since(address, since, strangers_only)
    }
    fn known_caller(&self, caller: &str) -> Result<bool> {
        self.conn.known_caller(caller)
    }
    fn remember_caller(&self, caller: &str, at: i64) -> Result<()> {
        self.conn.remember_caller(caller, at)
    }
    fn record_failure(&self, number: &str, caller: Caller<'_>, asked_for: Option<&str>, at: i64) -> Result<()> {
        self.conn.record_failure(number, caller, asked_for, at)
    }
    /// Outside a transaction there is nothing to hold a lock to: staff at the terminal.
    fn lock_checks(&self, _keys: &[String]) -> Result<()> {
        Ok(())
    }
}

impl RegistryStore for Conn {
    fn registry_entry(&self, number: &str) -> Result<Option<RegistryEntry>> {
        self.query_row(
            "SELECT key_salt, key_hash, key_mac, status, owner FROM registry WHERE number = ?1", [number],
            |r| Ok(RegistryEntry { salt: r.get(0)?, hash: r.get(1)?, mac: r.get(2)?, status: r.get(3)?, owner: r.get(4)? }),
        ).optional()
    }

    fn registry_versions(&self, number: &str) -> Result<Vec<VersionRow>> {
        versions(self, "registry_versions", "published_at", number)
    }
    fn issued_documents(&self, number: &str, version: u32) -> Result<Vec<super::IssuedDocument>> {
        Conn::issued_documents(self, number, version)
    }
    fn registry_events(&self, number: &str) -> Result<Vec<crate::domain::Event>> {
        Ok(self.events_of(number)?.into_iter().map(|e| crate::domain::Event { by: String::new(), ..e }).collect())
    }

    fn failures_since(&self, number: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.query_row(
            "SELECT count(*), max(at) FROM registry_failures WHERE number = ?1 AND at >= ?2", params![number, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn caller_failures_since(&self, number: &str, caller: Caller<'_>, since: i64) -> Result<(u32, Option<i64>)> {
        let row = |r: &super::db::Row| Ok((r.get(0)?, r.get(1)?));
        const SQL: &str = "SELECT count(*), max(at) FROM registry_failures WHERE number = ?1 AND at >= ?2";
        match (caller.sender, caller.address) {
            (Some(s), _) => self.query_row(&format!("{SQL} AND sender = ?3"), params![number, since, s], row),
            (None, Some(a)) => self.query_row(&format!("{SQL} AND sender IS NULL AND address = ?3"), params![number, since, a], row),
            (None, None) => self.query_row(&format!("{SQL} AND sender IS NULL AND address IS NULL"), params![number, since], row),
        }
    }

    fn sender_failures_since(&self, sender: &str, since: i64) -> Result<(u32, Option<i64>)> {
        self.query_row(
            "SELECT count(*), max(at) FROM registry_failures WHERE sender = ?1 AND at >= ?2", params![sender, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn address_failures_since(&self, address: &str, since: i64, strangers_only: bool) -> Result<(u32, Option<i64>)> {
        let strangers = if strangers_only { " AND (sender IS NULL OR sender NOT IN (SELECT caller FROM known_callers))" } else { "" };
        self.query_row(
            &format!("SELECT count(*), max(at) FROM registry_failures WHERE address = ?1 AND at >= ?2{strangers}"), params![address, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn known_caller(&self, caller: &str) -> Result<bool> {
        self.query_row("SELECT EXISTS (SELECT 1 FROM known_callers WHERE caller = ?1)", [caller], |r| r.get(0))
    }

    fn remember_caller(&self, caller: &str, at: i64) -> Result<()> {
        self.execute("INSERT INTO known_callers (caller, since) VALUES (?1, ?2) ON CONFLICT DO NOTHING", params![caller, at])?;
        Ok(())
    }

    fn record_failure(&self, number: &str, caller: Caller<'_>, asked_for: Option<&str>, at: i64) -> Result<()> {
        // Failures older than two days count for nothing any more: they go.
        self.execute("DELETE FROM registry_failures WHERE at < ?1", [at - 2 * 86_400])?;
        self.execute(
            "INSERT INTO registry_failures (number, sender, address, asked_for, at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![number, caller.sender, caller.address, asked_for, at],
        )?;
        Ok(())
    }
    /// The bare connection holds no transaction: [`Tx`] takes the locks.
    fn lock_checks(&self, _keys: &[String]) -> Result<()> {
        Ok(())
    }
}
