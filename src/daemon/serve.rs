//! `esurety serve`: the web alone (the registry's API and lookup page, the desk), with
//! `[metrics]`, the supervisor told, and `SIGHUP` read as a reload.

use super::reload::{reloaded, told_reload};
use super::{StopSignals, notify, open_store};
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use anyhow::{Result, bail};
use std::sync::Arc;
use std::time::Duration;

/// `esurety serve`: only `[web]`, until SIGINT/SIGTERM. Takes no lock: it may run beside
/// `esurety run` on the same store (a registry machine apart from the mail machine).
pub fn serve(config: Config, clock: Arc<dyn Clock>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if config.web.is_none() {
        bail!("{} has no [web]: add [web] listen = \"127.0.0.1:8080\"", config.path.display());
    }
    let mut signals = StopSignals::register(&rt)?;
    let mut hangups = {
        let _in = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?
    };
    drop(open_store(&config.store, false)?);
    let engine = Arc::new(Engine::new(config)?);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let metrics = match &engine.config.metrics {
        Some(listen) => {
            let mut stopped = stopped.clone();
            Some(crate::web::metrics::start(listen, engine.config.store.clone(), clock.clone(), rt.handle(), async move {
                let _ = stopped.wait_for(|s| *s).await;
            })?)
        }
        None => None,
    };
    let mut web = crate::web::start(engine.clone(), clock.clone(), Arc::default(), rt.handle(), async move {
        let _ = stopped.wait_for(|s| *s).await;
    })?;
    notify::ready("listening");
    let web_task = std::mem::replace(&mut web.task, rt.spawn(async {}));
    let web = Arc::new(web);
    {
        // SIGHUP: the connections after it are served with the configuration and templates
        // read again; one that does not validate is refused and the one in use stays.
        let (web, mut engine) = (web.clone(), engine.clone());
        rt.spawn(async move {
            while hangups.recv().await.is_some() {
                notify::reloading();
                let next = tokio::task::spawn_blocking({
                    let engine = engine.clone();
                    move || reloaded(&engine, None)
                }).await.unwrap_or_else(|e| Err(e.to_string()));
                match next.map(Arc::new).and_then(|next| web.reload(next.clone(), clock.clone(), Arc::default()).map(|()| next).map_err(|e| e.to_string())) {
                    Ok(next) => {
                        engine = next;
                        told_reload(Ok(&engine.config.path));
                    }
                    Err(e) => told_reload(Err(&e)),
                }
            }
        });
    }
    if let Some(every) = notify::watchdog_every() {
        rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                notify::watchdog();
            }
        });
    }
    rt.block_on(async {
        signals.recv().await;
        notify::stopping();
        let _ = stop.send(true);
        // Requests in flight finish; a client that holds its connection open does not
        // hold up the stop for more than 10 s.
        let _ = tokio::time::timeout(Duration::from_secs(15), web_task).await;
        if let Some(m) = metrics {
            let _ = tokio::time::timeout(Duration::from_secs(5), m.task).await;
        }
    });
    eprintln!("esurety: stopped");
    Ok(())
}

