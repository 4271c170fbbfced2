//! 保証契約一覧 by email (`products.md`): a registered contractor's request answered with
//! its certificates in the body and as a CSV that Excel opens as it is; narrowed by the
//! lines of the body; a stranger's request held.

use crate::common::Setup;
use std::path::Path;

const MARUICHI: &str = "soumu@maruichi.example";
const KANAGAWA: &str = "kanagawa@ejcs.example";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

fn request(from: &str, mid: &str, body: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?{}?=\r\nMessage-ID: <{mid}>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        crate::common::base64("保証契約一覧の送付のお願い".as_bytes())).into_bytes()
}

fn lists(s: &Setup) -> Vec<crate::common::Mail> {
    s.mails(MARUICHI).into_iter().chain(s.mails("keiri@maruichi.example")).filter(|m| m.subject.starts_with("保証契約一覧")).collect()
}

/// The CSV's rows after its header, split into cells (the file quotes every cell).
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with a BOM, as Excel needs");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'), "CRLF line ends");
    text.split("\r\n").skip(1).filter(|l| !l.is_empty())
        .map(|l| l.trim_matches('"').split("\",\"").map(|c| c.replace("\"\"", "\"")).collect()).collect()
}

#[test]
fn a_registered_contractor_gets_its_list_in_the_body_and_as_a_csv() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    s.drop_mail(KANAGAWA, &request(MARUICHI, "list-1@maruichi.example", "一覧をお願いします。"));
    s.drop_mail(KANAGAWA, &request(MARUICHI, "list-2@maruichi.example", "工事名：浄水場\n発注者名：水道企業団\n"));
    s.drop_mail(KANAGAWA, &request(MARUICHI, "list-3@maruichi.example", "期間：2026/08/01～"));
    s.drop_mail(KANAGAWA, &request(MARUICHI, "list-4@maruichi.example", "工事名：体育館"));
    let out = s.once();
    assert!(String::from_utf8_lossy(&out.stderr).contains("other replies 4"), "{}", String::from_utf8_lossy(&out.stderr));
    let mails = lists(&s);
    // Each answer goes to every registered address of 丸一建設 (two), four requests.
    assert_eq!(mails.len(), 8, "{:?}", mails.iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>());
    let of = |mid: &str| mails.iter().find(|m| m.in_reply_to.as_deref() == Some(mid)).unwrap_or_else(|| panic!("no answer to {mid}"));

    let all = of("<list-1@maruichi.example>");
    assert_eq!(all.to, ["soumu@maruichi.example", "keiri@maruichi.example"]);
    for n in ["35075-00001M", "35075-00002K"] {
        assert!(all.body.contains(n), "{n} in:\n{}", all.body);
    }
    assert!(!all.body.contains("08075-00001M"), "not another contractor's");
    assert!(all.body.contains("○○浄水場△△修繕工事") && all.body.contains("20,000,000 円") && all.body.contains("2 件"), "{}", all.body);
    let (name, csv) = &all.attachments[0];
    assert!(name.starts_with("保証契約一覧_") && name.ends_with(".csv"), "{name}");
    let rows = csv_rows(csv);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], ["35075-00001M", "前払金保証", "○○浄水場△△修繕工事", "神奈川県内広域水道企業団 企業長", "20000000", "電子保証", "有効", "1", "2026/07/04"]);
    assert!(String::from_utf8_lossy(&all.raw).contains("text/csv"));

    assert_eq!(csv_rows(&of("<list-2@maruichi.example>").attachments[0].1).len(), 2, "both are the water authority's 浄水場 works");
    let later = of("<list-3@maruichi.example>");
    assert!(csv_rows(&later.attachments[0].1).is_empty() && later.body.contains("該当する保証はありません"), "nothing issued after 2026/08/01");
    assert!(later.body.contains("絞り込み：期間 2026/08/01～"));
    assert!(csv_rows(&of("<list-4@maruichi.example>").attachments[0].1).is_empty(), "取手興業's 体育館 is not 丸一建設's");
}

#[test]
fn a_strangers_request_for_a_list_is_held() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &fixture("valid/001.eml"));
    s.once();
    s.drop_mail(KANAGAWA, &request("someone@stranger.example", "list-x@stranger.example", "丸一建設の一覧をください"));
    s.once();
    let held = s.json(&["staff", "held"]);
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert!(held[0]["reason"].as_str().unwrap().contains("登録されたアドレスではありません"));
    assert!(crate::common::mails_in(&s.maildir("relay")).iter().all(|m| !m.subject.starts_with("保証契約一覧")), "nothing sent to the stranger");
    assert!(lists(&s).is_empty());
}
