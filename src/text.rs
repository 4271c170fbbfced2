//! Japanese text as it arrives in forms and as it is printed on documents.
//!
//! Inputs are read after NFKC (full-width digits and colons become ASCII); names are kept
//! as written. Dates print in the Japanese era (令和8年7月1日) and amounts as `20,000,000 円`.
//! Everything here is pure and used by the form parser, the validator and the documents.

use chrono::{Datelike, NaiveDate};
use unicode_normalization::UnicodeNormalization;

/// NFKC-normalises and trims.
pub fn nfkc(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_string()
}

/// NFKC with every kind of whitespace removed: the form used to compare labels and names
/// (`神奈川県内広域水道企業団 企業長` and `神奈川県内広域水道企業団企業長` are the same owner).
pub fn squash(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// Converts ASCII and spaces to their full-width forms (after NFKC, so half-width katakana
/// are already full-width): 預託金融機関 is stored and printed this way.
/// Text as it may be printed or mailed: C0 and C1 control characters removed (a tab
/// becomes a space, line breaks stay), and the bidirectional controls that make text
/// display in another order than it is stored.
pub fn printable(s: &str) -> String {
    let bad = |c: char| (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
    if !s.chars().any(|c| bad(c) || c == '\t') {
        return s.to_string();
    }
    s.chars().filter(|&c| !bad(c)).map(|c| if c == '\t' { ' ' } else { c }).collect()
}

pub fn to_fullwidth(s: &str) -> String {
    nfkc(s)
        .chars()
        .map(|c| match c {
            ' ' => '\u{3000}',
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Whole yen. Accepts `20,000,000円`, `２０，０００，０００`, `¥20000000`.
pub fn parse_yen(s: &str) -> Option<u64> {
    let t: String = squash(s)
        .trim_end_matches('円')
        .trim_start_matches(['¥', '\\'])
        .chars()
        .filter(|c| *c != ',')
        .collect();
    if t.is_empty() || t.len() > 15 || !t.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// `20,000,000 円`
pub fn format_yen(amount: u64) -> String {
    format!("{} 円", group_thousands(amount))
}

pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Japanese eras from the newest: (name, first day).
const ERAS: [(&str, (i32, u32, u32)); 3] =
    [("令和", (2019, 5, 1)), ("平成", (1989, 1, 8)), ("昭和", (1926, 12, 25))];

/// Parses `令和8年7月1日`, `令和元年5月1日`, `2026/07/01`, `2026-07-01`, `2026.7.1`,
/// `2026年7月1日`, in full-width or half-width digits. `None` if it is not a real date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = squash(s).replace('元', "1");
    for (era, (y0, m0, d0)) in ERAS {
        if let Some(rest) = t.strip_prefix(era) {
            let (y, m, d) = split_ymd_kanji(rest)?;
            let date = NaiveDate::from_ymd_opt(y0 + y - 1, m, d)?;
            let start = NaiveDate::from_ymd_opt(y0, m0, d0)?;
            return (y >= 1 && date >= start).then_some(date);
        }
    }
    if t.contains('年') {
        let (y, m, d) = split_ymd_kanji(&t)?;
        return NaiveDate::from_ymd_opt(y, m, d);
    }
    let parts: Vec<&str> = t.split(['/', '-', '.']).collect();
    if parts.len() != 3 || parts[0].len() != 4 {
        return None;
    }
    let num = |p: &str| (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse::<u32>().ok()).flatten();
    NaiveDate::from_ymd_opt(num(parts[0])? as i32, num(parts[1])?, num(parts[2])?)
}

fn split_ymd_kanji(s: &str) -> Option<(i32, u32, u32)> {
    let (y, rest) = s.split_once('年')?;
    let (m, rest) = rest.split_once('月')?;
    let d = rest.strip_suffix('日')?;
    let ok = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    if !(ok(y) && ok(m) && ok(d)) {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// `令和8年7月4日` (`令和元年` for the first year).
pub fn format_era(date: NaiveDate) -> String {
    for (era, (y0, m0, d0)) in ERAS {
        let start = NaiveDate::from_ymd_opt(y0, m0, d0).expect("era start is a date");
        if date >= start {
            let n = date.year() - y0 + 1;
            let year = if n == 1 { "元".to_string() } else { n.to_string() };
            return format!("{era}{year}年{}月{}日", date.month(), date.day());
        }
    }
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

/// Splits `令和8年7月10日 ～ 令和9年3月31日` (joined by `～`, `〜`, `~` or `から`).
pub fn split_term(s: &str) -> Option<(&str, &str)> {
    for sep in ["～", "〜", "~", "から", "―", "－"] {
        if let Some((a, b)) = s.split_once(sep) {
            return Some((a.trim(), b.trim()));
        }
    }
    None
}

/// Bytes as lower-case hexadecimal (a digest in a name or a log line).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap()
    }

    #[test]
    fn dates_in_every_accepted_shape() {
        let cases = [
            ("令和8年7月1日", Some(d(2026, 7, 1))),
            ("令和８年７月１日", Some(d(2026, 7, 1))),
            ("令和 8 年 7 月 1 日", Some(d(2026, 7, 1))),
            ("令和元年5月1日", Some(d(2019, 5, 1))),
            ("令和元年4月30日", None),
            ("平成31年4月30日", Some(d(2019, 4, 30))),
            ("2026/07/01", Some(d(2026, 7, 1))),
            ("２０２６／０７／０１", Some(d(2026, 7, 1))),
            ("2026-07-01", Some(d(2026, 7, 1))),
            ("2026年7月1日", Some(d(2026, 7, 1))),
            ("2026/02/30", None),
            ("令和8年13月1日", None),
            ("来月", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_date(input), want, "{input}");
        }
    }

    #[test]
    fn era_printing() {
        assert_eq!(format_era(d(2026, 7, 4)), "令和8年7月4日");
        assert_eq!(format_era(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(format_era(d(2019, 4, 30)), "平成31年4月30日");
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_yen("50,000,000円"), Some(50_000_000));
        assert_eq!(parse_yen("５０，０００，０００円"), Some(50_000_000));
        assert_eq!(parse_yen("¥1000"), Some(1000));
        assert_eq!(parse_yen("1.5"), None);
        assert_eq!(parse_yen("-100"), None);
        assert_eq!(parse_yen("五千万円"), None);
        assert_eq!(format_yen(20_000_000), "20,000,000 円");
        assert_eq!(format_yen(999), "999 円");
    }

    #[test]
    fn fullwidth_bank_names() {
        assert_eq!(to_fullwidth("ABC銀行 1支店"), "ＡＢＣ銀行\u{3000}１支店");
        assert_eq!(to_fullwidth("ｱｲｳ信用金庫"), "アイウ信用金庫");
    }

    #[test]
    fn terms() {
        assert_eq!(split_term("令和8年7月10日 ～ 令和9年3月31日"), Some(("令和8年7月10日", "令和9年3月31日")));
        assert_eq!(split_term("2026/7/10から2027/3/31"), Some(("2026/7/10", "2027/3/31")));
        assert_eq!(split_term("2026/7/10"), None);
    }
}
