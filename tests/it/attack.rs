//! Attacks on issue 23's change, as a stranger with a mail client, a browser and a second
//! daemon would make them, written by a reviewer who did not write the change. Each test
//! here failed when it was written (the finding in its comment); it now guards the fix.

use crate::common::Setup;
use crate::registry_service::{Serving, company, fixture, owner};
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

/// A TCP proxy to `upstream` whose first connection is held (not forwarded) until the
/// returned sender is sent to: a registry that answers one daemon slowly (within its
/// timeout) and another at once. The second value counts connections taken.
fn gated_proxy(upstream: &str) -> (String, std::sync::mpsc::Sender<()>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let taken = std::sync::Arc::new(AtomicUsize::new(0));
    let count = taken.clone();
    std::thread::spawn(move || {
        let mut gate = Some(rx);
        for client in listener.incoming().map_while(Result::ok) {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let wait = if n == 0 { gate.take() } else { None };
            let upstream = upstream.clone();
            std::thread::spawn(move || {
                if let Some(rx) = wait {
                    let _ = rx.recv();
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else { return };
                let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut s1);
                    let _ = s1.shutdown(std::net::Shutdown::Write);
                });
                let (mut c2, mut s2) = (client, server);
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (url, tx, taken)
}

/// Found: on an owner's deployment shared by two daemons (PostgreSQL), a submission the
/// mail system delivered twice (two files, one Message-ID: a resend, a forward rule, a
/// fetchmail retry) is answered twice when the two daemons work at once: each leases one
/// copy, a copy's duplicate check looks only for a copy already *done*, and the lease
/// means no transaction (nor lock) covers the registry question, so both copies are asked,
/// registered and replied to. The contractor gets two replies and the owner's staff see
/// every pair twice. On one daemon (or on the branch side, in one transaction) the second
/// copy is a `duplicate`.
/// Fixed: the copies of one mail share a lock; on an owner's deployment a copy is not
/// leased while another is, so it waits for that one's outcome and is its duplicate.
#[test]
fn two_owner_daemons_answer_a_submission_delivered_twice_once() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let (url, release, taken) = gated_proxy(&registry.url);
    let o = owner(&url, &token);
    if !crate::pg::on_postgres() {
        o.use_store(&crate::pg::database());
    }
    o.edit_config(|t| t.replacen("[[registries]]", "[[registries]]\ntimeout_seconds = 60", 1));
    let m = company.mails(MARUICHI).remove(0);
    let copy = support::forward(MARUICHI, KWSA, "<real@maruichi.example>", &m.raw);
    o.drop_mail(KWSA, &copy);
    o.drop_mail(KWSA, &copy);
    // Daemon A takes the first copy and waits for the registry's answer…
    let a = o.cmd().args(["run", "--once"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while taken.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "daemon A never asked the registry");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // … while daemon B makes a pass of its own, and then A gets its answer.
    let b = o.run(&["run", "--once"]);
    release.send(()).unwrap();
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success() && b.status.success(), "A: {}\nB: {}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let mut db = o.db();
    let outcomes = db.texts("SELECT outcome FROM messages ORDER BY id");
    let replies = db.count("SELECT count(*) FROM outbox WHERE recipients LIKE '%soumu@maruichi.example%'");
    let real = real_results(&o);
    assert!(real.len() == 2 && replies == 1,
            "one submission delivered twice: {} submission rows (2 pairs), {replies} replies to the contractor, outcomes {outcomes:?}", real.len());
}

/// Found: two branch daemons on one PostgreSQL store, an application the mail system
/// delivered twice (two files, one Message-ID), each copy taken by one daemon at once:
/// the second copy's duplicate check looks only for a copy already *done*, so it is read
/// as a new application, waits for the works' lock, and is then refused by R10 (「この工事の
/// 契約保証は既に発行済みです…変更の場合は変更申込を」). The contractor who sent one mail gets a
/// completion and a rejection telling them to apply for a change; on one daemon the copy
/// is a `duplicate` pointing to the first. (Here the office's serial counter is held by
/// a session of the test for a moment, so that both daemons are mid-message together.)
/// Fixed: a copy's claim takes the copies' lock, so it waits for the other's outcome
/// (or, in a batch that holds other messages' locks, is left for the next batch).
#[test]
fn two_branch_daemons_answer_an_application_delivered_twice_as_a_duplicate() {
    let s = Setup::new();
    if !crate::pg::on_postgres() {
        s.use_store(&crate::pg::database());
    }
    s.once();
    let url = {
        let text: toml::Table = std::fs::read_to_string(s.config()).unwrap().parse().unwrap();
        text["store"].as_str().unwrap().to_string()
    };
    let mut holder = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    holder.batch_execute("INSERT INTO serials (office_code, last) VALUES ('35075', 0)").unwrap();
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("SELECT 1 FROM serials WHERE office_code = '35075' FOR UPDATE").unwrap();
    let app = fixture("valid/001.eml");
    s.drop_mail("kanagawa@ejcs.example", &app);
    s.drop_mail("kanagawa@ejcs.example", &app);
    let spawn = || s.cmd().args(["run", "--once"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let a = spawn();
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let waiting = |w: &mut postgres::Client| -> i64 {
        w.query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", &[]).unwrap().get(0)
    };
    let started = std::time::Instant::now();
    while waiting(&mut watch) < 1 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "daemon A never reached the serial counter");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let b = spawn();
    // B waits too (for the works' lock A holds), or has finished.
    std::thread::sleep(std::time::Duration::from_secs(3));
    hold.commit().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "A: {}\nB: {}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let mut db = s.db();
    let outcomes = db.texts("SELECT outcome FROM messages ORDER BY id");
    let replies: Vec<String> = s.mails(MARUICHI).iter().map(|m| m.subject.clone()).collect();
    assert_eq!(outcomes, [[Some("issued".to_string())], [Some("duplicate".to_string())]], "the contractor got: {replies:?}");
}

/// Found: after a UIDVALIDITY change, each message of the rebuilt folder whose Message-ID
/// was stored before is taken as that stored message (it takes the new UID and is never
/// processed). A second mail with that Message-ID that was never stored (a resend by the
/// contractor's client, or a stranger's replay, arriving around the change) finds no row
/// left to take and is dropped: never stored, no outcome, no reply, nothing for staff.
/// Without the UIDVALIDITY change the same second copy is a `duplicate` with a reply.
/// Fixed: as many copies take new UIDs as were stored; any further copy is stored as new.
#[test]
fn a_resent_mail_arriving_around_a_uidvalidity_change_still_gets_an_outcome() {
    use crate::mail_servers::{completions, configure, server_mails, users, wait_for};
    let s = Setup::new();
    let m = crate::servers::Servers::start(&users(&s));
    configure(&s, &m, false);
    let once = || {
        let out = crate::mail_servers::cmd(&s).args(["run", "--once"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let kanagawa = "kanagawa@ejcs.example";
    m.send(MARUICHI, &[kanagawa], &crate::common::application(0));
    wait_for("delivery", std::time::Duration::from_secs(10), || !server_mails(&m.maildir(kanagawa)).is_empty());
    once();
    wait_for("the notice", std::time::Duration::from_secs(10), || completions(&m).len() == 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let md = m.maildir(kanagawa);
    for f in ["dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"] {
        let _ = std::fs::remove_file(md.join(f));
    }
    // The same mail again (same Message-ID), under the new UIDVALIDITY.
    m.send(MARUICHI, &[kanagawa], &crate::common::application(0));
    wait_for("delivery", std::time::Duration::from_secs(10), || server_mails(&md).len() == 2);
    once();
    let mut db = s.db();
    let stored = db.texts("SELECT source_uid, outcome FROM messages ORDER BY id");
    assert_eq!(stored.len(), 2, "the second delivery was never stored (no outcome, no reply): {stored:?}");
}
