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
