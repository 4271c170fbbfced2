//! The owner side end to end: submissions built from what the branch side really issued,
//! checked by `run --once`, read back through `submissions --json`, the reply in the
//! contractor's Maildir and the flags in the owner's Maildir.

use crate::common::{Mail, Setup, key_in, pdf_text};
use crate::support;
use serde_json::Value;
use std::path::Path;

const KWSA: &str = "keiyaku@kwsa.example";
const TORIDE_CITY: &str = "keiyaku@city.toride.example";
const MARUICHI: &str = "soumu@maruichi.example";
const TORIDE_KOGYO: &str = "info@toride-kogyo.example";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

/// A setup where the branch side has issued 35075-00001M/00002K (for the water authority,
/// to 丸一建設) and 08075-00001M (for 取手市, to 取手興業); returns their completion mails.
fn issued() -> (Setup, Mail, Mail) {
    let s = Setup::new();
    s.drop_mail("kanagawa@ejcs.example", &fixture("valid/001.eml"));
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    let m = s.mails(MARUICHI).remove(0);
    let t = s.mails(TORIDE_KOGYO).remove(0);
    (s, m, t)
}

fn submissions(s: &Setup) -> Vec<Value> {
    s.json(&["submissions"]).as_array().unwrap().clone()
}

fn notice(m: &Mail, number: &str) -> Vec<u8> {
    m.attachments.iter().find(|(n, _)| n == &format!("認証キーのお知らせ_{number}.pdf")).unwrap().1.clone()
}

#[test]
fn the_whole_completion_mail_forwarded_is_accepted_once_and_answered_once() {
    let (s, m, _) = issued();
    let fwd = support::forward(MARUICHI, KWSA, "<fwd-1@maruichi.example>", &m.raw);
    let uid = s.drop_mail(KWSA, &fwd);
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 2, "{subs:?}");
    for (sub, number) in subs.iter().zip(["35075-00001M", "35075-00002K"]) {
        assert_eq!(sub["number"], number);
        assert_eq!(sub["result"], "accepted");
        assert_eq!(sub["owner"], "神奈川県内広域水道企業団 企業長");
        assert_eq!(sub["from"], MARUICHI);
        assert_eq!(sub["message_id"], "<fwd-1@maruichi.example>");
        assert_eq!(sub["reasons"], serde_json::json!([]));
        assert!(sub["received_at"].as_str().unwrap().starts_with("2026-07-04T10:00:00"));
    }
    let replies: Vec<Mail> = s.mails(MARUICHI).into_iter().filter(|r| r.subject.starts_with("【電子保証】受付結果のお知らせ")).collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].from, KWSA);
    assert_eq!(replies[0].in_reply_to.as_deref(), Some("<fwd-1@maruichi.example>"));
    assert!(replies[0].body.contains("35075-00001M") && replies[0].body.contains("○○浄水場△△修繕工事"), "{}", replies[0].body);
    // Marked with a keyword a client shows, left unread, not deleted.
    let files = s.files(KWSA);
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].0.as_str(), files[0].1.as_str()), (uid.as_str(), "a"));
    let kw = std::fs::read_to_string(s.maildir(KWSA).join("dovecot-keywords")).unwrap();
    assert_eq!(kw.trim(), "0 esurety-checked");

    // The same submission delivered again: registered and answered once.
    s.drop_mail(KWSA, &fwd);
    s.once();
    assert_eq!(submissions(&s).len(), 2);
    assert_eq!(s.mails(MARUICHI).iter().filter(|r| r.subject.starts_with("【電子保証】受付結果")).count(), 1);
}

