//! The configuration file exactly as written: shape only, no meaning checked yet.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// A SQLite file (a path) or a PostgreSQL URL; `ESURETY_STORE` replaces it.
    pub store: String,
    /// The environment variable holding the PostgreSQL password (when not in the URL).
    pub store_password_env: Option<String>,
    /// The CA that signs the PostgreSQL server's certificate: TLS to the server.
    pub store_ca_file: Option<PathBuf>,
    /// The company's secret (32 bytes, mode 0600), default `esurety.secret`.
    pub secret_file: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    /// `branch`, `owner` or `both` (default).
    pub side: Option<String>,
    /// The surety company (needed where the branch side runs).
    pub company: Option<RawCompany>,
    pub mail: RawMail,
    #[serde(default)]
    pub branches: Vec<RawBranch>,
    #[serde(default)]
    pub owners: Vec<RawOwner>,
    #[serde(default)]
    pub contractors: Vec<RawContractor>,
    #[serde(default)]
    pub joint_ventures: Vec<RawJointVenture>,
    #[serde(default)]
    pub fees: Vec<RawFeeRate>,
    /// `[bid_bonds]`: the 予約手数料 of a 契約保証予約, its tax, and how long it waits.
    pub bid_bonds: Option<RawBidBonds>,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub limits: crate::config::Limits,
    pub sender_auth: Option<RawSenderAuth>,
    pub dkim: Option<RawDkim>,
    /// `[signing]`: the company's signature on the PDFs it issues.
    pub signing: Option<super::signing::RawSigning>,
    pub web: Option<super::web::RawWeb>,
    pub metrics: Option<super::web::RawMetrics>,
    #[serde(default)]
    pub registries: Vec<super::web::RawRegistry>,
    /// Hours a submission may wait for an unreachable registry before staff are told.
    pub registry_wait_hours: Option<u32>,
}

/// `[sender_auth]`: DKIM/SPF alignment of applications and changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSenderAuth {
    pub enabled: bool,
    /// Fixed DNS TXT answers, `name value` per line, consulted before any query.
    pub dns_answers: Option<PathBuf>,
    /// Never query DNS: a name not in `dns_answers` has no record.
    #[serde(default)]
    pub offline: bool,
    /// This host's name, as SPF macros see it (default "localhost").
    pub host: Option<String>,
    /// The DNS servers to ask, `"ip"` or `"ip:port"` (default: the system's, from
    /// /etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// How long an application whose check met a temporary DNS failure is retried before
    /// it is held for staff (default 24).
    pub retry_hours: Option<u32>,
}

/// `[dkim]`: sign outgoing mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDkim {
    pub domain: String,
    pub selector: String,
    /// A PKCS#8 PEM private key, Ed25519 or RSA.
    pub key_file: PathBuf,
}

