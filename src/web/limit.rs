//! Requests counted per key (a token, a client address) in one-minute windows, in this
//! process's memory: beyond the limit the caller is told when to come back (`429` with
//! `Retry-After`). Each web server counts its own (these limits are against floods, so
//! N servers taking N times the rate is what they are for). Failures, which limit
//! guessing, are counted apart from this in the store, across servers (the registry's
//! lockout, the desk's failed logins). Connections are capped per client in `serve`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

#[derive(Default)]
pub struct RateLimiter {
    /// Per key: (minute, requests in it); and the minute the map was last pruned.
    windows: Mutex<(HashMap<String, (u64, u32)>, u64)>,
}

impl RateLimiter {
    /// Whether `key` is at its limit already (nothing counted): the seconds to wait.
    pub fn over(&self, key: &str, per_minute: u32) -> Option<u64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match w.0.get(key) {
            Some((m, n)) if *m == now / 60 && *n >= per_minute => Some((60 - now % 60).max(1)),
            _ => None,
        }
    }

    /// Counts one request for `key`; `Err(seconds)` when it is over `per_minute`.
    pub fn hit(&self, key: &str, per_minute: u32) -> Result<(), u64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let minute = now / 60;
        let mut guard = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (w, pruned) = &mut *guard;
        // Past minutes' counts go, at most once a minute (a flood of new keys within one
        // minute is kept: its size is bounded by the requests of that minute).
        if w.len() > 100_000 && *pruned != minute {
            w.retain(|_, (m, _)| *m == minute);
            *pruned = minute;
        }
        let e = w.entry(key.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= per_minute {
            return Err((60 - now % 60).max(1));
        }
        e.1 += 1;
        Ok(())
    }
}

/// The client's address: the peer's, or (only when the peer is a trusted proxy) the
/// nearest address in `X-Forwarded-For` (all its lines, in order) that is not itself a
/// trusted proxy. A forwarded list that cannot be read (not ASCII, not addresses) gives
/// 0.0.0.0: a bucket of its own, so it never puts its failures on the proxy's address.
pub fn client_address(peer: SocketAddr, forwarded: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded else { return peer };
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip.to_canonical()) => continue,
            Ok(ip) => return ip.to_canonical(),
            Err(_) => return IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }
    }
    peer
}

/// What limits and failures are counted by: an IPv4 address, or an IPv6 address's /64
/// (one subscriber's usual allocation, so a client cannot take a new address per try).
pub fn bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// What the open connections of one client are counted by, as [`bucket`]: an IPv4
/// address, or an IPv6 address's /64 (its other 64 bits zero).
pub fn connection_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let peer = SocketAddr::new(proxy, 5000);
        let stranger: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        assert_eq!(client_address(stranger, Some("198.51.100.1"), &[proxy]).to_string(), "203.0.113.9");
        assert_eq!(client_address(peer, Some("198.51.100.1, 127.0.0.1"), &[proxy]).to_string(), "198.51.100.1");
        assert_eq!(client_address(peer, Some("1.2.3.4, 198.51.100.1"), &[proxy]).to_string(), "198.51.100.1", "the client may forge the left part");
        assert_eq!(client_address(peer, None, &[proxy]).to_string(), "127.0.0.1");
        assert_eq!(client_address(peer, Some("1.2.3.4"), &[]).to_string(), "127.0.0.1");
        assert_eq!(client_address(peer, Some("not an address, 198.51.100.1"), &[proxy]).to_string(), "198.51.100.1");
        assert_eq!(client_address(peer, Some("198.51.100.1, garbage"), &[proxy]).to_string(), "0.0.0.0", "unreadable: not the proxy's bucket");
        assert_eq!(bucket("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:2:bbbb::9".parse().unwrap()), bucket("2001:db8:1:2::5".parse().unwrap()));
    }

    #[test]
    fn connections_are_counted_per_ipv4_address_and_per_ipv6_64() {
        let key = |s: &str| connection_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb:cccc:dddd:9"), "one /64: one count, whatever address it takes");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("203.0.113.9").to_string(), "203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
        assert_eq!(key("::ffff:203.0.113.9").to_string(), "203.0.113.9", "an IPv4-mapped peer is its IPv4 address");
    }

    #[test]
    fn a_key_over_its_limit_is_told_when_to_come_back() {
        let l = RateLimiter::default();
        assert!(l.hit("a", 2).is_ok());
        assert!(l.hit("a", 2).is_ok());
        let wait = l.hit("a", 2).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.hit("b", 2).is_ok(), "another key has its own count");
    }
}
