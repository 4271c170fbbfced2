//! Table tests of R1–R10 against the embedded default's parties.

use super::*;
use crate::branch::application::form::parse;
use crate::config::{Config, RawConfig, default::DEFAULT_CONFIG};
use std::path::Path;

fn config() -> Config {
    Config::from_raw(toml::from_str::<RawConfig>(DEFAULT_CONFIG).unwrap(), Path::new("x/esurety.toml")).unwrap()
}

const VALID: &str = "【請負工事の情報】\n受注者名：丸一建設株式会社\nJV名：\n発注者名：神奈川県内広域水道企業団 企業長\n工事名：○○浄水場△△修繕工事\n工事場所：神奈川県相模原市\n請負金額：50,000,000円\n工期：令和8年7月10日 ～ 令和9年3月31日\n請負契約日：令和8年7月10日\n落札決定日：令和8年7月3日\n【前払金保証】\n申込：申し込む\n保証証書の形式：電子保証\n今年度対象額：\n前払金保証金額：20,000,000円\n預託金融機関：○○銀行 ××支店\n再預託利用区分：再預託を利用しない\n保証料支払方法：一括納付\n保証料請求先：本社\n保証料計算書(紙)：希望しない\n【契約保証】\n申込：申し込む\n保証証書の形式：電子保証\n契約保証金額：5,000,000円\n保証料支払方法：一括納付\n保証料請求先：本社\n保証料計算書(紙)：希望する\n【インフォメーション】\n申込送信先：神奈川支店\n電子保証発行完了のお知らせ：希望する\nメールアドレス：soumu@maruichi.example\n";

fn run(text: &str, from: &str, existing: Vec<(String, String)>) -> Decision {
    let c = config();
    let branch = c.branch_by_name("神奈川支店").unwrap().clone();
    validate(&parse(text), &c, &branch, &Sender { from: from.into(), envelope: None }, &existing)
}

fn problems(text: &str) -> Vec<Problem> {
    match run(text, "soumu@maruichi.example", vec![]) {
        Decision::Reject(p) => p,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn the_sample_form_is_issued() {
    let Decision::Issue(app) = run(VALID, "soumu@maruichi.example", vec![]) else { panic!() };
    assert_eq!(app.products.len(), 2);
    assert_eq!(app.products[0].bank.as_deref(), Some("○○銀行\u{3000}××支店"));
    assert_eq!(app.products[0].redeposit, Some(false));
    assert!(app.products[1].fee_statement);
    assert_eq!(app.owner, "神奈川県内広域水道企業団 企業長");
    assert_eq!(app.notify.as_deref(), Some("soumu@maruichi.example"));
    assert_eq!(app.office_code, "35075");
}

#[test]
fn each_rule_names_its_field() {
    // (change to the valid form, rule, field label as in the form)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("工事名：○○浄水場△△修繕工事", "工事名：", "R1", "工事名"),
        ("受注者名：丸一建設株式会社", "受注者名：三和土木株式会社", "R6", "受注者名"),
        ("前払金保証金額：20,000,000円", "前払金保証金額：20,000,001円", "R3", "【前払金保証】前払金保証金額"),
        ("前払金保証金額：20,000,000円", "前払金保証金額：二千万円", "R3", "【前払金保証】前払金保証金額"),
        ("今年度対象額：", "今年度対象額：30,000,000円", "R3", "【前払金保証】前払金保証金額"),
        ("今年度対象額：", "今年度対象額：60,000,000円", "R3", "【前払金保証】今年度対象額"),
        ("契約保証金額：5,000,000円", "契約保証金額：4,999,999円", "R3", "【契約保証】契約保証金額"),
        ("工期：令和8年7月10日 ～ 令和9年3月31日", "工期：令和9年3月31日 ～ 令和8年7月10日", "R4", "工期"),
        ("工期：令和8年7月10日 ～ 令和9年3月31日", "工期：令和8年7月10日", "R4", "工期"),
        ("請負契約日：令和8年7月10日", "請負契約日：令和8年2月30日", "R4", "請負契約日"),
        ("請負契約日：令和8年7月10日", "請負契約日：令和9年4月1日", "R4", "請負契約日"),
        ("落札決定日：令和8年7月3日", "落札決定日：令和8年6月30日", "R5", "【前払金保証】保証証書の形式"),
        ("落札決定日：令和8年7月3日", "落札決定日：", "R5", "【契約保証】保証証書の形式"),
        ("発注者名：神奈川県内広域水道企業団 企業長", "発注者名：どこかの村長", "R5", "発注者名"),
        ("申込送信先：神奈川支店", "申込送信先：長野支店", "R7", "申込送信先"),
        ("メールアドレス：soumu@maruichi.example", "メールアドレス：soumu@maruichi", "R8", "メールアドレス"),
        ("預託金融機関：○○銀行 ××支店", "預託金融機関：○○銀行", "R9", "【前払金保証】預託金融機関"),
        ("再預託利用区分：再預託を利用しない", "再預託利用区分：たぶん", "R1", "【前払金保証】再預託利用区分"),
        ("保証証書の形式：電子保証\n今年度", "保証証書の形式：FAX\n今年度", "R1", "【前払金保証】保証証書の形式"),
    ];
    for (from, to, rule, field) in cases {
        assert!(VALID.contains(from), "{from}");
        let text = VALID.replacen(from, to, 1);
        let p = problems(&text);
        assert!(p.iter().any(|p| p.rule == *rule && p.field == *field), "{to}: want {rule} on {field}, got {p:#?}");
    }
}

#[test]
fn every_problem_at_once() {
    let text = VALID
        .replace("工事名：○○浄水場△△修繕工事", "工事名：")
        .replace("前払金保証金額：20,000,000円", "前払金保証金額：30,000,000円")
        .replace("申込送信先：神奈川支店", "申込送信先：茨城支店")
        .replace("メールアドレス：soumu@maruichi.example", "メールアドレス：あいう");
    let rules: Vec<&str> = problems(&text).iter().map(|p| p.rule).collect();
    assert_eq!(rules, ["R1", "R3", "R7", "R8"]);
}

#[test]
fn nothing_applied_for() {
    let text = VALID.replace("申込：申し込む", "申込：申し込まない");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].rule, "R2");
}

