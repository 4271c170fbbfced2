//! The configuration: read raw from TOML, then validated into [`Config`].
//!
//! `RawConfig` only checks shape (`deny_unknown_fields`: a typo is an error naming the key);
//! [`Config::from_raw`] checks meaning (dates, office codes, cross references) and resolves
//! every path against the config file's folder. Everything downstream takes `&Config`.
//!
//! This folder: `raw.rs` (the shape), `validate.rs` (the meaning), `mail.rs` (mailboxes and
//! servers), `web.rs` (`[web]`, `[[registries]]`), `contracts.rs` (an owner's contract
//! list), `store.rs` (where the store is), [`schedule`] (the daemon's jobs) and [`default`]
//! (the embedded default that `esurety init` writes).

pub mod contracts;
pub mod default;
mod mail;
mod oauth;
mod raw;
mod validate;
pub mod schedule;
pub mod signing;
mod store;
pub mod web;
pub mod webhooks;

pub use store::{PgTarget, StoreAt};

use crate::domain::{FeeRate, Product};
use crate::text::squash;
use chrono::NaiveDate;
pub use contracts::ContractEntry;
pub use mail::{Account, Credentials, MailConfig, Secret, Security, Server};
pub use oauth::{Auth, OAuth, Provider};
pub use raw::RawConfig;
pub use web::{RegistryConfig, Sides, WebConfig};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the configuration {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("the configuration {path} has problems:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, problems: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub store: crate::config::StoreAt,
    /// The company's secret, outside the store (see `secrets.rs`).
    pub secret_file: PathBuf,
    pub templates: Option<PathBuf>,
    pub company: Company,
    pub mail: MailConfig,
    pub branches: Vec<Branch>,
    pub owners: Vec<Owner>,
    pub contractors: Vec<Contractor>,
    pub joint_ventures: Vec<JointVenture>,
    pub fees: Vec<FeeRate>,
    pub bid_bonds: BidBonds,
    pub schedule: crate::config::schedule::Jobs,
    pub limits: Limits,
    /// DKIM/SPF checking of applications and changes, when enabled.
    pub sender_auth: Option<SenderAuthConfig>,
    /// Signing outgoing mail.
    pub dkim: Option<DkimConfig>,
    /// Signing the PDFs the branch issues (`[signing]`); absent: they go unsigned.
    pub signing: Option<signing::SigningConfig>,
    /// Which sides run here.
    pub sides: Sides,
    /// The web server (the registry's API and lookup page).
    pub web: Option<WebConfig>,
    /// `[metrics] listen`: where `GET /metrics` is served (absent: not served).
    pub metrics: Option<String>,
    /// The registries an owner's own deployment checks through; empty: this store's.
    pub registries: Vec<RegistryConfig>,
    pub registry_wait_hours: u32,
}

#[derive(Debug, Clone)]
pub struct SenderAuthConfig {
    /// The text of the fixed DNS answers (empty when none).
    pub dns_answers: String,
    pub offline: bool,
    pub host: String,
    /// DNS servers to ask; empty: the system's.
    pub nameservers: Vec<std::net::SocketAddr>,
    /// How long a temporary DNS failure is retried before the message is held.
    pub retry_hours: u32,
}

#[derive(Clone)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub key_pem: crate::config::Secret,
}

impl std::fmt::Debug for DkimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DkimConfig {{ domain: {}, selector: {}, key: **** }}", self.domain, self.selector)
    }
}

/// Bounds on what one incoming message may cost (`[limits]`); the defaults are safe.
/// Whatever passes a bound gets a recorded outcome with the reason, never a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// A larger message is stored and held for staff (branch) or left alone (owner).
    pub max_message_mib: u64,
    /// MIME parts read per message; the rest are not looked at.
    pub max_parts: usize,
    /// Forwarded messages (message/rfc822) read inside each other.
    pub max_depth: usize,
    /// A larger PDF, or one with more pages, is refused with the reason.
    pub pdf_max_mib: u64,
    pub pdf_max_pages: usize,
    /// Time and address space of the PDF-reading process per PDF.
    pub pdf_seconds: u64,
    pub pdf_memory_mib: u64,
    /// Number/key pairs checked per submission (distinct numbers). A message with more is
    /// not a submission anyone makes: it is left to the owner's staff, nothing checked.
    pub max_pairs: usize,
    /// `/readyz` answers 503 once the oldest mail waiting in the outbox is older than this.
    pub outbox_stale_minutes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_message_mib: 30, max_parts: 500, max_depth: 10, pdf_max_mib: 20, pdf_max_pages: 50, pdf_seconds: 10, pdf_memory_mib: 1024, max_pairs: 20, outbox_stale_minutes: 60 }
    }
}

impl Limits {
    pub fn max_message_bytes(&self) -> usize {
        (self.max_message_mib as usize).saturating_mul(1 << 20)
    }
    pub fn pdf_max_bytes(&self) -> usize {
        (self.pdf_max_mib as usize).saturating_mul(1 << 20)
    }
}

