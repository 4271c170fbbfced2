//! The branch side end to end, as a contractor and branch staff see it: mails in the
//! contractor's Maildir, PDFs read back, the CLI's JSON, and exactly-once under crashes.

use crate::common::{Setup, key_in, pdf_text};
use std::path::Path;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

#[test]
fn an_electronic_application_becomes_certificates_pdfs_and_one_completion_mail() {
    let s = Setup::new();
    let uid = s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();

    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1, "one completion mail to the applicant");
    let m = &mails[0];
    assert!(m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ"), "{}", m.subject);
    assert_eq!(m.from, KANAGAWA);
    assert_eq!(m.in_reply_to.as_deref(), Some("<v001@mail.example>"), "a real reply");
    let names: Vec<&str> = m.attachments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["認証キーのお知らせ_35075-00001M.pdf", "保証証書_35075-00001M.pdf", "認証キーのお知らせ_35075-00002K.pdf", "保証証書_35075-00002K.pdf"]);
    assert!(m.raw.windows(b"filename*".len()).any(|w| w == b"filename*"), "RFC 2231 file names");

    // The notice: number and key readable from the PDF; the key checks out in the registry.
    for (i, number, product) in [(0, "35075-00001M", "前払金保証"), (2, "35075-00002K", "契約保証")] {
        let text = pdf_text(&m.attachments[i].1);
        assert!(text.contains(number), "{number} in the notice: {text}");
        assert!(text.contains("○○浄水場△△修繕工事") && text.contains("丸一建設株式会社") && text.contains(product), "{text}");
        let key = key_in(&text).expect("a key printed in the notice");
        assert!(m.body.contains(&key), "the completion mail names the key");
        let v = s.json(&["verify", number, &key]);
        assert_eq!(v["result"], "valid");
        assert_eq!(v["certificate"]["number"], number);
        assert_eq!(v["certificate"]["owner"], "神奈川県内広域水道企業団 企業長");
        assert_eq!(v["history"][0]["kind"], "新規");
        // A near miss is a mismatch, and an unknown number looks the same.
        let mut near = key.clone();
        near.replace_range(11..12, if key.ends_with('C') { "D" } else { "C" });
        let out = s.run(&["verify", number, &near, "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v, serde_json::json!({"result": "mismatch"}));
        let v: serde_json::Value = serde_json::from_slice(&s.run(&["verify", "35075-09999M", &key, "--json"]).stdout).unwrap();
        assert_eq!(v, serde_json::json!({"result": "mismatch"}));
    }
    let v: serde_json::Value = serde_json::from_slice(&s.run(&["verify", "35075-00001M", "Z28YUE4J3Bux", "--json"]).stdout).unwrap();
    assert_eq!(v["result"], "malformed", "a key with look-alike characters is visibly malformed");

    // The certificate PDF: electronic, with the works and amounts.
    let cert = pdf_text(&m.attachments[1].1);
    for want in ["保証証書", "前払金保証", "35075-00001M", "電子的な取扱", "20,000,000円", "50,000,000円", "令和9年3月31日", "○○銀行", "前払金保証約款"] {
        assert!(cert.contains(want), "{want} in the certificate: {cert}");
    }

    // The branch's view.
    let certs = s.json(&["certificates"]);
    let certs = certs.as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let c = &certs[0];
    assert_eq!(c["number"], "35075-00001M");
    assert_eq!(c["product"], "前払金保証");
    assert_eq!(c["format"], "電子保証");
    assert_eq!(c["status"], "valid");
    assert_eq!(c["contractor"], "丸一建設株式会社");
    assert_eq!(c["amount"], 20_000_000);
    assert_eq!(c["contract_price"], 50_000_000);
    assert_eq!(c["guarantee_end"], "2027-03-31");
    assert_eq!(c["version"], 1);
    assert_eq!(c["application_message_id"], "<v001@mail.example>");
    assert!(c.get("key").is_none());
    let one = s.json(&["certificate", "35075-00002K"]);
    assert_eq!(one["versions"][0]["kind"], "新規");
    assert_eq!(one["versions"][0]["version"], 1);

    // The application is marked as a mail client shows it: moved to cur/, seen.
    assert_eq!(s.files(KANAGAWA), vec![(uid, "S".to_string(), false)]);
    let outbox = s.json(&["outbox"]);
    assert_eq!(outbox[0]["status"], "sent");
    assert_eq!(outbox[0]["attempts"], 1);
    assert_eq!(outbox[0]["to"], serde_json::json!([MARUICHI]));

    // Running again changes nothing.
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 1);
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 2);
}

