//! The command line (`cli.md`): argument parsing and one function per command. The only
//! place besides `main` that uses `anyhow`: errors here are told to a person and end the
//! process with a non-zero status.

pub mod json;
mod desk;

use crate::clock::{Clock, OsRandom, Random, SystemClock};
#[cfg(feature = "test-hooks")]
use crate::clock::{FixedClock, SeededRandom};
use crate::config::Config;
use crate::registry::{Lockout, verify};
use crate::engine::Engine;
use crate::store::Store;
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

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
        side: Option<crate::config::default::Side>,
        /// Serve the web (registry API and lookup page) on this address:port.
        #[arg(long)]
        listen: Option<String>,
        /// The owner side's registry (with --side owner): the company's web address.
        #[arg(long)]
        registry_url: Option<String>,
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
    /// One certificate with its versions.
    Certificate {
        number: String,
        #[arg(long)]
        json: bool,
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
        action: desk::StaffCommand,
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

/// The clock and random source: the system's. A build with the `test-hooks` feature (the
/// tests' build, never a release) lets a test fix them (`ESURETY_TEST_NOW` = RFC 3339
/// instant, `ESURETY_TEST_SEED` = integer).
pub fn sources() -> Result<(Box<dyn Clock>, Box<dyn Random>)> {
    #[cfg(feature = "test-hooks")]
    {
        let clock: Box<dyn Clock> = match std::env::var("ESURETY_TEST_NOW") {
            Ok(s) => Box::new(FixedClock::parse(&s).with_context(|| format!("ESURETY_TEST_NOW={s} is not an RFC 3339 time"))?),
            Err(_) => Box::new(SystemClock),
        };
        let rng: Box<dyn Random> = match std::env::var("ESURETY_TEST_SEED") {
            Ok(s) => Box::new(SeededRandom::new(s.parse().with_context(|| format!("ESURETY_TEST_SEED={s} is not a number"))?)),
            Err(_) => Box::new(OsRandom),
        };
        Ok((clock, rng))
    }
    #[cfg(not(feature = "test-hooks"))]
    Ok((Box::new(SystemClock), Box::new(OsRandom)))
}

/// Runs a command; `Ok(code)` is the exit status.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Init { dir, side, listen, registry_url } => {
            if registry_url.is_some() && side != Some(crate::config::default::Side::Owner) {
                bail!("--registry-url is for --side owner (an owner's own deployment)");
            }
            let options = crate::config::default::InitOptions { side, listen, registry_url };
            let config = crate::config::default::init_with(&dir, &options)?;
            println!("esurety: wrote the embedded default into {}", dir.display());
            println!("  configuration: {}", config.path.display());
            println!("  mailboxes:     {}", config.mail.maildir_root.display());
            println!("  store:         {}", config.store);
            if let Some(w) = &config.web {
                println!("  web:           http://{}", w.listen);
            }
            if matches!(side, Some(crate::config::default::Side::Owner)) {
                println!("  registry:      set ESURETY_REGISTRY_TOKEN to a token from `esurety token add` at the company's registry");
            }
            Ok(0)
        }
        Command::Run { once, interval } => {
            let (clock, rng) = sources()?;
            let config = Config::load(&cli.config)?;
            crate::daemon::run(config, once, interval, std::sync::Arc::from(clock), rng.as_ref())?;
            Ok(0)
        }
        Command::Serve => {
            let (clock, _) = sources()?;
            let config = Config::load(&cli.config)?;
            crate::daemon::serve(config, std::sync::Arc::from(clock))?;
            Ok(0)
        }
        Command::Token { action } => token(&cli.config, action),
        Command::Store { action: StoreCommand::Migrate { to, password_env, ca_file, json } } => {
            let (config, store) = open(&cli.config)?;
            // The daemon's lock: no daemon may write the store while it is copied (and one
            // started meanwhile waits for the copy to end).
            let _lock = crate::daemon::lock(&config)?;
            let target = crate::config::PgTarget { url: to, password_env, ca_file };
            let m = crate::store::migrate::to_postgres(&store, &target)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                println!("copied into {target}:");
                for (t, n) in &m.tables {
                    println!("  {t:<22} {n}");
                }
                println!("serial counters: {}", m.serials.iter().map(|(o, n)| format!("{o} {n}")).collect::<Vec<_>>().join(", "));
                println!("registry (numbers and key hashes) SHA-256: {}", m.registry_hash);
                println!("checked: every table's rows, the serial counters and the registry agree; set store = \"{target}\" to use it");
            }
            Ok(0)
        }
        Command::User { action } => user(&cli.config, action),
        Command::Demo { dir } => {
            let (clock, rng) = sources()?;
            crate::demo::run(dir, clock.as_ref(), rng.as_ref())?;
            Ok(0)
        }
        Command::Certificates { json } => {
            let (_, store) = open(&cli.config)?;
            let rows = store.certificates()?;
            if json {
                print_json(&serde_json::Value::Array(rows.iter().map(json::certificate).collect()));
            } else {
                for r in &rows {
                    let c = &r.latest;
                    println!("{}  {}  {}  {}  v{}  {}  {}  {}", r.number, c.product.name(), c.format.name(), r.status, c.version, c.contractor, c.owner, c.project);
                }
                if rows.is_empty() {
                    println!("(no certificates)");
                }
            }
            Ok(0)
        }
        Command::Certificate { number, json } => {
            let (_, store) = open(&cli.config)?;
            let Some(row) = store.certificate(&normal_number(&number))? else {
                eprintln!("esurety: no certificate {number}");
                return Ok(1);
            };
            let versions = store.versions(&row.number)?;
            if json {
                let mut v = json::certificate(&row);
                v["versions"] = versions.iter().map(json::version).collect();
                v["documents"] = store.documents_of(&row.number)?.into_iter()
                    .map(|(id, kind, name, size)| serde_json::json!({"id": id, "kind": kind, "name": name, "size": size})).collect();
                print_json(&v);
            } else {
                let c = &row.latest;
                println!("{} {} ({}) {}", row.number, c.product.name(), c.format.name(), row.status);
                println!("  受注者: {}\n  発注者: {}\n  工事名: {}\n  保証金額: {}\n  保証期限: {}", c.contractor, c.owner, c.project, crate::text::format_yen(c.amount), crate::text::format_era(c.guarantee_end));
                for v in &versions {
                    println!("  version {} {} {}", v.version, v.kind, v.issued_at);
                }
            }
            Ok(0)
        }
        Command::Verify { number, key, json } => {
            let (clock, _) = sources()?;
            let (config, mut store) = open(&cli.config)?;
            let v = if config.registries.is_empty() {
                let secrets = crate::secrets::Secrets::load(&config.secret_file)?;
                let v = verify(&store, &secrets, &number, &key, crate::domain::Caller::default(), None, clock.now(), Lockout::default())?;
                store.record_check(crate::store::CheckRecord { via: "cli", token: None, address: None, number: &number, result: v.result() }, clock.now())?;
                v
            } else {
                // An owner's own deployment: the issuers' registries answer (the same
                // routing as a submission typed with this number).
                use crate::registry::{Registry, Route};
                let remote = crate::registry::remote::RemoteRegistries::new(&config.registries).map_err(anyhow::Error::msg)?;
                let found = crate::domain::Found { number: normal_number(&number), key: key.clone(), product: None, project: None, contractor: None, source: "cli".into(), label: None, issuer: None, viewing: false };
                match remote.route(&found) {
                    Route::Unchecked { reason, .. } => bail!("{number}: {reason}"),
                    Route::Ask(issuer) => remote.verify(&mut store, issuer.as_deref(), &found.number, &key, None, &format!("cli {}", clock.now().to_rfc3339()), clock.now())
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                }
            };
            if json {
                print_json(&crate::registry::json::verification(&v));
            } else {
                match &v {
                    crate::registry::Verification::Valid { number, latest, history, .. } => {
                        let c = &latest.contents;
                        println!("valid: {number} {} {} / {} / {} / 保証金額 {} / 保証期限 {}", c.product.name(), c.contractor, c.owner, c.project, crate::text::format_yen(c.amount), crate::text::format_era(c.guarantee_end));
                        println!("  ※最新の情報を表示しています（{}）", c.change_label().unwrap_or_else(|| "新規".into()));
                        for h in history {
                            println!("  {} {}", h.contents.change_label().unwrap_or_else(|| h.kind.clone()), h.issued_at);
                        }
                    }
                    other => println!("{}", other.result()),
                }
            }
            Ok(if matches!(v, crate::registry::Verification::Valid { .. }) { 0 } else { 1 })
        }
        Command::Outbox { json } => {
            let (_, store) = open(&cli.config)?;
            let rows = store.outbox()?;
            if json {
                print_json(&serde_json::Value::Array(rows.iter().map(json::outbox).collect()));
            } else {
                for r in &rows {
                    println!("{}  {}  attempts={}  to={}  {}", r.status, r.message_id, r.attempts, r.recipients.join(","), r.subject);
                }
            }
            Ok(0)
        }
        Command::Extract { file, json } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let exe = std::env::current_exe()?;
            let reader = crate::owner::submission::worker::Isolated::new(exe, std::time::Duration::from_secs(10), 1 << 30);
            let letter = if bytes.starts_with(b"%PDF-") {
                crate::intake::letter::Letter {
                    message_id: None, from: None, envelope: None, subject: String::new(), references: vec![],
                    pieces: vec![crate::intake::letter::Piece::Pdf { name: file.file_name().map(|n| n.to_string_lossy().into_owned()), depth: 0, bytes }],
                }
            } else {
                crate::intake::letter::read(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
            };
            let reading = crate::owner::submission::read(&letter, &reader);
            for (name, e) in &reading.unreadable {
                eprintln!("esurety: {}: {e}", name.as_deref().unwrap_or("PDF"));
            }
            if json {
                let found: Vec<serde_json::Value> = reading.found.iter().map(|f| serde_json::json!({
                    "number": f.number, "key": f.key, "product": f.product, "project": f.project,
                    "contractor": f.contractor, "source": f.source,
                })).collect();
                print_json(&serde_json::json!({"found": found}));
            } else {
                for f in &reading.found {
                    println!("{}  {}  {}  {}  {}  ({})", f.number, f.key, f.product.as_deref().unwrap_or("-"), f.project.as_deref().unwrap_or("-"), f.contractor.as_deref().unwrap_or("-"), f.source);
                }
            }
            Ok(if reading.found.is_empty() { 1 } else { 0 })
        }
        Command::Submissions { json } => {
            let (_, store) = open(&cli.config)?;
            let rows = store.submissions()?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                for r in &rows {
                    println!("{}  {}  {}  {}  {}  {}", r.received_at, r.owner, r.from, r.number, r.result, r.reasons.join(" / "));
                }
                if rows.is_empty() {
                    println!("(no submissions)");
                }
            }
            Ok(0)
        }
        Command::Digest => {
            let (clock, rng) = sources()?;
            let config = Config::load(&cli.config)?;
            let _lock = crate::daemon::lock(&config)?;
            let mut store = Store::open(&config.store)?;
            let engine = Engine::new(config)?;
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
            let mut adapters = engine.adapters(rt.handle())?;
            let lapsed = crate::desk::digest::lapse_reservations(&engine, &mut store, clock.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            for n in &lapsed {
                println!("{n}: 契約保証予約 lapsed (失効)");
            }
            let n = crate::desk::digest::send_digests(&engine, &mut store, clock.as_ref(), rng.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sent = engine.sweep_outbox(&mut store, &mut adapters, clock.as_ref(), rng.as_ref())?;
            println!("{n} digest(s) written; {} mail(s) sent", sent.sent);
            Ok(0)
        }
        Command::Staff { action } => desk::run(&cli.config, action),
        Command::PdfWorker => {
            crate::owner::submission::worker::serve()?;
            Ok(0)
        }
        Command::Render { kind, number, output, by } => {
            let (clock, _) = sources()?;
            let (config, mut store) = open(&cli.config)?;
            let number = normal_number(&number);
            let kind = match kind {
                RenderKind::Notice => crate::branch::documents::DocumentKind::Notice,
                RenderKind::Certificate => crate::branch::documents::DocumentKind::Certificate,
                RenderKind::Fee => crate::branch::documents::DocumentKind::Fee,
            };
            let engine = Engine::new(config)?;
            // The desk's own steps: a key notice's taking is recorded before it is typeset.
            let by = if kind == crate::branch::documents::DocumentKind::Notice { desk::who(by)? } else { by.unwrap_or_default() };
            let source = crate::desk::take_document(&engine, &mut store, &number, kind, &by, clock.as_ref())?;
            let (_, pdf) = crate::desk::typeset(&engine, &source, kind, clock.as_ref())?;
            std::fs::write(&output, pdf).with_context(|| format!("cannot write {}", output.display()))?;
            println!("wrote {}", output.display());
            Ok(0)
        }
    }
}

