//! The daemon's scheduled jobs, as cron expressions in Japan time (seconds first, as the
//! `cron` crate reads them: `sec min hour day month weekday`):
//! a pass over the mailboxes (for servers without IDLE, and as a safety net), the outbox
//! sweep, and the daily digest to the branches' and owners' staff.

use chrono::{DateTime, FixedOffset};
use cron::Schedule;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Jobs {
    pub poll: Schedule,
    pub outbox: Schedule,
    pub digest: Schedule,
    pub text: [(String, String); 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Poll,
    Outbox,
    Digest,
}

pub const DEFAULT_OUTBOX: &str = "0 * * * * *";
pub const DEFAULT_DIGEST: &str = "0 0 8 * * *";

impl Jobs {
    pub fn parse(poll: &str, outbox: &str, digest: &str) -> Result<Jobs, String> {
        let p = |key: &str, s: &str| Schedule::from_str(s).map_err(|e| format!("schedule.{key}: \"{s}\" is not a cron expression (sec min hour day month weekday): {e}"));
        Ok(Jobs {
            poll: p("poll", poll)?,
            outbox: p("outbox", outbox)?,
            digest: p("digest", digest)?,
            text: [("poll".into(), poll.into()), ("outbox".into(), outbox.into()), ("digest".into(), digest.into())],
        })
    }

    /// The next instant after `now` at which something is due, and every job due then
    /// (several schedules often meet: at 08:00:00 the poll, the outbox sweep and the
    /// digest are all due, and each of them must run).
    pub fn next(&self, now: DateTime<FixedOffset>) -> Option<(DateTime<FixedOffset>, Vec<Job>)> {
        let due: Vec<(DateTime<FixedOffset>, Job)> = [(Job::Poll, &self.poll), (Job::Outbox, &self.outbox), (Job::Digest, &self.digest)]
            .into_iter()
            .filter_map(|(job, s)| s.after(&now).next().map(|t| (t, job)))
            .collect();
        let at = due.iter().map(|(t, _)| *t).min()?;
        Some((at, due.into_iter().filter(|(t, _)| *t == at).map(|(_, j)| j).collect()))
    }

    pub fn describe(&self) -> String {
        self.text.iter().map(|(k, v)| format!("{k} \"{v}\"")).collect::<Vec<_>>().join(", ")
    }
}

/// A poll every `seconds` as a cron expression (the configuration's `poll_seconds`).
pub fn every_seconds(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("*/{} * * * * *", seconds.max(1)),
        _ => format!("0 */{} * * * *", (seconds / 60).clamp(1, 59)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_jobs_in_japan_time() {
        let j = Jobs::parse(&every_seconds(300), DEFAULT_OUTBOX, DEFAULT_DIGEST).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-07-04T07:59:30+09:00").unwrap();
        // At 08:00:00 the poll, the sweep and the digest meet: all three are due.
        let (t, jobs) = j.next(now).unwrap();
        assert_eq!((t.to_rfc3339(), jobs), ("2026-07-04T08:00:00+09:00".to_string(), vec![Job::Poll, Job::Outbox, Job::Digest]));
        // At 08:01:00 only the sweep.
        let (t, jobs) = j.next(DateTime::parse_from_rfc3339("2026-07-04T08:00:30+09:00").unwrap()).unwrap();
        assert_eq!((t.to_rfc3339(), jobs), ("2026-07-04T08:01:00+09:00".to_string(), vec![Job::Outbox]));
        assert!(Jobs::parse("every minute", DEFAULT_OUTBOX, DEFAULT_DIGEST).unwrap_err().contains("schedule.poll"));
    }
}
