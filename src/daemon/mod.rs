//! `esurety run`: the process around [`crate::engine::Engine`]. Takes the store's lock so
//! two processes on one configuration never both work (the second refuses to start), prints a
//! health line, then passes over the mailboxes: at once when an IMAP mailbox reports new
//! mail through IDLE, else every `poll_seconds`. On SIGINT/SIGTERM the pass in hand is
//! finished before stopping, so no message is left half done.
//!
//! This folder is the daemon, the composition root with `demo/` and `main.rs`: `mod.rs` the
//! process (the store's lock, signals, the schedule, the web server started beside the
//! passes), [`pass`] one pass (take, process, mark, deliver) and `process.rs` its second
//! step. The schedule's cron expressions are configuration (`config/schedule.rs`).

mod notify;
pub mod pass;
mod process;
mod reload;
pub mod report;
mod serve;

pub use serve::serve;

use crate::clock::{Clock, Random};
use crate::config::{Config, Security};
use crate::daemon::report::RunReport;
use crate::engine::Engine;
use crate::config::schedule::Job;
use crate::store::Store;
use reload::{reloaded, told_reload, with_interval};
use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Holds the exclusive lock beside a SQLite store for as long as it lives. A PostgreSQL
/// store takes no lock: several daemons share it (each message is claimed in the
/// transaction that commits its outcome).
pub struct InstanceLock(#[allow(dead_code)] Option<File>);

pub fn lock(config: &Config) -> Result<InstanceLock> {
    let Some(file) = config.store.file() else {
        return Ok(InstanceLock(None));
    };
    let path = file.with_extension("lock");
    // A lock is taken on a read-only descriptor too, so an existing lock file still works
    // when the store's file system is read-only (the store then says why nothing is done).
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path)
        .or_else(|e| File::open(&path).map_err(|_| e))
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(InstanceLock(Some(f))),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another esurety is already running on {} (lock {} is held); stop it first",
            config.path.display(), path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

pub fn run(mut config: Config, once: bool, interval: Option<u64>, shared_clock: Arc<dyn Clock>, rng: &dyn Random) -> Result<RunReport> {
    let clock = shared_clock.as_ref();
    with_interval(&mut config, interval).map_err(anyhow::Error::msg)?;
    let _lock = lock(&config)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut store = open_store(&config.store, once)?;
    let mut engine = Arc::new(Engine::new(config)?);
    engine.say_signing();
    let sealed = store.seal_legacy_keys(&engine.secrets, rng)?;
    if sealed > 0 {
        eprintln!("esurety: sealed {sealed} key(s) an earlier version kept in clear; the registry's hashes of them are now keyed by the secret");
    }
    let mut adapters = engine.adapters(rt.handle())?;
    eprintln!("esurety: {}", health(&engine, once));
    if once {
        let report = pass::run_once(&engine, &mut store, &mut adapters, clock, rng)?;
        eprintln!("esurety: {}", summary(&report));
        return Ok(report);
    }

    let health = Arc::new(crate::health::Health::default());
    let mut watched: Vec<String> = engine.watched().into_iter().map(|(a, _)| a).collect();
    let wake = Arc::new(Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let mut signals = StopSignals::register(&rt)?;
    let mut hangups = {
        let _in = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?
    };
    // The web server (`[web]`) runs beside the passes and stops with them.
    let (web_stop, mut web_stopped) = tokio::sync::watch::channel(false);
    let web = match engine.config.web {
        Some(_) => {
            let mut stopped = web_stopped.clone();
            Some(crate::web::start(engine.clone(), shared_clock.clone(), health.clone(), rt.handle(), async move {
                let _ = stopped.wait_for(|s| *s).await;
            })?)
        }
        None => None,
    };
    let metrics = match &engine.config.metrics {
        Some(listen) => Some(crate::web::metrics::start(listen, engine.config.store.clone(), shared_clock.clone(), rt.handle(), async move {
            let _ = web_stopped.wait_for(|s| *s).await;
        })?),
        None => None,
    };
    let mut watchers = watch_all(&rt, &engine, &wake);
    {
        let (wake, stop) = (wake.clone(), stop.clone());
        rt.spawn(async move {
            signals.recv().await;
            notify::stopping();
            stop.store(true, Ordering::SeqCst);
            wake.notify_one();
        });
    }
    {
        let (wake, reload) = (wake.clone(), reload.clone());
        rt.spawn(async move {
            while hangups.recv().await.is_some() {
                reload.store(true, Ordering::SeqCst);
                wake.notify_one();
            }
        });
    }
    let watchdog = notify::watchdog_every();
    let mut ready = false;
    let mut total = RunReport::default();
    let mut backoff = Duration::from_secs(1);
    let mut jobs = vec![Job::Poll];
    let mut reopen = false;
    while !stop.load(Ordering::SeqCst) {
        // SIGHUP: the configuration and templates read again; one that does not validate
        // (or cannot be set up) is refused and the one in use stays.
        if reload.swap(false, Ordering::SeqCst) {
            notify::reloading();
            match reloaded(&engine, interval).and_then(|next| Ok((next.adapters(rt.handle()).map_err(|e| e.to_string())?, next))) {
                Ok((next_adapters, next)) => {
                    let next = Arc::new(next);
                    if let Some(server) = &web
                        && let Err(e) = server.reload(next.clone(), shared_clock.clone(), health.clone())
                    {
                        tracing::error!(event = "web_reload_failed", error = %e);
                        eprintln!("esurety: the web server keeps its configuration: {e}");
                    }
                    engine = next;
                    adapters = next_adapters;
                    watched = engine.watched().into_iter().map(|(a, _)| a).collect();
                    watchers.iter().for_each(|w| w.abort());
                    watchers = watch_all(&rt, &engine, &wake);
                    told_reload(Ok(&engine.config.path));
                }
                Err(e) => told_reload(Err(&e)),
            }
        }
        // After the store could not be written, the next try opens it again: SQLite opens a
        // file it cannot write read-only, and such a connection stays so after the disk
        // has room again or its file system is writable again.
        if reopen {
            match Store::open(&engine.config.store) {
                Ok(s) => {
                    store = s;
                    reopen = false;
                    metrics::counter!("esurety_store_reconnects_total").increment(1);
                }
                Err(e) => tracing::error!(event = "store_reopen_failed", error = %e),
            }
        }
        // Every job due at this instant runs: the digest first (so the sweep below sends
        // it), then a pass (which ends with a sweep) or the sweep alone.
        if jobs.contains(&Job::Digest) {
            if let Err(e) = crate::desk::digest::lapse_reservations(&engine, &mut store, clock) {
                tracing::error!(event = "reservation_lapse_failed", error = %e);
            }
            if let Err(e) = crate::desk::certificates::expire_due(&engine, &mut store, clock, rng) {
                tracing::error!(event = "expiry_failed", error = %e);
            }
            if engine.config.sides.owner {
                let local = engine.local_registry();
                if let Err(e) = crate::owner::events::poll(engine.registry(&local), &mut store, clock) {
                    tracing::error!(event = "owner_events_poll_failed", error = %e);
                }
            }
            if let Err(e) = crate::desk::digest::send_digests(&engine, &mut store, clock, rng) {
                tracing::error!(event = "digest_failed", error = %e);
            }
        }
        if !jobs.contains(&Job::Poll) {
            if let Err(e) = pass::sweep_outbox(&engine, &mut store, &mut adapters, clock, rng) {
                tracing::error!(event = "outbox_sweep_failed", error = %e);
            }
            jobs = wait_for_job(&rt, &engine, &wake, clock, None, watchdog);
            continue;
        }
        let began = std::time::Instant::now();
        let pass = pass::run_once(&engine, &mut store, &mut adapters, clock, rng);
        metrics::histogram!("esurety_pass_seconds").record(began.elapsed().as_secs_f64());
        let next = engine.config.schedule.next(clock.now()).map_or(Duration::from_secs(3600), |(at, _)| (at - clock.now()).to_std().unwrap_or_default());
        let wait = match pass {
            Ok(report) => {
                health.pass_done(&watched, &report.mailbox_errors, next, clock.now());
                if report.stored + report.delivery.sent + report.delivery.retrying + report.delivery.failed > 0 || !report.unavailable.is_empty() {
                    eprintln!("esurety: {}", summary(&report));
                }
                total.issued += report.issued;
                total.submissions += report.submissions;
                backoff = Duration::from_secs(1);
                None
            }
            Err(e) => {
                // The store could not be written (a full disk, a read-only file, a server
                // away): take no new work until it can; nothing accepted is lost.
                tracing::error!(event = "pass_failed", error = %e);
                reopen = matches!(&e, crate::daemon::report::RunError::Store(se) if se.is_unwritable());
                let all: Vec<(String, String)> = watched.iter().map(|a| (a.clone(), format!("the pass failed: {e}"))).collect();
                health.pass_done(&watched, &all, backoff, clock.now());
                eprintln!("esurety: the pass failed, trying again in {}s: {e}", backoff.as_secs());
                let w = backoff;
                let most = if matches!(&e, crate::daemon::report::RunError::Store(se) if se.is_away()) { AWAY_RETRY } else { Duration::from_secs(60) };
                backoff = (backoff * 2).min(most);
                Some(w)
            }
        };
        if !ready {
            ready = true;
            notify::ready(&format!("watching {} mailbox(es)", watched.len()));
        }
        notify::watchdog();
        if stop.load(Ordering::SeqCst) {
            break;
        }
        jobs = wait_for_job(&rt, &engine, &wake, clock, wait, watchdog);
    }
    let _ = web_stop.send(true);
    if let Some(m) = metrics {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), m.task).await });
    }
    if let Some(web) = web {
        // Requests in flight finish (each is short); the server then closes.
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), web.task).await });
    }
    eprintln!("esurety: stopped");
    Ok(total)
}

