//! systemd's notify protocol (`Type=notify-reload`, `sd_notify(3)`): what the process tells
//! its supervisor through `NOTIFY_SOCKET`, when one is set (else nothing is sent). `READY=1`
//! after the first pass (`esurety run`) or once listening (`esurety serve`); `WATCHDOG=1`
//! at half the `WATCHDOG_USEC` interval while the loop turns; `RELOADING=1` with
//! `MONOTONIC_USEC` on `SIGHUP`, then `READY=1`; `STOPPING=1` on SIGTERM or SIGINT.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(event = "notify_failed", error = %e);
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// `RELOADING=1` with the monotonic time, as `Type=notify-reload` requires (without it
/// `systemctl reload` waits for its timeout).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => tracing::warn!(event = "notify_failed", error = %e),
    }
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to send `WATCHDOG=1`: half the supervisor's interval, when it set one.
pub fn watchdog_every() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}