fn token(config: &Path, action: TokenCommand) -> Result<i32> {
    let (clock, rng) = sources()?;
    let (_, mut store) = open(config)?;
    match action {
        TokenCommand::Add { name } => {
            let (token, hash) = crate::registry::tokens::new_token(rng.as_ref());
            let id = store.write(|tx| tx.add_token(&name, &hash, clock.now()))?;
            eprintln!("esurety: token {id} for {name}; it is shown only now (the store keeps its hash): give it to {name}'s system");
            println!("{token}");
            Ok(0)
        }
        TokenCommand::List { json } => {
            let rows = store.tokens()?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                for t in &rows {
                    println!("{}  {}  created {}  last used {}  {}", t.id, t.name, t.created_at, t.last_used_at.as_deref().unwrap_or("never"),
                             t.revoked_at.as_deref().map(|r| format!("revoked {r}")).unwrap_or_else(|| "live".into()));
                }
                if rows.is_empty() {
                    println!("(no tokens)");
                }
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => {
            if store.write(|tx| tx.revoke_token(id, clock.now()))? {
                println!("token {id} revoked");
                Ok(0)
            } else {
                eprintln!("esurety: no live token {id}");
                Ok(1)
            }
        }
    }
}

fn user(config: &Path, action: UserCommand) -> Result<i32> {
    let (clock, rng) = sources()?;
    let (config, mut store) = open(config)?;
    match action {
        UserCommand::Add { name, roles, password_stdin } => {
            let roles = roles.iter().map(|r| crate::desk::users::Role::parse(r, &config).map(|r| r.stored())).collect::<std::result::Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                bail!("a user name is 1 to 64 characters, no control characters");
            }
            let password = read_password(password_stdin)?;
            let hash = crate::desk::users::hash_password(&password, rng.as_ref())?;
            let now = clock.now().to_rfc3339();
            if !store.write(|tx| tx.add_user(name.trim(), &hash, &roles, &now))? {
                bail!("there is already a user {name}");
            }
            println!("user {} added ({})", name.trim(), roles.join(", "));
            Ok(0)
        }
        UserCommand::List { json } => {
            let rows = store.users()?;
            if json {
                print_json(&serde_json::to_value(&rows)?);
            } else {
                for u in &rows {
                    println!("{}  {}  {}  created {}", u.name, u.roles.join(","), if u.disabled { "disabled" } else { "active" }, u.created_at);
                }
                if rows.is_empty() {
                    println!("(no users)");
                }
            }
            Ok(0)
        }
        UserCommand::Disable { name } => {
            if !store.write(|tx| tx.disable_user(&name))? {
                bail!("no user {name}");
            }
            println!("user {name} disabled; their sessions ended");
            Ok(0)
        }
        UserCommand::Passwd { name, password_stdin } => {
            let password = read_password(password_stdin)?;
            let hash = crate::desk::users::hash_password(&password, rng.as_ref())?;
            if !store.write(|tx| tx.set_password(&name, &hash))? {
                bail!("no user {name}");
            }
            println!("password of {name} changed; their sessions ended");
            Ok(0)
        }
    }
}

/// One line from standard input, or (on a terminal) the password typed twice unseen.
fn read_password(from_stdin: bool) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let line = |prompt: &str| -> Result<String> {
        let tty = std::io::stdin().is_terminal();
        if tty {
            eprint!("{prompt}");
        }
        let old = tty.then(|| unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(0, &mut t);
            let old = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            old
        });
        let mut s = String::new();
        let read = std::io::stdin().lock().read_line(&mut s);
        if let Some(old) = old {
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
            eprintln!();
        }
        read?;
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    };
    if from_stdin || !std::io::stdin().is_terminal() {
        return line("");
    }
    let a = line("password: ")?;
    let b = line("again: ")?;
    if a != b {
        bail!("the two passwords differ");
    }
    Ok(a)
}

fn open(config: &Path) -> Result<(Config, Store)> {
    let config = Config::load(config)?;
    let store = Store::open(&config.store)?;
    Ok((config, store))
}

fn normal_number(n: &str) -> String {
    crate::domain::CertificateNumber::parse(n).map(|n| n.to_string()).unwrap_or_else(|| n.to_string())
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON values serialise"));
}