/// The longest wait between passes while the store's server is away (a try costs one
/// connection attempt per host; a new primary is taken up as soon as it is there).
const AWAY_RETRY: Duration = Duration::from_secs(4);

/// An IDLE watcher per IMAP account (none on Maildirs).
fn watch_all(rt: &tokio::runtime::Runtime, engine: &Engine, wake: &Arc<Notify>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(server) = engine.config.mail.imap.clone() else { return Vec::new() };
    engine.config.mail.accounts.iter().map(|account| rt.spawn(watch(server.clone(), account.clone(), engine.tokens.clone(), wake.clone()))).collect()
}

/// SIGTERM and SIGINT, registered now (before anything says it is listening), so a stop
/// sent at any moment after is a clean stop and never the default, abrupt one.
pub(super) struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(super) fn register(rt: &tokio::runtime::Runtime) -> Result<StopSignals> {
        let _in = rt.enter();
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    pub(super) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Opens the store; a daemon waits (with backoff) while it cannot be written, rather than
/// exiting: nothing is taken from the mailboxes until it can.
pub(super) fn open_store(at: &crate::config::StoreAt, once: bool) -> Result<Store> {
    let mut backoff = Duration::from_secs(1);
    let fs = |at: &crate::config::StoreAt| at.file().and_then(fs_unwritable);
    loop {
        match Store::open(at) {
            Ok(s) => return Ok(s),
            // A PostgreSQL server away, restarting or ending our connection: the same wait.
            Err(e) if !once && (e.is_unwritable() || fs(at).is_some() || (at.file().is_none() && e.stops_the_pass() && !matches!(e, crate::store::StoreError::TooNew { .. } | crate::store::StoreError::Refused { .. }))) => {
                let why = fs(at).map(|w| format!(" (the store cannot be written: {w}; no new mail is taken until it can be)")).unwrap_or_default();
                tracing::error!(event = "store_unwritable", error = %e);
                eprintln!("esurety: {e}{why}; trying again in {}s", backoff.as_secs());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why the store's folder cannot take a new file, if it cannot: a read-only or full file
/// system (found by writing a probe file beside the store).
fn fs_unwritable(store: &std::path::Path) -> Option<&'static str> {
    let probe = store.with_extension("probe");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => Some("its file system is read-only"),
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => Some("the disk is full"),
        Err(_) => None,
    }
}

/// Sleeps until the next scheduled jobs, new mail (a wake), or `retry` after a failure;
/// returns what to do then (a wake means a pass).
fn wait_for_job(rt: &tokio::runtime::Runtime, engine: &Engine, wake: &Arc<Notify>, clock: &dyn Clock, retry: Option<Duration>, watchdog: Option<Duration>) -> Vec<Job> {
    let now = clock.now();
    let (at, jobs) = engine.config.schedule.next(now).unwrap_or((now + chrono::Duration::hours(1), vec![Job::Poll]));
    let until = (at - now).to_std().unwrap_or_default();
    let (sleep, jobs) = match retry {
        Some(r) if r < until => (r, vec![Job::Poll]),
        _ => (until, jobs),
    };
    let w = wake.clone();
    rt.block_on(async move {
        let until = tokio::time::sleep(sleep);
        let mut until = std::pin::pin!(until);
        loop {
            tokio::select! {
                _ = w.notified() => return vec![Job::Poll],
                _ = &mut until => return jobs,
                // The supervisor's watchdog, told the loop still turns while it waits.
                _ = async { match watchdog { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => notify::watchdog(),
            }
        }
    })
}

/// Watches one IMAP folder with IDLE and wakes the pass when something changes; on a lost
/// connection waits with growing backoff and connects again.
async fn watch(server: crate::config::Server, account: crate::config::Account, tokens: Arc<crate::oauth::Tokens>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match crate::intake::imap::wait_for_change(&server, &account, &tokens, Duration::from_secs(25 * 60)).await {
            Ok(changed) => {
                backoff = Duration::from_secs(1);
                if changed {
                    tracing::debug!(event = "idle_wake", mailbox = %account.address);
                    wake.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(event = "idle_failed", mailbox = %account.address, error = %e, retry_in = backoff.as_secs());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                wake.notify_one(); // a pass after reconnecting catches up on what arrived meanwhile
            }
        }
    }
}

fn health(engine: &Engine, once: bool) -> String {
    let mail = &engine.config.mail;
    let sec = |s: Security| match s { Security::Tls => "TLS", Security::StartTls => "STARTTLS", Security::Plain => "plain" };
    let intake = match &mail.imap {
        Some(s) => format!("IMAP {}:{} ({}, IDLE)", s.host, s.port, sec(s.security)),
        None => format!("Maildirs under {}", mail.maildir_root.display()),
    };
    let out = match &mail.smtp {
        Some(s) => format!("SMTP {}:{} ({}{})", s.host, s.port, sec(s.security), if s.credentials.is_some() { ", AUTH" } else { "" }),
        None => "delivery into local Maildirs".into(),
    };
    let boxes = engine.watched().iter().map(|(a, side)| format!("{a} ({side})")).collect::<Vec<_>>().join(", ");
    let schedule = if once { "one pass".to_string() } else { format!("a pass on new mail (IDLE) and on schedule: {}", engine.config.schedule.describe()) };
    format!("watching {boxes}; intake {intake}; outgoing {out}; store {}; {schedule}", engine.config.store)
}

pub fn summary(r: &RunReport) -> String {
    let mut s = format!(
        "stored {} new message(s): issued {}, rejected {}, held {}, changed {}, other replies {}; submissions {} (pairs accepted {}, rejected {}), other mail left alone {}; errors {}; left for a later pass {}; mail sent {}, retrying {}, failed {}",
        r.stored, r.issued, r.rejected, r.held, r.changed, r.replied, r.submissions, r.accepted, r.refused, r.ignored, r.errors, r.deferred, r.delivery.sent, r.delivery.retrying, r.delivery.failed
    );
    if r.notices > 0 {
        s += &format!("; companies' notices of events registered {}", r.notices);
    }
    if !r.unavailable.is_empty() {
        s += &format!("; unavailable: {}", r.unavailable.join(", "));
    }
    s
}
