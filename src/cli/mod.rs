//! The command line (`cli.md`): argument parsing and one function per command. With
//! `main`, `daemon/` and `demo/`, one of the places that use `anyhow`: errors here are told
//! to a person and end the process with a non-zero status.
//!
//! This folder: `args.rs` (every command and option), `mod.rs` (one function per command, or
//! a call to the one that does it), `admin.rs` (`token`, `user`), `mailbox.rs` (`mailbox`: OAuth 2.0
//! logins), `ops.rs` (`backup`, `store check`), `desk.rs` (`staff`, the desk at the terminal) and
//! [`json`] (`--json` output). The web is not imported here: the
//! daemon starts it.

mod admin;
mod args;
mod desk;
pub mod json;
mod mailbox;
mod ops;

pub use args::{Cli, Command, MailboxCommand, RenderKind, StoreCommand, TokenCommand, UserCommand};

use crate::clock::{Clock, OsRandom, Random, SystemClock};
#[cfg(feature = "test-hooks")]
use crate::clock::{FixedClock, SeededRandom};
use crate::config::Config;
use crate::registry::{Lockout, verify};
use crate::engine::Engine;
use crate::store::Store;
use admin::{token, user};
use anyhow::{Context, Result, bail};
use std::path::Path;

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
        Command::Init { dir, side, listen, registry_url, public_url } => {
            if registry_url.is_some() && side != Some(crate::domain::Side::Owner) {
                bail!("--registry-url is for --side owner (an owner's own deployment)");
            }
            let options = crate::config::default::InitOptions { side, listen, registry_url, public_url, now: Some(sources()?.0.now().into()) };
            let config = crate::config::default::init_with(&dir, &options)?;
            println!("esurety: wrote the embedded default into {}", dir.display());
            println!("  configuration: {}", config.path.display());
            println!("  mailboxes:     {}", config.mail.maildir_root.display());
            println!("  store:         {}", config.store);
            if let Some(w) = &config.web {
                println!("  web:           http://{}", w.listen);
            }
            if matches!(side, Some(crate::domain::Side::Owner)) {
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
        Command::Mailbox { action } => mailbox::mailbox(&cli.config, action),
        Command::Token { action } => token(&cli.config, action),
        Command::Backup { to, force, json } => ops::backup(&cli.config, &to, force, json),
        Command::Store { action: StoreCommand::Check { store, secret_file, json } } => ops::check(&cli.config, store.as_deref(), secret_file.as_deref(), json),
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
        Command::Certificate { number, json: _, action: Some(action) } => certificate_action(&cli.config, &number, action),
        Command::Certificate { number, json, action: None } => {
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
                v["events"] = serde_json::to_value(store.events_of(&row.number)?)?;
                print_json(&v);
            } else {
                let c = &row.latest;
                println!("{} {} ({}) {}", row.number, c.product.name(), c.format.name(), row.status);
                println!("  受注者: {}\n  発注者: {}\n  工事名: {}\n  保証金額: {}\n  保証期限: {}", c.contractor, c.owner, c.project, crate::text::format_yen(c.amount), crate::text::format_era(c.guarantee_end));
                for v in &versions {
                    println!("  version {} {} {}", v.version, v.kind, v.issued_at);
                }
                for e in store.events_of(&row.number)? {
                    let effective = e.effective.as_deref().map(|d| format!(" (from {d})")).unwrap_or_default();
                    println!("  {} {} {}{effective} by {}: {}", e.at, e.kind, e.kind.label(), e.by, e.reason);
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
                    crate::registry::Verification::Valid { number, latest, history, status, events, .. } => {
                        let c = &latest.contents;
                        println!("{}: {number} {} {} / {} / {} / 保証金額 {} / 保証期限 {} / 状態 {}", v.result(), c.product.name(), c.contractor, c.owner, c.project, crate::text::format_yen(c.amount), crate::text::format_era(c.guarantee_end), status.label());
                        println!("  ※最新の情報を表示しています（{}）", c.change_label().unwrap_or_else(|| "新規".into()));
                        for h in history {
                            println!("  {} {}", h.contents.change_label().unwrap_or_else(|| h.kind.clone()), h.issued_at);
                        }
                        for e in events.iter().filter(|e| e.kind != crate::domain::EventKind::Changed) {
                            println!("  {} {}  {}", e.kind.label(), e.at, e.reason);
                        }
                    }
                    other => println!("{}", other.result()),
                }
            }
            Ok(if v.result() == "valid" { 0 } else { 1 })
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
        Command::Webhooks { json } => {
            let (_, store) = open(&cli.config)?;
            let rows = store.webhooks(10_000)?;
            if json {
                print_json(&serde_json::Value::Array(rows.iter().map(json::webhook).collect()));
            } else {
                for w in &rows {
                    println!("{}  {}  {} {}  to {}  attempts={}  {}", w.status, w.event.id, w.number, w.event.kind, w.endpoint, w.attempts, w.last_error.as_deref().unwrap_or(""));
                }
                if rows.is_empty() {
                    println!("(no webhooks)");
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
                    message_id: None, from: None, envelope: None, subject: String::new(), references: vec![], event: None,
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
            // What the company told of each accepted certificate since (`lifecycle.md`).
            let mut told = std::collections::HashMap::new();
            for r in rows.iter().filter(|r| r.result == "accepted") {
                if !told.contains_key(&r.number) {
                    told.insert(r.number.clone(), store.owner_events_of(&r.number)?);
                }
            }
            if json {
                let mut out = Vec::new();
                for r in &rows {
                    let mut v = serde_json::to_value(r)?;
                    if let Some(events) = told.get(&r.number).filter(|_| r.result == "accepted") {
                        v["events"] = serde_json::to_value(events)?;
                    }
                    out.push(v);
                }
                print_json(&serde_json::Value::Array(out));
            } else {
                for r in &rows {
                    let signature = match (r.signature.as_deref(), r.signature_reason.as_deref()) {
                        (None | Some("none"), _) => String::new(),
                        (Some(s), None) => format!("  signature {s}"),
                        (Some(s), Some(why)) => format!("  signature {s} ({why})"),
                    };
                    println!("{}  {}  {}  {}  {}  {}{signature}", r.received_at, r.owner, r.from, r.number, r.result, r.reasons.join(" / "));
                    for e in told.get(&r.number).filter(|_| r.result == "accepted").into_iter().flatten() {
                        println!("    {}  {} → {} ({} by {})  {}", e.at, e.kind, e.status, e.registry, e.via, e.reason);
                    }
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
            for n in crate::desk::certificates::expire_due(&engine, &mut store, clock.as_ref(), rng.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))? {
                println!("{n}: expired (期限満了)");
            }
            if engine.config.sides.owner {
                let local = engine.local_registry();
                let new = crate::owner::events::poll(engine.registry(&local), &mut store, clock.as_ref())?;
                if new > 0 {
                    println!("{new} event(s) of accepted certificates learnt from the registry");
                }
            }
            let n = crate::desk::digest::send_digests(&engine, &mut store, clock.as_ref(), rng.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sent = crate::daemon::pass::sweep_outbox(&engine, &mut store, &mut adapters, clock.as_ref(), rng.as_ref())?;
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

/// `esurety certificate NUMBER cancel|terminate|claim|settle`: staff change a
/// certificate's state; its contractor and owner are told by the next sweep.
fn certificate_action(config: &Path, number: &str, action: args::CertificateAction) -> Result<i32> {
    use crate::domain::StaffAction;
    let (clock, rng) = sources()?;
    let (action, reason, date, by) = match action {
        args::CertificateAction::Cancel { reason, by } => (StaffAction::Cancel, reason, None, by),
        args::CertificateAction::Terminate { reason, date, by } => (StaffAction::Terminate, reason, date, by),
        args::CertificateAction::Claim { reason, by } => (StaffAction::Claim, reason, None, by),
        args::CertificateAction::Settle { reason, by } => (StaffAction::Settle, reason, None, by),
    };
    let by = desk::who(by)?;
    let (config, mut store) = open(config)?;
    let engine = Engine::new(config)?;
    match crate::desk::certificates::act(&engine, &mut store, number, action, &reason, &by, date, clock.as_ref(), rng.as_ref()) {
        Ok(e) => {
            let status = crate::domain::CertificateStatus::parse(&e.status).map(|s| s.label()).unwrap_or("");
            println!("{}: {} ({}) — now {status}; the contractor and the owner are told (event {})", e.number, e.kind.label(), e.kind, e.id);
            Ok(0)
        }
        Err(e) => {
            eprintln!("esurety: {e}");
            Ok(1)
        }
    }
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
