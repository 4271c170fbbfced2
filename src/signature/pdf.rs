//! The incremental update that signs a PDF (ISO 32000-1 §7.5.6, §12.8): the file as
//! typeset stays byte for byte, and after it come a signature dictionary, an invisible
//! signature field, the catalog again with the field in its `/AcroForm`, a cross-reference
//! section and a trailer that points back to the first. The signature's `/ByteRange`
//! covers the whole new file but the hex string of `/Contents`, where the CMS goes.
//!
//! Only for the PDFs esurety typesets itself (Typst's writer: a classic cross-reference
//! table, the catalog a plain object): anything else is an error, never a guess.

use chrono::{DateTime, FixedOffset};
use regex::bytes::Regex;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the PDF to sign has no {0}")]
    Missing(&'static str),
    #[error("the PDF to sign already has a form (/AcroForm)")]
    HasForm,
    #[error("the signature ({0} bytes) does not fit the {1} bytes kept for it")]
    TooLong(usize, usize),
}

/// A PDF with its signature's place kept: `digest` is the SHA-256 of what `/ByteRange`
/// covers; [`Prepared::embed`] writes the CMS into the place.
pub struct Prepared {
    bytes: Vec<u8>,
    /// Offset of the first hex digit of `/Contents`.
    contents_at: usize,
    /// Bytes of DER the place holds (twice as many hex digits).
    capacity: usize,
    pub digest: [u8; 32],
}

static STARTXREF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"startxref\s+(\d+)\s+%%EOF\s*$").unwrap());
static ROOT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/Root\s+(\d+)\s+(\d+)\s+R").unwrap());
static INFO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/Info\s+(\d+)\s+(\d+)\s+R").unwrap());
static SIZE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/Size\s+(\d+)").unwrap());
static SUBSECTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\d+) (\d+)\s*\r?\n").unwrap());

fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The trailer of the last cross-reference section, and where that section starts.
struct Tail<'a> {
    xref_at: usize,
    trailer: &'a [u8],
}

fn tail(pdf: &[u8]) -> Result<Tail<'_>, PdfError> {
    let end = &pdf[pdf.len().saturating_sub(64)..];
    let caps = STARTXREF.captures(end).ok_or(PdfError::Missing("startxref at its end"))?;
    let xref_at: usize = number(&caps[1]).filter(|&n| n < pdf.len()).ok_or(PdfError::Missing("valid startxref"))?;
    let section = &pdf[xref_at..];
    if !section.starts_with(b"xref") {
        return Err(PdfError::Missing("classic cross-reference table"));
    }
    let t = find(section, b"trailer").ok_or(PdfError::Missing("trailer"))?;
    let trailer = &section[t..];
    let close = find(trailer, b"startxref").ok_or(PdfError::Missing("trailer end"))?;
    Ok(Tail { xref_at, trailer: &trailer[..close] })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where object `num` starts, from the cross-reference table at `xref_at`.
fn object_offset(pdf: &[u8], xref_at: usize, num: usize) -> Option<usize> {
    let mut at = xref_at + 4;
    while pdf.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    loop {
        let caps = SUBSECTION.captures(pdf.get(at..)?)?;
        let first: usize = number(&caps[1])?;
        let count: usize = number(&caps[2])?;
        at += caps[0].len();
        if (first..first + count).contains(&num) {
            let entry = pdf.get(at + (num - first) * 20..at + (num - first) * 20 + 18)?;
            return (entry[17] == b'n').then(|| number(&entry[..10])).flatten();
        }
        at += count * 20;
    }
}

/// The text of a dictionary that starts at `at` (`<<`), up to and with its `>>`, skipping
/// strings (a `>>` inside `(…)` or `<…>` does not close it).
fn dictionary(pdf: &[u8], at: usize) -> Option<&[u8]> {
    let mut depth = 0usize;
    let mut i = at;
    while i < pdf.len() {
        match pdf[i] {
            b'<' if pdf.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 2;
            }
            b'>' if pdf.get(i + 1) == Some(&b'>') => {
                depth = depth.checked_sub(1)?;
                i += 2;
                if depth == 0 {
                    return Some(&pdf[at..i]);
                }
            }
            b'<' | b'(' => i = string_end(pdf, i)?,
            _ => i += 1,
        }
    }
    None
}

