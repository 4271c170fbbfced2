//! Crash points and injected bugs for tests. They exist only in a build with the
//! `test-hooks` feature (which `cargo test` turns on); in any other build every function
//! here is empty and the environment variables below mean nothing.
//!
//! With `ESURETY_CRASH_AT=<point>` the process aborts (as a kill would end it: no
//! unwinding, no cleanup) when it reaches that point. `ESURETY_PAUSE_AT` holds a step
//! until the test lets it go. Lets the tests prove that a crash
//! between any two steps neither loses nor doubles anything.

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

/// A slow step for tests: with `ESURETY_PAUSE_AT=<point>:<dir>`, reaching `point` writes
/// `<dir>/<point>.reached` and waits until `<dir>/<point>.go` exists, so a test can hold a
/// request in flight for as long as it needs and see what else is answered meanwhile.
#[cfg(feature = "test-hooks")]
pub fn pause_at(name: &str) {
    use std::sync::OnceLock;
    static AT: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("ESURETY_PAUSE_AT").ok().and_then(|v| v.split_once(':').map(|(p, d)| (p.to_string(), d.into()))));
    let Some((point, dir)) = at else { return };
    if point != name {
        return;
    }
    let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
    while !dir.join(format!("{name}.go")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn pause_at(_name: &str) {}

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