#[test]
fn the_same_message_delivered_again_is_pointed_to_the_existing_certificates() {
    let s = Setup::new();
    let raw = fixture("valid/001.eml");
    s.drop_mail(KANAGAWA, &raw);
    s.once();
    s.drop_mail(KANAGAWA, &raw);
    s.drop_mail(KANAGAWA, &raw);
    s.once();
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 2, "never issued twice");
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 3);
    let first_key = key_in(&pdf_text(&mails[0].attachments[0].1)).unwrap();
    for dup in &mails[1..] {
        assert!(dup.subject.starts_with("保証申込受付済みのお知らせ"), "{}", dup.subject);
        assert!(dup.body.contains("35075-00001M") && dup.body.contains("35075-00002K"), "{}", dup.body);
        assert!(!dup.body.contains(&first_key), "a duplicate reply never repeats the key");
        assert!(dup.attachments.is_empty());
    }
}

#[test]
fn the_same_works_applied_for_again_is_rejected_with_the_existing_number() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();
    let again = String::from_utf8(fixture("valid/001.eml")).unwrap().replace("<v001@mail.example>", "<v001-again@mail.example>");
    s.drop_mail(KANAGAWA, again.as_bytes());
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 2);
    assert!(mails[1].subject.starts_with("【要確認】保証申込の内容に不備があります"));
    assert!(mails[1].body.contains("既に発行済み") && mails[1].body.contains("35075-00001M"), "{}", mails[1].body);
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_paper_application_is_accepted_and_its_certificate_waits_for_printing() {
    let s = Setup::new();
    s.drop_mail("nagano@ejcs.example", &fixture("valid/005.eml"));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.starts_with("保証申込受付のお知らせ"), "{}", mails[0].subject);
    assert!(mails[0].attachments.is_empty(), "paper certificates go by post");
    assert!(mails[0].body.contains("郵送"));
    let c = s.json(&["certificate", "20075-00001K"]);
    assert_eq!(c["format"], "証書(紙)");
    assert_eq!(c["print_state"], "waiting");
    assert_eq!(c["owner"], "東西町長");
    // No key exists for a paper certificate: there is no notice to render.
    let out = s.run(&["render", "notice", "20075-00001K", "-o", s.dir.join("n.pdf").to_str().unwrap()]);
    assert!(!out.status.success());
    s.run_ok(&["render", "certificate", "20075-00001K", "-o", s.dir.join("c.pdf").to_str().unwrap()]);
    let text = pdf_text(&std::fs::read(s.dir.join("c.pdf")).unwrap());
    assert!(text.contains("契約保証約款") && !text.contains("電子的な取扱"), "{text}");
}

#[test]
fn an_unknown_sender_is_held_for_staff_and_never_answered() {
    let s = Setup::new();
    let uid = s.drop_mail(KANAGAWA, &fixture("malformed/201.eml"));
    s.once();
    s.once();
    assert!(s.mails("relay").is_empty(), "nothing sent to an unverified sender");
    assert!(s.json(&["outbox"]).as_array().unwrap().is_empty());
    assert_eq!(s.files(KANAGAWA), vec![(uid, "F".to_string(), false)], "flagged and left unread for staff");
    assert!(s.json(&["certificates"]).as_array().unwrap().is_empty());
}

#[test]
fn render_typesets_the_same_key_again() {
    let s = Setup::new();
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    let mails = s.mails("info@toride-kogyo.example");
    assert_eq!(mails.len(), 1);
    let names: Vec<&str> = mails[0].attachments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["認証キーのお知らせ_08075-00001M.pdf", "保証証書_08075-00001M.pdf", "保証料計算書_08075-00001M.pdf"]);
    let fee = pdf_text(&mails[0].attachments[2].1);
    assert!(fee.contains("保証料計算書") && fee.contains("35,200,000円"), "{fee}");
    // The 希望する address is not a local mailbox: it went to relay/, once.
    assert_eq!(s.mails("relay").len(), 1);
    assert_eq!(s.mails("relay")[0].to, ["info@toride-kogyo.example", "keiri@toride-kogyo.example"]);
    let key = key_in(&pdf_text(&mails[0].attachments[0].1)).unwrap();
    let out = s.dir.join("again.pdf");
    s.run_ok(&["render", "notice", "08075-00001M", "-o", out.to_str().unwrap()]);
    assert_eq!(key_in(&pdf_text(&std::fs::read(out).unwrap())), Some(key));
}

