//! `esurety run`: the process around [`crate::run::Engine`]. Takes the store's lock so two
//! processes on one configuration never both work (the second refuses to start), prints a
//! health line, then passes over the mailboxes until SIGINT/SIGTERM; a pass in hand is
//! finished before stopping, so no message is left half done.

use crate::clock::{Clock, Random};
use crate::config::Config;
use crate::run::{Engine, RunReport};
use crate::store::Store;
use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::time::Duration;

/// Holds the exclusive lock beside the store for as long as it lives.
pub struct InstanceLock(#[allow(dead_code)] File);

pub fn lock(config: &Config) -> Result<InstanceLock> {
    let path = config.store.with_extension("lock");
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(InstanceLock(f)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another esurety is already running on {} (lock {} is held); stop it first",
            config.path.display(), path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

pub fn run(config: Config, once: bool, interval: u64, clock: &dyn Clock, rng: &dyn Random) -> Result<RunReport> {
    let _lock = lock(&config)?;
    let mut store = Store::open(&config.store)?;
    let engine = Engine::new(config)?;
    eprintln!(
        "esurety: {} branch and {} owner mailbox(es) under {}, store {}, delivery into local Maildirs{}",
        engine.config.branches.len(),
        engine.config.owners.len(),
        engine.config.mail.maildir_root.display(),
        engine.config.store.display(),
        if once { ", one pass" } else { "" },
    );
    if once {
        let report = engine.run_once(&mut store, clock, rng)?;
        eprintln!("esurety: {}", summary(&report));
        return Ok(report);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut total = RunReport::default();
        loop {
            let report = engine.run_once(&mut store, clock, rng)?;
            if report != RunReport::default() {
                eprintln!("esurety: {}", summary(&report));
            }
            total.issued += report.issued;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(interval.max(1))) => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        eprintln!("esurety: stopped");
        Ok(total)
    })
}

pub fn summary(r: &RunReport) -> String {
    format!(
        "stored {} new message(s): issued {}, rejected {}, held {}, other replies {}; submissions {} (pairs accepted {}, rejected {}), other mail left alone {}; errors {}; mail sent {}, retrying {}, failed {}",
        r.stored, r.issued, r.rejected, r.held, r.replied, r.submissions, r.accepted, r.refused, r.ignored, r.errors, r.delivery.sent, r.delivery.retrying, r.delivery.failed
    )
}
