//! The application form (`application-form.md` § Shape): text → [`RawApplication`].
//!
//! Only shape is read here: sections in 【】, `label：value` lines, ignored lines, the
//! signature. Nothing is judged; values stay as written (trimmed) for the validator, which
//! turns a `RawApplication` into an `Application` or a list of problems.

use crate::text::{nfkc, squash};
use serde::Serialize;

/// One product section as written. `None` fields were absent; `Some("")` were left blank.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RawProduct {
    pub apply: Option<String>,
    pub format: Option<String>,
    pub this_year_amount: Option<String>,
    pub amount: Option<String>,
    pub bank: Option<String>,
    pub redeposit: Option<String>,
    pub payment_method: Option<String>,
    pub billing: Option<String>,
    pub fee_statement: Option<String>,
    /// 契約保証予約番号 (【契約保証】 only): the reservation this 契約保証 fulfils.
    pub reservation: Option<String>,
}

/// 【契約保証予約】 as written.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RawBidBond {
    pub apply: Option<String>,
    pub owner: Option<String>,
    pub project: Option<String>,
    pub bid_date: Option<String>,
    /// 予定価格.
    pub planned_price: Option<String>,
    /// 契約保証金額: what the 契約保証 will guarantee.
    pub amount: Option<String>,
    /// Not on the spec's form: read so that a request for 電子保証 can be answered.
    pub format: Option<String>,
}

/// 【中間前払金保証】 as written.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RawIntermediate {
    pub apply: Option<String>,
    /// 前払金保証の保証契約番号: the 前払金保証 it adds to.
    pub advance_number: Option<String>,
    pub format: Option<String>,
    pub amount: Option<String>,
    /// 認定日: when the owner certified the progress (認定調書).
    pub certified_on: Option<String>,
    pub certification_no: Option<String>,
    pub fee_statement: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RawApplication {
    // 【請負工事の情報】
    pub contractor: Option<String>,
    pub jv: Option<String>,
    pub owner: Option<String>,
    pub project: Option<String>,
    pub site: Option<String>,
    pub contract_price: Option<String>,
    pub term: Option<String>,
    pub contract_date: Option<String>,
    pub award_date: Option<String>,
    /// 【前払金保証】, when the section is present.
    pub advance: Option<RawProduct>,
    /// 【契約保証】, when the section is present.
    pub contract: Option<RawProduct>,
    /// 【中間前払金保証】, when the section is present.
    pub intermediate: Option<RawIntermediate>,
    /// 【契約保証予約】, when the section is present.
    pub bid_bond: Option<RawBidBond>,
    // 【インフォメーション】
    pub send_to: Option<String>,
    pub notify: Option<String>,
    pub email: Option<String>,
    // 【連絡先】
    pub department: Option<String>,
    pub title: Option<String>,
    pub person: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    /// Unknown sections and labels, lines that could not be read: told in the reply.
    pub warnings: Vec<String>,
}

pub const SECTION_WORKS: &str = "請負工事の情報";
pub const SECTION_ADVANCE: &str = "前払金保証";
pub const SECTION_CONTRACT: &str = "契約保証";
pub const SECTION_INTERMEDIATE: &str = "中間前払金保証";
pub const SECTION_BID_BOND: &str = "契約保証予約";
pub const SECTION_INFO: &str = "インフォメーション";
pub const SECTION_CONTACT: &str = "連絡先";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Section {
    Works,
    Advance,
    Contract,
    Intermediate,
    BidBond,
    Info,
    Contact,
    Unknown,
}

/// Does this text carry the form at all (a known section header)?
pub fn has_form(text: &str) -> bool {
    text.lines().any(|l| {
        let l = squash(l);
        l.starts_with('【') && section_of(&l).is_some_and(|s| s != Section::Unknown)
    })
}

fn section_of(squashed_line: &str) -> Option<Section> {
    let inner = squashed_line.strip_prefix('【')?.split_once('】')?.0;
    Some(match inner {
        SECTION_WORKS | "請負工事情報" => Section::Works,
        SECTION_ADVANCE => Section::Advance,
        SECTION_CONTRACT => Section::Contract,
        SECTION_INTERMEDIATE => Section::Intermediate,
        SECTION_BID_BOND | "入札ボンド" => Section::BidBond,
        SECTION_INFO | "その他" => Section::Info,
        SECTION_CONTACT => Section::Contact,
        _ => Section::Unknown,
    })
}

