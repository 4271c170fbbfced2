//! The embedded default: `esurety init DIR` writes the demo parties of `parties.md`,
//! one Maildir per address, `relay/`, and an editable copy of the templates.

use super::{Config, RawConfig};
use std::path::Path;

pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a configuration; refusing to overwrite it")]
    Exists(String),
    #[error("cannot write the embedded default into {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Writes the embedded default into `dir` and returns its configuration.
pub fn init(dir: &Path) -> Result<Config, InitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Io { path, source }
    };
    let config_path = dir.join("esurety.toml");
    if config_path.exists() {
        return Err(InitError::Exists(dir.display().to_string()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let raw: RawConfig = toml::from_str(DEFAULT_CONFIG).expect("the embedded default parses");
    let config = Config::from_raw(raw, &config_path).expect("the embedded default is valid");
    for address in config.local_addresses().iter().map(String::as_str).chain(["relay"]) {
        let md = config.mail.maildir_root.join(address);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(md.join(sub)).map_err(io(&md))?;
        }
    }
    if let Some(tdir) = &config.templates {
        for (name, text) in crate::templates::EMBEDDED {
            let path = tdir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, text).map_err(io(&path))?;
        }
    }
    if !config.secret_file.exists() {
        crate::secrets::Secrets::create_file(&config.secret_file, &crate::clock::OsRandom).map_err(io(&config.secret_file))?;
    }
    std::fs::write(&config_path, DEFAULT_CONFIG).map_err(io(&config_path))?;
    Ok(config)
}
