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

const IBARAKI: &str = "ibaraki@ejcs.example";
const TORIDE_KOGYO: &str = "info@toride-kogyo.example";
/// Before the bid of `bid_bond/001.eml` (入札日 令和9年1月20日).
const BEFORE_BID: &str = "2026-12-10T10:00:00+09:00";

fn pass_at(s: &Setup, now: &str) {
    let out = s.cmd().env("ESURETY_TEST_NOW", now).args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The mail an address has not read yet, then marked read.
fn new_mails_of(s: &Setup, address: &str) -> Vec<crate::common::Mail> {
    let md = s.maildir(address).join("new");
    let mut paths: Vec<_> = std::fs::read_dir(md).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mails = paths.iter().map(|p| crate::common::parse_mail(&std::fs::read(p).unwrap())).collect();
    s.read_all(address);
    mails
}

/// 取手興業's 契約保証 application for 取手市長's works `project`, after the award; `extra` is
/// added to its 【契約保証】 (e.g. the 契約保証予約番号).
fn contract_application(mid: &str, project: &str, extra: &str) -> Vec<u8> {
    let body = format!("いつもお世話になっております。落札した工事の契約保証を申し込みます。\r\n\r\n【請負工事の情報】\r\n受注者名：取手興業株式会社\r\n発注者名：取手市長\r\n工事名：{project}\r\n請負金額：55,000,000円\r\n工期：令和9年2月1日 ～ 令和9年12月20日\r\n請負契約日：令和9年1月29日\r\n落札決定日：令和9年1月20日\r\n\r\n【契約保証】\r\n申込：申し込む\r\n保証証書の形式：電子保証\r\n契約保証金額：5,500,000円\r\n{extra}保証料支払方法：一括納付\r\n保証料請求先：本社\r\n保証料計算書(紙)：希望しない\r\n\r\n【インフォメーション】\r\n申込送信先：茨城支店\r\n電子保証発行完了のお知らせ：希望しない\r\n\r\n-- \r\n取手興業株式会社\r\n");
    format!("From: {TORIDE_KOGYO}\r\nTo: {IBARAKI}\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L6877yI5aWR57SE5L+d6Ki877yJ?=\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}").into_bytes()
}

/// 08075-00001Y: 取手興業's reservation for 取手駅西口広場整備工事, issued before the bid.
fn reserved() -> Setup {
    let s = Setup::new();
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n");
    s.drop_mail(IBARAKI, &fixture("bid_bond/001.eml"));
    pass_at(&s, BEFORE_BID);
    s
}

#[test]
fn a_bid_bond_is_printed_on_paper_with_its_fee_and_used_by_the_later_contract_guarantee() {
    let s = reserved();
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert!(reply.subject.starts_with("保証申込受付のお知らせ"), "{}", reply.subject);
    assert!(reply.attachments.is_empty(), "paper only: nothing attached");
    for expected in ["■ 契約保証予約（証書(紙)）", "予約番号　　：08075-00001Y", "入札日　　　：令和9年1月20日", "予約金額　　：6,000,000 円",
                     "有効期限　　：令和9年2月19日", "予約手数料　：3,300 円（手数料 3,000 円、消費税（10%）300 円）",
                     "契約保証予約証書（書面）は印刷のうえ郵送", "「契約保証予約番号：08075-00001Y」"] {
        assert!(reply.body.contains(expected), "{expected} in {}", reply.body);
    }
    assert!(!reply.body.contains("保証証書（書面）は印刷"), "no guarantee certificate is promised: {}", reply.body);
    let c = s.json(&["certificate", "08075-00001Y"]);
    assert_eq!((c["product"].as_str(), c["format"].as_str(), c["status"].as_str()), (Some("契約保証予約"), Some("証書(紙)"), Some("valid")), "{c}");
    assert_eq!(c["bid_bond"]["bid_date"], "2027-01-20", "{c}");
    assert_eq!(c["bid_bond"]["fee_yen"].as_u64().unwrap() + c["bid_bond"]["tax_yen"].as_u64().unwrap(), 3300, "{c}");

    // The 予約証書 waits to be printed, and prints as one.
    let paper = s.json(&["staff", "paper"]);
    assert_eq!(paper.as_array().unwrap().iter().map(|p| p["number"].as_str().unwrap()).collect::<Vec<_>>(), ["08075-00001Y"], "{paper}");
    let out_dir = s.dir.join("print");
    let out = s.run(&["staff", "paper", "-o", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pdf = std::fs::read(out_dir.join("契約保証予約証書_08075-00001Y.pdf")).expect("the 予約証書");
    let text = pdf_text(&pdf);
    for expected in ["契約保証予約証書", "予約番号 08075-00001Y", "申込人", "取手興業株式会社", "発注者 取手市長", "工事名 取手駅西口広場整備工事", "入札日 令和9年1月20日",
                     "予定価格 60,000,000 円", "予約金額 6,000,000 円", "予約の有効期限 令和9年2月19日", "予約手数料 3,300 円（うち消費税 300 円）", "契約保証約款に基づき"] {
        assert!(text.contains(&expected.replace(' ', "")), "{expected} in {text}");
    }

    // Branch staff see it on the desk, and its PDF there is the 予約証書.
    crate::desk_web::add_user(&s, "鈴木", &["branch:ibaraki@ejcs.example"]);
    let web = crate::registry_service::Serving::start(&s, &["serve"]);
    let staff = crate::desk_web::login(&web.url, "鈴木");
    let (st, page) = staff.get("/desk/certificates/08075-00001Y");
    assert_eq!(st, 200);
    for expected in ["08075-00001Y（契約保証予約・証書(紙)）", "予約金額", "令和9年1月20日", "予約の有効期限", "3,300 円（うち消費税 300 円）", "契約保証予約証書（PDF）", "有効（印刷待ち）"] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let (st, _, pdf) = crate::registry_service::http(&web.url, "GET", "/desk/certificates/08075-00001Y/certificate.pdf", &[("Cookie", &staff.cookie)], b"");
    assert_eq!(st, 200);
    assert!(pdf_text(&pdf).starts_with("契約保証予約証書"), "{}", pdf_text(&pdf));
    let (_, paper) = staff.get("/desk/paper");
    assert!(paper.contains("08075-00001Y"), "{paper}");
    assert!(web.stop().success());

    // After the award, the 契約保証 for the same works uses it without naming it.
    s.drop_mail(IBARAKI, &contract_application("contract-1@toride-kogyo.example", "取手駅西口広場整備工事", ""));
    pass_at(&s, "2027-01-29T10:00:00+09:00");
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].body.contains("契約保証予約：08075-00001Y（この契約保証により履行済となりました）"), "{}", replies[0].body);
    let k = s.json(&["certificate", "08075-00002K"]);
    assert_eq!(k["reservation"], "08075-00001Y", "{k}");
    let certificate = pdf_text(&replies[0].attachments.iter().find(|(n, _)| n.starts_with("保証証書")).unwrap().1);
    assert!(certificate.contains("契約保証予約番号08075-00001Y"), "{certificate}");
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["status"], "fulfilled");
    let web = crate::registry_service::Serving::start(&s, &["serve"]);
    let staff = crate::desk_web::login(&web.url, "鈴木");
    let (_, page) = staff.get("/desk/certificates/08075-00002K");
    assert!(page.contains("契約保証予約") && page.contains("href=\"/desk/certificates/08075-00001Y\">08075-00001Y</a>（履行済）"), "{page}");
    let (_, page) = staff.get("/desk/certificates/08075-00001Y");
    assert!(page.contains("履行済"), "{page}");
    assert!(web.stop().success());

    // Used once: a second 契約保証 naming it is told so (and R10 already refuses the works).
    s.drop_mail(IBARAKI, &contract_application("contract-2@toride-kogyo.example", "取手駅東口駐輪場整備工事", "契約保証予約番号：08075-00001Y\r\n"));
    pass_at(&s, "2027-01-29T11:00:00+09:00");
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].body.contains("08075-00001Y は既に契約保証に使われています（履行済）"), "{}", replies[0].body);
}

