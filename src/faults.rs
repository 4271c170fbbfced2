//! Crash points and injected bugs for tests. They exist only in a build with the
//! `test-hooks` feature (which `cargo test` turns on); in any other build every function
//! here is empty and the environment variables below mean nothing.
//!
//! With `ESURETY_CRASH_AT=<point>` the process aborts (as a kill would end it: no
//! unwinding, no cleanup) when it reaches that point. Lets the tests prove that a crash
//! between any two steps neither loses nor doubles anything. With `ESURETY_PAUSE_AT` it
//! waits at a point instead ([`pause`]), so a test can act beside it at that moment.

/// Aborts the process at `name` when the tests asked for it.
#[cfg(feature = "test-hooks")]
pub fn point(name: &str) {
    use std::sync::OnceLock;
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT.get_or_init(|| std::env::var("ESURETY_CRASH_AT").ok()).as_deref() == Some(name) {
        eprintln!("esurety: crash injected at {name}");
        std::process::abort();
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// A bug for tests: with `ESURETY_PANIC_ON=<Message-ID>`, processing that message panics,
/// as a bug of ours on one odd input would; with `ESURETY_PANIC_ON=typesetting:<Message-ID>`,
/// typesetting its documents does.
pub fn panic_on(message_id: Option<&str>) {
    panic_at("", message_id);
}

/// [`panic_on`] at a named stage (`typesetting`).
#[cfg(feature = "test-hooks")]
pub fn panic_at(stage: &str, message_id: Option<&str>) {
    use std::sync::OnceLock;
    static ON: OnceLock<Option<String>> = OnceLock::new();
    let Some(on) = ON.get_or_init(|| std::env::var("ESURETY_PANIC_ON").ok()).as_deref() else { return };
    let (at, id) = on.split_once(":<").map(|(s, rest)| (s, format!("<{rest}"))).unwrap_or(("", on.to_string()));
    if at == stage && message_id == Some(id.as_str()) {
        panic!("injected for a test on {id}");
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn panic_at(_stage: &str, _message_id: Option<&str>) {}

/// Holds the process at `name` while a test does something beside it (ends its store
/// connection, runs a second daemon). With `ESURETY_PAUSE_AT=<point>` (or `<point>#<n>` for
/// its n-th arrival) and `ESURETY_PAUSE_FILE=<path>`, the process writes `<path>.reached`
/// there and waits until `<path>` exists; only once per process.
#[cfg(feature = "test-hooks")]
pub fn pause(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static AT: OnceLock<Option<(String, u32, std::path::PathBuf)>> = OnceLock::new();
    static ARRIVED: AtomicU32 = AtomicU32::new(0);
    let Some((at, nth, file)) = AT.get_or_init(|| {
        let at = std::env::var("ESURETY_PAUSE_AT").ok()?;
        let file = std::env::var_os("ESURETY_PAUSE_FILE")?.into();
        let (point, nth) = at.split_once('#').map(|(p, n)| (p.to_string(), n.parse().unwrap_or(1))).unwrap_or((at.clone(), 1));
        Some((point, nth, file))
    }) else { return };
    if at != name || ARRIVED.fetch_add(1, Ordering::SeqCst) + 1 != *nth {
        return;
    }
    let mut reached = file.clone().into_os_string();
    reached.push(".reached");
    let _ = std::fs::write(&reached, name);
    while !file.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn pause(_name: &str) {}
