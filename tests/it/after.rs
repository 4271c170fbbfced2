//! After issue: changes (変更申込), the history owners see, and a submission of a notice
//! that has since changed — through mails in Maildirs, PDFs read back and the CLI's JSON.

use crate::common::{Mail, Setup, key_in, pdf_text};
use crate::support;
use serde_json::Value;
use std::path::Path;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";
const SANWA: &str = "keiyaku@sanwa-doboku.example";
const KWSA: &str = "keiyaku@kwsa.example";
/// 「変更申込」 in RFC 2047.
const CHANGE_SUBJECT: &str = "=?utf-8?B?5aSJ5pu055Sz6L68?=";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

fn change_mail(from: &str, mid: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {KANAGAWA}\r\nSubject: {CHANGE_SUBJECT}\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nいつもお世話になっております。\r\n\r\n{}\r\n", body.replace('\n', "\r\n")).into_bytes()
}

/// 35075-00001M (前払金保証) and 35075-00002K issued to 丸一建設; the completion mail and the
/// key of 00001M.
fn issued() -> (Setup, Mail, String) {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();
    let m = s.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments[0].1)).unwrap();
    (s, m, key)
}

fn mails_starting(s: &Setup, to: &str, subject: &str) -> Vec<Mail> {
    s.mails(to).into_iter().filter(|m| m.subject.starts_with(subject)).collect()
}

const EXTENSION: &str = "【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n請負金額：55,000,000円\n前払金保証金額：22,000,000円\n変更理由：工期延長";

