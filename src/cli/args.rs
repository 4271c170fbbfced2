//! The command line as `cli.md` names it: every command, subcommand and option, parsed by
//! clap. What each does is in `mod.rs` and beside it.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "esurety", version, about = "電子保証 (electronic surety certificates) over email: branch side and owner side")]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "esurety.toml", env = "ESURETY_CONFIG")]
    pub config: PathBuf,
    /// Log as JSON lines (to standard error).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the embedded default (demo parties, Maildirs, templates) into DIR.
    Init {
        dir: PathBuf,
        /// Only one side: `branch` (the surety company and its registry) or `owner` (an
        /// owner's contracts mailboxes, checking through the company's registry).
        #[arg(long, value_enum)]
        side: Option<crate::domain::Side>,
        /// Serve the web (registry API and lookup page) on this address:port.
        #[arg(long)]
        listen: Option<String>,
        /// The owner side's registry (with --side owner): the company's web address.
        #[arg(long)]
        registry_url: Option<String>,
        /// The address people reach the web at (`[web] public_url`, with --listen): the QR
        /// code on certificates and key notices opens its lookup page.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Serve only `[web]` (the registry's API and lookup page): no mailboxes, no outbox.
    Serve,
    /// Users of the staff desk on the web.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// The store itself.
    Store {
        #[command(subcommand)]
        action: StoreCommand,
    },
    /// Mailboxes that log in with OAuth 2.0 (`auth = "oauth2"`).
    Mailbox {
        #[command(subcommand)]
        action: MailboxCommand,
    },
    /// A consistent copy of the running SQLite store, with the secret's fingerprint (for
    /// PostgreSQL it says what to run instead).
    Backup {
        /// Where the copy goes (a new file; see --force).
        #[arg(long)]
        to: PathBuf,
        /// Replace FILE if it exists (once the new copy is complete).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// API tokens of owners' systems.
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Watch every mailbox, process what arrives, send what is due.
    Run {
        /// Process everything waiting now, send what is due, and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between passes when not --once (default: the configuration's poll_seconds).
        #[arg(long)]
        interval: Option<u64>,
    },
    /// The whole story on sample data in DIR (default: a new folder in the temp dir).
    Demo { dir: Option<PathBuf> },
    /// The branch side's certificates.
    Certificates {
        #[arg(long)]
        json: bool,
    },
    /// One certificate with its versions and history; with an action, staff change its
    /// state (`lifecycle.md`): the contractor and the owner are told.
    Certificate {
        number: String,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<CertificateAction>,
    },
    /// The registry's answer to an owner who types number and key.
    Verify {
        number: String,
        key: String,
        #[arg(long)]
        json: bool,
    },
    /// Every outgoing message and its state.
    Outbox {
        #[arg(long)]
        json: bool,
    },
    /// Webhooks to owners' systems (`lifecycle.md`): each event, where it goes, how often
    /// it was tried and what the last try said.
    Webhooks {
        #[arg(long)]
        json: bool,
    },
    /// Read a key notice PDF or a whole email (.eml) and print every number/key pair found.
    Extract {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The owner side's register of checked submissions.
    Submissions {
        #[arg(long)]
        json: bool,
    },
    /// Write the staff's digest for the time since the last one, and send it.
    Digest,
    /// What waits for branch staff (held, paper to print, failed mail) and their actions.
    Staff {
        #[command(subcommand)]
        action: super::desk::StaffCommand,
    },
    /// Internal: the PDF reading process the daemon starts (reads frames on stdin).
    #[command(hide = true)]
    PdfWorker,
    /// Typeset a certificate's key notice, certificate or fee statement again.
    Render {
        kind: RenderKind,
        number: String,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Who takes it (default: $USER): a key notice carries the key in clear, so its
        /// taking is recorded as a staff action, as on the desk.
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertificateAction {
    /// 取消: issued by mistake, never in force.
    Cancel {
        #[arg(long)]
        reason: String,
        /// Who does it (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// 解約: ended early (the contract cancelled, the advance returned).
    Terminate {
        #[arg(long)]
        reason: String,
        /// The day it takes effect (default: today), YYYY-MM-DD.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[arg(long)]
        by: Option<String>,
    },
    /// 履行請求: the owner has claimed under the guarantee (shown until settled).
    Claim {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// The claim is settled: 有効 again (期限満了 once 保証期限 has passed).
    Settle {
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// A new user: asks for the password twice (or reads one line with --password-stdin).
    Add {
        name: String,
        /// branch:ADDRESS, owner:ADDRESS or admin; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user: name, roles, disabled, created (never the password).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disables a user; their sessions end.
    Disable { name: String },
    /// A new password; the user's sessions end.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy this SQLite store into an empty PostgreSQL database and check the copy
    /// (rows of every table, serial counters, the registry's key hashes); all or nothing.
    Migrate {
        /// postgres://USER@HOST[:PORT]/DATABASE (a password in it is never printed)
        #[arg(long)]
        to: String,
        /// The environment variable holding the database's password.
        #[arg(long)]
        password_env: Option<String>,
        /// The CA that signs the server's certificate (TLS to the server).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Check a store (the configuration's, or a restored backup): integrity, rows of each
    /// table, serials without gaps, every registry entry read with the secret; exit 0 only
    /// when all hold.
    Check {
        /// Another store than the configuration's: a SQLite file or a postgres:// URL.
        #[arg(long)]
        store: Option<String>,
        /// The secret file (default: the configuration's; ESURETY_SECRET wins over both).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MailboxCommand {
    /// Obtain a mailbox's first OAuth 2.0 refresh token at this terminal (the device code
    /// flow where the provider offers it, else a browser on this machine) and keep it
    /// sealed in the store. Again, after a refusal, to authorize it anew.
    Authorize {
        /// The watched address (`[[mail.accounts]]`), or with --smtp the relay's username.
        address: String,
        /// The SMTP relay's login (`[mail.smtp]`), not a watched mailbox's.
        #[arg(long)]
        smtp: bool,
        /// A browser on this machine, redirected to a loopback port (PKCE), even where the
        /// provider offers the device code flow.
        #[arg(long)]
        loopback: bool,
        /// The loopback port for --loopback (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Every mailbox login on OAuth 2.0: authorized, refused (and why), or not yet.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token for an owner's system; it is printed once, on standard output.
    Add {
        #[arg(long)]
        name: String,
    },
    /// Every token: id, name, created, last used, revoked (never the token).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: its next request is refused.
    Revoke { id: i64 },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RenderKind {
    Notice,
    Certificate,
    Fee,
}

/// `init --side branch|owner`: the words of [`crate::domain::Side`].
impl ValueEnum for crate::domain::Side {
    fn value_variants<'a>() -> &'a [Self] {
        &[crate::domain::Side::Branch, crate::domain::Side::Owner]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}
