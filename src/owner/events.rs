//! Owner side: what a company tells about the certificates this owner accepted
//! (`lifecycle.md` § What the owner is told). Three ways bring an event, and each is
//! registered once (by registry and event id), against the accepted submission:
//!
//! - a notice by mail (`X-Esurety-Event`): anyone can write that header, so the notice is
//!   believed only when the registry, asked with our token, knows that event of that
//!   number; it is never answered, and the mail stays in the mailbox for people;
//! - a webhook to `esurety serve` (`web/webhooks.rs`), signed with the shared secret;
//! - the daily question, for every accepted certificate still in force, in case a push
//!   was lost.

use super::{OwnerFlow, OwnerOutcome};
use crate::clock::Clock;
use crate::domain::{CertificateNumber, Event, MessageOutcome};
use crate::error::ProcessError;
use crate::intake::letter::Letter;
use crate::registry::{Registry, RegistryError};
use crate::store::{Store, StoreError, StoredMessage};
use chrono::{DateTime, FixedOffset};

pub const VIA_MAIL: &str = "mail";
pub const VIA_WEBHOOK: &str = "webhook";
pub const VIA_POLL: &str = "poll";

/// Registers events told by `registry`, each once; how many were new.
pub fn register(store: &mut Store, registry: &str, events: &[Event], via: &str, now: DateTime<FixedOffset>) -> Result<usize, StoreError> {
    let new = store.write(|tx| -> Result<Vec<&Event>, StoreError> {
        let mut new = Vec::new();
        for e in events {
            if tx.register_owner_event(registry, e, via, now)? {
                new.push(e);
            }
        }
        Ok(new)
    })?;
    for e in &new {
        tracing::info!(event = "owner_event_registered", registry = %registry, number = %e.number, kind = e.kind.as_str(), event_id = %e.id, via = via);
        metrics::counter!("esurety_owner_events_total", "via" => via.to_string()).increment(1);
    }
    Ok(new.len())
}

impl OwnerFlow<'_> {
    /// A company's notice of event `id` (the mail's `X-Esurety-Event`) on the number its
    /// subject names. Confirmed by the registry, it is registered (`Some`); a registry away
    /// leaves it for a later pass; a mail whose header the registry does not confirm is
    /// `None`: read as any other mail (a submission is still checked, anything else left
    /// to people), so the header alone never changes what becomes of a mail.
    pub(super) fn notice(&self, store: &mut Store, msg: &StoredMessage, letter: &Letter, id: &str) -> Result<Option<OwnerOutcome>, ProcessError> {
        let now = self.clock.now();
        let number = crate::domain::certificate_numbers(&letter.subject).into_iter().next().and_then(|n| CertificateNumber::parse(&n)).map(|n| n.to_string());
        let confirmed = match &number {
            None => None,
            // Only the registry the number was accepted from speaks for it.
            Some(n) => match self.registry.events(store, store.accepted_issuer(n)?.as_deref(), n, None) {
                Ok((registry, events)) => events.iter().any(|e| e.id == id).then_some((registry, events)),
                Err(RegistryError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(event = "owner_event_wait", mailbox = %msg.mailbox, reason = %e);
                    return Err(ProcessError::Deferred(e.to_string()));
                }
            },
        };
        let Some((registry, events)) = confirmed else {
            tracing::warn!(event = "owner_event_unconfirmed", mailbox = %msg.mailbox, number = number.as_deref().unwrap_or(""), "an X-Esurety-Event the registry does not confirm: read as any other mail");
            return Ok(None);
        };
        // Every event the registry told of the number: an earlier notice that was lost is
        // registered with this one, in their order.
        register(store, &registry, &events, VIA_MAIL, now)?;
        let e = events.iter().find(|e| e.id == id).expect("confirmed");
        store.write(|tx| tx.finish_message(msg.id, MessageOutcome::Notice, Some(&format!("{} {} {}", e.number, e.kind, e.id)), now))?;
        Ok(Some(OwnerOutcome::Notice))
    }
}

/// The daily question: for every accepted certificate still in force as far as this owner
/// knows, the registry is asked for all its events (a few per certificate), so one lost
/// before a later one that came is found too; each is registered once. Returns how many
/// were new. A registry away is logged and asked again the next day.
pub fn poll(registry: &dyn Registry, store: &mut Store, clock: &dyn Clock) -> Result<usize, StoreError> {
    let mut new = 0;
    for f in store.followed()? {
        let number = f.number;
        match registry.events(store, f.issuer.as_deref(), &number, None) {
            Ok((name, events)) => new += register(store, &name, &events, VIA_POLL, clock.now())?,
            Err(RegistryError::Store(e)) => return Err(e),
            Err(e) => tracing::warn!(event = "owner_events_poll_failed", number = %number, error = %e),
        }
    }
    if new > 0 {
        tracing::info!(event = "owner_events_polled", new);
    }
    Ok(new)
}
