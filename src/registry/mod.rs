//! The registry's answer to number + key (保証確認サービス): what `esurety verify` prints
//! and what the owner side checks against.
//!
//! An unknown number and a wrong key give the same answer (`mismatch`) and both count as a
//! failure on that number by that caller; after [`Lockout::max_failures`] of them within
//! the window the number answers `locked` to that caller (even for the right key) until
//! the window has passed. Other callers' failures never lock a caller out: many callers
//! failing on one number are logged for staff (`registry_number_alert`) instead.
//!
//! This folder is the registry: `mod.rs` the answer, the lockout and the [`Registry`]
//! interface the owner side asks ([`LocalRegistry`] on the company's own store),
//! [`remote`] the same asked of a company's registry over HTTPS, [`json`] the answer as
//! `cli.md` and the API give it, and [`tokens`] owner systems' API tokens.

pub mod json;
pub mod remote;
pub mod tokens;

use crate::domain::{AuthKey, Caller, CertificateNumber};
use crate::secrets::Secrets;
use crate::store::{RegistryStore, Result, Store, StoreError, VersionRow};
use crate::domain::Found;
use crate::text::squash;
use chrono::{DateTime, FixedOffset};

/// The caller an API request counts as: its token, and the end sender it names (an
/// address, compared without case).
pub fn token_caller(token_id: i64, end_sender: Option<&str>) -> String {
    match end_sender.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => format!("token:{token_id} sender:{}", s.to_lowercase()),
        None => format!("token:{token_id}"),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    /// Failures on one number within `window_secs` that lock it.
    pub max_failures: u32,
    pub window_secs: i64,
    /// Failures by one sender (on any numbers) within `sender_window_secs` after which
    /// that sender's pairs are not checked until the window has passed. The same limits
    /// apply to one client address of the web.
    pub sender_max_failures: u32,
    pub sender_window_secs: i64,
    /// The same for an API token's failures that name no end sender, within
    /// `sender_window_secs`: an owner's system relays every contractor's submissions, so
    /// a few contractors' mistakes must not lock it; guessing across numbers stays
    /// hopeless (200 an hour against 21^12 keys). A request that names its end sender
    /// counts against that sender's own `sender_max_failures` instead, so strangers'
    /// guesses relayed by the owner's system spend only their own budgets.
    pub token_max_failures: u32,
    /// All failures through one client address calling with a token (whichever end
    /// senders they name) within `sender_window_secs`: what bounds an owner's system that
    /// names a new sender for every guess.
    pub relay_max_failures: u32,
    /// Failures on one number by all callers together within `window_secs` after which
    /// staff are told (a log event); nobody is locked by it.
    pub alert_failures: u32,
}