#[test]
fn a_reservation_past_its_time_lapses_in_the_daily_job_and_cannot_be_used() {
    let s = reserved();
    s.edit_config(|t| t.replacen("address = \"ibaraki@ejcs.example\"", "address = \"ibaraki@ejcs.example\"\nstaff_address = \"ibaraki-staff@ejcs.example\"", 1));
    let daily = |now: &str| {
        let out = s.cmd().env("ESURETY_TEST_NOW", now).arg("digest").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Open up to 30 days after its 入札日 (令和9年1月20日), for the 契約保証 to come.
    assert!(!daily("2027-02-19T08:00:00+09:00").contains("lapsed"));
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["status"], "valid");
    let out = daily("2027-02-20T08:00:00+09:00");
    assert!(out.contains("08075-00001Y: 契約保証予約 lapsed (失効)"), "{out}");
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["status"], "lapsed");
    assert!(!daily("2027-02-21T08:00:00+09:00").contains("lapsed"), "once");
    // The branch's staff read it in that day's digest, and the next day's no more.
    let digests: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["ibaraki-staff@ejcs.example"]).collect();
    assert_eq!(digests.len(), 3, "{:?}", digests.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let lapsed_line = "失効した契約保証予約　　　：1 件";
    assert!(!digests[0].body.contains(lapsed_line) && digests[1].body.contains(lapsed_line) && !digests[2].body.contains(lapsed_line),
            "{}\n---\n{}", digests[0].body, digests[1].body);
    assert!(digests[1].body.contains("印刷を待っている書面　　　：1 件"), "{}", digests[1].body);

    // A 契約保証 naming it is told it lapsed; another contractor's naming it, or an unknown
    // number, are told it is not theirs, in the same words.
    s.read_all(TORIDE_KOGYO);
    s.drop_mail(IBARAKI, &contract_application("contract-3@toride-kogyo.example", "取手駅西口広場整備工事", "契約保証予約番号：08075-00001Y\r\n"));
    pass_at(&s, "2027-02-22T10:00:00+09:00");
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].subject.starts_with("【要確認】保証申込の内容に不備があります"), "{}", replies[0].subject);
    assert!(replies[0].body.contains("08075-00001Y は失効しています"), "{}", replies[0].body);
    assert!(s.json(&["certificates"]).as_array().unwrap().len() == 1, "nothing issued");
}

