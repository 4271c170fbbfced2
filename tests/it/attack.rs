//! Attacks on issue 23's change, as a stranger with a mail client, a browser and a second
//! daemon would make them, written by a reviewer who did not write the change. Each test
//! here failed when it was written (the finding in its comment); it now guards the fix.

use crate::common::Setup;
use crate::registry_service::{Serving, company, owner};
use crate::support;
use serde_json::Value;

const KWSA: &str = "keiyaku@kwsa.example";
const MARUICHI: &str = "soumu@maruichi.example";

/// `n` made-up pairs from `from`, numbers starting at `first`.
fn made_up_pairs(from: &str, mid: &str, first: u32, n: u32) -> Vec<u8> {
    let body: String = (first..first + n).map(|k| format!("保証契約番号：35075-{:05}M\n認証キー：CDEF34679HJK\n\n", k)).collect();
    format!("From: {from}\r\nTo: {KWSA}\r\nSubject: guesses\r\nMessage-ID: {mid}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").into_bytes()
}

fn real_submission(company: &Setup, o: &Setup) {
    let m = company.mails(MARUICHI).remove(0);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<real@maruichi.example>", &m.raw));
}

fn real_results(o: &Setup) -> Vec<Value> {
    o.json(&["submissions"]).as_array().unwrap().iter().filter(|s| s["message_id"] == "<real@maruichi.example>").cloned().collect()
}

/// Found: the relay cap (2,000 failures an hour through one client address calling
/// with a token, all end senders together) is a weapon. 200 forged senders, each with one
/// mail of ten made-up pairs (each stops at its own ten on the owner's side, as designed),
/// fill the owner's address budget at the registry; from then on the registry answers
/// `too_many_failures` for every sender the owner names, and the real contractor's
/// submission waited for an hour, and again each hour the stranger sent 200 mails. Fixed:
/// an end sender that is one of the company's registered contractors (or has given a right
/// key through the token before) is known, and strangers' failures never stop it.
#[test]
fn a_flood_of_forged_senders_does_not_keep_the_real_contractor_waiting() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let o = owner(&registry.url, &token);
    for s in 0..200u32 {
        o.drop_mail(KWSA, &made_up_pairs(&format!("forger{s}@stranger{s}.example"), &format!("<g{s}@stranger.example>"), 1000 + s * 10, 10));
    }
    o.once();
    real_submission(&company, &o);
    let said = String::from_utf8_lossy(&o.once().stderr).into_owned();
    let real = real_results(&o);
    let failures = company.db().count("SELECT count(*) FROM registry_failures");
    assert_eq!(real.len(), 2, "the real contractor's submission was not checked ({failures} failures at the registry)\nowner: {}",
               said.lines().filter(|l| l.contains("wait") || l.contains("lock") || l.contains("left")).take(5).collect::<Vec<_>>().join("\n"));
    assert!(real.iter().all(|s| s["result"] == "accepted"), "{real:?}");
}

/// Found: the owner's client bounded the sender it names at 200 characters *before*
/// lower-casing it with Unicode rules, and the registry bounds it after: an address of
/// 101 to 200 `İ` (U+0130, lower-cased to two characters) is sent as 202+ characters and
/// refused `422 too_long`, which the owner takes as the registry being unavailable. The
/// stranger's submission then never got an outcome (and kept its bytes, key included).
/// Fixed: a sender longer than the API takes is named by its digest, and a question the
/// registry refuses as asked (400, 413, 415, 422) leaves the pair to the owner's staff.
#[test]
fn a_sender_longer_once_lowercased_still_gets_an_outcome() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let o = owner(&registry.url, &token);
    let from = format!("{}@stranger.example", "İ".repeat(120));
    o.drop_mail(KWSA, &made_up_pairs(&from, "<dotted@stranger.example>", 5000, 1));
    let mut said = String::new();
    for _ in 0..3 {
        said = String::from_utf8_lossy(&o.once().stderr).into_owned();
    }
    let mut db = o.db();
    let pending = db.texts("SELECT state FROM messages WHERE state <> 'done'");
    assert!(pending.is_empty(), "a message is still without outcome after three passes: {pending:?}\n{}",
            said.lines().filter(|l| l.contains("registry") || l.contains("left")).take(4).collect::<Vec<_>>().join("\n"));
}