#[test]
fn a_notice_attached_among_other_documents_and_a_typed_key_are_accepted() {
    let (s, m, t) = issued();
    s.drop_mail(KWSA, &support::attach(MARUICHI, KWSA, "<att-1@maruichi.example>", "認証キーのお知らせ_35075-00002K.pdf", &notice(&m, "35075-00002K")));
    let key = key_in(&pdf_text(&notice(&t, "08075-00001M"))).unwrap();
    s.drop_mail(TORIDE_CITY, &support::typed(TORIDE_KOGYO, TORIDE_CITY, "<typed-1@toride-kogyo.example>", "０８０７５－００００１Ｍ", &key.to_lowercase()));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 2, "{subs:?}");
    let by = |n: &str| subs.iter().find(|x| x["number"] == n).unwrap_or_else(|| panic!("{n} registered: {subs:?}")).clone();
    let (a, t) = (by("35075-00002K"), by("08075-00001M"));
    assert_eq!((a["result"].as_str(), a["source"].as_str(), a["owner"].as_str()), (Some("accepted"), Some("pdf"), Some("神奈川県内広域水道企業団 企業長")));
    assert_eq!((t["result"].as_str(), t["source"].as_str(), t["owner"].as_str()), (Some("accepted"), Some("body"), Some("取手市長")));
    assert_eq!(s.mails(TORIDE_KOGYO).iter().filter(|r| r.subject.starts_with("【電子保証】受付結果")).count(), 1);
}

#[test]
fn a_wrong_key_tells_nothing_about_the_certificate() {
    let (s, _, t) = issued();
    let key = key_in(&pdf_text(&notice(&t, "08075-00001M"))).unwrap();
    let wrong: String = key.chars().rev().collect();
    s.drop_mail(TORIDE_CITY, &support::typed(TORIDE_KOGYO, TORIDE_CITY, "<typed-2@toride-kogyo.example>", "08075-00001M", &wrong));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs[0]["result"], "rejected");
    assert!(subs[0]["reasons"][0].as_str().unwrap().contains("一致しません"));
    let reply = s.mails(TORIDE_KOGYO).into_iter().find(|r| r.subject.starts_with("【電子保証】受付結果")).unwrap();
    assert!(reply.body.contains("一致しません"));
    for secret in ["取手市立第一小学校体育館改修工事", "35,200,000", &key] {
        assert!(!reply.body.contains(secret), "the reply tells {secret}");
    }
}

#[test]
fn another_owners_certificate_is_rejected_with_the_reason() {
    let (s, m, _) = issued();
    s.drop_mail(TORIDE_CITY, &support::attach(MARUICHI, TORIDE_CITY, "<wrong-owner@maruichi.example>", "認証キーのお知らせ_35075-00001M.pdf", &notice(&m, "35075-00001M")));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["result"], "rejected");
    assert!(subs[0]["reasons"][0].as_str().unwrap().contains("神奈川県内広域水道企業団"), "{}", subs[0]);
}

#[test]
fn a_notice_typeset_by_another_tool_with_spaced_labels_is_read_and_accepted() {
    let (s, m, _) = issued();
    let key = key_in(&pdf_text(&notice(&m, "35075-00001M"))).unwrap();
    let foreign = support::foreign_notice("35075-00001M", &key, "○○浄水場△△修繕工事", "丸一建設株式会社");
    // What an extractor sees: spaced labels, values elsewhere.
    let text = pdf_text(&foreign);
    assert!(!text.contains("保証契約番号:35075") && !text.contains("保証契約番号35075"), "the layout keeps values away from labels: {text}");
    let path = s.dir.join("foreign.pdf");
    std::fs::write(&path, &foreign).unwrap();
    let ex = s.json(&["extract", path.to_str().unwrap()]);
    assert_eq!(ex["found"][0]["number"], "35075-00001M");
    assert_eq!(ex["found"][0]["key"], key.as_str());
    assert_eq!(ex["found"][0]["source"], "pdf");
    s.drop_mail(KWSA, &support::attach(MARUICHI, KWSA, "<foreign@maruichi.example>", "notice.pdf", &foreign));
    s.once();
    let subs = submissions(&s);
    assert_eq!((subs[0]["number"].as_str(), subs[0]["result"].as_str()), (Some("35075-00001M"), Some("accepted")), "{subs:?}");
}