impl Default for Lockout {
    fn default() -> Self {
        // 5 tries per 15 minutes per number and caller: 480 guesses a day against
        // 21^12 ≈ 7.4 × 10^15 keys. 10 failures an hour per sender: a sender cannot spread
        // guesses over numbers either.
        Lockout {
            max_failures: 5, window_secs: 15 * 60, sender_max_failures: 10, sender_window_secs: 60 * 60, token_max_failures: 200,
            relay_max_failures: 2000, alert_failures: 20,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Verification {
    /// `documents`: the current version's documents as issued (kind and SHA-256), so an
    /// owner's system can compare a submitted file with what was issued.
    ///
    /// A right key for a certificate not in force (`status` says why) is `Valid` too: its
    /// `result()` is `not_in_force`. `events`: what happened to it after its issue
    /// (`lifecycle.md`), without who did it.
    Valid { number: String, status: crate::domain::CertificateStatus, latest: VersionRow, history: Vec<VersionRow>, documents: Vec<crate::store::IssuedDocument>, events: Vec<crate::domain::Event> },
    Mismatch,
    Malformed,
    Locked { until: DateTime<FixedOffset> },
    /// Too many failures from this sender: not checked (and not counted against the number).
    SenderLocked { until: DateTime<FixedOffset> },
}

impl Verification {
    pub fn result(&self) -> &'static str {
        match self {
            Verification::Valid { status, .. } if status.in_force() => "valid",
            Verification::Valid { .. } => "not_in_force",
            Verification::Mismatch => "mismatch",
            Verification::Malformed => "malformed",
            Verification::Locked { .. } | Verification::SenderLocked { .. } => "locked",
        }
    }
}

/// Where a pair found in a submission is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Ask the registry (of this issuer, when known).
    Ask(Option<String>),
    /// No registry here can check it (another company's notice, a non-life insurer's
    /// viewing URL and password): the owner's staff check it by hand. Never a mismatch.
    Unchecked { issuer: Option<String>, reason: String },
}

/// What the owner side asks about a number and key: this store's registry
/// ([`LocalRegistry`]) or, for an owner on its own machine, the issuers' registries over
/// HTTP ([`remote::RemoteRegistries`]). Each call is its own transaction (a savepoint
/// inside a batch) or request, made before the owner side writes what it concluded.
pub trait Registry {
    /// Which registry checks this pair, or why none can.
    fn route(&self, found: &Found) -> Route;
    /// The lock in force on `number` (or on `sender`), if any: the submission then waits.
    fn lock(&self, store: &mut Store, number: &str, sender: Option<&str>, now: DateTime<FixedOffset>) -> std::result::Result<Option<Verification>, RegistryError>;
    /// The answer to number + key; a failure counts once per (number, `asked_for`).
    #[allow(clippy::too_many_arguments)]
    fn verify(&self, store: &mut Store, issuer: Option<&str>, number: &str, key: &str, sender: Option<&str>, asked_for: &str, now: DateTime<FixedOffset>) -> std::result::Result<Verification, RegistryError>;
    /// Whom the owner trusts for `issuer`'s signed PDFs (any registry's, when the issuer
    /// is not known): signers and timestamp authorities.
    fn trust(&self, issuer: Option<&str>) -> crate::signature::verify::Trust;
    /// What happened to `number` after its issue (after `since`, RFC 3339), as the
    /// registry of `issuer` (or any that holds it) tells this owner: (that registry's
    /// name, the events, oldest first). None when it does not know the number for us.
    fn events(&self, store: &mut Store, issuer: Option<&str>, number: &str, since: Option<&str>) -> std::result::Result<(String, Vec<crate::domain::Event>), RegistryError>;
}

/// Why the registry gave no answer. The first is this store's; the others are a remote
/// registry's, and leave the submission pending for a later pass.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused connection, timeout, a 5xx, an answer that is not the API's.
    #[error("the registry {registry} cannot be reached: {reason}")]
    Unavailable { registry: String, reason: String },
    /// 401/403: the token is wrong or revoked; a configuration error to fix.
    #[error("the registry {registry} refuses our token ({status}): check [[registries]] token for {registry}")]
    Refused { registry: String, status: u16 },
    /// The registry refuses this question as asked (400, 413, 415, 422): asking again would
    /// get the same answer, so the pair is left to the owner's staff (`unchecked`).
    #[error("the registry {registry} refuses this question (HTTP {status} {code}); its staff check it by hand")]
    Unanswerable { registry: String, status: u16, code: String },
}

/// The route of a pair when this process's own registry is the only one: a notice names
/// another issuer (or is a non-life insurer's) → unchecked.
pub fn local_route(found: &Found, company: &str) -> Route {
    if found.viewing {
        return Route::Unchecked { issuer: found.issuer.clone(), reason: viewing_reason(found.issuer.as_deref()) };
    }
    match &found.issuer {
        Some(i) if !company.is_empty() && squash(i) != squash(company) => Route::Unchecked { issuer: Some(i.clone()), reason: other_issuer_reason(i) },
        _ => Route::Ask(None),
    }
}

pub(crate) fn viewing_reason(issuer: Option<&str>) -> String {
    format!("{}の電子保険証券（閲覧用URL・パスワード）です。保証確認サービスでは確認できないため、担当者が確認します", issuer.unwrap_or("損害保険会社"))
}

pub(crate) fn other_issuer_reason(issuer: &str) -> String {
    format!("{issuer}の電子保証です。{issuer}の確認サービスにはこのシステムから接続していないため、担当者が確認します")
}

/// The registry in this store (the surety company's own process).
pub struct LocalRegistry<'a> {
    pub secrets: &'a Secrets,
    pub lockout: Lockout,
    /// The company whose registry this is: a notice naming another issuer is not checked here.
    pub company: String,
    /// The company's own signing chain (`[signing]`) and its timestamp authority's CA
    /// (`tsa_ca_file`), trusted for its PDFs.
    pub trust: crate::signature::verify::Trust,
}

impl Registry for LocalRegistry<'_> {
    fn route(&self, found: &Found) -> Route {
        local_route(found, &self.company)
    }

    fn lock(&self, store: &mut Store, number: &str, sender: Option<&str>, now: DateTime<FixedOffset>) -> std::result::Result<Option<Verification>, RegistryError> {
        Ok(store.write(|tx| lock_in_force(tx, number, Caller::sender(sender), now, self.lockout))?)
    }

    fn verify(&self, store: &mut Store, _issuer: Option<&str>, number: &str, key: &str, sender: Option<&str>, asked_for: &str, now: DateTime<FixedOffset>) -> std::result::Result<Verification, RegistryError> {
        Ok(store.write(|tx| verify(tx, self.secrets, number, key, Caller::sender(sender), Some(asked_for), now, self.lockout))?)
    }

    fn trust(&self, _issuer: Option<&str>) -> crate::signature::verify::Trust {
        self.trust.clone()
    }

    fn events(&self, store: &mut Store, _issuer: Option<&str>, number: &str, since: Option<&str>) -> std::result::Result<(String, Vec<crate::domain::Event>), RegistryError> {
        let since = since.and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        let events = store.registry_events(number)?.into_iter()
            .filter(|e| since.is_none_or(|s| DateTime::parse_from_rfc3339(&e.at).is_ok_and(|t| t > s))).collect();
        Ok((self.company.clone(), events))
    }
}