#[derive(Debug, Clone)]
pub struct Company {
    pub name: String,
    pub address: String,
    pub representative: String,
    pub registry_name: String,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub name: String,
    pub office_code: String,
    pub address: String,
    pub tel: String,
    pub fax: String,
    pub staff_address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub name: String,
    pub accepts_electronic: bool,
    pub electronic_contract_date_from: Option<NaiveDate>,
    pub electronic_award_date_from: Option<NaiveDate>,
    pub contracts_address: String,
    pub branch: String,
    pub advance_ratio_percent: u32,
    pub contract_ratio_percent: u32,
    /// 中間前払金: its share of the contract price in percent, when the owner pays it.
    pub intermediate_percent: Option<u32>,
    /// Takes 契約保証予約 (入札ボンド).
    pub bid_bond: bool,
    /// Check 5: the owner's list of contracts, when it keeps one.
    pub contracts: Option<Vec<ContractEntry>>,
    pub staff_address: Option<String>,
    /// Where this owner's systems take webhooks of the events on its certificates.
    pub webhook: Option<webhooks::WebhookEndpoint>,
}

#[derive(Debug, Clone)]
pub struct Contractor {
    pub name: String,
    pub address: String,
    pub emails: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct JointVenture {
    pub name: String,
    pub representative: String,
}

/// `[bid_bonds]`: what a 契約保証予約 costs and how long it waits for its 契約保証.
#[derive(Debug, Clone, PartialEq)]
pub struct BidBonds {
    pub reservation_fee_yen: u64,
    pub consumption_tax_percent: u32,
    pub days_after_bid: u32,
}

impl BidBonds {
    /// Without `[bid_bonds]`: no fee, no tax, 30 days.
    pub const NONE: BidBonds = BidBonds { reservation_fee_yen: 0, consumption_tax_percent: 0, days_after_bid: 30 };

    /// The consumption tax on the 予約手数料, whole yen rounded down.
    pub fn tax_yen(&self) -> u64 {
        self.reservation_fee_yen * self.consumption_tax_percent as u64 / 100
    }
}


impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let raw: RawConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() })?;
        Config::from_raw(raw, path)
    }

    pub fn owner_by_address(&self, address: &str) -> Option<&Owner> {
        self.owners.iter().find(|o| o.contracts_address.eq_ignore_ascii_case(address))
    }
    pub fn branch_by_address(&self, address: &str) -> Option<&Branch> {
        self.branches.iter().find(|b| b.address.eq_ignore_ascii_case(address))
    }
    pub fn branch_by_name(&self, name: &str) -> Option<&Branch> {
        let n = squash(name);
        self.branches.iter().find(|b| squash(&b.name) == n)
    }
    pub fn branch_by_code(&self, code: &str) -> Option<&Branch> {
        self.branches.iter().find(|b| b.office_code == code)
    }
    /// Owner names match after NFKC with spaces ignored.
    pub fn owner_by_name(&self, name: &str) -> Option<&Owner> {
        let n = squash(name);
        self.owners.iter().find(|o| squash(&o.name) == n)
    }
    pub fn contractor_by_name(&self, name: &str) -> Option<&Contractor> {
        let n = squash(name);
        self.contractors.iter().find(|c| squash(&c.name) == n)
    }
    pub fn contractor_by_email(&self, email: &str) -> Option<&Contractor> {
        self.contractors.iter().find(|c| c.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
    }
    pub fn joint_venture(&self, name: &str) -> Option<&JointVenture> {
        let n = squash(name);
        self.joint_ventures.iter().find(|j| squash(&j.name) == n)
    }
    pub fn fee_rate(&self, product: Product) -> Option<&FeeRate> {
        self.fees.iter().find(|f| f.product == product)
    }
    /// Every address that has a local mailbox in the embedded default.
    pub fn local_addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = self.branches.iter().filter(|_| self.sides.branch).map(|b| b.address.clone())
            .chain(self.owners.iter().filter(|_| self.sides.owner).map(|o| o.contracts_address.clone()))
            .chain(self.contractors.iter().flat_map(|c| c.emails.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// A plain check of `local@domain.tld`: what R8 asks and what a mail server would accept.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    let ok_local = !local.is_empty() && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
        && !local.starts_with('.') && !local.ends_with('.') && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let ok_domain = labels.len() >= 2 && domain.len() <= 253
        && labels.iter().all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    ok_local && ok_domain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let raw: RawConfig = toml::from_str(default::DEFAULT_CONFIG).unwrap();
        let c = Config::from_raw(raw, Path::new("/x/esurety.toml")).unwrap();
        assert_eq!(c.branches.len(), 5);
        assert_eq!(c.store.file(), Some(Path::new("/x/esurety.db")));
        assert!(c.owner_by_name("神奈川県内広域水道企業団企業長").is_some());
        assert_eq!(c.fee_rate(Product::Advance).unwrap().annual_rate_ppm, 3100);
    }

    #[test]
    fn a_typo_names_the_key() {
        let text = default::DEFAULT_CONFIG.replace("accepts_electronic = false", "accept_electronic = false");
        let err = toml::from_str::<RawConfig>(&text).unwrap_err().to_string();
        assert!(err.contains("accept_electronic"), "{err}");
    }

    #[test]
    fn meaning_is_checked_with_the_key_named() {
        let text = default::DEFAULT_CONFIG.replace("\"2026-04-01\"", "\"2026-04-31\"").replace("\"35075\"", "\"3507\"");
        let raw: RawConfig = toml::from_str(&text).unwrap();
        let err = Config::from_raw(raw, Path::new("c.toml")).unwrap_err().to_string();
        assert!(err.contains("owners[0].electronic_contract_date_from"), "{err}");
        assert!(err.contains("branches[3].office_code"), "{err}");
    }

    #[test]
    fn email_shapes() {
        for ok in ["soumu@maruichi.example", "a.b+c@x-y.co.jp"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "soumu", "soumu@", "@x.jp", "a@b", "a b@x.jp", "a@@x.jp", "山田@x.jp", "a@x..jp"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