#[test]
fn a_notice_whose_works_were_altered_is_rejected() {
    let (s, m, _) = issued();
    let key = key_in(&pdf_text(&notice(&m, "35075-00001M"))).unwrap();
    let forged = support::altered_notice(&s, "35075-00001M", &key, "××浄水場全面更新工事");
    assert!(pdf_text(&forged).contains("××浄水場全面更新工事"));
    s.drop_mail(KWSA, &support::attach(MARUICHI, KWSA, "<forged@maruichi.example>", "notice.pdf", &forged));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs[0]["result"], "rejected", "{subs:?}");
    assert!(subs[0]["reasons"][0].as_str().unwrap().contains("工事名"), "{}", subs[0]);
}

#[test]
fn unrelated_mail_in_the_shared_mailbox_is_left_exactly_as_it_was() {
    let (s, _, _) = issued();
    let relay_before = s.mails("relay").len();
    let raw = b"From: somu@kwsa.example\r\nTo: keiyaku@kwsa.example\r\nSubject: =?utf-8?B?5YWl5pyt6Kqs5piO5Lya?=\r\nMessage-ID: <meeting@kwsa.example>\r\n\r\nNext week.\r\n";
    let uid = s.drop_mail(KWSA, raw);
    let hostile = b"From: x@evil.example\r\nTo: keiyaku@kwsa.example\r\nSubject: doc\r\nMessage-ID: <bad-pdf@evil.example>\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\r\n1 0 obj << /Kids [1 0 R] >> endobj trailer << /Root 1 0 R >>\r\n";
    let uid2 = s.drop_mail(KWSA, hostile);
    s.once();
    s.once();
    let mut files = s.files(KWSA);
    files.sort();
    let mut want = vec![(uid, String::new(), true), (uid2, String::new(), true)];
    want.sort();
    assert_eq!(files, want, "still in new/, no flags");
    assert!(submissions(&s).is_empty());
    assert_eq!(s.mails("relay").len(), relay_before, "no reply to anyone");
    assert_eq!(std::fs::read(s.maildir(KWSA).join("new").join(&want[0].0)).unwrap().len(), if want[0].0.ends_with(".T3.testhost") { raw.len() } else { hostile.len() });
}

#[test]
fn a_crash_in_the_middle_neither_loses_nor_doubles_a_register_entry_or_a_reply() {
    for point in ["stored", "processed", "marked", "delivered_before_record"] {
        let (s, m, _) = issued();
        s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd-crash@maruichi.example>", &m.raw));
        let out = s.cmd().args(["run", "--once"]).env("ESURETY_CRASH_AT", point).output().unwrap();
        assert!(!out.status.success(), "{point}");
        s.read_all(MARUICHI);
        s.once();
        assert_eq!(submissions(&s).len(), 2, "{point}");
        assert_eq!(s.mails(MARUICHI).iter().filter(|r| r.subject.starts_with("【電子保証】受付結果")).count(), 1, "{point}");
    }
}

#[test]
fn failures_lock_a_number_and_the_right_key_works_after_the_lock() {
    let (s, m, _) = issued();
    let key = key_in(&pdf_text(&notice(&m, "35075-00001M"))).unwrap();
    let verify = |k: &str| -> Value { serde_json::from_slice(&s.run(&["verify", "35075-00001M", k, "--json"]).stdout).unwrap() };
    for _ in 0..5 {
        assert_eq!(verify("CDEF34679HJK")["result"], "mismatch");
    }
    assert_eq!(verify(&key)["result"], "locked", "even the right key waits");
    let later = s.cmd().args(["verify", "35075-00001M", &key, "--json"]).env("ESURETY_TEST_NOW", "2026-07-04T10:16:00+09:00").output().unwrap();
    let v: Value = serde_json::from_slice(&later.stdout).unwrap();
    assert_eq!(v["result"], "valid", "after the lock expires");
}

