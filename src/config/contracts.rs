//! An owner's optional list of its contracts (CSV with the header
//! `工事名,受注者名,請負金額,工期,請負契約日`), for check 5 of the owner side.

use crate::text::{parse_date, parse_yen, split_term};
use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq)]
pub struct ContractEntry {
    pub project: String,
    pub contractor: String,
    pub price: u64,
    pub term_start: NaiveDate,
    pub term_end: NaiveDate,
    pub contract_date: NaiveDate,
}

/// Parses the list; each bad line is an error naming its line number.
pub fn parse(text: &str) -> Result<Vec<ContractEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || (i == 0 && line.starts_with("工事名")) {
            continue;
        }
        let f = split_csv(line);
        let bad = |what: &str| format!("line {}: {what}", i + 1);
        if f.len() != 5 {
            return Err(bad("expected 5 columns: 工事名,受注者名,請負金額,工期,請負契約日"));
        }
        let price = parse_yen(&f[2]).ok_or_else(|| bad("請負金額 is not an amount"))?;
        let term = crate::text::nfkc(&f[3]);
        let (a, b) = split_term(&term).ok_or_else(|| bad("工期 must be two dates joined by ～"))?;
        let (term_start, term_end) = (parse_date(a).ok_or_else(|| bad("工期 start is not a date"))?, parse_date(b).ok_or_else(|| bad("工期 end is not a date"))?);
        let contract_date = parse_date(&f[4]).ok_or_else(|| bad("請負契約日 is not a date"))?;
        out.push(ContractEntry { project: f[0].clone(), contractor: f[1].clone(), price, term_start, term_end, contract_date });
    }
    Ok(out)
}

/// Fields separated by commas; double quotes around a field allow commas and `""` inside.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("a field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().expect("a field").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_quoted_amounts_and_era_dates() {
        let l = super::parse("工事名,受注者名,請負金額,工期,請負契約日\n○○浄水場△△修繕工事,丸一建設株式会社,\"50,000,000\",令和8年7月10日～令和9年3月31日,2026/07/10\n").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].price, 50_000_000);
        assert_eq!(l[0].term_end.to_string(), "2027-03-31");
        assert!(super::parse("a,b\n").unwrap_err().contains("line 1"));
    }
}