#[test]
fn paper_for_an_owner_without_electronic() {
    let text = VALID.replace("神奈川県内広域水道企業団 企業長", "東西町長");
    let p = problems(&text);
    assert!(p.iter().all(|p| p.rule == "R5"), "{p:?}");
    assert!(p[0].message.contains("証書(紙)"));
    let paper = text.replace("保証証書の形式：電子保証", "保証証書の形式：証書(紙)");
    assert!(matches!(run(&paper, "soumu@maruichi.example", vec![]), Decision::Issue(_)));
}

#[test]
fn unknown_senders_are_held_and_registered_ones_of_a_jv_pass() {
    assert!(matches!(run(VALID, "mallory@evil.example", vec![]), Decision::Hold(_)));
    let jv = VALID.replace("JV名：", "JV名：丸一・三和特定建設工事共同企業体");
    assert!(matches!(run(&jv, "keiri@maruichi.example", vec![]), Decision::Issue(_)));
    // The JV's other member is registered, but is not its representative.
    let other = jv.replace("受注者名：丸一建設株式会社", "受注者名：三和土木株式会社");
    assert!(matches!(run(&other, "keiyaku@sanwa-doboku.example", vec![]), Decision::Reject(_)));
}

#[test]
fn the_same_works_twice() {
    let key = crate::branch::application::works_key("丸一建設株式会社", "神奈川県内広域水道企業団 企業長", "○○浄水場△△修繕工事", Product::Advance);
    let Decision::Reject(p) = run(VALID, "soumu@maruichi.example", vec![(key, "35075-00001M".into())]) else { panic!() };
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].rule, "R10");
    assert!(p[0].message.contains("35075-00001M"));
}

#[test]
fn bank_names() {
    for ok in ["○○銀行 ××支店", "ＡＢＣ信用金庫本店", "○○農業協同組合　△△支所", "みずほ銀行 東京営業部"] {
        assert!(is_bank_and_branch(ok), "{ok}");
    }
    for bad in ["○○銀行", "××支店", "○○商店 本店", ""] {
        assert!(!is_bank_and_branch(bad), "{bad}");
    }
}
