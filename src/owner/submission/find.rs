//! Number/key pairs in text: the text of one key notice (a PDF page) or of a mail body.
//!
//! Works on NFKC text with all whitespace removed, so spaced labels (`保 証 契 約 番 号 ：`,
//! `認　　証　　キ　　ー`) read like unspaced ones. Each `保証契約番号` label takes the
//! number right after it and each `認証キー` label the 12 letters and digits right after
//! it; numbers are paired with keys in order of appearance. When a page's layout puts the
//! values away from their labels (as other tools' PDFs do), a page with exactly one
//! number-shaped and one key-shaped value is paired by position-free matching.
//! 工事名, 受注者名 and 商品（保証区分） are read the same way when their labels are there.

use crate::domain::{CertificateNumber, Found};
use crate::domain::certificate::numbers_anywhere;
use crate::text::squash;


const NUMBER_LABEL: &str = "保証契約番号";
const KEY_LABEL: &str = "認証キー";
/// Labels that end a value (the next field of a notice).
const LABELS: &[&str] = &["工事名", "受注者名", "(JVの場合は代表者)", "商品(保証区分)", "保証区分", "商品", NUMBER_LABEL, KEY_LABEL, "発注者", "【", "以上", "記",
    "証券番号", "閲覧用URL", "閲覧URL", "閲覧パスワード", "閲覧用パスワード", "保険種類", "保険契約者"];

/// Every pair in one notice's or one body's text.
pub fn pairs(text: &str, source: &str) -> Vec<Found> {
    let s = squash(text).replace(['ー', '－', '‐', '−', '—'], "-").replace("キ-", "キー");
    let s = s.replace("ワ-ド", "ワード");
    let issuer = if source == "pdf" { issuer(text) } else { body_issuer(text).or_else(|| viewing_issuer(&s, text)) };
    if let Some(f) = viewing_notice(&s, source, issuer.clone()) {
        return vec![f];
    }
    let numbers = labelled(&s, NUMBER_LABEL, read_number);
    let keys = labelled(&s, KEY_LABEL, read_key);
    let (numbers, keys) = if !numbers.is_empty() && !keys.is_empty() {
        (numbers, keys)
    } else {
        // Layout without values next to labels: take the values wherever they are, but
        // only when there is no doubt which belongs to which.
        // Tokens stay apart here: whitespace is kept, so a key and a number on separate
        // lines do not run together.
        let spaced: String = unicode_normalization::UnicodeNormalization::nfkc(text).collect::<String>().replace(['ー', '－', '‐', '−', '—'], "-");
        // Numbers have a shape of their own: found in the squashed text, since extractors
        // may break them into fragments (`35075-00001` / `M`).
        let all_n = numbers_anywhere(&s);
        let all_k: Vec<(usize, String)> = anywhere(&spaced, read_key).into_iter().filter(|(_, k)| is_key_like(k)).collect();
        let n = if numbers.is_empty() { all_n } else { numbers };
        let k = if keys.is_empty() { all_k } else { keys };
        if n.len() != 1 || k.len() != 1 {
            return Vec::new();
        }
        (n, k)
    };
    let fields = |label: &str| field(&s, label);
    let project = fields("工事名");
    let contractor = fields("受注者名");
    let product = fields("商品(保証区分)").or_else(|| fields("保証区分"));
    numbers.iter().zip(keys.iter()).map(|((_, n), (_, k))| Found {
        number: n.clone(),
        key: k.clone(),
        product: product.clone().or_else(|| CertificateNumber::parse(n).map(|c| c.product.name().to_string())),
        project: if numbers.len() == 1 { project.clone() } else { None },
        contractor: if numbers.len() == 1 { contractor.clone() } else { None },
        source: source.to_string(),
        label: if numbers.len() == 1 { change_label(&s) } else { None },
        issuer: issuer.clone(),
        viewing: false,
    }).collect()
}

/// What names a company as the issuer of a guarantee: construction surety companies
/// (`…建設業保証株式会社`, `…建設業信用保証株式会社`) and non-life insurers (`…保険株式会社`).
const ISSUER_WORDS: &[&str] = &["建設業保証", "建設業信用保証", "保険"];

/// The issuer a notice names: the first `…株式会社` on a line whose name carries one of
/// [`ISSUER_WORDS`] (a contractor's name does not). Read line by line, as printed.
pub fn issuer(text: &str) -> Option<String> {
    issuer_among(text, ISSUER_WORDS)
}

/// In a mail body (not a notice) only a surety company's name counts as the issuer: a body
/// may mention an insurer for other reasons.
pub fn body_issuer(text: &str) -> Option<String> {
    issuer_among(text, &ISSUER_WORDS[..2])
}

