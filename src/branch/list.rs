//! 保証契約一覧 by email (`products.md` § Contractors' lists): what a registered contractor
//! asks for (narrowed by `工事名：`, `発注者名：`, `期間：` lines), and the list as text
//! rows and as a CSV that Excel opens as it is (UTF-8 with BOM, CRLF). Pure.

use crate::text::{format_yen, nfkc, squash};
use chrono::NaiveDate;

/// What the request narrows the list to; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    pub project: Option<String>,
    pub owner: Option<String>,
    /// Issued (新規) on or after / on or before.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListRow {
    pub number: String,
    pub product: String,
    pub project: String,
    pub owner: String,
    pub amount: u64,
    pub format: String,
    pub status: crate::domain::CertificateStatus,
    pub version: u32,
    /// When it was first issued (新規), Japan time.
    pub issued: NaiveDate,
}

/// The narrowing lines of a request's body.
pub fn request(body: &str) -> ListRequest {
    let mut r = ListRequest::default();
    for line in body.lines() {
        let line = nfkc(line);
        let Some((label, value)) = line.split_once([':', '：']) else { continue };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match squash(label).as_str() {
            "工事名" => r.project = Some(value.to_string()),
            "発注者名" | "発注者" => r.owner = Some(value.to_string()),
            "期間" => {
                let (a, b) = value.split_once(['～', '~', '〜']).unwrap_or((value, ""));
                r.from = date(a);
                r.to = date(b);
            }
            _ => {}
        }
    }
    r
}

fn date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    ["%Y/%m/%d", "%Y-%m-%d", "%Y年%m月%d日"].iter().find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

impl ListRequest {
    pub fn keeps(&self, row: &ListRow) -> bool {
        self.project.as_ref().is_none_or(|p| squash(&row.project).contains(&squash(p)))
            && self.owner.as_ref().is_none_or(|o| squash(&row.owner).contains(&squash(o)))
            && self.from.is_none_or(|d| row.issued >= d)
            && self.to.is_none_or(|d| row.issued <= d)
    }

    /// How it was narrowed, for the reply ("" when it was not).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.project {
            parts.push(format!("工事名「{p}」"));
        }
        if let Some(o) = &self.owner {
            parts.push(format!("発注者名「{o}」"));
        }
        if self.from.is_some() || self.to.is_some() {
            let d = |d: Option<NaiveDate>| d.map(|d| d.format("%Y/%m/%d").to_string()).unwrap_or_default();
            parts.push(format!("期間 {}～{}", d(self.from), d(self.to)));
        }
        parts.join("、")
    }
}

/// The CSV: UTF-8 with a BOM and CRLF line ends (Excel's own), every field quoted, and a
/// field that a spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) kept as text.
pub fn csv(rows: &[ListRow]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let header = ["保証契約番号", "保証区分", "工事名", "発注者名", "保証金額", "形式", "状態", "版", "発行日"];
    out += &header.iter().map(|h| field(h)).collect::<Vec<_>>().join(",");
    out += "\r\n";
    for r in rows {
        let cells = [r.number.clone(), r.product.clone(), r.project.clone(), r.owner.clone(), r.amount.to_string(), r.format.clone(), r.status.label().to_string(),
                     r.version.to_string(), r.issued.format("%Y/%m/%d").to_string()];
        out += &cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
        out += "\r\n";
    }
    out.into_bytes()
}

fn field(s: &str) -> String {
    let s = s.replace(['\r', '\n'], " ");
    let s = if s.starts_with(['=', '+', '-', '@', '\t']) { format!("'{s}") } else { s };
    format!("\"{}\"", s.replace('"', "\"\""))
}


/// The rows as the reply's text lists them.
pub fn text_rows(rows: &[ListRow]) -> Vec<serde_json::Value> {
    rows.iter().map(|r| serde_json::json!({
        "number": r.number, "product": r.product, "project": r.project, "owner": r.owner, "amount": format_yen(r.amount),
        "format": r.format, "status": r.status.label(), "version": r.version, "label": (r.version > 1).then(|| format!("変更-{}", r.version - 1)),
        "issued": crate::text::format_era(r.issued),
    })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(number: &str, project: &str, owner: &str, issued: &str) -> ListRow {
        ListRow { number: number.into(), product: "前払金保証".into(), project: project.into(), owner: owner.into(), amount: 20_000_000,
                  format: "電子保証".into(), status: crate::domain::CertificateStatus::Valid, version: 1, issued: NaiveDate::parse_from_str(issued, "%Y-%m-%d").unwrap() }
    }

    #[test]
    fn a_request_narrows_by_works_owner_and_period() {
        let r = request("よろしくお願いします。\n工事名：浄水場\n発注者名：水道\n期間：２０２６/０４/０１～\n");
        assert_eq!(r, ListRequest { project: Some("浄水場".into()), owner: Some("水道".into()), from: NaiveDate::from_ymd_opt(2026, 4, 1), to: None });
        assert!(r.keeps(&row("35075-00001M", "○○浄水場△△修繕工事", "神奈川県内広域水道企業団 企業長", "2026-07-04")));
        assert!(!r.keeps(&row("35075-00001M", "○○浄水場△△修繕工事", "神奈川県内広域水道企業団 企業長", "2026-03-31")));
        assert!(!r.keeps(&row("08075-00001M", "体育館改修工事", "取手市長", "2026-07-04")));
        assert_eq!(request("期間：2026/04/01～2026/06/30").to, NaiveDate::from_ymd_opt(2026, 6, 30));
        assert_eq!(request("本文だけ"), ListRequest::default());
    }

    #[test]
    fn the_csv_opens_in_excel_as_it_is_and_keeps_formulas_as_text() {
        let bytes = csv(&[row("35075-00001M", "=HYPERLINK(\"http://x\")", "市長, \"本庁\"", "2026-07-04")]);
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "\"保証契約番号\",\"保証区分\",\"工事名\",\"発注者名\",\"保証金額\",\"形式\",\"状態\",\"版\",\"発行日\"");
        assert_eq!(lines[1], "\"35075-00001M\",\"前払金保証\",\"'=HYPERLINK(\"\"http://x\"\")\",\"市長, \"\"本庁\"\"\",\"20000000\",\"電子保証\",\"有効\",\"1\",\"2026/07/04\"");
        assert_eq!(lines[2], "");
    }
}