#[test]
fn a_sender_guessing_across_many_numbers_is_stopped_and_others_are_not_affected() {
    let (s, m, _) = issued();
    let key = key_in(&pdf_text(&notice(&m, "35075-00001M"))).unwrap();
    // Twelve wrong guesses, each on another number, from one address (none locks a number).
    for i in 0..12 {
        s.drop_mail(KWSA, &support::typed("x@guesser.example", KWSA, &format!("<guess-{i}@guesser.example>"), &format!("35075-{:05}M", 100 + i), "CDEF34679HJK"));
    }
    s.once();
    let subs = submissions(&s);
    let mismatched = subs.iter().filter(|x| x["reasons"][0].as_str().unwrap().contains("一致しません")).count();
    assert_eq!((subs.len(), mismatched), (10, 10), "ten guesses checked, then the sender's pairs wait: {subs:?}");
    let waiting = |s: &Setup| -> i64 { s.db().count("SELECT count(*) FROM messages WHERE state = 'new'") };
    assert_eq!(waiting(&s), 2, "the other two wait for the lock to lift; nothing answers them yet");
    // The same address sends the right pair: it waits too, and is never answered "locked".
    s.drop_mail(KWSA, &support::typed("x@guesser.example", KWSA, "<guess-right@guesser.example>", "35075-00001M", &key));
    // The contractor itself is not affected.
    s.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<right@maruichi.example>", "35075-00001M", &key));
    s.once();
    let subs = submissions(&s);
    let of = |subs: &[Value], mid: &str| subs.iter().find(|x| x["message_id"] == mid).cloned();
    assert_eq!(of(&subs, "<right@maruichi.example>").unwrap()["result"], "accepted");
    assert!(of(&subs, "<guess-right@guesser.example>").is_none(), "waiting, not rejected");
    assert_eq!(waiting(&s), 3);
    // An hour later the lock has lifted: what waited is checked, in the order it came.
    let later = s.cmd().args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T11:01:00+09:00").output().unwrap();
    assert!(later.status.success());
    let subs = submissions(&s);
    assert_eq!(of(&subs, "<guess-right@guesser.example>").unwrap()["result"], "accepted");
    assert_eq!(subs.len(), 14);
    assert_eq!(waiting(&s), 0);
}

/// Lockout is no weapon: someone who knows a number (and forges the contractor's address)
/// sends wrong keys ahead of the contractor's real submission. The real one is never
/// rejected: it waits while the number is locked, the owner's staff are told once it has
/// waited two hours, and it is checked and accepted when the guesses before it are spent.
#[test]
fn a_real_submission_behind_forged_guesses_waits_and_is_accepted() {
    let (s, m, _) = issued();
    let config = std::fs::read_to_string(s.config()).unwrap().replace(
        "contracts_address = \"keiyaku@kwsa.example\"",
        "contracts_address = \"keiyaku@kwsa.example\"\nstaff_address = \"keiyaku-staff@kwsa.example\"",
    );
    std::fs::write(s.config(), config).unwrap();
    let key = key_in(&pdf_text(&notice(&m, "35075-00001M"))).unwrap();
    for i in 0..30 {
        s.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, &format!("<forged-{i}@maruichi.example>"), "35075-00001M", &format!("CDEF34679H{}", ["JK", "JL", "JM", "JN", "JP", "JR"][i % 6])));
    }
    let start = chrono::DateTime::parse_from_rfc3339("2026-07-04T10:00:00+09:00").unwrap();
    let mut passes = 0;
    let real = loop {
        let at = start + chrono::Duration::minutes(16 * passes);
        let out = s.cmd().args(["run", "--once"]).env("ESURETY_TEST_NOW", at.to_rfc3339()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        passes += 1;
        if passes == 1 {
            // The contractor's own submission comes in after the guesses.
            s.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<real@maruichi.example>", "35075-00001M", &key));
        }
        if let Some(r) = submissions(&s).into_iter().find(|x| x["message_id"] == "<real@maruichi.example>") {
            break r;
        }
        assert!(passes < 40, "the real submission was never checked");
    };
    assert_eq!(real["result"], "accepted", "{real}");
    assert!(passes > 8, "it waited behind the guesses ({passes} passes)");
    let forged = submissions(&s).into_iter().filter(|x| x["message_id"].as_str().unwrap().starts_with("<forged-")).collect::<Vec<_>>();
    assert_eq!(forged.len(), 30);
    assert!(forged.iter().all(|x| x["reasons"][0].as_str().unwrap().contains("一致しません")), "every guess checked, none answered 'locked'");
    // Each submission that waited two hours is told to staff once (the guesses waited too).
    let notices: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["keiyaku-staff@kwsa.example"]).collect();
    assert!(notices.iter().all(|n| n.subject.contains("待っている提出")), "{:?}", notices.iter().map(|n| &n.subject).collect::<Vec<_>>());
    let about_real = notices.iter().filter(|n| n.body.contains("<real@maruichi.example>")).count();
    assert_eq!(about_real, 1, "the staff told once about the real one");
}


