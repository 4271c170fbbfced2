//! The other products (`products.md`): 中間前払金保証 applied for by email against a
//! 前払金保証 of ours, its rules each one problem of one reply, and its whole path to an
//! owner's accepted submission.

use crate::common::{Setup, key_in, pdf_text};
use crate::support;
use std::path::Path;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const KWSA: &str = "keiyaku@kwsa.example";
const MARUICHI: &str = "soumu@maruichi.example";
/// After the middle of the works' 工期 (令和8年7月10日 ～ 令和9年3月31日).
const LATER: &str = "2026-12-10T10:00:00+09:00";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

/// 丸一建設's application for a 中間前払金保証, as its clerk types it.
fn intermediate(mid: &str, number: &str, amount: &str, certified: &str) -> Vec<u8> {
    let body = format!("いつもお世話になっております。中間前払金保証を申し込みます。\r\n\r\n【中間前払金保証】\r\n申込：申し込む\r\n前払金保証の保証契約番号：{number}\r\n保証証書の形式：電子保証\r\n中間前払金保証金額：{amount}\r\n認定日：{certified}\r\n認定番号：水企契第123号\r\n保証料計算書(紙)：希望しない\r\n\r\n-- \r\n丸一建設株式会社 総務部 山田\r\n");
    format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L6877yI5Lit6ZaT5YmN5omV6YeR5L+d6Ki877yJ?=\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}").into_bytes()
}

/// 35075-00001M (前払金保証, 20,000,000円 of 50,000,000円) and 00002K issued to 丸一建設
/// for the water authority; then a pass on a later day.
fn issued() -> Setup {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();
    s.read_all(MARUICHI);
    s
}

fn later_pass(s: &Setup) {
    let out = s.cmd().env("ESURETY_TEST_NOW", LATER).args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn new_mails(s: &Setup) -> Vec<crate::common::Mail> {
    let md = s.maildir(MARUICHI).join("new");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(md).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        out.push(crate::common::parse_mail(&std::fs::read(p).unwrap()));
    }
    out
}

