//! `esurety staff …`: what waits for branch staff, and their actions (see [`crate::desk`]).

use super::{json as cj, open, print_json, sources};
use crate::desk::{self, Held};
use crate::engine::Engine;
use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Everything waiting for staff: held messages, paper certificates to print, failed mail.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Messages held for staff (unknown senders, unreadable mail …).
    Held {
        #[arg(long)]
        json: bool,
    },
    /// Process a held message as if the registered contractor had sent it (by the next
    /// pass: `esurety run --once` or the running daemon). Replies go to the contractor's
    /// registered address, never to the held message's sender.
    Release {
        /// The held message's number (first column of `staff held`).
        id: i64,
        /// The registered contractor to process it as (default: the one its form names).
        #[arg(long = "as")]
        as_contractor: Option<String>,
        /// Who does this (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Answer a held message with a reason, mailed to its sender; nothing is issued.
    Reject {
        id: i64,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// Paper certificates waiting to be printed; with -o, their printable PDFs are written.
    Paper {
        #[arg(long)]
        json: bool,
        /// Write each waiting certificate's PDFs (certificate, fee statement) into DIR.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Mark paper certificates printed.
    Printed {
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Outgoing mail given up on (a server refused it, or every retry failed).
    Failed {
        #[arg(long)]
        json: bool,
    },
    /// Put failed mail back in the outbox for a new round of attempts.
    Retry {
        /// Message-IDs (as `staff failed` shows them).
        #[arg(required = true)]
        message_ids: Vec<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// The record of staff actions: who did what, when.
    Actions {
        #[arg(long)]
        json: bool,
    },
}

/// Who acts: `--by`, else the login name. An action is never recorded without one.
pub(super) fn who(by: Option<String>) -> Result<String> {
    let name = by.or_else(|| ["USER", "LOGNAME", "USERNAME"].iter().find_map(|v| std::env::var(v).ok())).or_else(account)
        .map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    match name {
        Some(n) => Ok(n),
        None => bail!("say who you are with --by NAME (every staff action is recorded with who did it)"),
    }
}

/// The name of the account this runs as (its passwd entry), when the environment names
/// none (a service, a container).
fn account() -> Option<String> {
    // SAFETY: getpwuid's answer is read at once, on this thread, before any other call
    // that could overwrite it; a null pointer (no entry) is checked.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned())
    }
}

fn engine(config: &Path) -> Result<(Engine, crate::store::Store)> {
    let (config, store) = open(config)?;
    Ok((Engine::new(config)?, store))
}

fn held_json(h: &Held) -> Value {
    json!({
        "id": h.message.id, "mailbox": h.message.mailbox, "from": h.from, "subject": h.subject,
        "message_id": h.message.message_id, "received_at": h.message.received_at,
        "reason": h.message.detail, "contractor_named": h.named,
    })
}

fn paper_json(r: &crate::store::CertificateRow) -> Value {
    let mut v = cj::certificate(r);
    v["change_label"] = json!(r.latest.change_label());
    v
}

pub fn run(config: &Path, action: StaffCommand) -> Result<i32> {
    let (clock, rng) = sources()?;
    match action {
        StaffCommand::List { json } => {
            let (engine, store) = engine(config)?;
            let held = desk::held(&engine, &store)?;
            let paper = desk::paper(&store)?;
            let failed = desk::failed(&store)?;
            let webhooks = store.failing_webhooks()?;
            if json {
                print_json(&json!({
                    "held": held.iter().map(held_json).collect::<Vec<_>>(),
                    "paper": paper.iter().map(paper_json).collect::<Vec<_>>(),
                    "failed": failed.iter().map(cj::outbox).collect::<Vec<_>>(),
                    "webhooks": webhooks.iter().map(cj::webhook).collect::<Vec<_>>(),
                }));
            } else {
                println!("held messages: {}  (esurety staff held)", held.len());
                println!("paper certificates to print: {}  (esurety staff paper)", paper.len());
                println!("failed outgoing mail: {}  (esurety staff failed)", failed.len());
                println!("webhooks to owners not yet delivered: {}  (esurety webhooks; retried until delivered)", webhooks.len());
                for w in &webhooks {
                    println!("  webhook {} {} to {}: tried {} time(s), last: {}; next try {}", w.number, w.event.kind, w.endpoint, w.attempts, w.last_error.as_deref().unwrap_or(""), w.next_attempt_at);
                }
            }
        }
        StaffCommand::Held { json } => {
            let (engine, store) = engine(config)?;
            let held = desk::held(&engine, &store)?;
            if json {
                print_json(&Value::Array(held.iter().map(held_json).collect()));
            } else {
                for h in &held {
                    println!("{}  {}  from {}  「{}」  {}", h.message.id, h.message.received_at, h.from.as_deref().unwrap_or("-"), h.subject, h.message.detail.as_deref().unwrap_or(""));
                }
                if held.is_empty() {
                    println!("(nothing held)");
                }
            }
        }
        StaffCommand::Release { id, as_contractor, by } => {
            let by = who(by)?;
            let (engine, mut store) = engine(config)?;
            let name = desk::release(&engine, &mut store, id, as_contractor.as_deref(), &by, clock.as_ref())?;
            println!("released message {id} as {name} (by {by}); the next pass processes it (esurety run --once, or the running daemon)");
        }
        StaffCommand::Reject { id, reason, by } => {
            let by = who(by)?;
            let (engine, mut store) = engine(config)?;
            let to = desk::reject(&engine, &mut store, id, &reason, &by, clock.as_ref(), rng.as_ref())?;
            println!("rejected message {id} (by {by}); the reason goes to {to} with the next outbox sweep");
        }
        StaffCommand::Paper { json, output } => {
            let (engine, store) = engine(config)?;
            let rows = desk::paper(&store)?;
            let mut out = Vec::new();
            for r in &rows {
                let mut v = paper_json(r);
                if let Some(dir) = &output {
                    let files = desk::print(&engine, r, dir, clock.as_ref())?;
                    v["files"] = json!(files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
                }
                out.push(v);
            }
            if json {
                print_json(&Value::Array(out));
            } else {
                for v in &out {
                    let files = v["files"].as_array().map(|f| f.iter().filter_map(|p| p.as_str()).collect::<Vec<_>>().join(" ")).unwrap_or_default();
                    println!("{}  {}  {}  {}  {}", v["number"].as_str().unwrap_or(""), v["change_label"].as_str().unwrap_or("新規"), v["contractor"].as_str().unwrap_or(""), v["project"].as_str().unwrap_or(""), files);
                }
                if out.is_empty() {
                    println!("(no paper certificate waiting)");
                }
            }
        }
        StaffCommand::Printed { numbers, by } => {
            let by = who(by)?;
            let (_, mut store) = open(config)?;
            for n in &numbers {
                desk::printed(&mut store, n, &by, clock.as_ref())?;
                println!("{n}: marked printed (by {by})");
            }
        }
        StaffCommand::Failed { json } => {
            let (_, store) = open(config)?;
            let rows = desk::failed(&store)?;
            if json {
                print_json(&Value::Array(rows.iter().map(cj::outbox).collect()));
            } else {
                for r in &rows {
                    println!("{}  to={}  attempts={}  {}  ({})", r.message_id, r.recipients.join(","), r.attempts, r.subject, r.last_error.as_deref().unwrap_or(""));
                }
                if rows.is_empty() {
                    println!("(no failed mail)");
                }
            }
        }
        StaffCommand::Retry { message_ids, by } => {
            let by = who(by)?;
            let (_, mut store) = open(config)?;
            for m in &message_ids {
                desk::retry(&mut store, m, &by, clock.as_ref())?;
                println!("{m}: back in the outbox (by {by})");
            }
        }
        StaffCommand::Actions { json } => {
            let (_, store) = open(config)?;
            let rows = store.actions()?;
            if json {
                print_json(&Value::Array(rows.iter().map(|a| json!({"id": a.id, "at": a.at, "by": a.by, "action": a.action, "target": a.target, "detail": a.detail})).collect()));
            } else {
                for a in &rows {
                    println!("{}  {}  {}  {}  {}", a.at, a.by, a.action, a.target, a.detail.as_deref().unwrap_or(""));
                }
            }
        }
    }
    Ok(0)
}