/// Labels are compared after NFKC with spaces removed; a trailing `(全角)` or `必須` (as
/// the web form shows them) is ignored.
fn canonical_label(label: &str) -> String {
    let mut l = squash(label);
    for suffix in ["必須", "(全角)", "(半角)"] {
        if let Some(s) = l.strip_suffix(suffix) {
            l = s.to_string();
        }
    }
    l
}

pub fn parse(text: &str) -> RawApplication {
    let mut app = RawApplication::default();
    let mut section: Option<Section> = None;
    let mut last_free_text = false;
    for raw_line in text.lines() {
        let trimmed = raw_line.trim_end();
        if trimmed == "--" || raw_line == "-- " {
            break; // the signature
        }
        let line = nfkc(raw_line);
        if line.is_empty() || line.starts_with('>') || line.starts_with('※') || line.starts_with('#') {
            continue;
        }
        if line.starts_with('【') {
            let squashed = squash(&line);
            section = section_of(&squashed);
            match section {
                Some(Section::Advance) => { app.advance.get_or_insert_with(RawProduct::default); }
                Some(Section::Contract) => { app.contract.get_or_insert_with(RawProduct::default); }
                Some(Section::Intermediate) => { app.intermediate.get_or_insert_with(RawIntermediate::default); }
                Some(Section::BidBond) => { app.bid_bond.get_or_insert_with(RawBidBond::default); }
                Some(Section::Unknown) => app.warnings.push(format!("不明な項目見出し「{}」は読み飛ばしました", line.trim())),
                _ => {}
            }
            last_free_text = false;
            continue;
        }
        let Some(sec) = section else { continue }; // greeting text before the form
        let Some((label, value, stripped)) = split_line(raw_line) else {
            if last_free_text {
                if let Some(m) = app.message.as_mut() {
                    m.push('\n');
                    m.push_str(raw_line.trim());
                }
            } else if sec != Section::Unknown {
                app.warnings.push(format!("読み取れない行「{}」は読み飛ばしました", line.trim()));
            }
            continue;
        };
        last_free_text = false;
        if stripped {
            app.warnings.push(format!("「{label}」から制御文字を取り除きました"));
        }
        if !assign(&mut app, sec, &label, value) && sec != Section::Unknown {
            app.warnings.push(format!("不明な項目「{label}」は読み飛ばしました"));
        } else if sec == Section::Contact && label == "お客様から弊社への連絡事項" {
            last_free_text = true;
        }
    }
    app
}

/// The value after the first `：` or `:` of the line as written.
fn raw_value(raw_line: &str) -> Option<String> {
    let i = raw_line.find(['：', ':', '﹕'])?;
    let sep_len = raw_line[i..].chars().next()?.len_utf8();
    Some(raw_line[i + sep_len..].trim().trim_matches('\u{3000}').trim().to_string())
}

/// A `label：value` line: the label normalised (see [`canonical_label`]), the value as
/// written (not normalised: names are printed as the contractor wrote them) but without
/// control characters, and whether any were removed.
pub(crate) fn split_line(raw_line: &str) -> Option<(String, String, bool)> {
    let line = nfkc(raw_line);
    let (label, value) = line.split_once(':')?;
    let value = raw_value(raw_line).unwrap_or_else(|| value.trim().to_string());
    let (value, stripped) = without_controls(&value);
    Some((canonical_label(label), value, stripped))
}

/// The value without control characters (see [`crate::text::printable`]), and whether
/// any were removed.
pub fn without_controls(s: &str) -> (String, bool) {
    let out = crate::text::printable(s).replace('\n', " ");
    let stripped = out != s.replace('\t', " ");
    (out.trim().to_string(), stripped)
}

