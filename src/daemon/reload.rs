//! `SIGHUP`: the configuration file and templates read again into a new engine (the
//! store stays: another one needs a restart), and what the reload did said in the journal
//! and to the supervisor. `esurety run` and `esurety serve` both reload this way.

use super::notify;
use crate::config::Config;
use crate::engine::Engine;

/// `--interval SECS` in place of the configured poll schedule.
pub(super) fn with_interval(config: &mut Config, interval: Option<u64>) -> Result<(), String> {
    if let Some(secs) = interval {
        let s = &config.schedule.text;
        config.schedule = crate::config::schedule::Jobs::parse(&crate::config::schedule::every_seconds(secs), &s[1].1, &s[2].1)?;
    }
    Ok(())
}

/// What a reload did, said in the journal and the log, and the supervisor told it is over.
pub(super) fn told_reload(outcome: Result<&std::path::Path, &str>) {
    match outcome {
        Ok(path) => {
            tracing::info!(event = "reloaded", config = %path.display());
            eprintln!("esurety: configuration and templates reloaded from {}", path.display());
        }
        Err(e) => {
            tracing::error!(event = "reload_refused", error = %e);
            eprintln!("esurety: the configuration was not reloaded, the one in use stays: {e}");
        }
    }
    notify::ready("reloaded");
}

/// The engine of the configuration file as it is now, for a reload. Another store is
/// refused (the store is the one thing a running daemon cannot leave).
pub(super) fn reloaded(engine: &Engine, interval: Option<u64>) -> Result<Engine, String> {
    let mut config = Config::load(&engine.config.path).map_err(|e| e.to_string())?;
    with_interval(&mut config, interval)?;
    if config.store != engine.config.store {
        return Err(format!("store: {} is not the store in use ({}); another store needs a restart", config.store, engine.config.store));
    }
    let engine = Engine::new(config).map_err(|e| e.to_string())?;
    engine.say_signing();
    Ok(engine)
}