#[test]
fn a_change_of_term_and_amount_makes_version_2_with_new_pdfs_and_history() {
    let (s, first, key) = issued();
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-1@maruichi.example", EXTENSION));
    s.once();

    // The contractor's mail: the new documents, marked 変更-1, with the same key.
    let done = mails_starting(&s, MARUICHI, "電子保証（変更）発行完了のお知らせ");
    assert_eq!(done.len(), 1);
    let m = &done[0];
    assert_eq!(m.in_reply_to.as_deref(), Some("<chg-1@maruichi.example>"));
    let names: Vec<&str> = m.attachments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["認証キーのお知らせ_35075-00001M_変更-1.pdf", "保証証書_35075-00001M_変更-1.pdf"]);
    assert!(m.body.contains("請負金額、工期、前払金保証金額") && m.body.contains("工期延長"), "{}", m.body);
    assert!(!m.body.contains(&key), "the key is not repeated in the change mail");
    let notice = pdf_text(&m.attachments[0].1);
    assert!(notice.contains("変更-1"), "{notice}");
    assert_eq!(key_in(&notice).as_deref(), Some(key.as_str()), "the key stays the same");
    let cert = pdf_text(&m.attachments[1].1);
    assert!(cert.contains("変更-1") && cert.contains("22,000,000") && cert.contains("令和9年6月30日"), "{cert}");

    // The branch's view: both versions, the first untouched.
    let c = s.json(&["certificate", "35075-00001M"]);
    assert_eq!(c["version"], 2);
    assert_eq!(c["amount"], 22_000_000);
    let versions = c["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!((versions[0]["kind"].as_str(), versions[0]["amount"].as_u64(), versions[0]["guarantee_end"].as_str()), (Some("新規"), Some(20_000_000), Some("2027-03-31")));
    assert_eq!((versions[1]["kind"].as_str(), versions[1]["amount"].as_u64(), versions[1]["guarantee_end"].as_str()), (Some("変更"), Some(22_000_000), Some("2027-06-30")));
    let other = s.json(&["certificate", "35075-00002K"]);
    assert_eq!(other["version"], 1, "the other certificate of the works is not changed");

    // The owner's view: the latest contents and the history.
    let v = s.json(&["verify", "35075-00001M", &key]);
    assert_eq!(v["result"], "valid");
    assert_eq!(v["certificate"]["amount"], 22_000_000);
    assert_eq!(v["certificate"]["guarantee_end"], "2027-06-30");
    assert_eq!(v["certificate"]["contract_price"], 55_000_000);
    let kinds: Vec<&str> = v["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["新規", "変更"]);
    assert!(v["history"].as_array().unwrap().iter().all(|h| h["issued_at"].as_str().is_some_and(|t| t.starts_with("2026-07-04T10:00:00"))));
    let text = s.run_ok(&["verify", "35075-00001M", &key]);
    assert!(text.contains("最新の情報") && text.contains("変更-1"), "{text}");

    // The same change delivered again: still two versions, no second mail.
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-1@maruichi.example", EXTENSION));
    s.once();
    assert_eq!(s.json(&["certificate", "35075-00001M"])["versions"].as_array().unwrap().len(), 2);
    assert_eq!(mails_starting(&s, MARUICHI, "電子保証（変更）発行完了のお知らせ").len(), 1);

    // The owner receives the notice of version 1 (forwarded before the change): checked
    // against the latest contents, and the register says which version.
    let fwd = support::forward(MARUICHI, KWSA, "<fwd-old@maruichi.example>", &first.raw);
    s.drop_mail(KWSA, &fwd);
    s.once();
    let subs = s.json(&["submissions"]);
    let sub = subs.as_array().unwrap().iter().find(|x| x["number"] == "35075-00001M").unwrap().clone();
    assert_eq!(sub["result"], "accepted", "{sub}");
    assert_eq!(sub["version"], 2, "checked against version 2: {sub}");
    let receipt = mails_starting(&s, MARUICHI, "【電子保証】受付結果のお知らせ").remove(0);
    assert!(receipt.body.contains("変更-1") && receipt.body.contains("最新の内容"), "{}", receipt.body);
}

#[test]
fn a_second_change_is_変更_2_and_each_change_is_checked_by_the_application_rules() {
    let (s, _, key) = issued();
    // On its own, the spec's example amount is over 40 % of the unchanged 請負金額.
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-a@maruichi.example", "【変更申込】\n保証契約番号：35075-00001M\n前払金保証金額：22,000,000円\n工期：令和9年7月10日 ～ 令和8年6月30日"));
    s.once();
    let bad = mails_starting(&s, MARUICHI, "【要確認】変更申込の内容に不備があります");
    assert_eq!(bad.len(), 1);
    assert!(bad[0].body.contains("【前払金保証】前払金保証金額：") && bad[0].body.contains("40%") && bad[0].body.contains("工期："), "every problem, by field: {}", bad[0].body);
    assert!(bad[0].attachments.is_empty());
    assert_eq!(s.json(&["certificate", "35075-00001M"])["version"], 1, "nothing changed");

    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-b@maruichi.example", EXTENSION));
    s.once();
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-c@maruichi.example", "【変更申込】\n保証契約番号：35075-00001M\n工事名：○○浄水場△△修繕工事（その2）\n"));
    s.once();
    let done = mails_starting(&s, MARUICHI, "電子保証（変更）発行完了のお知らせ");
    assert_eq!(done.len(), 2);
    assert_eq!(done[1].attachments[0].0, "認証キーのお知らせ_35075-00001M_変更-2.pdf");
    let v = s.json(&["verify", "35075-00001M", &key]);
    assert_eq!(v["certificate"]["project"], "○○浄水場△△修繕工事（その2）");
    assert_eq!(v["certificate"]["amount"], 22_000_000, "the first change is kept");
    let kinds: Vec<&str> = v["history"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["新規", "変更", "変更"]);
}

#[test]
fn a_change_of_the_contract_price_alone_needs_no_procedure_and_changes_nothing() {
    let (s, _, key) = issued();
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-p@maruichi.example", "【変更申込】\n保証契約番号：35075-00001M\n請負金額：52,000,000円\n変更理由：設計変更"));
    s.once();
    let r = mails_starting(&s, MARUICHI, "【ご案内】請負金額のみの変更は手続き不要です");
    assert_eq!(r.len(), 1);
    assert!(r[0].body.contains("35075-00001M") && r[0].body.contains("注2"), "{}", r[0].body);
    assert!(r[0].attachments.is_empty());
    assert_eq!(s.json(&["certificate", "35075-00001M"])["versions"].as_array().unwrap().len(), 1);
    let v = s.json(&["verify", "35075-00001M", &key]);
    assert_eq!(v["certificate"]["contract_price"], 50_000_000);
    assert_eq!(v["history"].as_array().unwrap().len(), 1);
}

#[test]
fn a_change_from_a_stranger_is_held_and_for_someone_elses_or_an_unknown_number_is_answered_alike() {
    let (s, _, _) = issued();
    let body = "【変更申込】\n保証契約番号：35075-00001M\n工事場所：横浜市";
    let stranger = s.drop_mail(KANAGAWA, &change_mail("x@stranger.example", "chg-x@stranger.example", body));
    s.drop_mail(KANAGAWA, &change_mail(SANWA, "chg-s@sanwa.example", body));
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-u@maruichi.example", "【変更申込】\n保証契約番号：35075-09999M\n工事場所：横浜市"));
    s.once();

    assert!(s.files(KANAGAWA).iter().any(|(u, f, _)| *u == stranger && f == "F"), "a stranger's change is held (flagged)");
    assert!(s.mails("relay").iter().all(|m| !m.to.iter().any(|t| t.contains("stranger"))), "and never answered");
    let sanwa = s.mails(SANWA);
    assert_eq!(sanwa.len(), 1);
    assert!(sanwa[0].subject.starts_with("【要確認】変更申込の内容に不備があります"));
    assert!(sanwa[0].body.contains("「35075-00001M」に該当する保証が見つかりません"), "{}", sanwa[0].body);
    assert!(!sanwa[0].body.contains("○○浄水場"), "nothing of 丸一建設's certificate is told");
    let unknown = mails_starting(&s, MARUICHI, "【要確認】変更申込の内容に不備があります");
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].body.contains("「35075-09999M」に該当する保証が見つかりません"));
    assert_eq!(s.json(&["certificate", "35075-00001M"])["version"], 1);
    let held = s.json(&["staff", "held"]);
    assert!(held.as_array().unwrap().iter().any(|h| h["from"] == "x@stranger.example"), "{held}");
}

#[test]
fn values_in_the_history_are_those_the_owner_sees() {
    // `certificate --json` after a change lists every version with its own contents, and
    // the latest is what `certificates --json` shows.
    let (s, _, _) = issued();
    s.drop_mail(KANAGAWA, &change_mail(MARUICHI, "chg-1@maruichi.example", EXTENSION));
    s.once();
    let all = s.json(&["certificates"]);
    let m: &Value = all.as_array().unwrap().iter().find(|c| c["number"] == "35075-00001M").unwrap();
    assert_eq!((m["version"].as_u64(), m["amount"].as_u64()), (Some(2), Some(22_000_000)));
}
