//! What varies between runs, passed in: the clock and the random source.
//!
//! Production uses the system clock in Japan time and the OS random source; tests pass a
//! fixed clock and a seeded source so numbers, keys, dates and Message-IDs are exact.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use std::sync::Mutex;

/// Japan Standard Time: every date printed on a document is a date in Japan.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<FixedOffset>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<FixedOffset> {
        Utc::now().with_timezone(&jst())
    }
}

/// A clock that stands still (tests, `ESURETY_TEST_NOW`).
pub struct FixedClock(DateTime<FixedOffset>);

impl FixedClock {
    pub fn new(at: DateTime<FixedOffset>) -> Self {
        FixedClock(at)
    }
    /// `2026-07-04T10:00:00+09:00`
    pub fn parse(rfc3339: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(rfc3339).ok().map(Self::new)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        self.0
    }
}

pub trait Random: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's cryptographic random source.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the OS random source is available");
    }
}

/// Deterministic bytes for tests and `ESURETY_TEST_SEED`: never for real keys.
pub struct SeededRandom(Mutex<u64>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(seed))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut s = self.0.lock().expect("rng lock");
        for b in buf {
            // splitmix64
            *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

/// Today's instant in Japan from a UTC timestamp (used when reading stored times).
pub fn from_unix(secs: i64) -> DateTime<FixedOffset> {
    jst().timestamp_opt(secs, 0).single().unwrap_or_else(|| Utc::now().with_timezone(&jst()))
}

/// Lowercase hex of random bytes, for Message-IDs and Maildir names.
pub fn random_hex(rng: &dyn Random, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
