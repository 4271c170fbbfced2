//! Reading a PDF: the text of each page (lopdf), and the data esurety attaches to its own
//! PDFs (`esurety.json`, an embedded file). Runs inside the PDF worker process (see
//! [`super::worker`]), which bounds its time and memory; this file only reads.

use lopdf::{Document, Object};
use serde::{Deserialize, Serialize};

/// A PDF's text. A key notice's text holds its key, so `Debug` shows only sizes.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PdfText {
    /// Extracted text, one entry per page.
    pub pages: Vec<String>,
    /// The embedded `esurety.json`, when the PDF carries one.
    pub data: Option<serde_json::Value>,
    /// Its signature by itself (`None`: it carries none); trust is judged by the daemon.
    #[serde(default)]
    pub signature: Option<crate::signature::verify::Inspected>,
}

impl std::fmt::Debug for PdfText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdfText({} page(s), {} chars, data: {}, signature: {:?})", self.pages.len(), self.pages.iter().map(|p| p.chars().count()).sum::<usize>(), self.data.is_some(), self.signature.as_ref().map(|s| match s {
            crate::signature::verify::Inspected::Intact { .. } => "intact",
            crate::signature::verify::Inspected::Broken(_) => "broken",
            crate::signature::verify::Inspected::Unsupported(_) => "unsupported",
        }))
    }
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum PdfError {
    #[error("PDF を読み取れません（{0}）")]
    Unreadable(String),
    #[error("暗号化された PDF は読み取れません")]
    Encrypted,
    #[error("PDF が大きすぎます（{0} バイト）")]
    TooLarge(usize),
    #[error("PDF のページが多すぎます（{0} ページ）")]
    TooManyPages(usize),
    #[error("PDF の読み取りが時間内に終わりませんでした")]
    Timeout,
    #[error("PDF の読み取り中に処理が停止しました（{0}）")]
    Crashed(String),
}

/// Size and page bounds (`[limits]` pdf_max_mib, pdf_max_pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PdfLimits {
    pub max_bytes: usize,
    pub max_pages: usize,
}

impl Default for PdfLimits {
    fn default() -> Self {
        let l = crate::config::Limits::default();
        PdfLimits { max_bytes: l.pdf_max_bytes(), max_pages: l.pdf_max_pages }
    }
}

pub fn read(bytes: &[u8]) -> Result<PdfText, PdfError> {
    read_with(bytes, PdfLimits::default())
}

pub fn read_with(bytes: &[u8], limits: PdfLimits) -> Result<PdfText, PdfError> {
    if bytes.len() > limits.max_bytes {
        return Err(PdfError::TooLarge(bytes.len()));
    }
    let doc = Document::load_mem(bytes).map_err(|e| PdfError::Unreadable(e.to_string()))?;
    if doc.is_encrypted() {
        return Err(PdfError::Encrypted);
    }
    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    if page_numbers.len() > limits.max_pages {
        return Err(PdfError::TooManyPages(page_numbers.len()));
    }
    let pages = page_numbers.iter().map(|p| doc.extract_text(&[*p]).unwrap_or_default()).collect();
    // The text is what the submission needs: a signature that trips the check is broken,
    // never a reason to lose the text.
    let ranges = byte_ranges(bytes);
    let signature = std::panic::catch_unwind(|| crate::signature::verify::inspect(bytes, &ranges))
        .unwrap_or_else(|_| Some(crate::signature::verify::Inspected::Broken("署名の値が読み取れません".into())));
    Ok(PdfText { pages, data: embedded_json(&doc), signature })
}

/// The `/ByteRange` of every signature ever written into the file, read from its bytes:
/// an update that rewrites or drops a signature dictionary leaves the signed range in the
/// file, and it is that range that tells the file was changed.
fn byte_ranges(bytes: &[u8]) -> Vec<[i64; 4]> {
    const KEY: &[u8] = b"/ByteRange";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(KEY.len()).position(|w| w == KEY) {
        at += i + KEY.len();
        let rest = &bytes[at..bytes.len().min(at + 128)];
        let Some(open) = rest.iter().position(|c| !c.is_ascii_whitespace()).filter(|&p| rest[p] == b'[') else { continue };
        let Some(close) = rest[open..].iter().position(|&c| c == b']') else { continue };
        let numbers: Vec<i64> = std::str::from_utf8(&rest[open + 1..open + close]).unwrap_or("")
            .split_ascii_whitespace().map(|n| n.parse::<i64>().unwrap_or(-1)).collect();
        // Not four integers: a range that cannot be right, which `inspect` says so.
        out.push(<[i64; 4]>::try_from(numbers.as_slice()).unwrap_or([-1; 4]));
        if out.len() >= 64 {
            break;
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// catalog → /Names → /EmbeddedFiles → (name tree) → filespec /EF /F → stream.
fn embedded_json(doc: &Document) -> Option<serde_json::Value> {
    let catalog = doc.catalog().ok()?;
    let names = deref(doc, catalog.get(b"Names").ok()?)?.as_dict().ok()?;
    let tree = deref(doc, names.get(b"EmbeddedFiles").ok()?)?;
    let mut found = None;
    walk_name_tree(doc, tree, 0, &mut |name, spec| {
        if found.is_some() || name != b"esurety.json" {
            return;
        }
        let stream = (|| {
            let ef = deref(doc, deref(doc, spec)?.as_dict().ok()?.get(b"EF").ok()?)?.as_dict().ok()?;
            let s = deref(doc, ef.get(b"F").ok()?)?.as_stream().ok()?;
            let bytes = s.decompressed_content().ok().unwrap_or_else(|| s.content.clone());
            (bytes.len() <= 64 * 1024).then_some(bytes)
        })();
        found = stream.and_then(|b| serde_json::from_slice(&b).ok());
    });
    found
}

fn walk_name_tree<'a>(doc: &'a Document, node: &'a Object, depth: usize, f: &mut dyn FnMut(&[u8], &'a Object)) {
    let Some(dict) = node.as_dict().ok() else { return };
    if depth > 8 {
        return;
    }
    if let Some(names) = dict.get(b"Names").ok().and_then(|n| deref(doc, n)).and_then(|n| n.as_array().ok()) {
        for pair in names.chunks(2) {
            if let [Object::String(name, _), spec] = pair {
                f(name, spec);
            }
        }
    }
    if let Some(kids) = dict.get(b"Kids").ok().and_then(|k| deref(doc, k)).and_then(|k| k.as_array().ok()) {
        for kid in kids.iter().take(64) {
            if let Some(k) = deref(doc, kid) {
                walk_name_tree(doc, k, depth + 1, f);
            }
        }
    }
}

fn deref<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Object> {
    match o {
        Object::Reference(id) => doc.get_object(*id).ok(),
        other => Some(other),
    }
}
