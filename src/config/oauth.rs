//! How a mailbox logs in (`auth = "password" | "oauth2"`), and OAuth 2.0's presets: the
//! endpoints, scopes and servers of Microsoft 365 and Google, or a `custom` provider's. The
//! client secret comes from the environment or a file, never from the configuration file.

use super::mail::{Secret, Security};
use std::path::{Path, PathBuf};

/// A login's secret: a password, or OAuth 2.0 (the tokens are in the store).
#[derive(Clone)]
pub enum Auth {
    Password(Secret),
    OAuth2(Box<OAuth>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Microsoft,
    Google,
    Custom,
}

impl Provider {
    fn parse(s: &str) -> Option<Provider> {
        match s {
            "microsoft" => Some(Provider::Microsoft),
            "google" => Some(Provider::Google),
            "custom" => Some(Provider::Custom),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
            Provider::Custom => "custom",
        }
    }

    /// The provider's IMAP or SMTP server: host, port, security.
    fn server(self, smtp: bool) -> Option<(&'static str, u16, Security)> {
        match (self, smtp) {
            (Provider::Microsoft, false) => Some(("outlook.office365.com", 993, Security::Tls)),
            (Provider::Microsoft, true) => Some(("smtp.office365.com", 587, Security::StartTls)),
            (Provider::Google, false) => Some(("imap.gmail.com", 993, Security::Tls)),
            (Provider::Google, true) => Some(("smtp.gmail.com", 465, Security::Tls)),
            (Provider::Custom, _) => None,
        }
    }
}

/// An OAuth 2.0 client for one login: where tokens come from and what they are for.
#[derive(Clone)]
pub struct OAuth {
    pub provider: Provider,
    pub client_id: String,
    /// Absent for a public client (Microsoft's device flow needs none).
    pub client_secret: Option<Secret>,
    pub token_url: String,
    /// The device authorization endpoint (RFC 8628), where the provider has one for mail.
    pub device_url: Option<String>,
    /// The authorization endpoint, for a loopback redirect with PKCE.
    pub authorize_url: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OAuth({}, client {}, {})", self.provider.as_str(), self.client_id, self.token_url)
    }
}

/// The login keys of `[mail.smtp]`, `[mail.imap]` or `[[mail.accounts]]`, as written.
#[derive(Default)]
pub(super) struct RawAuth {
    pub auth: Option<String>,
    pub provider: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub authorize_url: Option<String>,
    pub scope: Option<String>,
}

/// The host, port and security a server block's `provider` stands for, when it names one.
pub(super) fn preset_server(key: &str, provider: Option<&str>, smtp: bool, problems: &mut Vec<String>) -> Option<(&'static str, u16, Security)> {
    let name = provider?;
    match Provider::parse(name) {
        Some(p) => p.server(smtp),
        None => {
            problems.push(format!("{key}.provider: \"{name}\" must be microsoft, google or custom"));
            None
        }
    }
}

/// The login's secret as configured: `password` (given) or `oauth2` (from `raw`).
pub(super) fn auth(key: &str, raw: RawAuth, password: Option<Secret>, smtp: bool, base: &Path, problems: &mut Vec<String>) -> Option<Auth> {
    match raw.auth.as_deref().unwrap_or("password") {
        "password" => {
            let oauth_only = [("client_id", raw.client_id.is_some()), ("client_secret_env", raw.client_secret_env.is_some()), ("client_secret_file", raw.client_secret_file.is_some()), ("token_url", raw.token_url.is_some()), ("scope", raw.scope.is_some()), ("tenant", raw.tenant.is_some())];
            for (name, _) in oauth_only.iter().filter(|(_, given)| *given) {
                problems.push(format!("{key}.{name}: only with auth = \"oauth2\""));
            }
            password.map(Auth::Password)
        }
        "oauth2" => {
            if password.is_some() {
                problems.push(format!("{key}: auth = \"oauth2\" takes no password"));
            }
            oauth(key, raw, smtp, base, problems).map(|o| Auth::OAuth2(Box::new(o)))
        }
        other => {
            problems.push(format!("{key}.auth: \"{other}\" must be password or oauth2"));
            None
        }
    }
}

