//! Webhooks between a company and an owner (`lifecycle.md`): the company's side names each
//! owner's endpoint (`[[owners]] webhook_url`, `webhook_secret_env`); the owner's side the
//! secret it shares with each registry (`[[registries]] webhook_secret_env`). A secret is
//! the Standard Webhooks form, `whsec_` and base64 (as the secret's bytes), read from the
//! environment and never written into the file or printed.

use url::Url;

/// A webhook secret's bytes (the HMAC-SHA256 key). Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// `whsec_BASE64` (or bare base64) as the Standard Webhooks specification gives it;
    /// at least 24 bytes (the specification's lower bound), at most 64.
    pub fn parse(s: &str) -> Result<WebhookSecret, String> {
        use base64::Engine;
        let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| "is not whsec_ followed by base64".to_string())?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(format!("holds {} bytes; a webhook secret holds 24 to 64", bytes.len()));
        }
        Ok(WebhookSecret(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_****")
    }
}

/// The secrets of one endpoint: one, or two while it is rotated (the new one and the
/// old one, space separated in the variable). The sender signs with each (a webhook then
/// carries a `v1,` signature per secret, as the Standard Webhooks specification allows);
/// the receiver takes a signature of any of them. So a rotation never loses a webhook:
/// add the new secret on both sides, then drop the old one on both.
#[derive(Debug, Clone)]
pub struct WebhookSecrets(Vec<WebhookSecret>);

impl WebhookSecrets {
    /// One to four secrets, separated by spaces.
    pub fn parse(s: &str) -> Result<WebhookSecrets, String> {
        let all = s.split_whitespace().map(WebhookSecret::parse).collect::<Result<Vec<_>, _>>()?;
        if all.is_empty() || all.len() > 4 {
            return Err(format!("holds {} secrets; give one, or two while rotating", all.len()));
        }
        Ok(WebhookSecrets(all))
    }

    pub fn one(secret: WebhookSecret) -> WebhookSecrets {
        WebhookSecrets(vec![secret])
    }

    pub fn iter(&self) -> impl Iterator<Item = &WebhookSecret> {
        self.0.iter()
    }
}

/// An owner's endpoint, as the company's side sends to it.
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub url: Url,
    /// The secrets, or why they are not there: read when the daemon starts, so commands
    /// that only read the store work without them; webhooks wait until they are set.
    pub secret: Result<WebhookSecrets, String>,
    /// A CA trusted for its HTTPS beside the public ones (`webhook_ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// The secrets in the environment variable `var`, for `what` (a configuration key).
pub fn secret_from_env(var: &str, what: &str) -> Result<WebhookSecrets, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => WebhookSecrets::parse(&v).map_err(|e| format!("{what}: the environment variable {var} {e}")),
        _ => Err(format!("{what}: the environment variable {var} is not set; set it to the webhook secret (whsec_…) agreed for this endpoint")),
    }
}

/// `[[owners]] webhook_url`, `webhook_secret_env` and `webhook_ca_file`, checked: an
/// http(s) URL (plain http only to this machine), a variable to read the secret from, a
/// CA file that reads.
pub fn endpoint(i: usize, url: Option<&str>, secret_env: Option<&str>, ca_file: Option<std::path::PathBuf>, problems: &mut Vec<String>) -> Option<WebhookEndpoint> {
    let url = url?;
    let parsed = match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            problems.push(format!("owners[{i}].webhook_url: \"{url}\" is not an http:// or https:// address"));
            return None;
        }
    };
    if parsed.scheme() == "http" && !super::web::is_loopback_host(&parsed) {
        problems.push(format!("owners[{i}].webhook_url: plain http:// to {url} would send the owner's events in clear; use https://"));
    }
    let Some(var) = secret_env else {
        problems.push(format!("owners[{i}].webhook_secret_env: name the environment variable that holds the webhook secret (whsec_…)"));
        return None;
    };
    if let Some(p) = &ca_file
        && let Err(e) = crate::tls::connector(Some(p))
    {
        problems.push(format!("owners[{i}].webhook_ca_file: {e}"));
    }
    Some(WebhookEndpoint { url: parsed, secret: secret_from_env(var, &format!("owners[{i}].webhook_secret_env")), ca_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_as_the_standard_gives_them() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(s.bytes().len(), 24);
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err().contains("5 bytes"));
        assert_eq!(format!("{s:?}"), "whsec_****");
        let two = WebhookSecrets::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(two.iter().count(), 2, "the new and the old while rotating");
        assert!(WebhookSecrets::parse("  ").is_err());
    }
}