/// The lock that stops a check of `number` (from `sender`) now, if any: `Locked` or
/// `SenderLocked` with when it lifts. The owner side asks this before checking a
/// submission, and a submission that meets a lock waits for it to lift instead of being
/// answered: a lock slows guessing down, it never turns away the real key.
pub fn lock_in_force(store: &dyn RegistryStore, number: &str, caller: Caller<'_>, now: DateTime<FixedOffset>, lockout: Lockout) -> Result<Option<Verification>> {
    let since = now.timestamp() - lockout.sender_window_secs;
    // An API token's own failures have the token's limit; a named end sender, a person at
    // the lookup page, or a submission's sender, the sender's. An address calling with a
    // token has the relay limit (all its end senders together); without one, the sender's.
    let limit = if caller.is_token() { lockout.token_max_failures } else { lockout.sender_max_failures };
    let address_limit = if caller.via_token() { lockout.relay_max_failures } else { lockout.sender_max_failures };
    // The relay limit is the strangers': an end sender that has given a right key through
    // the token before is someone the owner deals with, and strangers' guesses relayed from
    // the same system never spend what it needs (it keeps its own sender limit and locks).
    let known = caller.names_end_sender() && (caller.known || caller.sender.map(|s| store.known_caller(s)).transpose()?.unwrap_or(false));
    let by_sender = caller.sender.map(|s| store.sender_failures_since(s, since)).transpose()?.map(|f| (f, limit));
    let by_address = caller.address.filter(|_| !known).map(|a| store.address_failures_since(a, since, caller.via_token())).transpose()?.map(|f| (f, address_limit));
    for ((failures, last), limit) in by_sender.into_iter().chain(by_address) {
        if failures >= limit {
            let until = crate::clock::from_unix(last.unwrap_or(now.timestamp()) + lockout.sender_window_secs);
            tracing::info!(event = "verify_caller_locked", sender = caller.sender.unwrap_or(""), address = caller.address.unwrap_or(""));
            return Ok(Some(Verification::SenderLocked { until }));
        }
    }
    let Some(number) = CertificateNumber::parse(number) else { return Ok(None) };
    // Only this caller's failures on the number: anyone else's wrong keys never lock it out.
    let (failures, last) = store.caller_failures_since(&number.to_string(), caller, now.timestamp() - lockout.window_secs)?;
    if failures >= lockout.max_failures {
        let until = crate::clock::from_unix(last.unwrap_or(now.timestamp()) + lockout.window_secs);
        return Ok(Some(Verification::Locked { until }));
    }
    Ok(None)
}

/// What a check of `number` (canonical) by `caller` counts its failures by: the names of
/// the locks it takes ([`RegistryStore::lock_checks`]).
pub fn check_keys(number: &str, caller: Caller<'_>) -> Vec<String> {
    let mut keys = vec![format!("check number {number}")];
    keys.extend(caller.sender.map(|s| format!("check sender {s}")));
    keys.extend(caller.address.map(|a| format!("check address {a}")));
    keys
}

/// Checks a number and key. `caller` is who asks (a submission's From, an API token, a
/// client address), counted apart from the number; none for staff at the command line.
///
/// `asked_for` names what asks (a submission's stored id): a failure is counted once per
/// (number, `asked_for`), so asking again for the same message never counts twice.
#[allow(clippy::too_many_arguments)]
pub fn verify(store: &dyn RegistryStore, secrets: &Secrets, number: &str, key: &str, caller: Caller<'_>, asked_for: Option<&str>, now: DateTime<FixedOffset>, lockout: Lockout) -> Result<Verification> {
    let v = answer(store, secrets, number, key, caller, asked_for, now, lockout)?;
    let who = if caller.via_token() { "api" } else if caller.address.is_some() { "page" } else if caller.sender.is_some() { "owner_side" } else { "cli" };
    metrics::counter!("esurety_registry_checks_total", "result" => v.result(), "caller" => who).increment(1);
    Ok(v)
}

