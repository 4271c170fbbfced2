//! Crash points for tests: with `ESURETY_CRASH_AT=<point>` the process aborts (as a kill
//! would end it: no unwinding, no cleanup) when it reaches that point. Lets the tests
//! prove that a crash between any two steps neither loses nor doubles anything.

use std::sync::OnceLock;

pub fn point(name: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    if AT.get_or_init(|| std::env::var("ESURETY_CRASH_AT").ok()).as_deref() == Some(name) {
        eprintln!("esurety: crash injected at {name}");
        std::process::abort();
    }
}

/// A bug for tests: with `ESURETY_PANIC_ON=<Message-ID>`, processing that message panics,
/// as a bug of ours on one odd input would.
pub fn panic_on(message_id: Option<&str>) {
    static ON: OnceLock<Option<String>> = OnceLock::new();
    if let (Some(on), Some(id)) = (ON.get_or_init(|| std::env::var("ESURETY_PANIC_ON").ok()).as_deref(), message_id)
        && on == id
    {
        panic!("injected for a test on {id}");
    }
}