/// Puts a value in its slot; `false` when the section has no such label.
pub(crate) fn assign(app: &mut RawApplication, sec: Section, label: &str, value: String) -> bool {
    let slot: &mut Option<String> = match sec {
        Section::Works => match label {
            "受注者名" | "請負契約者名" | "請負契約者" => &mut app.contractor,
            "JV名" | "共同企業体名" => &mut app.jv,
            "発注者名" | "発注者" => &mut app.owner,
            "工事名" => &mut app.project,
            "工事場所" => &mut app.site,
            "請負金額" => &mut app.contract_price,
            "工期" => &mut app.term,
            "請負契約日" => &mut app.contract_date,
            "落札決定日" => &mut app.award_date,
            _ => return false,
        },
        Section::Advance | Section::Contract => {
            let p = if sec == Section::Advance { &mut app.advance } else { &mut app.contract };
            let p = p.get_or_insert_with(RawProduct::default);
            let own = if sec == Section::Advance { "前払金" } else { "契約" };
            let l = label.strip_prefix(own).filter(|l| l.starts_with("保証料")).unwrap_or(label);
            match l {
                "申込" => &mut p.apply,
                "保証証書の形式" | "保証証書の形式について" => &mut p.format,
                "今年度対象額" if sec == Section::Advance => &mut p.this_year_amount,
                "前払金保証金額" if sec == Section::Advance => &mut p.amount,
                "契約保証金額" if sec == Section::Contract => &mut p.amount,
                "預託金融機関" if sec == Section::Advance => &mut p.bank,
                "再預託利用区分" if sec == Section::Advance => &mut p.redeposit,
                "保証料支払方法" => &mut p.payment_method,
                "保証料請求先" => &mut p.billing,
                "保証料計算書(紙)" | "保証料計算書(紙)について" | "保証料計算書" => &mut p.fee_statement,
                "契約保証予約番号" | "予約番号" if sec == Section::Contract => &mut p.reservation,
                _ => return false,
            }
        }
        Section::BidBond => {
            let p = app.bid_bond.get_or_insert_with(RawBidBond::default);
            match label {
                "申込" => &mut p.apply,
                "発注者名" | "発注者" => &mut p.owner,
                "工事名" => &mut p.project,
                "入札日" | "入札予定日" => &mut p.bid_date,
                "予定価格" => &mut p.planned_price,
                "契約保証金額" | "予約金額" => &mut p.amount,
                "保証証書の形式" | "保証証書の形式について" => &mut p.format,
                _ => return false,
            }
        }
        Section::Intermediate => {
            let p = app.intermediate.get_or_insert_with(RawIntermediate::default);
            match label {
                "申込" => &mut p.apply,
                "前払金保証の保証契約番号" | "前払金保証の番号" | "保証契約番号" => &mut p.advance_number,
                "保証証書の形式" | "保証証書の形式について" => &mut p.format,
                "中間前払金保証金額" => &mut p.amount,
                "認定日" => &mut p.certified_on,
                "認定番号" => &mut p.certification_no,
                "保証料計算書(紙)" | "保証料計算書(紙)について" | "保証料計算書" => &mut p.fee_statement,
                _ => return false,
            }
        }
        Section::Info => match label {
            "申込送信先" => &mut app.send_to,
            "電子保証発行完了のお知らせ" => &mut app.notify,
            "メールアドレス" => &mut app.email,
            _ => return false,
        },
        Section::Contact => match label {
            "担当部署" => &mut app.department,
            "役職" => &mut app.title,
            "担当者名" => &mut app.person,
            "連絡先電話番号" | "電話番号" => &mut app.phone,
            "お客様から弊社への連絡事項" | "連絡事項" => &mut app.message,
            _ => return false,
        },
        Section::Unknown => return true,
    };
    *slot = Some(value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = "お世話になっております。\n\n【請負工事の情報】\n受注者名：丸一建設株式会社\nJV名：\n発注者名：神奈川県内広域水道企業団 企業長\n工事名：○○浄水場△△修繕工事\n工事場所：神奈川県相模原市\n請負金額：50,000,000円\n工期：令和8年7月10日 ～ 令和9年3月31日\n請負契約日：令和8年7月10日\n落札決定日：令和8年7月3日\n\n【前払金保証】\n申込：申し込む\n保証証書の形式：電子保証\n今年度対象額：\n前払金保証金額：20,000,000円\n預託金融機関：○○銀行 ××支店\n再預託利用区分：再預託を利用しない\n保証料支払方法：一括納付\n保証料請求先：本社\n保証料計算書(紙)：希望しない\n\n【契約保証】\n申込：申し込まない\n\n【インフォメーション】\n申込送信先：神奈川支店\n電子保証発行完了のお知らせ：希望する\nメールアドレス：soumu@maruichi.example\n\n【連絡先】\n担当者名：山田 太郎\nお客様から弊社への連絡事項：よろしく\nお願いします\n-- \n丸一建設 山田\n工事名：署名の中\n";

    #[test]
    fn reads_every_section() {
        let a = parse(SAMPLE);
        assert_eq!(a.contractor.as_deref(), Some("丸一建設株式会社"));
        assert_eq!(a.jv.as_deref(), Some(""));
        assert_eq!(a.owner.as_deref(), Some("神奈川県内広域水道企業団 企業長"));
        assert_eq!(a.project.as_deref(), Some("○○浄水場△△修繕工事"));
        assert_eq!(a.term.as_deref(), Some("令和8年7月10日 ～ 令和9年3月31日"));
        let adv = a.advance.unwrap();
        assert_eq!(adv.amount.as_deref(), Some("20,000,000円"));
        assert_eq!(adv.bank.as_deref(), Some("○○銀行 ××支店"));
        assert_eq!(adv.fee_statement.as_deref(), Some("希望しない"));
        assert_eq!(a.contract.unwrap().apply.as_deref(), Some("申し込まない"));
        assert_eq!(a.email.as_deref(), Some("soumu@maruichi.example"));
        assert_eq!(a.message.as_deref(), Some("よろしく\nお願いします"));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn shape_variants() {
        let cases: &[(&str, fn(&RawApplication) -> Option<&str>, Option<&str>)] = &[
            ("【請負工事の情報】\n工事名: 半角コロン", |a| a.project.as_deref(), Some("半角コロン")),
            ("【 請負工事の情報 】\n 工 事 名 ： 空白入り ", |a| a.project.as_deref(), Some("空白入り")),
            ("【請負工事の情報】\n工事名：Ａ：Ｂ", |a| a.project.as_deref(), Some("Ａ：Ｂ")),
            ("【請負工事の情報】\n> 工事名：引用\n", |a| a.project.as_deref(), None),
            ("【請負工事の情報】\n※工事名：注記\n# 工事名：コメント", |a| a.project.as_deref(), None),
            ("工事名：見出しの前", |a| a.project.as_deref(), None),
            ("【前払金保証】\n前払金保証料支払方法：一括納付", |a| a.advance.as_ref()?.payment_method.as_deref(), Some("一括納付")),
            ("【前払金保証】\n預託金融機関(全角)：Ａ銀行Ｂ支店", |a| a.advance.as_ref()?.bank.as_deref(), Some("Ａ銀行Ｂ支店")),
            ("【契約保証】\n保証料計算書（紙）：希望する", |a| a.contract.as_ref()?.fee_statement.as_deref(), Some("希望する")),
            ("【契約保証】\n契約保証予約番号：08075-00001Y", |a| a.contract.as_ref()?.reservation.as_deref(), Some("08075-00001Y")),
            ("【前払金保証】\n契約保証予約番号：08075-00001Y", |a| a.advance.as_ref()?.reservation.as_deref(), None),
            ("【契約保証予約】\n入札日：令和9年1月20日", |a| a.bid_bond.as_ref()?.bid_date.as_deref(), Some("令和9年1月20日")),
            ("【 入札ボンド 】\n予定価格：60,000,000円", |a| a.bid_bond.as_ref()?.planned_price.as_deref(), Some("60,000,000円")),
        ];
        for (text, get, want) in cases {
            assert_eq!(get(&parse(text)), *want, "{text}");
        }
    }

    #[test]
    fn unknown_labels_and_sections_are_warnings() {
        let a = parse("【請負工事の情報】\n色：赤\n【おまけ】\nx：y\n");
        assert_eq!(a.warnings.len(), 2, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("色"));
        assert!(a.warnings[1].contains("おまけ"));
    }

    #[test]
    fn form_detection() {
        assert!(has_form(SAMPLE));
        assert!(has_form("【 契約保証 】"));
        assert!(!has_form("お世話になっております。【重要】ご確認ください"));
    }
}