fn issuer_among(text: &str, words: &[&str]) -> Option<String> {
    for line in text.lines() {
        let line = squash(line);
        // The addressee (`丸一建設株式会社 様`, `… 御中`) is never the issuer.
        if line.ends_with('様') || line.ends_with("御中") || line.ends_with('殿') {
            continue;
        }
        let mut from = 0;
        while let Some(at) = line[from..].find("株式会社") {
            let end = from + at + "株式会社".len();
            // The name runs back from 株式会社 to the line's start or the last separator.
            let head = &line[..from + at];
            let start = head.rfind([':', '：', '、', '。', '」', '「', '(', ')', '（', '）', '】', '【', '/', '・'])
                .map(|i| i + head[i..].chars().next().map_or(1, char::len_utf8)).unwrap_or(0);
            let name = &line[start..end];
            if name.chars().count() <= 30 && words.iter().any(|w| name.contains(w)) {
                return Some(name.to_string());
            }
            from = end;
        }
    }
    None
}

/// In a body that is a viewing notice (閲覧パスワード), the insurer it names.
fn viewing_issuer(squashed: &str, text: &str) -> Option<String> {
    (squashed.contains("閲覧パスワード") || squashed.contains("閲覧用パスワード")).then(|| issuer(text)).flatten()
}

/// A non-life insurer's notice of an electronic policy: 証券番号 and a viewing URL and
/// password (閲覧パスワード), no 認証キー. Its number is read; the password is not kept.
fn viewing_notice(s: &str, source: &str, issuer: Option<String>) -> Option<Found> {
    if s.contains(KEY_LABEL) || !(s.contains("閲覧パスワード") || s.contains("閲覧用パスワード")) {
        return None;
    }
    let number = ["証券番号", "保険証券番号", NUMBER_LABEL].iter().find_map(|l| {
        let i = s.find(l)?;
        let rest = s[i + l.len()..].trim_start_matches([':', '：']);
        let v: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').take(30).collect();
        (!v.is_empty()).then_some(v)
    })?;
    let fields = |label: &str| field(s, label);
    Some(Found {
        number, key: String::new(), product: fields("保証区分").or_else(|| fields("保険種類")), project: fields("工事名"),
        contractor: fields("受注者名").or_else(|| fields("保険契約者")), source: source.to_string(), label: None, issuer, viewing: true,
    })
}

/// `変更-N` as printed under a notice's title (in the squashed text).
fn change_label(s: &str) -> Option<String> {
    let i = s.find("変更-")?;
    let digits: String = s[i + "変更-".len()..].chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("変更-{digits}"))
}

/// Values right after each occurrence of a label (a `:` between is skipped).
fn labelled(s: &str, label: &str, read: fn(&str) -> Option<String>) -> Vec<(usize, String)> {
    s.match_indices(label).filter_map(|(i, l)| {
        let rest = s[i + l.len()..].trim_start_matches([':', '：']);
        read(rest).map(|v| (i, v))
    }).collect()
}

