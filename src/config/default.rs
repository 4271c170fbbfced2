//! The embedded default: `esurety init DIR` writes the demo parties of `parties.md`,
//! one Maildir per address, `relay/`, and an editable copy of the templates.

use super::{Config, RawConfig};
use crate::domain::Side;
use std::path::Path;

pub const DEFAULT_CONFIG: &str = include_str!("default.toml");
/// An owner's own deployment (`init --side owner`).
pub const OWNER_CONFIG: &str = include_str!("default_owner.toml");
/// `[signing]` with the demo key and certificate `init` writes beside it: added to the
/// company's configuration by `init` only (the files must exist for it to be valid).
pub const SIGNING_CONFIG: &str = include_str!("default_signing.toml");

#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub side: Option<Side>,
    /// `[web] listen`.
    pub listen: Option<String>,
    /// The owner side's `[[registries]] url`.
    pub registry_url: Option<String>,
    /// `[web] public_url` (with `listen`).
    pub public_url: Option<String>,
    /// From when the demo signing certificate is valid (the clock's now; `None`: the
    /// system's).
    pub now: Option<std::time::SystemTime>,
}

impl InitOptions {
    /// The configuration file's text.
    pub fn text(&self) -> String {
        let public = self.public_url.as_deref().map(|u| format!("# Where people reach it: the QR code on certificates and key notices opens {u}/?number=…\npublic_url = {}\n", toml_string(u))).unwrap_or_default();
        let web = |listen: &str| format!("\n# The registry's API and lookup page (registry-service.md). Plain HTTP on loopback;\n# set tls_cert/tls_key, or run behind a TLS proxy, to serve other machines.\n[web]\nlisten = {}\n{public}", toml_string(listen));
        match self.side {
            None => {
                let mut t = format!("{DEFAULT_CONFIG}\n{SIGNING_CONFIG}");
                if let Some(l) = &self.listen {
                    t += &web(l);
                }
                t
            }
            Some(Side::Branch) => {
                let t = format!("{DEFAULT_CONFIG}\n{SIGNING_CONFIG}").replacen("store = \"esurety.db\"", "# The surety company's side only: branches, contractors, and the registry on [web].\n# [[owners]] are the company's table of owners (what each accepts), not watched here.\nside = \"branch\"\nstore = \"esurety.db\"", 1);
                t + &web(self.listen.as_deref().unwrap_or("127.0.0.1:8080"))
            }
            Some(Side::Owner) => {
                let url = toml_string(self.registry_url.as_deref().unwrap_or("http://127.0.0.1:8080"));
                let mut t = OWNER_CONFIG.replace("\"REGISTRY_URL\"", &url);
                if let Some(l) = &self.listen {
                    t += &web(l);
                }
                t
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already holds a configuration; refusing to overwrite it")]
    Exists(String),
    /// `--listen` or `--registry-url` made a configuration that is not valid.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write the embedded default into {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The demo signing key and self-signed certificate `[signing]` names, unless they are
/// there already: the key readable by its owner only.
fn demo_signing(dir: &Path, signing: &super::signing::RawSigning, company: &str, now: std::time::SystemTime) -> Result<(), InitError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (Some(key), Some(chain)) = (&signing.key, &signing.chain) else { return Ok(()) };
    let (key, chain) = (dir.join(key), dir.join(chain));
    if key.exists() || chain.exists() {
        return Ok(());
    }
    let (key_pem, cert_pem) = crate::signature::demo::certificate(company, now, 5).map_err(InitError::Invalid)?;
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Io { path, source }
    };
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key).map_err(io(&key))?;
    f.write_all(key_pem.as_bytes()).map_err(io(&key))?;
    std::fs::write(&chain, cert_pem).map_err(io(&chain))?;
    Ok(())
}

/// A TOML basic string of `s`, escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Writes the embedded default into `dir` and returns its configuration.
pub fn init(dir: &Path) -> Result<Config, InitError> {
    init_with(dir, &InitOptions::default())
}

/// Writes the embedded default, or one side of it, into `dir`.
pub fn init_with(dir: &Path, options: &InitOptions) -> Result<Config, InitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Io { path, source }
    };
    let config_path = dir.join("esurety.toml");
    if config_path.exists() {
        return Err(InitError::Exists(dir.display().to_string()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let text = options.text();
    let raw: RawConfig = toml::from_str(&text).map_err(|e| InitError::Invalid(e.to_string()))?;
    if let (Some(signing), Some(company)) = (&raw.signing, &raw.company) {
        demo_signing(dir, signing, &company.name, options.now.unwrap_or_else(std::time::SystemTime::now))?;
    }
    let config = Config::from_raw(raw, &config_path).map_err(|e| InitError::Invalid(e.to_string()))?;
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
    std::fs::write(&config_path, text).map_err(io(&config_path))?;
    Ok(config)
}