#[test]
fn hostile_pdfs_get_an_outcome_and_the_run_goes_on() {
    let (s, m, _) = issued();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pdfs");
    let mut hostile = vec![];
    for (i, name) in ["bomb.pdf", "deep.pdf", "cyclic.pdf"].iter().enumerate() {
        let pdf = std::fs::read(dir.join(name)).unwrap();
        hostile.push(s.drop_mail(KWSA, &support::attach("x@evil.example", KWSA, &format!("<hostile-{i}@evil.example>"), name, &pdf)));
    }
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<after@maruichi.example>", &m.raw));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 2, "the genuine submission after them was checked: {subs:?}");
    assert!(subs.iter().all(|x| x["result"] == "accepted"));
    for uid in hostile {
        assert!(s.files(KWSA).iter().any(|(u, f, new)| *u == uid && f.is_empty() && *new), "{uid} left as it was");
    }
    for name in ["bomb.pdf", "deep.pdf", "cyclic.pdf"] {
        let out = s.run(&["extract", dir.join(name).to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(1), "{name}: nothing found, no crash");
    }
}

#[test]
fn an_owners_contract_list_adds_check_5() {
    let (s, m, _) = issued();
    // The water authority keeps a list: the works are there, but with a longer 工期 than
    // the guarantee covers.
    std::fs::write(s.dir.join("kwsa-contracts.csv"), "工事名,受注者名,請負金額,工期,請負契約日\n○○浄水場△△修繕工事,丸一建設株式会社,\"50,000,000\",令和8年7月10日～令和9年6月30日,令和8年7月10日\n").unwrap();
    let config = std::fs::read_to_string(s.config()).unwrap().replace(
        "contracts_address = \"keiyaku@kwsa.example\"",
        "contracts_address = \"keiyaku@kwsa.example\"\ncontracts_csv = \"kwsa-contracts.csv\"",
    );
    std::fs::write(s.config(), config).unwrap();
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd-csv@maruichi.example>", &m.raw));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 2);
    for sub in &subs {
        assert_eq!(sub["result"], "rejected", "{sub}");
        assert!(sub["reasons"][0].as_str().unwrap().contains("保証期限"), "{sub}");
    }
    // With the list matching the works, both pass.
    std::fs::write(s.dir.join("kwsa-contracts.csv"), "工事名,受注者名,請負金額,工期,請負契約日\n○○浄水場△△修繕工事,丸一建設株式会社,50000000,2026/07/10～2027/03/31,2026/07/10\n").unwrap();
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd-csv-2@maruichi.example>", &m.raw));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 4);
    assert!(subs[2..].iter().all(|x| x["result"] == "accepted"), "{subs:?}");
    // Works that are not in the list at all.
    std::fs::write(s.dir.join("kwsa-contracts.csv"), "工事名,受注者名,請負金額,工期,請負契約日\n別の工事,丸一建設株式会社,50000000,2026/07/10～2027/03/31,2026/07/10\n").unwrap();
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd-csv-3@maruichi.example>", &m.raw));
    s.once();
    let subs = submissions(&s);
    assert!(subs[4].get("reasons").unwrap()[0].as_str().unwrap().contains("契約一覧にありません"), "{}", subs[4]);
}

#[test]
fn mail_older_than_process_since_is_never_read() {
    let (s, m, _) = issued();
    let text = std::fs::read_to_string(s.config()).unwrap().replace("maildir_root = \"mailboxes\"\n", "maildir_root = \"mailboxes\"\nprocess_since = \"2026-07-01\"\n");
    std::fs::write(s.config(), text).unwrap();
    // A submission from before esurety watched this mailbox, and one after.
    let old = s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<old@maruichi.example>", &m.raw));
    let f = std::fs::File::options().write(true).open(s.maildir(KWSA).join("new").join(&old)).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600)).unwrap(); // 2026-01-01
    drop(f);
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<new@maruichi.example>", &m.raw));
    s.once();
    let subs = submissions(&s);
    assert_eq!(subs.len(), 2, "only the new one's two pairs");
    assert!(subs.iter().all(|x| x["message_id"] == "<new@maruichi.example>"));
    assert!(s.files(KWSA).iter().any(|(u, f, new)| *u == old && f.is_empty() && *new), "the old one is untouched");
}