/// The answer itself, uncounted (see [`verify`]).
#[allow(clippy::too_many_arguments)]
fn answer(store: &dyn RegistryStore, secrets: &Secrets, number: &str, key: &str, caller: Caller<'_>, asked_for: Option<&str>, now: DateTime<FixedOffset>, lockout: Lockout) -> Result<Verification> {
    let (Some(number), Some(key)) = (CertificateNumber::parse(number), AuthKey::parse(key)) else {
        return Ok(Verification::Malformed);
    };
    let number = number.to_string();
    // Several daemons or web servers on one store: checks counting the same failures wait
    // for each other, so none reads a count another is about to raise.
    store.lock_checks(&check_keys(&number, caller))?;
    if let Some(lock) = lock_in_force(store, &number, caller, now, lockout)? {
        return Ok(lock);
    }
    let entry = store.registry_entry(&number)?;
    let matched = match &entry {
        Some(e) if e.mac => secrets.mac_matches(&e.salt, &key, &e.hash),
        Some(e) => key.matches(&e.salt, &e.hash),
        None => {
            // Same work as a real check, so timing does not tell unknown from wrong.
            let _ = secrets.mac_matches(&[0u8; 16], &key, &[0u8; 32]);
            false
        }
    };
    if !matched {
        store.record_failure(&number, caller, asked_for, now.timestamp())?;
        tracing::info!(event = "verify_failed", number = %number);
        alert_if_besieged(store, &number, now, lockout)?;
        return Ok(Verification::Mismatch);
    }
    let status = entry.expect("matched implies an entry").status;
    if caller.names_end_sender()
        && let Some(sender) = caller.sender
    {
        store.remember_caller(sender, now.timestamp())?;
    }
    let mut history = store.registry_versions(&number)?;
    let latest = history.last().cloned().ok_or_else(|| crate::store::StoreError::Corrupt(format!("{number} has no published version")))?;
    // The owner sees the latest contents and the history of 新規 and 変更 only: corrections
    // (訂正) and withdrawn changes (変更取消) are not listed (`domain.md` § History).
    history.retain(|h| matches!(h.kind.as_str(), "新規" | "変更"));
    let documents = store.issued_documents(&number, latest.version)?;
    let events = store.registry_events(&number)?;
    Ok(Verification::Valid { number, status, latest, history, documents, events })
}

/// Many callers failing on one number: not a lock (that would let strangers lock the
/// right key out), but staff are told, once as the count reaches the threshold.
fn alert_if_besieged(store: &dyn RegistryStore, number: &str, now: DateTime<FixedOffset>, lockout: Lockout) -> Result<()> {
    let (failures, _) = store.failures_since(number, now.timestamp() - lockout.window_secs)?;
    if failures == lockout.alert_failures {
        tracing::warn!(event = "registry_number_alert", number = %number, failures, minutes = lockout.window_secs / 60);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::clock::Clock;

    /// Failures older than two days are pruned when the next one is recorded.
    #[test]
    fn old_failures_are_pruned() {
        let dir = crate::testing::tempdir().unwrap();
        let store = Store::open_file(&dir.path().join("s.db")).unwrap();
        store.record_failure("35075-00001M", Caller::sender(Some("a@x")), None, 1_000).unwrap();
        store.record_failure("35075-00002K", Caller::sender(Some("a@x")), None, 1_000 + 86_400).unwrap();
        assert_eq!(store.sender_failures_since("a@x", 0).unwrap().0, 2);
        store.record_failure("35075-00003M", Caller::sender(Some("b@x")), None, 1_000 + 3 * 86_400).unwrap();
        assert_eq!(store.sender_failures_since("a@x", 0).unwrap().0, 1, "three days old: gone; two days old: kept");
        assert_eq!(store.failures_since("35075-00003M", 0).unwrap().0, 1);
    }

    /// Asked again for the same message (a replayed batch, a retried remote call), a wrong
    /// key counts once; another message's wrong key counts again.
    #[test]
    fn a_failure_counts_once_per_number_and_message() {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        let secrets = Secrets::from_bytes(&[1u8; 32]);
        let registry = LocalRegistry { secrets: &secrets, lockout: Lockout::default(), company: String::new(), trust: Default::default() };
        let now = FixedClock::parse("2026-07-04T10:00:00+09:00").unwrap().now();
        for _ in 0..3 {
            let v = registry.verify(&mut store, None, "35075-00001M", "CDEF34679HJK", Some("a@x"), "message 7", now).unwrap();
            assert!(matches!(v, Verification::Mismatch));
        }
        assert_eq!(store.failures_since("35075-00001M", 0).unwrap().0, 1);
        registry.verify(&mut store, None, "35075-00001M", "CDEF34679HJK", Some("a@x"), "message 8", now).unwrap();
        assert_eq!(store.failures_since("35075-00001M", 0).unwrap().0, 2);
    }
}