/// Values anywhere, at character boundaries where the previous char is not ASCII alnum.
fn anywhere(s: &str, read: fn(&str) -> Option<String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut prev_alnum = false;
    for (i, c) in s.char_indices() {
        if !prev_alnum && c.is_ascii_alphanumeric()
            && let Some(v) = read(&s[i..])
        {
            out.push((i, v));
        }
        prev_alnum = c.is_ascii_alphanumeric();
    }
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// `35075-00001M` at the start of `s`.
fn read_number(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 12 || !b[..5].iter().all(u8::is_ascii_digit) || b[5] != b'-' || !b[6..11].iter().all(u8::is_ascii_digit) || !b[11].is_ascii_alphabetic() {
        return None; // (the last test also keeps byte 12 on a character boundary)
    }
    let letter = (b[11] as char).to_ascii_uppercase();
    if b.get(12).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    CertificateNumber::parse(&s[..12]).map(|_| format!("{}{letter}", &s[..11]))
}

/// 12 ASCII letters and digits at the start of `s`, not followed by another one.
fn read_key(s: &str) -> Option<String> {
    let k: String = s.chars().take_while(char::is_ascii_alphanumeric).collect();
    (k.len() == 12).then_some(k)
}

/// A free-standing token that could be a key: letters and digits mixed.
fn is_key_like(k: &str) -> bool {
    k.bytes().any(|b| b.is_ascii_digit()) && k.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The text after a label up to the next label.
fn field(s: &str, label: &str) -> Option<String> {
    let i = s.find(label)? + label.len();
    let rest = s[i..].trim_start_matches([':', '：']);
    let rest = rest.strip_prefix("(JVの場合は代表者)").unwrap_or(rest).trim_start_matches([':', '：']);
    if LABELS.iter().any(|l| rest.starts_with(l)) {
        return None; // a block of labels: the value is elsewhere
    }
    // No label after it: at most 200 characters (cut on a character, never inside one).
    let end = LABELS.iter().filter_map(|l| rest.find(l)).filter(|&e| e > 0).min()
        .unwrap_or_else(|| rest.char_indices().nth(200).map_or(rest.len(), |(i, _)| i));
    let v = rest[..end].trim_end_matches([':', '：']).to_string();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_with_no_label_after_it_is_cut_on_a_character() {
        let t = format!("保証契約番号：35075-00001M\n認証キー：CDEF34679HJK\n工事名：{}", "浄".repeat(300));
        let f = pairs(&t, "body");
        assert_eq!(f[0].project.as_deref().map(|p| p.chars().count()), Some(200));
    }

    #[test]
    fn the_issuer_is_not_the_addressee_and_a_body_names_only_a_surety_company() {
        let notice = "丸一保険建設株式会社 様\n東日本建設業保証株式会社\n保証契約番号：35075-00001M\n認証キー：CDEF34679HJK";
        assert_eq!(issuer(notice).as_deref(), Some("東日本建設業保証株式会社"));
        let body = "○○火災保険株式会社の証券も添付します。\n保証契約番号：35075-00001M\n認証キー：CDEF34679HJK";
        assert_eq!(pairs(body, "body")[0].issuer, None, "an insurer mentioned in passing is not the issuer");
        let west = "西日本建設業保証株式会社 大阪支店\n保証契約番号：27075-00012M\n認証キー：HJKM3467CDEF";
        assert_eq!(pairs(west, "body")[0].issuer.as_deref(), Some("西日本建設業保証株式会社"));
    }

    #[test]
    fn a_typed_body() {
        let f = pairs("お世話になっております。\n保証契約番号：35075-00001M\n認証キー：CDEF34679HJK\nよろしくお願いします。", "body");
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].number.as_str(), f[0].key.as_str()), ("35075-00001M", "CDEF34679HJK"));
        assert_eq!(f[0].product.as_deref(), Some("前払金保証"));
    }

    #[test]
    fn spaced_labels_and_full_width_values() {
        let t = "工　　　事　　　名 ：○○浄水場△△修繕工事\n受　注　者　名 ：\n（ＪＶの場合は代表者）丸一建設株式会社\n商品 （保証区分） ：前払金保証\n保 証 契 約 番 号 ：\n３５０７５－００００１Ｍ\n認　　証　　キ　　ー ：\nＣＤＥＦ３４６７９ＨＪＫ\n";
        let f = pairs(t, "pdf");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].number, "35075-00001M");
        assert_eq!(f[0].key, "CDEF34679HJK");
        assert_eq!(f[0].project.as_deref(), Some("○○浄水場△△修繕工事"));
        assert_eq!(f[0].contractor.as_deref(), Some("丸一建設株式会社"));
        assert_eq!(f[0].product.as_deref(), Some("前払金保証"));
    }

    #[test]
    fn values_away_from_their_labels() {
        // As a foreign PDF extracts: labels in one block, values in another.
        let t = "保 証 契 約 番 号 ：\n認　　証　　キ　　ー ：\n記\n前払金保証\n20,000,000 円\nZ28YUE4J3Bux\n35075-00000M\n";
        let f = pairs(t, "pdf");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].number.as_str(), f[0].key.as_str()), ("35075-00000M", "Z28YUE4J3Bux"));
    }

    #[test]
    fn two_notices_in_one_body_pair_in_order() {
        let f = pairs("保証契約番号：35075-00001M 認証キー：CDEF34679HJK\n保証契約番号：35075-00002K 認証キー：HJK34679CDEF\n", "body");
        assert_eq!(f.iter().map(|f| (f.number.as_str(), f.key.as_str())).collect::<Vec<_>>(),
            [("35075-00001M", "CDEF34679HJK"), ("35075-00002K", "HJK34679CDEF")]);
    }

    #[test]
    fn nothing_without_both() {
        assert!(pairs("保証契約番号：35075-00001M のキーを失くしました", "body").is_empty());
        assert!(pairs("会議は 2026-07-01 です。ABCDEF123456", "body").is_empty());
        assert!(pairs("", "body").is_empty());
    }
}
