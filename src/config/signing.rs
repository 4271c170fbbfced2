//! `[signing]` (signing.md): the company's signing key and certificate chain, from a
//! PKCS#12 file (its password from the environment) or a PEM key and chain. Read and
//! checked with the rest of the configuration, so a key that cannot sign is said at start
//! and at reload, never at the first application.

use crate::signature::Signer;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    /// A PKCS#12 file (`.p12`, `.pfx`): the key and its chain.
    pub pkcs12: Option<PathBuf>,
    /// Or a PEM key (`PRIVATE KEY`, PKCS#8) …
    pub key: Option<PathBuf>,
    /// … and its certificate with the issuers' (PEM).
    pub chain: Option<PathBuf>,
    /// The environment variable holding the PKCS#12 password (default
    /// `ESURETY_SIGNING_PASSWORD`).
    pub password_env: Option<String>,
    /// An RFC 3161 timestamp service (PAdES B-T).
    pub tsa_url: Option<String>,
    /// The CA of an HTTPS timestamp service.
    pub tsa_ca_file: Option<PathBuf>,
}

/// What signs the branch's PDFs, and the timestamp authority that stamps each signature.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    pub signer: Arc<Signer>,
    pub tsa: Option<Arc<crate::signature::tsa::Tsa>>,
}

pub fn signing(raw: RawSigning, base: &Path, problems: &mut Vec<String>) -> Option<SigningConfig> {
    let read = |p: &Path, what: &str, problems: &mut Vec<String>| std::fs::read(base.join(p)).map_err(|e| problems.push(format!("signing.{what}: cannot read {}: {e}", base.join(p).display()))).ok();
    let tsa = match &raw.tsa_url {
        Some(url) => {
            let tls = url.to_ascii_lowercase().starts_with("https://").then(|| crate::tls::connector(raw.tsa_ca_file.as_ref().map(|p| base.join(p)).as_deref()));
            // The authority's CA: trusted for its HTTPS, and its tokens must lead to it.
            let anchors = match &raw.tsa_ca_file {
                Some(p) => match std::fs::read(base.join(p)).map_err(|e| e.to_string()).and_then(|pem| crate::signature::verify::anchors_pem(&pem)) {
                    Ok(a) => a,
                    Err(e) => {
                        problems.push(format!("signing.tsa_ca_file: {}: {e}", base.join(p).display()));
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            match tls.transpose().and_then(|tls| crate::signature::tsa::Tsa::new(url, tls)) {
                Ok(t) => Some(Arc::new(t.with_anchors(anchors))),
                Err(e) => {
                    problems.push(format!("signing.tsa_url: {e}"));
                    None
                }
            }
        }
        None if raw.tsa_ca_file.is_some() => {
            problems.push("signing.tsa_ca_file: given without tsa_url".into());
            None
        }
        None => None,
    };
    let signer = match (&raw.pkcs12, &raw.key, &raw.chain) {
        (Some(p12), None, None) => {
            let bytes = read(p12, "pkcs12", problems)?;
            let var = raw.password_env.as_deref().unwrap_or("ESURETY_SIGNING_PASSWORD");
            match std::env::var(var) {
                Ok(password) => Signer::from_pkcs12(&bytes, &password).map_err(|e| problems.push(format!("signing.pkcs12: {e} (password from ${var})"))),
                Err(_) => {
                    problems.push(format!("signing.pkcs12: the environment variable {var} (password_env) is not set; set it to the PKCS#12 file's password"));
                    Err(())
                }
            }
        }
        (None, Some(key), Some(chain)) => {
            let key = read(key, "key", problems);
            let chain = read(chain, "chain", problems);
            Signer::from_pem(&key?, &chain?).map_err(|e| problems.push(format!("signing.key: {e}")))
        }
        _ => {
            problems.push("signing: give either pkcs12 (with password_env) or both key and chain".into());
            Err(())
        }
    };
    // A certificate out of its validity would sign documents no reader takes.
    if let Ok(s) = &signer {
        let now = std::time::SystemTime::now();
        if s.not_after() < now {
            problems.push(format!("signing: the signing certificate ({}) ended on {}; renew it", s.subject(), chrono::DateTime::<chrono::Utc>::from(s.not_after()).format("%Y-%m-%d")));
        } else if s.not_before() > now {
            problems.push(format!("signing: the signing certificate ({}) is valid only from {}", s.subject(), chrono::DateTime::<chrono::Utc>::from(s.not_before()).format("%Y-%m-%d %H:%M UTC")));
        }
    }
    signer.ok().map(|s| SigningConfig { signer: Arc::new(s), tsa })
}