/// A message carrying more number/key pairs than anyone submits (here 25, the limit being
/// 20) is not checked pair by pair: no registry check, no failure counted against those
/// numbers, nothing registered; it is left in the mailbox for the owner's staff.
#[test]
fn a_message_with_more_pairs_than_the_limit_is_left_to_staff_unchecked() {
    let s = Setup::new();
    let alphabet: Vec<char> = "34679CDEFHJKLMNPRTWXY".chars().collect();
    let pairs: String = (1..=25).map(|i| format!("保証契約番号：35075-{i:05}M\n認証キー：CDEFHJKLMN{}{}\n\n", alphabet[i / 21], alphabet[i % 21])).collect();
    let raw = format!("From: {MARUICHI}\r\nTo: {KWSA}\r\nSubject: =?utf-8?B?6Zu75a2Q5L+d6Ki8?=\r\nMessage-ID: <many@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", pairs.replace('\n', "\r\n"));
    s.drop_mail(KWSA, raw.as_bytes());
    s.once();
    assert!(s.json(&["submissions"]).as_array().unwrap().is_empty(), "nothing registered");
    assert!(s.mails(MARUICHI).is_empty(), "no reply");
    let mut db = s.db();
    assert_eq!(db.count("SELECT count(*) FROM registry_failures"), 0, "no failure counted against those numbers");
    assert_eq!(db.texts("SELECT outcome FROM messages WHERE mailbox = 'keiyaku@kwsa.example'"), [[Some("ignored".to_string())]]);
}

/// Keys at rest: once the completion mail has gone and the owner has checked the key, no
/// 認証キー is left in any table of the store, in clear: not the branch's copy (sealed),
/// not the sent mail (cut to its headers), not the submission (its mail dropped once
/// checked), nor in the store's file after a checkpoint (deleted bytes are overwritten).
/// The branch can still typeset the notice again, with the same key.
#[test]
fn no_key_is_left_in_the_store_once_the_mail_has_gone_and_the_owner_checked_it() {
    let s = Setup::new();
    s.drop_mail("kanagawa@ejcs.example", &crate::common::application(1));
    s.once();
    let completion = &s.mails(MARUICHI)[0];
    let pairs: Vec<(String, String)> = completion.attachments.iter().filter(|(n, _)| n.starts_with("認証キーのお知らせ"))
        .map(|(n, pdf)| (n.trim_end_matches(".pdf").rsplit('_').next().unwrap().to_string(), key_in(&pdf_text(pdf)).unwrap())).collect();
    assert_eq!(pairs.len(), 2);
    let (number, key) = &pairs[0];
    s.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<keys-at-rest@maruichi.example>", number, key));
    s.once();
    assert_eq!(s.json(&["submissions"])[0]["result"], "accepted");

    // Every text and bytes column of every table, and for SQLite the file itself.
    for (_, key) in &pairs {
        assert_eq!(s.db().find(key), Vec::<String>::new(), "a key in the store");
    }
    // The sealed copy still serves the branch.
    let out = s.dir.join("again.pdf");
    s.run_ok(&["render", "notice", number, "-o", out.to_str().unwrap()]);
    assert_eq!(key_in(&pdf_text(&std::fs::read(&out).unwrap())).as_deref(), Some(key.as_str()));
    assert!(s.run(&["verify", number, key]).status.success());
}
