//! Owner side, step 2: the submission. Every number/key pair found in a message: in PDF
//! attachments at any depth (also inside forwarded messages), in plain and HTML bodies and
//! text attachments. PDFs are read through a [`worker::PdfReader`]; the text of each page
//! and each body goes through [`find::pairs`]. The check step takes the pairs from here.

pub mod find;
pub mod pdf;
pub mod worker;

use crate::intake::letter::{Letter, Piece};
use crate::domain::Found;
use crate::signature::verify::Inspected;
use pdf::PdfError;
use worker::PdfReader;

/// What reading a message gave: the pairs, and the PDFs that could not be read.
#[derive(Debug, Default)]
pub struct Reading {
    pub found: Vec<Found>,
    pub unreadable: Vec<(Option<String>, PdfError)>,
    /// For each number found in a PDF, that PDF's signature by itself (`None`: unsigned).
    pub signatures: std::collections::HashMap<String, Option<Inspected>>,
}

/// Every pair in a message; one per certificate number, a PDF's reading preferred.
pub fn read(letter: &Letter, reader: &dyn PdfReader) -> Reading {
    let mut r = Reading::default();
    for piece in &letter.pieces {
        match piece {
            Piece::Pdf { name, bytes, .. } => match reader.read(bytes) {
                Ok(t) => {
                    let before = r.found.len();
                    for page in &t.pages {
                        r.found.extend(find::pairs(page, "pdf"));
                    }
                    if let Some(f) = from_data(&t) {
                        r.found.push(f);
                    }
                    // A signature vouches for its file: a number other than the one the file
                    // was issued for (its embedded data) is not vouched for by it.
                    let issued_for = t.data.as_ref().and_then(|d| d.get("number")).and_then(|n| n.as_str()).map(str::to_string);
                    for f in &r.found[before..] {
                        let said = match (&t.signature, &issued_for) {
                            (Some(Inspected::Intact { .. }), Some(n)) if *n != f.number => Some(Inspected::Unsupported(format!("署名されたファイルは保証契約番号 {n} のものです"))),
                            (s, _) => s.clone(),
                        };
                        // A number in several PDFs: the worst of them is what staff see.
                        let slot = r.signatures.entry(f.number.clone()).or_insert_with(|| said.clone());
                        if rank(&said) > rank(slot) {
                            *slot = said;
                        }
                    }
                }
                Err(e) => {
                    tracing::info!(event = "pdf_unreadable", name = name.as_deref().unwrap_or(""), error = %e);
                    r.unreadable.push((name.clone(), e));
                }
            },
            Piece::Text { text, .. } => r.found.extend(find::pairs(text, "body")),
        }
    }
    // One entry per number: a PDF's reading first, then the first one seen.
    let mut out: Vec<Found> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in r.found.drain(..) {
        match at.get(&f.number) {
            Some(&i) if out[i].source != "pdf" && f.source == "pdf" => out[i] = f,
            Some(_) => {}
            None => {
                at.insert(f.number.clone(), out.len());
                out.push(f);
            }
        }
    }
    r.found = out;
    r
}

/// How much a PDF's signature should worry staff: broken, then unchecked, then none,
/// then intact.
fn rank(s: &Option<Inspected>) -> u8 {
    match s {
        Some(Inspected::Broken(_)) => 3,
        Some(Inspected::Unsupported(_)) => 2,
        None => 1,
        Some(Inspected::Intact { .. }) => 0,
    }
}

/// esurety's own PDFs carry their data; it is used only when the page text confirms it
/// (the text shows that number and key) and the text alone gave no pair.
fn from_data(t: &pdf::PdfText) -> Option<Found> {
    let d = t.data.as_ref()?;
    let number = d.get("number")?.as_str()?.to_string();
    let key = d.get("key")?.as_str()?.to_string();
    let text: String = t.pages.concat().chars().filter(|c| !c.is_whitespace()).collect();
    if !(text.contains(&number) && text.contains(&key)) {
        return None;
    }
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let label = d.get("version").and_then(|v| v.as_u64()).filter(|&v| v > 1).map(|v| format!("変更-{}", v - 1));
    let issuer = find::issuer(&t.pages.concat());
    Some(Found { number, key, product: s("product"), project: s("project"), contractor: s("contractor"), source: "pdf".into(), label, issuer, viewing: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each PDF "read" as the text of a notice of 35075-00001M with its key, carrying
    /// the signature given for it (its first byte picks which).
    struct Notices(Vec<Option<Inspected>>, Option<&'static str>);

    impl PdfReader for Notices {
        fn read(&self, bytes: &[u8]) -> Result<pdf::PdfText, PdfError> {
            let data = self.1.map(|n| serde_json::json!({"number": n, "key": "ABCD2345EFGH"}));
            Ok(pdf::PdfText { pages: vec!["保証契約番号 35075-00001M 認証キー ABCD2345EFGH".into()], data, signature: self.0[bytes[0] as usize].clone() })
        }
    }

    fn letter(pdfs: usize) -> Letter {
        Letter { message_id: None, from: None, envelope: None, subject: String::new(), references: vec![], event: None,
                 pieces: (0..pdfs).map(|i| Piece::Pdf { name: None, depth: 0, bytes: vec![i as u8] }).collect() }
    }

    fn intact() -> Option<Inspected> {
        Some(Inspected::Intact { certificates: vec![], token: None, stamped: vec![] })
    }

    #[test]
    fn of_several_pdfs_of_one_number_the_worst_signature_is_kept() {
        let broken = Some(Inspected::Broken("x".into()));
        for (signatures, worst) in [
            (vec![intact(), None], None),
            (vec![None, intact()], None),
            (vec![intact(), broken.clone()], broken.clone()),
            (vec![broken.clone(), intact()], broken.clone()),
            (vec![intact(), intact()], intact()),
        ] {
            let r = read(&letter(signatures.len()), &Notices(signatures.clone(), None));
            assert_eq!(r.signatures.get("35075-00001M"), Some(&worst), "{signatures:?}");
        }
    }

    #[test]
    fn a_signed_file_vouches_only_for_the_number_it_was_issued_for() {
        let r = read(&letter(1), &Notices(vec![intact()], Some("35075-00003M")));
        assert!(matches!(r.signatures.get("35075-00001M"), Some(Some(Inspected::Unsupported(why))) if why.contains("35075-00003M")), "{:?}", r.signatures);
        let r = read(&letter(1), &Notices(vec![intact()], Some("35075-00001M")));
        assert_eq!(r.signatures.get("35075-00001M"), Some(&intact()));
    }
}