#[test]
fn a_reservation_named_by_another_contractor_or_unknown_gets_one_answer() {
    let s = reserved();
    let other = String::from_utf8(contract_application("contract-4@maruichi.example", "取手駅西口広場整備工事", "契約保証予約番号：08075-00001Y\r\n")).unwrap()
        .replace(TORIDE_KOGYO, MARUICHI).replace("受注者名：取手興業株式会社", "受注者名：丸一建設株式会社");
    s.drop_mail(IBARAKI, other.as_bytes());
    s.drop_mail(IBARAKI, &contract_application("contract-5@toride-kogyo.example", "取手駅西口広場整備工事", "契約保証予約番号：08075-09999Y\r\n"));
    pass_at(&s, "2027-01-29T10:00:00+09:00");
    let line = |address: &str, n: &str| s.mails(address).iter().filter(|m| m.subject.starts_with("【要確認】")).flat_map(|m| m.body.lines().map(str::to_string).collect::<Vec<_>>())
        .find(|l| l.contains(n)).map(|l| l.replace(n, "N")).unwrap_or_default();
    let a = line(MARUICHI, "08075-00001Y");
    let b = line(TORIDE_KOGYO, "08075-09999Y");
    assert!(a.contains("見つかりません"), "{a}");
    assert_eq!(a, b, "one and the same answer");
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["status"], "valid", "still open");
}

#[test]
fn the_blank_form_has_the_new_sections_and_its_bid_bond_section_alone_applies() {
    let s = Setup::new();
    let ask = format!("From: {TORIDE_KOGYO}\r\nTo: {IBARAKI}\r\nSubject: =?utf-8?B?{}?=\r\nMessage-ID: <form@toride-kogyo.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nお願いします。\r\n",
        crate::common::base64("申込書をください".as_bytes()));
    s.drop_mail(IBARAKI, ask.as_bytes());
    pass_at(&s, BEFORE_BID);
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    let form = &replies[0].body;
    for section in ["【請負工事の情報】", "【前払金保証】", "【契約保証】", "契約保証予約番号：", "【中間前払金保証】", "【契約保証予約】", "入札日：", "予定価格："] {
        assert!(form.contains(section), "{section} in {form}");
    }
    // The contractor copies the last section, fills it in and sends it.
    let section = &form[form.find("【契約保証予約】").unwrap()..];
    let section: String = section.lines().take_while(|l| !l.starts_with("──")).collect::<Vec<_>>().join("\r\n")
        .replace("申込：\r", "申込：申し込む\r").replace("発注者名：\r", "発注者名：取手市長\r").replace("工事名：\r", "工事名：取手市役所庁舎空調設備更新工事\r")
        .replace("入札日：\r", "入札日：令和9年1月22日\r").replace("予定価格：\r", "予定価格：30,000,000円\r").replace("契約保証金額：", "契約保証金額：3,000,000円");
    let mail = format!("From: {TORIDE_KOGYO}\r\nTo: {IBARAKI}\r\nSubject: =?utf-8?B?{}?=\r\nMessage-ID: <bid-form@toride-kogyo.example>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{section}\r\n",
        crate::common::base64("保証申込（契約保証予約）".as_bytes()));
    s.drop_mail(IBARAKI, mail.as_bytes());
    pass_at(&s, BEFORE_BID);
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].subject.starts_with("保証申込受付のお知らせ"), "{}\n{}", replies[0].subject, replies[0].body);
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["bid_bond"]["planned_price"], 30_000_000);
}

