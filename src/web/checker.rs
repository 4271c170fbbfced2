//! The registry's checks made through the web, in one thread with its own connection to
//! the store: each wakeup takes every check waiting (up to [`GROUP`]) and commits them in
//! one transaction (group commit: one `fsync` for many checks), then answers each. A
//! check's failure count, its record and its answer are therefore durable before the
//! caller hears the answer.

use crate::clock::Clock;
use crate::registry::{Lockout, Verification, token_caller, verify};
use crate::domain::Caller;
use crate::store::{CheckRecord, Store, StoreError, Tx};
use crate::engine::Engine;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Checks committed together at most.
const GROUP: usize = 256;
/// Checks waiting at most; beyond, the server answers 503 at once.
const QUEUE: usize = 4096;

pub enum Ask {
    /// The API: the token's hash; `reference` names the caller's question, so asking it
    /// again (a retry) does not count a failure twice.
    /// `sender` is the end sender the owner's system relays for, when it names one.
    Api { token_hash: [u8; 32], number: String, key: String, reference: Option<String>, sender: Option<String>, address: String },
    /// The lookup page (`via` = `page`, or `pdf` for its download).
    Page { number: String, key: String, address: String, via: &'static str },
}

pub enum Told {
    /// No live token with that hash: nothing was checked.
    NoToken,
    Checked(Verification),
}

struct Job {
    ask: Ask,
    reply: tokio::sync::oneshot::Sender<Result<Told, String>>,
}

#[derive(Clone)]
pub struct Checker {
    tx: SyncSender<Job>,
}

impl Checker {
    pub fn start(engine: Arc<Engine>, clock: Arc<dyn Clock>, lockout: Lockout) -> Result<Checker, StoreError> {
        let store = Store::open(&engine.config.store)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new().name("registry-checks".into())
            .spawn(move || run(store, engine, clock, lockout, rx))
            .expect("a thread starts");
        Ok(Checker { tx })
    }

    /// The answer, or why there is none (the store cannot be written, too many waiting).
    pub async fn ask(&self, ask: Ask) -> Result<Told, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match self.tx.try_send(Job { ask, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err("too many checks waiting".into()),
            Err(TrySendError::Disconnected(_)) => return Err("the registry's checker stopped".into()),
        }
        answer.await.map_err(|_| "the registry's checker stopped".to_string())?
    }
}

fn run(mut store: Store, engine: Arc<Engine>, clock: Arc<dyn Clock>, lockout: Lockout, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let now = clock.now();
        let answers = store.batch(|s| -> Result<Vec<Result<Told, String>>, StoreError> {
            // Every lock the batch's checks take, taken first and in one order: another
            // server's batch on the same store waits for this one instead of deadlocking.
            if s.kind() == crate::store::Kind::Postgres {
                s.write(|tx| tx.lock_all(&batch_keys(tx, &jobs)?))?;
            }
            Ok(jobs.iter().map(|j| s.write(|tx| one(tx, &engine, &j.ask, now, lockout)).map_err(|e: StoreError| e.to_string())).collect())
        });
        match answers {
            Ok(answers) => {
                for (j, a) in jobs.into_iter().zip(answers) {
                    let _ = j.reply.send(a);
                }
            }
            Err(e) => {
                tracing::error!(event = "registry_checks_failed", error = %e);
                for j in jobs {
                    let _ = j.reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// The names of the locks the checks of `jobs` will take ([`crate::registry::check_keys`]).
fn batch_keys(tx: &Tx, jobs: &[Job]) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::new();
    for j in jobs {
        let (number, sender, address) = match &j.ask {
            Ask::Api { token_hash, number, sender, address, .. } => match tx.token_id(token_hash)? {
                Some(id) => (number, Some(token_caller(id, sender.as_deref())), address),
                None => continue,
            },
            Ask::Page { number, address, .. } => (number, None, address),
        };
        let Some(number) = crate::domain::CertificateNumber::parse(number) else { continue };
        keys.extend(crate::registry::check_keys(&number.to_string(), Caller { sender: sender.as_deref(), address: Some(address), known: false }));
    }
    Ok(keys)
}

fn one(tx: &Tx, engine: &Engine, ask: &Ask, now: chrono::DateTime<chrono::FixedOffset>, lockout: Lockout) -> Result<Told, StoreError> {
    let secrets = &engine.secrets;
    match ask {
        Ask::Api { token_hash, number, key, reference, sender, address } => {
            let Some(id) = tx.use_token(token_hash, now)? else { return Ok(Told::NoToken) };
            // Counted per end sender when the request names one: a stranger's guesses
            // relayed by the owner's system spend only that stranger's budget.
            let known = sender.as_deref().is_some_and(|s| engine.config.contractor_by_email(s.trim()).is_some());
            let sender = token_caller(id, sender.as_deref());
            // A reference counts once per number and key asked under it: a retry is the
            // same question, another key under the same reference is a new one.
            let asked_for = reference.as_ref().map(|r| format!("token {id}: {r}: {}", secrets.tag(key)));
            let v = verify(tx, secrets, number, key, Caller { sender: Some(&sender), address: Some(address), known }, asked_for.as_deref(), now, lockout)?;
            tx.record_check(CheckRecord { via: "api", token: Some(id), address: Some(address), number, result: v.result() }, now)?;
            // The right key: this token may follow the number's events (`lifecycle.md`).
            if let Verification::Valid { number, .. } = &v {
                tx.remember_token_number(id, number, now)?;
            }
            Ok(Told::Checked(v))
        }
        Ask::Page { number, key, address, via } => {
            let v = verify(tx, secrets, number, key, Caller { sender: None, address: Some(address), known: false }, None, now, lockout)?;
            tx.record_check(CheckRecord { via, token: None, address: Some(address), number, result: v.result() }, now)?;
            Ok(Told::Checked(v))
        }
    }
}
