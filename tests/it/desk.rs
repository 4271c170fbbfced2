//! The staff's hand: `esurety staff …` on what the daemon held, paper certificates to
//! print and mail given up on, checked through the mails that result, the PDFs written and
//! the JSON listings, with each action recorded with who did it and when.

use crate::common::{Setup, parse_mail, pdf_text};
use serde_json::Value;
use std::path::Path;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";
const STRANGER: &str = "x@stranger.example";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

/// The sample application's form in a plain UTF-8 mail, from `from`, with `edit` applied.
fn application(from: &str, mid: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    let body = edit(parse_mail(&fixture("valid/001.eml")).body);
    format!("From: {from}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

fn arr(v: Value) -> Vec<Value> {
    v.as_array().unwrap().clone()
}

fn actions(s: &Setup) -> Vec<(String, String, String)> {
    arr(s.json(&["staff", "actions"])).iter().map(|a| (a["by"].as_str().unwrap().to_string(), a["action"].as_str().unwrap().to_string(), a["target"].as_str().unwrap().to_string())).collect()
}

#[test]
fn a_held_application_is_released_as_the_registered_contractor_or_rejected_with_a_mailed_reason() {
    let s = Setup::new();
    // From an address nobody registered, naming 丸一建設 in its form: held, not answered.
    s.drop_mail(KANAGAWA, &application(STRANGER, "held-1@stranger.example", |b| b));
    s.drop_mail(KANAGAWA, &format!("From: {STRANGER}\r\nTo: {KANAGAWA}\r\nSubject: hello\r\nMessage-ID: <held-2@stranger.example>\r\n\r\nAre you there?\r\n").into_bytes());
    s.once();
    assert!(s.mails(MARUICHI).is_empty() && s.mails("relay").is_empty(), "held means nothing is sent");

    let held = arr(s.json(&["staff", "held"]));
    assert_eq!(held.len(), 2, "{held:?}");
    assert_eq!(held[0]["from"], STRANGER);
    assert_eq!(held[0]["contractor_named"], "丸一建設株式会社");
    assert!(held[0]["reason"].as_str().unwrap().contains("登録されたアドレスではありません"));
    let (app_id, other_id) = (held[0]["id"].as_i64().unwrap().to_string(), held[1]["id"].as_i64().unwrap().to_string());
    let list = s.json(&["staff", "list"]);
    assert_eq!(list["held"].as_array().unwrap().len(), 2);

    // Released: processed by the next pass as if 丸一建設 had sent it; the reply goes to its
    // registered address, never to the stranger.
    let out = s.run_ok(&["staff", "release", &app_id, "--by", "佐藤"]);
    assert!(out.contains("丸一建設株式会社"), "{out}");
    s.once();
    let done: Vec<_> = s.mails(MARUICHI).into_iter().filter(|m| m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].attachments.len(), 4);
    assert!(s.mails("relay").iter().all(|m| !m.to.iter().any(|t| t == STRANGER)));
    assert_eq!(arr(s.json(&["certificates"])).len(), 2);
    let again = s.run(&["staff", "release", &app_id, "--by", "佐藤"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("not held"), "a release happens once");

    // Rejected with a reason: the sender gets it, and nothing is issued.
    let reason = "お申込みは登録されたメールアドレスからお送りください。";
    s.run_ok(&["staff", "reject", &other_id, "--reason", reason, "--by", "鈴木"]);
    s.once();
    let told: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to.iter().any(|t| t == STRANGER)).collect();
    assert_eq!(told.len(), 1);
    assert!(told[0].subject.starts_with("【お知らせ】お送りいただいたメールについて"), "{}", told[0].subject);
    assert!(told[0].body.contains(reason) && told[0].body.contains("hello"), "{}", told[0].body);
    assert_eq!(told[0].in_reply_to.as_deref(), Some("<held-2@stranger.example>"));
    assert!(arr(s.json(&["staff", "held"])).is_empty());

    let a = actions(&s);
    assert_eq!(a, [("佐藤".to_string(), "release".to_string(), app_id), ("鈴木".to_string(), "reject".to_string(), other_id)]);
    let recorded = arr(s.json(&["staff", "actions"]));
    assert!(recorded.iter().all(|x| x["at"].as_str().unwrap().starts_with("2026-07-04T10:00:00")), "when, from the clock");
}

#[test]
fn paper_certificates_are_typeset_for_printing_and_marked_printed_once() {
    let s = Setup::new();
    // 前払金保証 on paper with a fee statement; 契約保証 electronic.
    s.drop_mail(KANAGAWA, &application(MARUICHI, "paper-1@maruichi.example", |b| {
        b.replacen("保証証書の形式：電子保証", "保証証書の形式：証書(紙)", 1).replacen("保証料計算書(紙)：希望しない", "保証料計算書(紙)：希望する", 1)
    }));
    s.once();
    let paper = arr(s.json(&["staff", "paper"]));
    assert_eq!(paper.len(), 1, "{paper:?}");
    assert_eq!(paper[0]["number"], "35075-00001M");
    assert_eq!(paper[0]["format"], "証書(紙)");

    let dir = s.dir.join("print");
    let listed = arr(s.json(&["staff", "paper", "-o", dir.to_str().unwrap()]));
    let files: Vec<String> = listed[0]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    assert_eq!(files.iter().map(|f| Path::new(f).file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>(), ["保証証書_35075-00001M.pdf", "保証料計算書_35075-00001M.pdf"]);
    let cert = pdf_text(&std::fs::read(&files[0]).unwrap());
    assert!(cert.contains("35075-00001M") && cert.contains("20,000,000"), "{cert}");
    assert!(!cert.contains("認証キー:") && !cert.contains("認証キー："), "no key on a paper certificate");

    s.run_ok(&["staff", "printed", "35075-00001M", "--by", "佐藤"]);
    assert!(arr(s.json(&["staff", "paper"])).is_empty());
    assert_eq!(s.json(&["certificate", "35075-00001M"])["print_state"], "printed");
    let twice = s.run(&["staff", "printed", "35075-00001M", "--by", "佐藤"]);
    assert!(!twice.status.success(), "already printed");
    assert_eq!(actions(&s), [("佐藤".to_string(), "printed".to_string(), "35075-00001M".to_string())]);
    let electronic = s.run(&["staff", "printed", "35075-00002K", "--by", "佐藤"]);
    assert!(!electronic.status.success() && String::from_utf8_lossy(&electronic.stderr).contains("not a paper certificate"));
}

#[test]
fn mail_given_up_on_is_listed_and_retried_by_staff_and_reaches_only_who_lacked_it() {
    let s = Setup::new();
    // The notice is also to go to an address outside (the relay), and the relay is broken.
    s.drop_mail(KANAGAWA, &application(MARUICHI, "fail-1@maruichi.example", |b| {
        b.replace("メールアドレス：soumu@maruichi.example", "メールアドレス：genba@partner.example")
    }));
    let relay = s.dir.join("mailboxes/relay");
    std::fs::remove_dir_all(&relay).unwrap();
    std::fs::write(&relay, b"not a Maildir").unwrap();
    // Every retry fails, a day apart, until the outbox gives up.
    for day in 4..=14 {
        let out = s.cmd().env("ESURETY_TEST_NOW", format!("2026-07-{day:02}T10:00:00+09:00")).args(["run", "--once"]).output().unwrap();
        assert!(out.status.success());
    }
    let failed = arr(s.json(&["staff", "failed"]));
    let completion = failed.iter().find(|f| f["kind"] == "completion").unwrap_or_else(|| panic!("{failed:?}"));
    assert!(completion["last_error"].as_str().unwrap().contains("relay"), "{completion}");
    assert_eq!(s.mails(MARUICHI).len(), 1, "the local recipient got it the first time");

    // The relay works again; staff retry; the next pass sends it to who lacked it only.
    std::fs::remove_file(&relay).unwrap();
    let mid = completion["message_id"].as_str().unwrap().to_string();
    s.run_ok(&["staff", "retry", &mid, "--by", "佐藤"]);
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 1, "not a second copy");
    let outside: Vec<_> = s.mails("relay").into_iter().filter(|m| m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).collect();
    assert_eq!(outside.len(), 1);
    let row = arr(s.json(&["outbox"])).into_iter().find(|o| o["message_id"] == mid.as_str()).unwrap();
    assert_eq!(row["status"], "sent");
    assert!(!arr(s.json(&["staff", "failed"])).iter().any(|f| f["message_id"] == mid.as_str()));
    assert_eq!(actions(&s), [("佐藤".to_string(), "retry".to_string(), mid)]);
}

/// A second copy of a message staff released from an untrusted address, released too: the
/// answer pointing to the certificates goes to the contractor's registered address, and the
/// untrusted address learns nothing.
#[test]
fn a_released_duplicate_is_answered_only_at_the_registered_address() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &application(STRANGER, "twice@stranger.example", |b| b));
    s.once();
    let first = arr(s.json(&["staff", "held"]))[0]["id"].as_i64().unwrap().to_string();
    s.run_ok(&["staff", "release", &first, "--by", "佐藤"]);
    s.once();
    assert_eq!(arr(s.json(&["certificates"])).len(), 2);
    // The same message again (a second delivery), held again, and released again.
    s.drop_mail(KANAGAWA, &application(STRANGER, "twice@stranger.example", |b| b));
    s.once();
    let second = arr(s.json(&["staff", "held"]))[0]["id"].as_i64().unwrap().to_string();
    s.run_ok(&["staff", "release", &second, "--by", "佐藤"]);
    s.once();
    assert_eq!(arr(s.json(&["certificates"])).len(), 2, "nothing issued twice");
    let to_stranger: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to.iter().any(|t| t == STRANGER)).collect();
    assert!(to_stranger.is_empty(), "nothing told to the untrusted address: {:?}", to_stranger.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let to_contractor = s.mails(MARUICHI);
    assert_eq!(to_contractor.len(), 2, "the completion and the answer to the copy");
    assert!(to_contractor.iter().all(|m| m.in_reply_to.as_deref() == Some("<twice@stranger.example>")));
}
