//! What a store URL asks of the connection, with esurety's defaults for what it leaves
//! out (pure: text in, settings out). Several hosts (`postgres://u@db1:5432,db2:5432/e`)
//! mean a primary and its standbys: unless the URL says otherwise, only a host that takes
//! writes will do (`target_session_attrs=read-write`), tried in the order written. The
//! timeouts are short so that a host that is gone is found in seconds, not in the
//! kernel's two hours: connecting gives up after [`CONNECT`] per host, an idle connection
//! is probed every few seconds, and data the server does not acknowledge for
//! [`USER_TIMEOUT`] ends the connection.

use postgres::config::{SslMode, TargetSessionAttrs};
use std::time::Duration;

/// How long connecting to one host may take.
pub(super) const CONNECT: Duration = Duration::from_secs(5);
/// Idle time before the first keepalive probe, the time between probes, and how many
/// go unanswered before the connection is given up: about 11 s for a silent host.
pub(super) const KEEPALIVE: (Duration, Duration, u32) = (Duration::from_secs(5), Duration::from_secs(2), 3);
/// Sent data left unacknowledged this long ends the connection (Linux `TCP_USER_TIMEOUT`).
pub(super) const USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The driver's settings for `url`: what it says, and our defaults for what it does not.
/// `tls`: a CA file is configured, so the connection must be encrypted (never the plain
/// fallback that `sslmode=prefer` allows).
pub(super) fn settings(url: &str, tls: bool) -> Result<postgres::Config, String> {
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| format!("the URL cannot be read: {e}"))?;
    let given = keys(url);
    let has = |k: &str| given.iter().any(|g| g == k);
    if config.get_hosts().len() > 1 && !has("target_session_attrs") {
        config.target_session_attrs(TargetSessionAttrs::ReadWrite);
    }
    if !has("connect_timeout") {
        config.connect_timeout(CONNECT);
    }
    if !has("keepalives") {
        config.keepalives(true);
    }
    if !has("keepalives_idle") {
        config.keepalives_idle(KEEPALIVE.0);
    }
    if !has("keepalives_interval") {
        config.keepalives_interval(KEEPALIVE.1);
    }
    if !has("keepalives_retries") {
        config.keepalives_retries(KEEPALIVE.2);
    }
    if !has("tcp_user_timeout") {
        config.tcp_user_timeout(USER_TIMEOUT);
    }
    if tls && matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
        config.ssl_mode(SslMode::Require);
    }
    config.application_name("esurety");
    Ok(config)
}

/// Whether the connection must be to a host that takes writes (so an idle one is asked
/// again before use: its host may have been demoted meanwhile).
pub(super) fn wants_primary(config: &postgres::Config) -> bool {
    config.get_target_session_attrs() == TargetSessionAttrs::ReadWrite
}

/// The names of the URL's query parameters.
fn keys(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else { return Vec::new() };
    query.split('&').filter(|p| !p.is_empty()).map(|p| p.split('=').next().unwrap_or("").to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_want_the_primary_unless_the_url_says_otherwise() {
        let c = settings("postgres://e@db1:5432,db2:5433/esurety", false).unwrap();
        assert_eq!(c.get_hosts().len(), 2);
        assert_eq!(c.get_ports(), [5432, 5433]);
        assert!(wants_primary(&c));
        let c = settings("postgres://e@db1:5432,db2:5433/esurety?target_session_attrs=any", false).unwrap();
        assert!(!wants_primary(&c));
        let c = settings("postgres://e@db1/esurety", false).unwrap();
        assert!(!wants_primary(&c));
        let c = settings("postgres://e@db1/esurety?target_session_attrs=read-write", false).unwrap();
        assert!(wants_primary(&c));
    }

    #[test]
    fn a_dead_host_is_given_up_in_seconds_unless_the_url_sets_its_own_times() {
        let c = settings("postgres://e@db1/esurety", false).unwrap();
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT));
        assert_eq!(c.get_tcp_user_timeout(), Some(&USER_TIMEOUT));
        assert_eq!((c.get_keepalives_idle(), c.get_keepalives_interval(), c.get_keepalives_retries()), (KEEPALIVE.0, Some(KEEPALIVE.1), Some(KEEPALIVE.2)));
        let c = settings("postgres://e@db1/esurety?connect_timeout=30&keepalives_idle=60", false).unwrap();
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(30)));
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(60));
    }

    #[test]
    fn a_ca_file_means_tls_or_nothing() {
        assert_eq!(settings("postgres://e@db1/esurety", true).unwrap().get_ssl_mode(), SslMode::Require);
        assert_eq!(settings("postgres://e@db1/esurety?sslmode=prefer", true).unwrap().get_ssl_mode(), SslMode::Require);
        assert_eq!(settings("postgres://e@db1/esurety", false).unwrap().get_ssl_mode(), SslMode::Prefer);
    }
}
