//! What an operator sees of a running esurety (`operations.md` § Health and metrics):
//! whether it is ready ([`Health`] and [`readiness`], answered by `GET /readyz`), and the
//! metrics Prometheus scrapes (`[metrics] listen`, `GET /metrics`).
//!
//! Metrics are recorded where things happen, with the `metrics` crate's macros (a counter
//! nobody installed a recorder for costs nothing); [`Metrics::install`] puts the Prometheus
//! recorder in place once per process and [`Metrics::render`] writes the text format, with
//! the outbox's figures read from the store at that moment, so every daemon and web server
//! on one store reports the same backlog.

use chrono::{DateTime, FixedOffset};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Each watched mailbox's last pass, as the daemon tells it (empty under `esurety serve`,
/// which runs no pass).
#[derive(Default)]
pub struct Health {
    mailboxes: Mutex<BTreeMap<String, Mailbox>>,
}

#[derive(Debug, Clone, Default)]
struct Mailbox {
    failing: Option<Failing>,
}

/// A run of failed passes of one mailbox.
#[derive(Debug, Clone)]
struct Failing {
    /// When the first failed, on the monotonic clock (how long it lasts) and as a time (what
    /// the reason says).
    since: Instant,
    at: DateTime<FixedOffset>,
    why: String,
    /// How long until the pass after the first failure: a failure younger than that is
    /// forgiven, since the next try may well pass.
    retry: Duration,
}

impl Health {
    /// The end of a pass: `failed` lists the mailboxes it could not read, with why; every
    /// other of `watched` was read. `retry` is how long until the next pass tries again.
    pub fn pass_done(&self, watched: &[String], failed: &[(String, String)], retry: Duration, now: DateTime<FixedOffset>) {
        let mut boxes = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        for address in watched {
            let entry = boxes.entry(address.clone()).or_default();
            match (failed.iter().find(|(a, _)| a == address), entry.failing.as_mut()) {
                (None, _) => entry.failing = None,
                (Some((_, why)), Some(f)) => f.why = why.clone(),
                (Some((_, why)), None) => entry.failing = Some(Failing { since: Instant::now(), at: now, why: why.clone(), retry }),
            }
        }
    }

    /// Why the mailboxes make it not ready: those whose failure has outlived its retry
    /// (a failure younger than that may well pass on the next try).
    fn reasons(&self) -> Vec<String> {
        let boxes = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        boxes.iter().filter_map(|(address, m)| {
            let f = m.failing.as_ref()?;
            (f.since.elapsed() > f.retry).then(|| format!("mailbox {address}: its passes have failed since {} ({})", f.at.format("%Y-%m-%d %H:%M:%S%:z"), f.why))
        }).collect()
    }
}

/// Why this process is not ready, if it is not (empty: ready): the store does not answer,
/// a mailbox's passes keep failing, or the oldest mail waiting in the outbox is older than
/// `stale_minutes`. `backlog` is the store's answer to [`Store::outbox_backlog`].
pub fn readiness(health: &Health, backlog: Result<(u64, Option<DateTime<FixedOffset>>), String>, stale_minutes: u64, now: DateTime<FixedOffset>) -> Vec<String> {
    let mut reasons = Vec::new();
    match backlog {
        Err(e) => reasons.push(format!("the store does not answer: {e}")),
        Ok((_, Some(oldest))) if (now - oldest).num_seconds() > stale_minutes as i64 * 60 => {
            reasons.push(format!("the oldest mail in the outbox has waited {} minutes (limit {stale_minutes})", (now - oldest).num_minutes()));
        }
        Ok(_) => {}
    }
    reasons.extend(health.reasons());
    reasons
}

/// The Prometheus recorder of this process.
pub struct Metrics {
    handle: PrometheusHandle,
}

static METRICS: OnceLock<Result<Metrics, String>> = OnceLock::new();

/// Seconds a pass may take, as the histogram's buckets.
const PASS_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

impl Metrics {
    /// The recorder, installed on the first call (later calls return the same one).
    pub fn install() -> Result<&'static Metrics, String> {
        METRICS.get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("esurety_pass_seconds".into()), PASS_BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            describe();
            Ok(Metrics { handle })
        }).as_ref().map_err(Clone::clone)
    }

    /// The text exposition format, with the outbox's figures (`backlog`, read from the
    /// store now; absent when the store does not answer: the scrape still gives the rest).
    pub fn render(&self, backlog: Option<(u64, Option<DateTime<FixedOffset>>)>, now: DateTime<FixedOffset>) -> String {
        if let Some((pending, oldest)) = backlog {
            metrics::gauge!("esurety_outbox_pending").set(pending as f64);
            let age = oldest.map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
            metrics::gauge!("esurety_outbox_oldest_pending_seconds").set(age);
        }
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Every metric's help text and unit; those without labels start at zero, so a scrape
/// shows them before anything happened.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("esurety_messages_total", "Incoming messages given an outcome, by side (branch, owner) and outcome");
    describe_histogram!("esurety_pass_seconds", Unit::Seconds, "Time of one pass over the mailboxes (store, process, mark, deliver)");
    describe_gauge!("esurety_outbox_pending", "Outgoing mails waiting in the outbox (read from the store at each scrape)");
    describe_gauge!("esurety_outbox_oldest_pending_seconds", Unit::Seconds, "Age of the oldest outgoing mail waiting in the outbox (0 when none waits)");
    describe_counter!("esurety_deliveries_total", "Deliveries of outgoing mail to one recipient, by result (sent, retrying, failed)");
    describe_counter!("esurety_registry_checks_total", "Registry checks of number and key, by result (valid, mismatch, malformed, locked, …) and caller (owner_side, api, page, cli)");
    describe_counter!("esurety_certificates_issued_total", "Certificates issued (version 1), by product");
    describe_counter!("esurety_oauth_refreshes_total", "OAuth 2.0 access token refreshes for mailboxes, by result");
    describe_counter!("esurety_store_reconnects_total", "Times the store was opened or connected to again after it could not be written or reached (a restart, a failover to another host)");
    metrics::counter!("esurety_store_reconnects_total").absolute(0);
}