#[test]
fn one_open_reservation_per_works_and_a_new_one_once_it_lapsed() {
    let s = reserved();
    s.read_all(TORIDE_KOGYO);
    let again = |mid: &str| String::from_utf8(fixture("bid_bond/001.eml")).unwrap().replace("<bid-001@example>", mid).into_bytes();
    s.drop_mail(IBARAKI, &again("<bid-again-1@example>"));
    pass_at(&s, "2026-12-11T10:00:00+09:00");
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].body.contains("この工事の契約保証予約は 08075-00001Y として発行済みです"), "{}", replies[0].body);
    // The bid failed (不調) and the works are put out again: once the first reservation
    // lapsed, a new one for a new 入札日 is issued.
    let out = s.cmd().env("ESURETY_TEST_NOW", "2027-02-20T08:00:00+09:00").arg("digest").output().unwrap();
    assert!(out.status.success());
    let rebid = String::from_utf8(again("<bid-again-2@example>")).unwrap().replace("入札日：令和9年1月20日", "入札日：令和9年3月10日");
    s.drop_mail(IBARAKI, rebid.as_bytes());
    pass_at(&s, "2027-02-20T10:00:00+09:00");
    let replies = new_mails_of(&s, TORIDE_KOGYO);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].body.contains("予約番号　　：08075-00002Y") && replies[0].body.contains("入札日　　　：令和9年3月10日"), "{}", replies[0].body);
}

/// A store made before these products (version 10: no kept documents, no reservations) is
/// brought up to date when esurety starts on it, on either database: what it held answers
/// as before, and the new products work on it.
#[test]
fn a_store_from_before_these_products_is_brought_up_to_date_with_its_data() {
    let s = issued();
    let key = key_in(&pdf_text(&s.mails(MARUICHI)[0].attachments[0].1)).expect("the 前払金保証's key");
    let mut db = s.db();
    let pg = matches!(db, crate::pg::Db::Pg(_));
    let version = |db: &mut crate::pg::Db| db.count(if pg { "SELECT max(version) FROM schema_version" } else { "SELECT user_version FROM pragma_user_version" });
    // The latest version (later ones than 12 are dropped too, to be made again).
    let latest = version(&mut db);
    db.execute("DROP INDEX certificates_due; ALTER TABLE certificates DROP COLUMN guarantee_end; DROP TABLE owner_events; DROP TABLE token_numbers; DROP TABLE webhook_deliveries; DROP TABLE certificate_events; DROP TABLE issued_documents; DROP TABLE oauth_tokens; DROP TABLE known_callers; DROP TABLE fresh_tokens; DROP TABLE reservations; DROP TABLE certificate_documents; ALTER TABLE messages DROP COLUMN lease_until; ALTER TABLE submissions DROP COLUMN signature; ALTER TABLE submissions DROP COLUMN signature_reason;");
    db.execute(if pg { "DELETE FROM schema_version WHERE version > 10" } else { "PRAGMA user_version = 10" });
    assert_eq!(version(&mut db), 10);
    drop(db);

    // The next pass opens it: a 中間前払金保証 with its 認定調書 (version 11) and a
    // 契約保証予約 (version 12) on the store as it was (and the later versions: 13, leases).
    let certification = s.mails(MARUICHI)[0].attachments[1].1.clone();
    s.drop_mail(KANAGAWA, &with_certification(&intermediate("mid-up@maruichi.example", "35075-00001M", "10,000,000円", "令和8年12月1日"), &certification));
    s.drop_mail(IBARAKI, &fixture("bid_bond/001.eml"));
    later_pass(&s);
    assert_eq!(version(&mut s.db()), latest);
    assert_eq!(s.json(&["verify", "35075-00001M", &key])["result"], "valid", "the registry as before");
    let mut numbers: Vec<String> = s.json(&["certificates"]).as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap().to_string()).collect();
    numbers.sort();
    assert_eq!(numbers, ["08075-00001Y", "35075-00001M", "35075-00002K", "35075-00003C"]);
    assert_eq!(s.json(&["certificate", "35075-00003C"])["documents"][0]["kind"], "認定調書");
    assert_eq!(s.json(&["certificate", "08075-00001Y"])["bid_bond"]["bid_date"], "2027-01-20");
    // The certificates from before know their 保証期限 (version 20): the daily job expires
    // them once it has passed.
    s.env.borrow_mut().push(("ESURETY_TEST_NOW".into(), "2027-04-02T09:00:00+09:00".into()));
    let out = s.run_ok(&["digest"]);
    assert!(out.contains("35075-00001M: expired") && out.contains("35075-00002K: expired"), "{out}");
}
