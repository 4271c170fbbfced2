//! The parts of the configuration for two deployments apart (`registry-service.md`):
//! which side this process runs (`side`), the web server (`[web]`), and the registries
//! an owner's own deployment checks through (`[[registries]]`).

use super::Secret;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Which sides this configuration runs: the surety company's (branch mailboxes, the
/// registry), an owner's (contracts mailboxes), or both in one process (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sides {
    pub branch: bool,
    pub owner: bool,
}

impl Sides {
    pub fn parse(s: Option<&str>) -> Result<Sides, String> {
        match s.unwrap_or("both") {
            "both" => Ok(Sides { branch: true, owner: true }),
            "branch" => Ok(Sides { branch: true, owner: false }),
            "owner" => Ok(Sides { branch: false, owner: true }),
            other => Err(format!("side: \"{other}\" must be \"branch\", \"owner\" or \"both\"")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub allow_plain_http: bool,
    /// The address people use to reach this server (links in mail).
    pub public_url: Option<String>,
    /// Requests a minute to the API per token, and per client address (default 3000).
    pub api_per_minute: Option<u32>,
    /// Lookups a minute on the page per client address (default 30).
    pub page_per_minute: Option<u32>,
}

/// `[metrics]`: Prometheus' `GET /metrics` on a listener of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `host:port`, loopback by default in the embedded default (`127.0.0.1:9464`).
    pub listen: String,
}

/// The metrics listener's address, checked like `[web] listen`: it carries no secret, but
/// says much about the company's traffic, so a non-loopback address must be meant.
pub fn metrics(raw: RawMetrics, problems: &mut Vec<String>) -> String {
    if raw.listen.parse::<SocketAddr>().is_err() {
        problems.push(format!("metrics.listen: \"{}\" is not an address:port such as \"127.0.0.1:9464\"", raw.listen));
    }
    raw.listen
}

/// `[web]`, validated.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `host:port` as written (port 0: any free port).
    pub listen: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub trusted_proxies: Vec<IpAddr>,
    pub allow_plain_http: bool,
    pub public_url: Option<String>,
    pub api_per_minute: u32,
    pub page_per_minute: u32,
}

pub fn web(raw: RawWeb, base: &Path, problems: &mut Vec<String>) -> WebConfig {
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
        (None, None) => None,
        _ => {
            problems.push("web: tls_cert and tls_key go together".into());
            None
        }
    };
    match raw.listen.parse::<SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() && tls.is_none() && !raw.allow_plain_http => problems.push(format!(
            "web.listen: plain HTTP on {} (not loopback) would carry keys and tokens in clear: set tls_cert and tls_key, or allow_plain_http = true behind a TLS proxy", raw.listen)),
        Ok(_) => {}
        Err(_) => problems.push(format!("web.listen: \"{}\" is not an address:port such as \"127.0.0.1:8080\"", raw.listen)),
    }
    let trusted_proxies = raw.trusted_proxies.iter().filter_map(|p| {
        let ip = p.parse::<IpAddr>().ok();
        if ip.is_none() {
            problems.push(format!("web.trusted_proxies: \"{p}\" is not an IP address"));
        }
        ip
    }).collect();
    WebConfig {
        listen: raw.listen,
        tls,
        trusted_proxies,
        allow_plain_http: raw.allow_plain_http,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_string()),
        api_per_minute: raw.api_per_minute.unwrap_or(3000).max(1),
        page_per_minute: raw.page_per_minute.unwrap_or(30).max(1),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub issuer: String,
    pub url: String,
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub numbers: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// PEM certificates the owner trusts for this issuer's signed PDFs (its signing
    /// certificate, or the CA that issues it).
    pub signer_ca_file: Option<PathBuf>,
    /// PEM CAs of the timestamp authorities this issuer uses: a signature's timestamp
    /// counts (its time is when the signature was made) only from one of them.
    pub tsa_ca_file: Option<PathBuf>,
    /// The environment variable holding the secret this registry signs its webhooks with
    /// (`POST /api/v1/webhooks/{issuer}` on this owner's `esurety serve`).
    pub webhook_secret_env: Option<String>,
}