#[test]
fn a_crash_at_any_step_neither_loses_nor_doubles_anything() {
    for point in ["stored", "processed", "marked", "delivered_before_record", "delivered_one"] {
        let s = Setup::new();
        s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
        s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
        s.drop_mail(KANAGAWA, &fixture("invalid/105.eml"));
        let crashed = s.cmd().args(["run", "--once"]).env("ESURETY_CRASH_AT", point).output().unwrap();
        assert!(!crashed.status.success(), "{point}: the crash was injected");
        // Meanwhile the contractors' mail clients read what had arrived (new/ → cur/).
        for a in [MARUICHI, "info@toride-kogyo.example", "relay"] {
            s.read_all(a);
        }
        s.once();
        s.once();
        let certs = s.json(&["certificates"]);
        assert_eq!(certs.as_array().unwrap().len(), 3, "{point}: 2 + 1 certificates, none twice");
        let maru = s.mails(MARUICHI);
        assert_eq!(maru.len(), 2, "{point}: one completion and one rejection to 丸一建設");
        assert_eq!(s.mails("info@toride-kogyo.example").len(), 1, "{point}");
        assert_eq!(s.mails("relay").len(), 1, "{point}: keiri@toride-kogyo once");
        let outbox = s.json(&["outbox"]);
        assert!(outbox.as_array().unwrap().iter().all(|o| o["status"] == "sent"), "{point}: {outbox}");
        assert_eq!(outbox.as_array().unwrap().len(), 3, "{point}");
    }
}

#[test]
fn no_key_appears_in_logs_or_listings() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    let run = s.cmd().args(["run", "--once"]).env("ESURETY_LOG", "trace").output().unwrap();
    assert!(run.status.success());
    let mut said = String::from_utf8_lossy(&run.stderr).into_owned() + &String::from_utf8_lossy(&run.stdout);
    assert!(said.contains("issued"), "the run logged its events: {said}");
    for args in [&["certificates", "--json"][..], &["certificate", "35075-00001M", "--json"], &["outbox", "--json"], &["certificates"], &["outbox"]] {
        let out = s.cmd().args(args).env("ESURETY_LOG", "trace").output().unwrap();
        said += &String::from_utf8_lossy(&out.stdout);
        said += &String::from_utf8_lossy(&out.stderr);
    }
    let mails = s.mails(MARUICHI);
    for a in [0, 2] {
        let key = key_in(&pdf_text(&mails[0].attachments[a].1)).unwrap();
        assert!(!said.contains(&key), "key {key} leaked");
    }
}

fn request(from: &str, subject_b64: &str, body: &str, mid: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?{subject_b64}?=\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").into_bytes()
}

