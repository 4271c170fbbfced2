//! Change requests against the embedded default's parties.

use super::*;
use crate::branch::application::validate::validate;
use crate::clock::SeededRandom;
use crate::config::{Config, RawConfig, default::DEFAULT_CONFIG};
use crate::branch::issuance::issue;
use std::path::Path;

fn config() -> Config {
    Config::from_raw(toml::from_str::<RawConfig>(DEFAULT_CONFIG).unwrap(), Path::new("x/esurety.toml")).unwrap()
}

const FORM: &str = "【請負工事の情報】\n受注者名：丸一建設株式会社\n発注者名：神奈川県内広域水道企業団 企業長\n工事名：○○浄水場△△修繕工事\n請負金額：50,000,000円\n工期：令和8年7月10日 ～ 令和9年3月31日\n請負契約日：令和8年7月10日\n落札決定日：令和8年7月3日\n【前払金保証】\n申込：申し込む\n保証証書の形式：電子保証\n前払金保証金額：20,000,000円\n預託金融機関：○○銀行 ××支店\n再預託利用区分：再預託を利用しない\n保証料支払方法：一括納付\n保証料請求先：本社\n保証料計算書(紙)：希望しない\n【インフォメーション】\n申込送信先：神奈川支店\n電子保証発行完了のお知らせ：希望しない\n";

fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339("2026-08-01T10:00:00+09:00").unwrap()
}

/// The certificate the sample form issues (version 1).
fn current(c: &Config) -> Certificate {
    let branch = c.branch_by_name("神奈川支店").unwrap();
    let sender = Sender { from: "soumu@maruichi.example".into(), envelope: None };
    let d = validate(&form::parse(FORM), c, branch, &sender, &Vec::new());
    let Decision::Issue(app) = d else { panic!("the sample form is valid: {d:?}") };
    issue(&app, &[1], &SeededRandom::new(1), now()).remove(0).certificate
}

fn decide_text(text: &str, from: &str) -> ChangeDecision {
    let c = config();
    let cur = current(&c);
    let branch = c.branch_by_name("神奈川支店").unwrap();
    decide(&parse(text), &cur, &c, branch, branch, &Sender { from: from.into(), envelope: None }, &Vec::new(), now())
}

#[test]
fn reads_the_change_section() {
    let raw = parse("お世話になります。\n【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n前払金保証金額：22,000,000円\n変更理由：工期延長\n-- \n工事名：署名\n");
    assert_eq!(raw.number.as_deref(), Some("35075-00001M"));
    assert_eq!(raw.reason.as_deref(), Some("工期延長"));
    assert_eq!(raw.fields, vec![("工期".to_string(), "令和8年7月10日 ～ 令和9年6月30日".to_string()), ("前払金保証金額".to_string(), "22,000,000円".to_string())]);
    assert!(has_change("【 変更申込 】"));
    assert!(!has_change("【請負工事の情報】"));
}

#[test]
fn term_and_amount_make_the_next_version() {
    // The spec's example on its own: 22,000,000 is over 40 % of the unchanged 請負金額.
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n前払金保証金額：22,000,000円\n", "soumu@maruichi.example");
    assert!(matches!(d, ChangeDecision::Reject(ref p) if p[0].rule == "R3"), "{d:?}");
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n請負金額：55,000,000円\n前払金保証金額：22,000,000円\n", "soumu@maruichi.example");
    let ChangeDecision::Change { contents, changed } = d else { panic!("{d:?}") };
    assert_eq!(changed, ["請負金額", "工期", "前払金保証金額"]);
    assert_eq!(contents.version, 2);
    assert_eq!(contents.change_label().as_deref(), Some("変更-1"));
    assert_eq!(contents.amount, 22_000_000);
    assert_eq!(contents.guarantee_end.to_string(), "2027-06-30");
    assert_eq!(contents.number, "35075-00001M");
}

#[test]
fn the_contract_price_alone_needs_no_procedure() {
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n請負金額：52,000,000円\n", "soumu@maruichi.example");
    assert_eq!(d, ChangeDecision::PriceOnly);
}

#[test]
fn the_same_rules_apply_to_the_new_contents() {
    // 40 % of 50,000,000 is the cap; a term that ends before it starts.
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n前払金保証金額：30,000,000円\n工期：令和9年7月10日 ～ 令和8年6月30日\n", "soumu@maruichi.example");
    let ChangeDecision::Reject(p) = d else { panic!("{d:?}") };
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"工期"), "{p:?}");
    assert!(fields.iter().any(|f| f.ends_with("前払金保証金額")), "{p:?}");
}

#[test]
fn fixed_fields_unknown_labels_and_no_change_are_problems() {
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n発注者名：横浜市\n色：赤\n契約保証金額：1,000,000円\n", "soumu@maruichi.example");
    let ChangeDecision::Reject(p) = d else { panic!("{d:?}") };
    assert_eq!(p.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["発注者名", "色", "契約保証金額"]);
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日～令和9年3月31日\n", "soumu@maruichi.example");
    let ChangeDecision::Reject(p) = d else { panic!("{d:?}") };
    assert!(p[0].message.contains("同じ"), "{p:?}");
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n", "soumu@maruichi.example");
    assert!(matches!(d, ChangeDecision::Reject(ref p) if p[0].field == "変更内容"), "{d:?}");
}

#[test]
fn another_contractor_or_a_stranger() {
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n工事場所：横浜市\n", "info@stranger.example");
    assert!(matches!(d, ChangeDecision::Hold(_)), "{d:?}");
    let c = config();
    let other = c.contractors.iter().find(|k| k.name != "丸一建設株式会社").unwrap();
    let d = decide_text("【変更申込】\n保証契約番号：35075-00001M\n工事場所：横浜市\n", &other.emails[0]);
    let ChangeDecision::Reject(p) = d else { panic!("{d:?}") };
    assert_eq!(p[0].field, "受注者名");
}