/// The same application with the owner's 認定調書 attached as a PDF.
fn with_certification(raw: &[u8], pdf: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.replace("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit", "Content-Type: multipart/mixed; boundary=\"b1\"");
    format!("{head}\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n--b1\r\nContent-Type: application/pdf; name=\"ninteichosho.pdf\"\r\nContent-Disposition: attachment; filename=\"ninteichosho.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        crate::common::base64(pdf)).into_bytes()
}

#[test]
fn an_intermediate_advance_guarantee_is_issued_against_the_advance_and_accepted_by_the_owner() {
    let s = issued();
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n");
    // The owner's 認定調書 (here any PDF: the advance's certificate) attached.
    let certification = s.mails(MARUICHI)[0].attachments[1].1.clone();
    s.drop_mail(KANAGAWA, &with_certification(&intermediate("mid-1@maruichi.example", "35075-00001M", "10,000,000円", "令和8年12月1日"), &certification));
    later_pass(&s);
    let mails = new_mails(&s);
    assert_eq!(mails.len(), 1, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let completion = &mails[0];
    let names: Vec<&str> = completion.attachments.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["認証キーのお知らせ_35075-00003C.pdf", "保証証書_35075-00003C.pdf"], "its own number, letter C");
    let notice = pdf_text(&completion.attachments[0].1);
    assert!(notice.contains("中間前払金保証") && notice.contains("35075-00003C"), "{notice}");
    let key = key_in(&notice).expect("a key");
    let certificate = pdf_text(&completion.attachments[1].1);
    for expected in ["保証証書（中間前払金保証）", "中間前払金保証約款", "前払金保証番号", "35075-00001M", "中間前払金認定", "令和8年12月1日", "水企契第123号", "10,000,000円", "○○浄水場△△修繕工事", "令和9年3月31日"] {
        assert!(certificate.contains(&expected.replace(' ', "")), "{expected} in {certificate}");
    }
    let c = s.json(&["certificate", "35075-00003C"]);
    assert_eq!(c["product"], "中間前払金保証", "{c}");
    assert_eq!(c["intermediate"]["advance"], "35075-00001M", "{c}");
    // The 認定調書 is kept with it, and branch staff find it on the desk.
    assert_eq!(c["documents"], serde_json::json!([{"id": 1, "kind": "認定調書", "name": "ninteichosho.pdf", "size": certification.len()}]), "{c}");
    crate::desk_web::add_user(&s, "佐藤", &["branch:kanagawa@ejcs.example"]);
    let web = crate::registry_service::Serving::start(&s, &["serve"]);
    let staff = crate::desk_web::login(&web.url, "佐藤");
    let (st, page) = staff.get("/desk/certificates/35075-00003C");
    assert_eq!(st, 200);
    assert!(page.contains("認定調書") && page.contains("/desk/certificates/35075-00003C/kept/1"), "{page}");
    let (st, _, pdf) = crate::registry_service::http(&web.url, "GET", "/desk/certificates/35075-00003C/kept/1", &[("Cookie", &staff.cookie)], b"");
    assert_eq!((st, pdf == certification), (200, true), "the 認定調書 as sent");
    assert!(web.stop().success());
    // The owner checks it like the others: number and key, its works and 保証区分.
    s.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fw-mid-1@maruichi.example>", &completion.raw));
    later_pass(&s);
    let subs = s.json(&["submissions"]);
    let sub = subs.as_array().unwrap().iter().find(|x| x["number"] == "35075-00003C").unwrap_or_else(|| panic!("{subs}"));
    assert_eq!(sub["result"], "accepted", "{sub}");
    let v = s.json(&["verify", "35075-00003C", &key]);
    assert_eq!(v["result"], "valid", "{v}");
}

#[test]
fn an_intermediate_application_gets_every_problem_in_one_reply() {
    let s = issued();
    // Over 2/10 of the contract price, over 6/10 with the advance, certified before the
    // middle of the works and a date still to come is not one of them here.
    s.drop_mail(KANAGAWA, &intermediate("mid-2@maruichi.example", "35075-00001M", "12,000,000円", "令和8年10月1日"));
    later_pass(&s);
    let mails = new_mails(&s);
    assert_eq!(mails.len(), 1);
    let body = &mails[0].body;
    assert!(body.contains("請負金額（50,000,000 円）の20%（10,000,000 円）を超えています"), "{body}");
    assert!(body.contains("6/10（30,000,000 円）を超えています"), "{body}");
    assert!(body.contains("令和8年10月1日 は工期（令和8年7月10日 ～ 令和9年3月31日）の半ば"), "{body}");
    assert!(s.json(&["certificates"]).as_array().unwrap().len() == 2, "nothing issued");
}

#[test]
fn an_unknown_number_and_another_contractors_get_the_same_answer() {
    let s = issued();
    // 取手興業's 前払金保証 (another contractor, another owner) and a number never issued.
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    s.drop_mail(KANAGAWA, &intermediate("mid-3@maruichi.example", "08075-00001M", "1,000,000円", "令和8年12月1日"));
    s.drop_mail(KANAGAWA, &intermediate("mid-4@maruichi.example", "35075-09999M", "1,000,000円", "令和8年12月1日"));
    later_pass(&s);
    let mails = new_mails(&s);
    assert_eq!(mails.len(), 2);
    let line = |m: &crate::common::Mail, n: &str| m.body.lines().find(|l| l.contains(n)).map(|l| l.replace(n, "N")).unwrap_or_default();
    let a = line(mails.iter().find(|m| m.in_reply_to.as_deref() == Some("<mid-3@maruichi.example>")).unwrap(), "08075-00001M");
    let b = line(mails.iter().find(|m| m.in_reply_to.as_deref() == Some("<mid-4@maruichi.example>")).unwrap(), "35075-09999M");
    assert!(a.contains("見つかりません"), "{a}");
    assert_eq!(a, b, "one and the same answer");
}

#[test]
fn an_owner_without_intermediate_advances_and_a_second_one_are_refused() {
    let s = issued();
    s.drop_mail(KANAGAWA, &intermediate("mid-5@maruichi.example", "35075-00001M", "10,000,000円", "令和8年12月1日"));
    later_pass(&s);
    s.read_all(MARUICHI);
    // One per 前払金保証.
    s.drop_mail(KANAGAWA, &intermediate("mid-6@maruichi.example", "35075-00001M", "5,000,000円", "令和8年12月2日"));
    later_pass(&s);
    let again = new_mails(&s);
    assert_eq!(again.len(), 1);
    assert!(again[0].body.contains("35075-00003C として発行済み"), "{}", again[0].body);
    s.read_all(MARUICHI);
    // The water authority stops paying 中間前払金: the next application is told so.
    s.edit_config(|t| t.replacen("intermediate_advance = true      # pays 中間前払金 (2/10 of the contract price)", "intermediate_advance = false", 1));
    s.drop_mail(KANAGAWA, &intermediate("mid-7@maruichi.example", "35075-00001M", "5,000,000円", "令和8年12月2日"));
    later_pass(&s);
    let refused = new_mails(&s);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].body.contains("中間前払金の対象ではありません"), "{}", refused[0].body);
}