#[test]
fn a_resend_goes_to_the_registered_addresses_only() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();
    let key = key_in(&pdf_text(&s.mails(MARUICHI)[0].attachments[0].1)).unwrap();
    // 「認証キーのお知らせの再送のお願い」, from 丸一建設's other registered address.
    let subject = "6KqN6Ki844Kt44O844Gu44GK55+l44KJ44Gb44Gu5YaN6YCB44Gu44GK6aGY44GE";
    s.drop_mail(KANAGAWA, &request("keiri@maruichi.example", subject, "保証契約番号：３５０７５－００００１Ｍ\r\n送付先：tanaka@other.example 宛にお願いします。", "resend-1@maruichi.example"));
    // Another contractor asking for 丸一建設's certificate, and an unknown number.
    s.drop_mail(KANAGAWA, &request("keiyaku@sanwa-doboku.example", subject, "保証契約番号：35075-00001M", "resend-2@sanwa.example"));
    s.drop_mail(KANAGAWA, &request(MARUICHI, subject, "保証契約番号：35075-09999M", "resend-3@maruichi.example"));
    // And a stranger.
    let stranger = s.drop_mail(KANAGAWA, &request("x@stranger.example", subject, "保証契約番号：35075-00001M", "resend-4@stranger.example"));
    s.once();

    for to in [MARUICHI, "keiri@maruichi.example"] {
        let resent: Vec<_> = s.mails(to).into_iter().filter(|m| m.subject.starts_with("電子保証（認証キー）のお知らせ（再送）")).collect();
        assert_eq!(resent.len(), 1, "{to}");
        let names: Vec<&str> = resent[0].attachments.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["認証キーのお知らせ_35075-00001M.pdf", "保証証書_35075-00001M.pdf"]);
        assert_eq!(key_in(&pdf_text(&resent[0].attachments[0].1)).as_deref(), Some(key.as_str()), "the same key");
    }
    assert!(s.mails("relay").iter().all(|m| !m.to.iter().any(|t| t.contains("other.example") || t.contains("stranger"))), "never to an address the request names, never to a stranger");
    let sanwa = s.mails("keiyaku@sanwa-doboku.example");
    assert_eq!(sanwa.len(), 1);
    assert!(sanwa[0].subject.starts_with("【要確認】お問い合わせの保証が見つかりません") && sanwa[0].attachments.is_empty());
    let unknown: Vec<_> = s.mails(MARUICHI).into_iter().filter(|m| m.subject.starts_with("【要確認】お問い合わせの保証が見つかりません")).collect();
    assert_eq!(unknown.len(), 1, "an unknown number gets the same answer");
    assert!(s.files(KANAGAWA).iter().any(|(u, f, _)| *u == stranger && f == "F"), "a stranger's request is held");
}

/// R10 (one certificate per works) asks the store what was issued. When the store cannot
/// answer (here a damaged row), the application is held for staff with the reason: it is
/// never taken as "nothing issued yet", which would issue the works a second time. The
/// pass goes on with the other messages.
#[test]
fn r10_on_a_store_that_cannot_answer_holds_instead_of_issuing_twice() {
    // The damage is SQLite's (a number stored as bytes); PostgreSQL's types refuse it.
    let s = Setup::on_sqlite();
    s.drop_mail(KANAGAWA, &crate::common::application(1));
    s.once();
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 2);
    // The certificates' rows are damaged: their numbers can no longer be read as text.
    let db = rusqlite::Connection::open(s.dir.join("esurety.db")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    db.execute("UPDATE certificates SET number = CAST(number AS BLOB)", []).unwrap();
    drop(db);
    // The same works again (another message), and another works.
    let again = String::from_utf8(crate::common::application(1)).unwrap().replace("<app-1@", "<app-1-again@").into_bytes();
    s.drop_mail(KANAGAWA, &again);
    s.drop_mail(KANAGAWA, &crate::common::application(2));
    s.once();
    let db = rusqlite::Connection::open(s.dir.join("esurety.db")).unwrap();
    let certificates: i64 = db.query_row("SELECT count(*) FROM certificates", [], |r| r.get(0)).unwrap();
    assert_eq!(certificates, 4, "the first works once, the second works once, nothing twice");
    let (outcome, detail): (String, String) = db.query_row(
        "SELECT outcome, detail FROM messages WHERE message_id = '<app-1-again@maruichi.example>'", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(outcome, "held", "{detail}");
    assert!(detail.contains("処理できませんでした") && detail.contains("store"), "{detail}");
}

/// The fee statement printed again after the company changed its rates shows the fee that
/// was issued, not one computed at the new rate.
#[test]
fn a_fee_statement_printed_after_a_rate_change_shows_the_fee_issued() {
    let s = Setup::new();
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    let mails = s.mails("info@toride-kogyo.example");
    let issued = pdf_text(&mails[0].attachments[2].1);
    assert!(issued.contains("年0.31%"), "{issued}");
    // The rates change: 0.31 % becomes 0.45 %.
    let config = std::fs::read_to_string(s.config()).unwrap();
    assert!(config.contains("annual_rate_percent = \"0.31\""));
    std::fs::write(s.config(), config.replace("annual_rate_percent = \"0.31\"", "annual_rate_percent = \"0.45\"")).unwrap();
    let out = s.dir.join("fee-again.pdf");
    s.run_ok(&["render", "fee", "08075-00001M", "-o", out.to_str().unwrap()]);
    let again = pdf_text(&std::fs::read(&out).unwrap());
    assert_eq!(again, issued, "the same statement, word for word");
    assert!(!again.contains("0.45"));
}
