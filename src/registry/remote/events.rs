//! The owner side asks a registry what happened to a certificate it accepted
//! (`GET /api/v1/certificates/{number}/events?since=`, `lifecycle.md`): to confirm a
//! notice that came by mail, and once a day in case a push was lost.

use super::{RemoteRegistries, Remote};
use crate::domain::Event;
use crate::registry::RegistryError;
use serde_json::Value;

/// The most events read from one answer.
const MAX_EVENTS: usize = 1000;

impl RemoteRegistries {
    /// The events of `number` after `since` from the registry of `issuer` (or each that
    /// may hold the number, until one knows it): (that registry's issuer, events). A
    /// registry that does not know the number for our token answers 404: none.
    pub fn events_of(&self, issuer: Option<&str>, number: &str, since: Option<&str>) -> Result<(String, Vec<Event>), RegistryError> {
        let remotes: Vec<&Remote> = match issuer.and_then(|i| self.named(i)) {
            Some(r) => vec![r],
            None => self.candidates(number),
        };
        let mut failed = None;
        for r in remotes {
            match self.ask_events(r, number, since) {
                Ok(Some(events)) => return Ok((r.config.issuer.clone(), events)),
                Ok(None) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok((issuer.unwrap_or_default().to_string(), Vec::new())),
        }
    }

    fn ask_events(&self, remote: &Remote, number: &str, since: Option<&str>) -> Result<Option<Vec<Event>>, RegistryError> {
        let name = remote.config.issuer.clone();
        let unavailable = |reason: String| RegistryError::Unavailable { registry: name.clone(), reason };
        let mut path = format!("api/v1/certificates/{}/events", url::form_urlencoded::byte_serialize(number.as_bytes()).collect::<String>());
        if let Some(s) = since {
            path.push_str(&format!("?since={}", url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()));
        }
        // A registry found away (by this question or a check) is not asked again until
        // then: a pass meeting many notices waits one timeout, not one each.
        if let Some((until, why)) = remote.away.lock().expect("not poisoned").clone()
            && std::time::Instant::now() < until
        {
            return Err(unavailable(why));
        }
        let sent = self.rt.block_on(async {
            tokio::time::timeout(remote.config.timeout, remote.request(hyper::Method::GET, &path, Vec::new())).await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", remote.config.timeout.as_secs())))
        });
        let (status, headers, bytes) = sent.map_err(|why| {
            *remote.away.lock().expect("not poisoned") = Some((std::time::Instant::now() + super::AWAY, why.clone()));
            unavailable(why)
        })?;
        match status {
            200 => {
                let v: Value = serde_json::from_slice(&bytes).map_err(|_| unavailable("an answer that is not the API's".into()))?;
                let events = v.get("events").and_then(Value::as_array).ok_or_else(|| unavailable("an answer without events".into()))?;
                // Only this number's: a registry's answer never speaks for another.
                Ok(Some(events.iter().take(MAX_EVENTS).filter_map(crate::registry::json::read_event).filter(|e| e.number == number).collect()))
            }
            404 => Ok(None),
            401 | 403 => Err(RegistryError::Refused { registry: name, status }),
            429 => {
                let secs = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(60).clamp(1, 86_400);
                let why = format!("too many requests; the registry asks to wait {secs} s");
                *remote.away.lock().expect("not poisoned") = Some((std::time::Instant::now() + std::time::Duration::from_secs(secs), why.clone()));
                Err(unavailable(why))
            }
            s => Err(unavailable(format!("HTTP {s}"))),
        }
    }
}