/// Cron expressions in Japan time, seconds first (`sec min hour day month weekday`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// A pass over every mailbox (default: every `mail.poll_seconds`).
    pub poll: Option<String>,
    /// Sending what the outbox has due (default: every minute).
    pub outbox: Option<String>,
    /// The daily digest to staff (default: 08:00).
    pub digest: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompany {
    pub name: String,
    pub address: String,
    pub representative: String,
    pub registry_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    /// The embedded default's Maildirs (and where mail goes when no SMTP server is set).
    pub maildir_root: Option<PathBuf>,
    /// Watch the addresses' mailboxes on this IMAP server instead of local Maildirs.
    pub imap: Option<RawServer>,
    /// Send through this SMTP server instead of delivering into local Maildirs.
    pub smtp: Option<RawServer>,
    /// One login per watched address (IMAP).
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    /// Seconds between passes when a mailbox cannot IDLE (and for the outbox).
    pub poll_seconds: Option<u64>,
    /// Mail that arrived before this date (YYYY-MM-DD, Japan time) is never read: for
    /// pointing esurety at a mailbox that already has years of mail in it.
    pub process_since: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// The server (absent: the `provider`'s, e.g. outlook.office365.com).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `tls` (implicit), `starttls`, or `plain` (loopback only unless `allow_plaintext`).
    pub security: Option<String>,
    #[serde(default)]
    pub allow_plaintext: bool,
    /// An extra CA certificate (PEM) to trust, e.g. a company CA.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The name of an environment variable holding the password.
    pub password_env: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// `password` (the default) or `oauth2`.
    pub auth: Option<String>,
    /// `microsoft`, `google` or `custom` (with `auth = "oauth2"`; on a server without a
    /// `host`, its host, port and security).
    pub provider: Option<String>,
    /// Microsoft: the directory (tenant) id (default `organizations`).
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    /// The environment variable holding the OAuth client's secret (never in this file).
    pub client_secret_env: Option<String>,
    /// A file holding the OAuth client's secret.
    pub client_secret_file: Option<PathBuf>,
    /// `custom`: the token endpoint; the device authorization and authorization endpoints.
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub authorize_url: Option<String>,
    /// The scopes asked for, space-separated (the preset's by default).
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub address: String,
    pub username: String,
    pub password: Option<String>,
    pub password_env: Option<String>,
    /// `password` (the default) or `oauth2`.
    pub auth: Option<String>,
    /// `microsoft`, `google` or `custom` (with `auth = "oauth2"`; on a server without a
    /// `host`, its host, port and security).
    pub provider: Option<String>,
    /// Microsoft: the directory (tenant) id (default `organizations`).
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    /// The environment variable holding the OAuth client's secret (never in this file).
    pub client_secret_env: Option<String>,
    /// A file holding the OAuth client's secret.
    pub client_secret_file: Option<PathBuf>,
    /// `custom`: the token endpoint; the device authorization and authorization endpoints.
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub authorize_url: Option<String>,
    /// The scopes asked for, space-separated (the preset's by default).
    pub scope: Option<String>,
    pub folder: Option<String>,
    /// Move processed messages (and checked submissions) to this folder after marking them.
    pub move_processed_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub name: String,
    pub office_code: String,
    pub address: String,
    pub tel: String,
    pub fax: String,
    /// Where the daily digest and notices of failed mail go.
    pub staff_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOwner {
    pub name: String,
    pub accepts_electronic: bool,
    pub electronic_contract_date_from: Option<String>,
    pub electronic_award_date_from: Option<String>,
    pub contracts_address: String,
    /// The branch that handles this owner's applications (where the branch side runs).
    pub branch: Option<String>,
    pub advance_ratio_percent: Option<u32>,
    pub contract_ratio_percent: Option<u32>,
    /// Whether the owner pays 中間前払金 (and so takes 中間前払金保証).
    #[serde(default)]
    pub intermediate_advance: bool,
    /// Its share of the contract price, e.g. 0.2 (the default).
    pub intermediate_ratio: Option<f64>,
    /// Whether the owner takes 契約保証予約 (入札ボンド) in place of a bid deposit.
    #[serde(default)]
    pub bid_bond: bool,
    /// CSV: 工事名,受注者名,請負金額,工期,請負契約日 (check 5 of the owner side).
    pub contracts_csv: Option<std::path::PathBuf>,
    /// Where the daily digest goes.
    pub staff_address: Option<String>,
    /// Where the owner's systems take webhooks of its certificates' events (branch side).
    pub webhook_url: Option<String>,
    /// The environment variable holding that endpoint's secret (whsec_…).
    pub webhook_secret_env: Option<String>,
    /// A CA to trust for that endpoint's HTTPS beside the public ones (PEM).
    pub webhook_ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContractor {
    pub name: String,
    pub address: String,
    pub emails: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJointVenture {
    pub name: String,
    pub representative: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBidBonds {
    /// 予約手数料 per reservation, before tax.
    pub reservation_fee_yen: u64,
    /// 消費税 on the 予約手数料, in percent (guarantee fees carry none).
    pub consumption_tax_percent: u32,
    /// Days after 入札日 a reservation waits for its 契約保証 before it lapses (失効).
    pub days_after_bid: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeeRate {
    pub product: String,
    pub annual_rate_percent: String,
    pub minimum_yen: Option<u64>,
}