fn oauth(key: &str, raw: RawAuth, smtp: bool, base: &Path, problems: &mut Vec<String>) -> Option<OAuth> {
    let n = problems.len();
    let provider = match raw.provider.as_deref().map(|p| (p, Provider::parse(p))) {
        Some((_, Some(p))) => Some(p),
        Some((p, None)) => {
            problems.push(format!("{key}.provider: \"{p}\" must be microsoft, google or custom"));
            None
        }
        None => {
            problems.push(format!("{key}.provider: auth = \"oauth2\" needs a provider (microsoft, google or custom)"));
            None
        }
    };
    if raw.tenant.is_some() && provider != Some(Provider::Microsoft) {
        problems.push(format!("{key}.tenant: only with provider = \"microsoft\""));
    }
    let client_id = raw.client_id.filter(|c| !c.trim().is_empty());
    if client_id.is_none() {
        problems.push(format!("{key}.client_id: auth = \"oauth2\" needs the OAuth client's id"));
    }
    let client_secret = client_secret(key, raw.client_secret_env, raw.client_secret_file, base, problems);
    let tenant = raw.tenant.unwrap_or_else(|| "organizations".into());
    let ms = |end: &str| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{end}");
    let (token_url, device_url, authorize_url, scope) = match provider? {
        Provider::Microsoft => {
            let scope = if smtp { "https://outlook.office.com/SMTP.Send offline_access" } else { "https://outlook.office.com/IMAP.AccessAsUser.All offline_access" };
            (Some(ms("token")), Some(ms("devicecode")), Some(ms("authorize")), Some(scope.to_string()))
        }
        Provider::Google => (Some("https://oauth2.googleapis.com/token".into()), None, Some("https://accounts.google.com/o/oauth2/v2/auth".into()), Some("https://mail.google.com/".into())),
        Provider::Custom => (None, None, None, None),
    };
    let token_url = raw.token_url.or(token_url);
    let scope = raw.scope.or(scope);
    if token_url.is_none() {
        problems.push(format!("{key}.token_url: provider = \"custom\" needs its token endpoint"));
    }
    if scope.is_none() {
        problems.push(format!("{key}.scope: provider = \"custom\" needs the scopes to ask for"));
    }
    let device_url = raw.device_url.or(device_url);
    let authorize_url = raw.authorize_url.or(authorize_url);
    for (name, url) in [("token_url", &token_url), ("device_url", &device_url), ("authorize_url", &authorize_url)] {
        if let Some(u) = url
            && let Err(why) = endpoint(u)
        {
            problems.push(format!("{key}.{name}: {why}"));
        }
    }
    if problems.len() > n {
        return None;
    }
    Some(OAuth { provider: provider?, client_id: client_id?, client_secret, token_url: token_url?, device_url, authorize_url, scope: scope? })
}

fn client_secret(key: &str, env: Option<String>, file: Option<PathBuf>, base: &Path, problems: &mut Vec<String>) -> Option<Secret> {
    match (env, file) {
        (Some(var), None) => match std::env::var(&var) {
            Ok(v) => Some(Secret::new(v)),
            Err(_) => {
                problems.push(format!("{key}.client_secret_env: the environment variable {var} is not set"));
                None
            }
        },
        (None, Some(path)) => {
            let path = base.join(path);
            match std::fs::read_to_string(&path) {
                Ok(v) => Some(Secret::new(v.trim().to_string())),
                Err(e) => {
                    problems.push(format!("{key}.client_secret_file: cannot read {}: {e}", path.display()));
                    None
                }
            }
        }
        (Some(_), Some(_)) => {
            problems.push(format!("{key}: give client_secret_env or client_secret_file, not both"));
            None
        }
        (None, None) => None,
    }
}

/// An endpoint tokens may be sent to: HTTPS, or plain HTTP on loopback only.
fn endpoint(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("\"{u}\" is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("\"{u}\" must be https (plain http only on loopback)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(auth: &str, provider: &str) -> RawAuth {
        RawAuth { auth: Some(auth.into()), provider: Some(provider.into()), client_id: Some("app".into()), ..RawAuth::default() }
    }

    #[test]
    fn microsoft_fills_its_endpoints_and_the_scope_of_each_server() {
        let mut problems = Vec::new();
        let mut r = raw("oauth2", "microsoft");
        r.tenant = Some("contoso-tenant".into());
        let Some(Auth::OAuth2(imap)) = auth("mail.accounts[0]", r, None, false, Path::new("."), &mut problems) else { panic!("{problems:?}") };
        assert_eq!(imap.token_url, "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token");
        assert_eq!(imap.device_url.as_deref(), Some("https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/devicecode"));
        assert!(imap.scope.contains("IMAP.AccessAsUser.All") && imap.scope.contains("offline_access"));
        let Some(Auth::OAuth2(smtp)) = auth("mail.smtp", raw("oauth2", "microsoft"), None, true, Path::new("."), &mut problems) else { panic!("{problems:?}") };
        assert!(smtp.token_url.contains("/organizations/"), "the default tenant");
        assert!(smtp.scope.contains("SMTP.Send"));
        assert!(problems.is_empty());
    }

    #[test]
    fn wrong_combinations_are_named() {
        let mut problems = Vec::new();
        assert!(auth("k", raw("oauth2", "custom"), Some(Secret::new("pw".into())), false, Path::new("."), &mut problems).is_none());
        let text = problems.join("\n");
        assert!(text.contains("k: auth = \"oauth2\" takes no password"), "{text}");
        assert!(text.contains("k.token_url: provider = \"custom\" needs"), "{text}");
        assert!(text.contains("k.scope: provider = \"custom\" needs"), "{text}");
        let mut problems = Vec::new();
        let mut r = raw("oauth2", "custom");
        r.token_url = Some("http://idp.example/token".into());
        r.scope = Some("mail".into());
        assert!(auth("k", r, None, false, Path::new("."), &mut problems).is_none());
        assert!(problems[0].contains("must be https"), "{problems:?}");
        let mut problems = Vec::new();
        let mut r = raw("password", "google");
        r.client_id = Some("x".into());
        auth("k", r, Some(Secret::new("pw".into())), false, Path::new("."), &mut problems);
        assert_eq!(problems, ["k.client_id: only with auth = \"oauth2\""]);
    }
}
