//! The registry's answer to number + key (保証確認サービス): what `esurety verify` prints
//! and what the owner side checks against.
//!
//! An unknown number and a wrong key give the same answer (`mismatch`) and both count as a
//! failure on that number; after [`Lockout::max_failures`] failures within the window the
//! number answers `locked` (even to the right key) until the window has passed.

use crate::issuance::{AuthKey, CertificateNumber};
use crate::store::{RegistryStore, Result, VersionRow};
use rusqlite::Connection;
use chrono::{DateTime, FixedOffset};

#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub max_failures: u32,
    pub window_secs: i64,
}

impl Default for Lockout {
    fn default() -> Self {
        // 5 tries per 15 minutes: 480 guesses a day against 21^12 keys.
        Lockout { max_failures: 5, window_secs: 15 * 60 }
    }
}

#[derive(Debug, Clone)]
pub enum Verification {
    Valid { number: String, status: String, latest: VersionRow, history: Vec<VersionRow> },
    Mismatch,
    Malformed,
    Locked { until: DateTime<FixedOffset> },
}

impl Verification {
    pub fn result(&self) -> &'static str {
        match self {
            Verification::Valid { .. } => "valid",
            Verification::Mismatch => "mismatch",
            Verification::Malformed => "malformed",
            Verification::Locked { .. } => "locked",
        }
    }
}

pub fn verify(store: &Connection, number: &str, key: &str, now: DateTime<FixedOffset>, lockout: Lockout) -> Result<Verification> {
    let (Some(number), Some(key)) = (CertificateNumber::parse(number), AuthKey::parse(key)) else {
        return Ok(Verification::Malformed);
    };
    let number = number.to_string();
    let (failures, last) = store.failures_since(&number, now.timestamp() - lockout.window_secs)?;
    if failures >= lockout.max_failures {
        let until = crate::clock::from_unix(last.unwrap_or(now.timestamp()) + lockout.window_secs);
        return Ok(Verification::Locked { until });
    }
    let entry = store.registry_entry(&number)?;
    let matched = match &entry {
        Some((salt, hash, _, _)) => key.matches(salt, hash),
        None => {
            // Same work as a real check, so timing does not tell unknown from wrong.
            let _ = key.matches(&[0u8; 16], &[0u8; 32]);
            false
        }
    };
    if !matched {
        store.record_failure(&number, now.timestamp())?;
        tracing::info!(event = "verify_failed", number = %number);
        return Ok(Verification::Mismatch);
    }
    let (_, _, status, _) = entry.expect("matched implies an entry");
    let mut history = store.registry_versions(&number)?;
    let latest = history.last().cloned().ok_or_else(|| crate::store::StoreError::Corrupt(format!("{number} has no published version")))?;
    // The owner sees the latest contents and the history of 新規 and 変更 only: corrections
    // (訂正) and withdrawn changes (変更取消) are not listed (`domain.md` § History).
    history.retain(|h| matches!(h.kind.as_str(), "新規" | "変更"));
    Ok(Verification::Valid { number, status, latest, history })
}
