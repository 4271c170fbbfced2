//! The IMAP adapter (async-imap over tokio, rustls). A message is known by
//! `UIDVALIDITY:UID`; only UIDs above the highest one stored are fetched, with
//! `BODY.PEEK[]` so fetching marks nothing read. When UIDVALIDITY changes, messages are
//! matched to what is stored by Message-ID and never processed again; marking is `UID
//! STORE` of a flag or keyword, after a NOOP (a server may ignore a STORE on messages it
//! has not told this session about). A broken connection is dropped and made again on the
//! next call; what was stored stays stored.

use super::{CHECKED_KEYWORD, Mailbox, MailboxError, Mark};
use crate::config::{Account, Server};
use crate::store::{Incoming, Store};
use chrono::{DateTime, FixedOffset};
use futures::StreamExt;
use std::time::Duration;
use tokio::runtime::Handle;

pub use super::login::{ImapSession, Io};

/// Fetch this many messages' bodies per command.
const CHUNK: usize = 20;

pub struct ImapBox {
    address: String,
    side: crate::domain::Side,
    server: Server,
    account: Account,
    tokens: std::sync::Arc<crate::oauth::Tokens>,
    rt: Handle,
    session: Option<(ImapSession, u32)>,
    /// Messages with an internal date before this day are not read (`mail.process_since`).
    pub since: Option<chrono::NaiveDate>,
    /// A message larger than this (RFC822.SIZE, asked before fetching) is not fetched
    /// whole: only its header is stored, with its size (`limits.max_message_mib`).
    pub max_bytes: usize,
}

impl ImapBox {
    pub fn new(address: String, side: crate::domain::Side, server: Server, account: Account, tokens: std::sync::Arc<crate::oauth::Tokens>, rt: Handle) -> Self {
        ImapBox { address, side, server, account, tokens, rt, session: None, since: None, max_bytes: usize::MAX }
    }

    /// A session with the folder selected, and its UIDVALIDITY.
    fn session(&mut self) -> Result<&mut (ImapSession, u32), MailboxError> {
        if self.session.is_none() {
            self.session = Some(super::login::open(&self.rt, &self.server, &self.account, &self.tokens)?);
        }
        Ok(self.session.as_mut().expect("just connected"))
    }

    /// Runs an operation on the session; on any error the connection is dropped.
    fn with<T>(&mut self, f: impl AsyncFnOnce(&mut ImapSession, u32) -> Result<T, MailboxError>) -> Result<T, MailboxError> {
        let rt = self.rt.clone();
        let (session, validity) = self.session()?;
        let v = *validity;
        let r = rt.block_on(f(session, v));
        if r.is_err() {
            self.session = None;
        }
        r
    }
}

pub async fn select(mut session: ImapSession, folder: &str) -> Result<(ImapSession, u32), MailboxError> {
    let mb = session.select(folder).await.map_err(|e| MailboxError::Unavailable(format!("IMAP SELECT {folder}: {e}")))?;
    let validity = mb.uid_validity.ok_or_else(|| MailboxError::Unavailable(format!("IMAP {folder}: the server gave no UIDVALIDITY")))?;
    Ok((session, validity))
}

fn imap_err(e: async_imap::error::Error) -> MailboxError {
    MailboxError::Unavailable(format!("IMAP: {e}"))
}

/// (uid, RFC822.SIZE) of the given UIDs.
async fn sizes(s: &mut ImapSession, uids: &[u32]) -> Result<Vec<(u32, usize)>, MailboxError> {
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut out = Vec::new();
    let mut stream = s.uid_fetch(&set, "(UID RFC822.SIZE)").await.map_err(imap_err)?;
    while let Some(f) = stream.next().await {
        let f = f.map_err(imap_err)?;
        if let (Some(uid), Some(size)) = (f.uid, f.size)
            && uids.contains(&uid)
        {
            out.push((uid, size as usize));
        }
    }
    Ok(out)
}

/// (uid, body) of the given UIDs (BODY.PEEK[]: nothing is marked read).
async fn bodies(s: &mut ImapSession, uids: &[u32], what: &str) -> Result<Vec<(u32, Vec<u8>)>, MailboxError> {
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut out = Vec::new();
    let mut stream = s.uid_fetch(&set, format!("(UID {what})")).await.map_err(imap_err)?;
    while let Some(f) = stream.next().await {
        let f = f.map_err(imap_err)?;
        if let Some(uid) = f.uid
            && uids.contains(&uid)
        {
            let body = f.body().or_else(|| f.header()).unwrap_or_default().to_vec();
            out.push((uid, body));
        }
    }
    drop(stream);
    out.sort_by_key(|(u, _)| *u);
    Ok(out)
}