/// Where the string that starts at `at` (`(` or `<`) ends (just after it).
fn string_end(pdf: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    match *pdf.get(i)? {
        b'<' => Some(i + pdf[i..].iter().position(|&b| b == b'>')? + 1),
        b'(' => {
            let mut nest = 0usize;
            loop {
                match *pdf.get(i)? {
                    b'\\' => i += 1,
                    b'(' => nest += 1,
                    b')' => {
                        nest -= 1;
                        if nest == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => None,
    }
}

/// The trailer's `/ID` array as written (`[…]`).
fn file_id(trailer: &[u8]) -> Option<&[u8]> {
    let mut i = find(trailer, b"/ID")? + 3;
    while trailer.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    let open = i;
    (*trailer.get(i)? == b'[').then_some(())?;
    i += 1;
    loop {
        match *trailer.get(i)? {
            b']' => return Some(&trailer[open..=i]),
            b'(' | b'<' => i = string_end(trailer, i)?,
            _ => i += 1,
        }
    }
}

/// The PDF date of `at`: `D:YYYYMMDDHHmmSS+09'00'`.
fn pdf_date(at: DateTime<FixedOffset>) -> String {
    let offset = at.offset().local_minus_utc() / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    format!("D:{}{sign}{:02}'{:02}'", at.format("%Y%m%d%H%M%S"), offset.abs() / 60, offset.abs() % 60)
}

/// Width kept for the `/ByteRange` array, padded with spaces after it.
const BYTE_RANGE_WIDTH: usize = 48;

/// `pdf` with a signature field and the place for a signature of at most `capacity`
/// bytes of DER, signed at `at`.
pub fn prepare(pdf: &[u8], capacity: usize, at: DateTime<FixedOffset>) -> Result<Prepared, PdfError> {
    let tail = tail(pdf)?;
    let root = ROOT.captures(tail.trailer).ok_or(PdfError::Missing("/Root in its trailer"))?;
    let (root_num, root_gen): (usize, usize) = (number(&root[1]).ok_or(PdfError::Missing("/Root"))?, number(&root[2]).ok_or(PdfError::Missing("/Root"))?);
    let size: usize = SIZE.captures(tail.trailer).and_then(|c| number(&c[1])).ok_or(PdfError::Missing("/Size in its trailer"))?;
    let catalog_at = object_offset(pdf, tail.xref_at, root_num).filter(|&o| o < tail.xref_at).ok_or(PdfError::Missing("catalog in its cross-reference table"))?;
    let open = find(&pdf[catalog_at..tail.xref_at], b"<<").ok_or(PdfError::Missing("catalog dictionary"))?;
    let catalog = dictionary(&pdf[..tail.xref_at], catalog_at + open).ok_or(PdfError::Missing("catalog dictionary's end"))?;
    if find(catalog, b"/AcroForm").is_some() {
        return Err(PdfError::HasForm);
    }
    let (sig, field) = (size, size + 1);

    let mut out = Vec::with_capacity(pdf.len() + 2 * capacity + 1024);
    out.extend_from_slice(pdf);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let sig_at = out.len();
    out.extend_from_slice(format!("{sig} 0 obj\n<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M ({}) /ByteRange ", pdf_date(at)).as_bytes());
    let range_at = out.len();
    out.extend_from_slice(&[b' '; BYTE_RANGE_WIDTH]);
    out.extend_from_slice(b" /Contents <");
    let contents_at = out.len();
    out.resize(out.len() + 2 * capacity, b'0');
    let contents_end = out.len() + 1;
    out.extend_from_slice(b">>>\nendobj\n");
    let field_at = out.len();
    out.extend_from_slice(format!("{field} 0 obj\n<</Type /Annot /Subtype /Widget /FT /Sig /T (esurety) /V {sig} 0 R /F 132 /Rect [0 0 0 0]>>\nendobj\n").as_bytes());
    let catalog_new_at = out.len();
    out.extend_from_slice(format!("{root_num} {root_gen} obj\n").as_bytes());
    out.extend_from_slice(&catalog[..catalog.len() - 2]);
    out.extend_from_slice(format!(" /AcroForm <</Fields [{field} 0 R] /SigFlags 3>>>>\nendobj\n").as_bytes());

    let xref_at = out.len();
    let mut xref = format!("xref\n{root_num} 1\n{catalog_new_at:010} {root_gen:05} n \n{sig} 2\n{sig_at:010} 00000 n \n{field_at:010} 00000 n \n");
    xref += &format!("trailer\n<</Size {} /Root {root_num} {root_gen} R /Prev {}", size + 2, tail.xref_at);
    if let Some(info) = INFO.captures(tail.trailer) {
        xref += &format!(" /Info {} {} R", String::from_utf8_lossy(&info[1]), String::from_utf8_lossy(&info[2]));
    }
    out.extend_from_slice(xref.as_bytes());
    // The file's identifier stays (§14.4): copied as written, literal or hex strings.
    if let Some(id) = file_id(tail.trailer) {
        out.extend_from_slice(b" /ID ");
        out.extend_from_slice(id);
    }
    out.extend_from_slice(format!(">>\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());

    // The signature covers everything but `<…>` of /Contents.
    let (gap_start, gap_end) = (contents_at - 1, contents_end);
    let range = format!("[0 {gap_start} {gap_end} {}]", out.len() - gap_end);
    out[range_at..range_at + range.len()].copy_from_slice(range.as_bytes());
    let mut hash = Sha256::new();
    hash.update(&out[..gap_start]);
    hash.update(&out[gap_end..]);
    Ok(Prepared { bytes: out, contents_at, capacity, digest: hash.finalize().into() })
}

impl Prepared {
    /// The signed PDF: `cms` (DER) in the place kept for it.
    pub fn embed(mut self, cms: &[u8]) -> Result<Vec<u8>, PdfError> {
        if cms.len() > self.capacity {
            return Err(PdfError::TooLong(cms.len(), self.capacity));
        }
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for (i, b) in cms.iter().enumerate() {
            self.bytes[self.contents_at + 2 * i] = HEX[(b >> 4) as usize];
            self.bytes[self.contents_at + 2 * i + 1] = HEX[(b & 15) as usize];
        }
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_skips_strings() {
        let pdf = b"1 0 obj\n<</Lang (a>>b\\)) /X <3E3E> /N <</A 1>>>>\nendobj";
        assert_eq!(dictionary(pdf, 8), Some(&b"<</Lang (a>>b\\)) /X <3E3E> /N <</A 1>>>>"[..]));
    }

    #[test]
    fn file_id_as_written() {
        assert_eq!(file_id(b"<</Size 79/ID[(Ji\\)B=)(2q)]>>"), Some(&b"[(Ji\\)B=)(2q)]"[..]));
        assert_eq!(file_id(b"<</ID [<AB> <CD>] /Size 3>>"), Some(&b"[<AB> <CD>]"[..]));
        assert_eq!(file_id(b"<</Size 3>>"), None);
    }

    #[test]
    fn pdf_date_in_jst() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T20:30:01+09:00").unwrap();
        assert_eq!(pdf_date(at), "D:20261205203001+09'00'");
    }

    #[test]
    fn refuses_what_it_did_not_typeset() {
        assert!(matches!(prepare(b"%PDF-1.7\nnot a pdf", 100, DateTime::parse_from_rfc3339("2026-12-05T20:30:01+09:00").unwrap()), Err(PdfError::Missing(_))));
    }
}