/// One registry an owner's deployment checks through.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub issuer: String,
    pub url: url::Url,
    /// The token, or where it should have come from: read when the owner side starts (so
    /// commands that only read the store work without it).
    pub token: Result<Secret, String>,
    pub ca_file: Option<PathBuf>,
    pub numbers: Option<regex::Regex>,
    pub timeout: std::time::Duration,
    /// The certificates (DER) trusted for this issuer's signatures (`signer_ca_file`);
    /// empty: a signed PDF of this issuer is registered `untrusted`.
    pub signers: Vec<Vec<u8>>,
    /// The timestamp authorities' CAs (DER) trusted for its signatures (`tsa_ca_file`).
    pub timestamps: Vec<Vec<u8>>,
    /// The secret its webhooks are signed with (`webhook_secret_env`), or why it is not
    /// there; none: its webhooks are refused (events still come by mail and by asking).
    pub webhook_secret: Option<Result<super::webhooks::WebhookSecrets, String>>,
}

/// Whether a URL's host is this machine (where plain http:// is allowed).
pub fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub fn registries(raw: Vec<RawRegistry>, base: &Path, problems: &mut Vec<String>) -> Vec<RegistryConfig> {
    raw.into_iter().enumerate().filter_map(|(i, r)| {
        // A base URL with a path keeps it (`https://h/esurety` → `…/esurety/api/v1/verify`).
        let with_slash = if r.url.ends_with('/') { r.url.clone() } else { format!("{}/", r.url) };
        let url = match url::Url::parse(&with_slash) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            _ => {
                problems.push(format!("registries[{i}].url: \"{}\" is not an http:// or https:// address", r.url));
                None
            }
        };
        if let Some(u) = &url
            && u.scheme() == "http"
            && !is_loopback_host(u)
        {
            problems.push(format!("registries[{i}].url: plain http:// to {} would send keys and the token in clear; use https://", r.url));
        }
        let token = match (&r.token, &r.token_env) {
            (Some(t), _) => Some(Ok(Secret::new(t.clone()))),
            (None, Some(var)) => Some(match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => Ok(Secret::new(t.trim().to_string())),
                _ => Err(format!("registries[{i}].token_env: the environment variable {var} is not set; set it to the token `esurety token add` printed at {}'s registry", r.issuer)),
            }),
            (None, None) => {
                problems.push(format!("registries[{i}]: set token_env (or token)"));
                None
            }
        };
        let numbers = r.numbers.as_deref().and_then(|p| match regex::Regex::new(p) {
            Ok(re) => Some(re),
            Err(e) => {
                problems.push(format!("registries[{i}].numbers: {e}"));
                None
            }
        });
        let pem_file = |file: &Option<PathBuf>, key: &str, problems: &mut Vec<String>| match file {
            None => Vec::new(),
            Some(p) => match crate::signature::verify::anchors_pem(&std::fs::read(base.join(p)).unwrap_or_default()) {
                Ok(v) if !v.is_empty() => v,
                Ok(_) => {
                    problems.push(format!("registries[{i}].{key}: {} holds no certificate", base.join(p).display()));
                    Vec::new()
                }
                Err(e) => {
                    problems.push(format!("registries[{i}].{key}: {}: {e}", base.join(p).display()));
                    Vec::new()
                }
            },
        };
        let signers = pem_file(&r.signer_ca_file, "signer_ca_file", problems);
        let timestamps = pem_file(&r.tsa_ca_file, "tsa_ca_file", problems);
        let webhook_secret = r.webhook_secret_env.as_deref().map(|var| super::webhooks::secret_from_env(var, &format!("registries[{i}].webhook_secret_env")));
        Some(RegistryConfig {
            signers,
            timestamps,
            webhook_secret,
            issuer: r.issuer,
            url: url?,
            token: token?,
            ca_file: r.ca_file.map(|p| base.join(p)),
            numbers,
            timeout: std::time::Duration::from_secs(r.timeout_seconds.unwrap_or(10).max(1)),
        })
    }).collect()
}