async fn uids_above(s: &mut ImapSession, last: u32, since: Option<chrono::NaiveDate>) -> Result<Vec<u32>, MailboxError> {
    s.noop().await.map_err(imap_err)?;
    let since = since.map(|d| format!(" SINCE {}", d.format("%-d-%b-%Y"))).unwrap_or_default();
    let found = s.uid_search(format!("UID {}:*{since}", last + 1)).await.map_err(imap_err)?;
    // `n:*` also returns the highest message when its UID is below n: filter.
    let mut v: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
    v.sort_unstable();
    Ok(v)
}

impl Mailbox for ImapBox {
    fn address(&self) -> &str {
        &self.address
    }

    fn fetch_new(&mut self, store: &mut Store, now: DateTime<FixedOffset>) -> Result<usize, MailboxError> {
        let validity = self.session()?.1;
        let address = self.address.clone();
        let side = self.side;
        let last = store.imap_highwater(&address, validity)?;
        let resync = match store.resync_state(&address, validity)? {
            Some((through, false)) => Some(through),
            Some((_, true)) => None,
            None if last.is_none() && store.other_validity(&address, validity)? => {
                tracing::warn!(event = "uidvalidity_changed", mailbox = %address, validity = validity);
                store.set_resync(&address, validity, 0, false)?;
                Some(0)
            }
            None => None,
        };
        if let Some(through) = resync {
            return self.resync(store, validity, through, now);
        }
        let since = self.since;
        let uids = self.with(async |s, _| uids_above(s, last.unwrap_or(0), since).await)?;
        let mut n = 0;
        for chunk in uids.chunks(CHUNK) {
            let got = self.fetch_bounded(chunk)?;
            n += store.batch(|store| self.record(store, got, validity, side, now))?;
        }
        Ok(n)
    }

    fn ready(&mut self) -> Result<(), MailboxError> {
        self.session().map(|_| ())
    }

    fn mark(&mut self, source_uid: &str, mark: Mark) -> Result<(), MailboxError> {
        let Some((v, uid)) = source_uid.split_once(':') else { return Ok(()) };
        let validity = self.session()?.1;
        if v != validity.to_string() {
            return Ok(()); // from an older UIDVALIDITY and not found again: nothing to mark
        }
        let flag = match mark {
            Mark::Processed => "\\Seen".to_string(),
            Mark::Held => "\\Flagged".to_string(),
            Mark::Checked => CHECKED_KEYWORD.to_string(),
        };
        let uid = uid.to_string();
        let move_to = self.account.move_processed_to.clone().filter(|_| mark != Mark::Held);
        self.with(async move |s, _| {
            s.noop().await.map_err(imap_err)?;
            let mut st = s.uid_store(&uid, format!("+FLAGS ({flag})")).await.map_err(imap_err)?;
            while let Some(r) = st.next().await {
                r.map_err(imap_err)?;
            }
            drop(st);
            if let Some(folder) = move_to {
                let _ = s.create(&folder).await; // exists already, most of the time
                s.uid_mv(&uid, &folder).await.map_err(imap_err)?;
            }
            Ok(())
        })
    }
}

