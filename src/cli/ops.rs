//! The operators' safety net: `esurety backup` (a copy of the running SQLite store) and
//! `esurety store check` (whether a store, or a restored copy, holds together). The work is
//! `store::backup` and `store::check`; here, what to open and what to print.

use super::{print_json, sources};
use crate::config::{Config, StoreAt};
use crate::secrets::Secrets;
use anyhow::{Result, bail};
use std::path::Path;

pub(super) fn backup(config: &Path, to: &Path, force: bool, json: bool) -> Result<i32> {
    let (clock, _) = sources()?;
    let config = Config::load(config)?;
    // PostgreSQL is refused before anything is read: the advice needs no secret.
    if let StoreAt::Postgres(target) = &config.store {
        bail!(crate::store::backup::BackupError::Postgres(target.to_string()));
    }
    let secrets = Secrets::load(&config.secret_file)?;
    let b = crate::store::backup::backup(&config.store, to, &secrets, force, &clock.now().to_rfc3339())?;
    if json {
        print_json(&serde_json::to_value(&b)?);
    } else {
        println!("backup of {} written to {}", config.store, b.path.display());
        println!("  taken at:           {} (schema version {}, {} pages, {:.1} MB)", b.taken_at, b.schema_version, b.pages, b.bytes as f64 / 1e6);
        println!("  secret fingerprint: {}", b.secret_fingerprint);
        println!("keep the secret file ({}) whose fingerprint this is, apart from the backup: the copy's keys open only with it", config.secret_file.display());
        println!("check the copy: esurety store check --store {}", b.path.display());
    }
    Ok(0)
}

pub(super) fn check(config: &Path, store: Option<&str>, secret_file: Option<&Path>, json: bool) -> Result<i32> {
    // A copy may be checked on a machine with no configuration: --store and the secret
    // (--secret-file or ESURETY_SECRET) are then enough.
    let (at, secrets) = match (Config::load(config), store) {
        (Ok(c), store) => {
            let at = match store {
                None => c.store.clone(),
                // The configuration's password and CA serve a URL of the same server.
                Some(s) => match &c.store {
                    StoreAt::Postgres(t) => StoreAt::parse(s, Path::new(""), t.password_env.clone(), t.ca_file.clone()),
                    StoreAt::File(_) => StoreAt::parse(s, Path::new(""), None, None),
                },
            };
            (at, Secrets::load(secret_file.unwrap_or(&c.secret_file))?)
        }
        (Err(e), None) => return Err(e.into()),
        (Err(_), Some(s)) => (StoreAt::parse(s, Path::new(""), None, None), Secrets::load(secret_file.unwrap_or(Path::new("esurety.secret")))?),
    };
    if let StoreAt::File(p) = &at {
        if !p.is_file() {
            bail!("no store file {}", p.display());
        }
    }
    let r = crate::store::check::check(&at, &secrets)?;
    if json {
        print_json(&serde_json::to_value(&r)?);
    } else {
        println!("store {} ({}, schema version {})", r.store, r.kind, r.schema_version.map_or("unknown".into(), |v| v.to_string()));
        for c in &r.checks {
            println!("  {} {:<9} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
        }
        if let Some(b) = &r.backup {
            println!("  a copy by esurety backup of {}, taken at {}", b.source, b.taken_at);
        }
        println!("{}", if r.ok { "every check holds" } else { "the store does NOT hold together: see FAIL above" });
    }
    Ok(if r.ok { 0 } else { 1 })
}