impl ImapBox {
    /// After a UIDVALIDITY change: every message in the folder (since `process_since`), in
    /// UID order and in chunks, is either matched by Message-ID to what was stored under the
    /// old UIDVALIDITY (it takes its new UID and is never processed again) or stored as new.
    /// Each chunk commits with the UID it reached, so an interrupted resync resumes there:
    /// nothing below it is lost, nothing above it stored twice.
    fn resync(&mut self, store: &mut Store, validity: u32, through: u32, now: DateTime<FixedOffset>) -> Result<usize, MailboxError> {
        let (address, side, since) = (self.address.clone(), self.side, self.since);
        let all = self.with(async |s, _| uids_above(s, through, since).await)?;
        let (mut n, mut matched) = (0, 0);
        for chunk in all.chunks(CHUNK) {
            let heads = self.with(async |s, _| bodies(s, chunk, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]").await)?;
            let mut rekey = Vec::new();
            let mut fresh = Vec::new();
            // As many messages with one Message-ID take new UIDs as were stored under the
            // old UIDVALIDITY; a copy beyond those (a resend, a second delivery) was never
            // stored, and is stored now, as new.
            let mut left: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
            for &uid in chunk {
                let mid = heads.iter().find(|(u, _)| *u == uid).and_then(|(_, h)| crate::intake::letter::message_id(h));
                let Some(m) = mid else {
                    fresh.push(uid);
                    continue;
                };
                let n = match left.get_mut(&m) {
                    Some(n) => n,
                    None => left.entry(m.clone()).or_insert(store.stored_elsewhere(&address, &m, validity)?),
                };
                if *n > 0 {
                    *n -= 1;
                    rekey.push((uid, m));
                } else {
                    fresh.push(uid);
                }
            }
            let got = if fresh.is_empty() { Vec::new() } else { self.fetch_bounded(&fresh)? };
            let reached = *chunk.last().expect("chunks are not empty");
            n += store.batch(|store| -> Result<usize, MailboxError> {
                for (uid, m) in &rekey {
                    store.rekey_by_message_id(&address, m, &format!("{validity}:{uid}"))?;
                }
                let k = self.record(store, got, validity, side, now)?;
                store.set_resync(&address, validity, reached, false)?;
                Ok(k)
            })?;
            matched += rekey.len();
            crate::faults::point("resynced_chunk");
        }
        store.set_resync(&address, validity, all.last().copied().unwrap_or(through), true)?;
        tracing::warn!(event = "uidvalidity_resynced", mailbox = %address, validity = validity, matched = matched, new = n);
        Ok(n)
    }

    /// The messages of these UIDs, each with its size. Sizes are asked first: a message
    /// over the limit is fetched as its header only, never whole.
    fn fetch_bounded(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>, usize)>, MailboxError> {
        let max = self.max_bytes;
        self.with(async |s, _| {
            // A UID the server gave no size for is fetched whole, never skipped.
            let sizes = sizes(s, uids).await?;
            let size_told = |u: &u32| sizes.iter().find(|(x, _)| x == u).map(|(_, n)| *n).unwrap_or(0);
            let (small, large): (Vec<(u32, usize)>, Vec<(u32, usize)>) = uids.iter().map(|u| (*u, size_told(u))).partition(|(_, n)| *n <= max);
            let size_of = |u: u32, of: &[(u32, usize)]| of.iter().find(|(x, _)| *x == u).map(|(_, n)| *n).unwrap_or(0);
            let mut got = Vec::new();
            if !small.is_empty() {
                let uids: Vec<u32> = small.iter().map(|(u, _)| *u).collect();
                got.extend(bodies(s, &uids, "BODY.PEEK[]").await?.into_iter().map(|(u, raw)| (u, raw, size_of(u, &small))));
            }
            if !large.is_empty() {
                let uids: Vec<u32> = large.iter().map(|(u, _)| *u).collect();
                got.extend(bodies(s, &uids, "BODY.PEEK[HEADER]").await?.into_iter().map(|(u, head)| (u, head, size_of(u, &large))));
            }
            got.sort_by_key(|(u, _, _)| *u);
            Ok(got)
        })
    }

    /// Stores fetched messages (the caller's batch commits them together).
    fn record(&self, store: &mut Store, got: Vec<(u32, Vec<u8>, usize)>, validity: u32, side: crate::domain::Side, now: DateTime<FixedOffset>) -> Result<usize, MailboxError> {
        let mut n = 0;
        for (uid, raw, size) in got {
            let message_id = crate::intake::letter::message_id(&raw);
            let incoming = Incoming { mailbox: self.address.clone(), side, source_uid: format!("{validity}:{uid}"), raw, size };
            if store.record_incoming(&incoming, message_id.as_deref(), now)?.is_some() {
                tracing::info!(event = "received", mailbox = %self.address, message_id = message_id.as_deref().unwrap_or(""), uid = uid);
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Waits until the server tells of a change in the folder (IDLE), or `max` has passed.
/// A separate connection from the one that fetches, so a pass never waits for IDLE.
pub async fn wait_for_change(server: &Server, account: &Account, tokens: &std::sync::Arc<crate::oauth::Tokens>, max: Duration) -> Result<bool, MailboxError> {
    let (session, _) = super::login::open_async(server, account, tokens).await?;
    let mut idle = session.idle();
    idle.init().await.map_err(imap_err)?;
    tracing::info!(event = "idle_ready", mailbox = %account.address);
    let (wait, _stop) = idle.wait_with_timeout(max);
    let changed = matches!(wait.await.map_err(imap_err)?, async_imap::extensions::idle::IdleResponse::NewData(_));
    let mut session = idle.done().await.map_err(imap_err)?;
    let _ = session.logout().await;
    Ok(changed)
}
