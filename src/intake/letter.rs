//! Raw bytes → [`Letter`]: who sent it, its subject and Message-ID, and every piece of
//! content found by walking the whole MIME tree: text bodies, HTML bodies turned into
//! text, text attachments, PDF attachments, and the same inside forwarded messages.
//!
//! Charsets: mail-parser (with `full_encoding`) decodes declared UTF-8, ISO-2022-JP and
//! Shift_JIS. A text part that declares no charset but is not UTF-8 (a Shift_JIS `.txt`
//! attachment from Windows) is decoded again here from its raw bytes.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Encoding, Message, MessageParser, MimeHeaders, PartType};

/// An email as read. Its texts and PDFs may carry a 認証キー, so `Debug` shows only the
/// headers and the pieces' kinds and sizes.
#[derive(Clone)]
pub struct Letter {
    /// `<id@host>`, with angle brackets, when the message has one.
    pub message_id: Option<String>,
    /// The `From` address, lower case.
    pub from: Option<String>,
    /// The envelope sender (`Return-Path`), lower case.
    pub envelope: Option<String>,
    pub subject: String,
    pub references: Vec<String>,
    /// The `X-Esurety-Event` header (a company's notice of an event, `lifecycle.md`), when
    /// it has the shape of an event id. Anyone can write it: the owner side believes only
    /// what the registry confirms.
    pub event: Option<String>,
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A text/plain body part.
    Body,
    /// A text/html body part, turned into text.
    Html,
    /// An attachment, with its file name when it has one.
    Attachment(Option<String>),
}

#[derive(Clone)]
pub enum Piece {
    Text { origin: Origin, depth: usize, text: String },
    Pdf { name: Option<String>, depth: usize, bytes: Vec<u8> },
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter").field("message_id", &self.message_id).field("from", &self.from).field("envelope", &self.envelope)
            .field("subject", &self.subject).field("references", &self.references).field("pieces", &self.pieces).finish()
    }
}

/// The kind, origin and size of a piece, never its content.
impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Text { origin, depth, text } => write!(f, "Text({origin:?}, depth {depth}, {} chars)", text.chars().count()),
            Piece::Pdf { name, depth, bytes } => write!(f, "Pdf({name:?}, depth {depth}, {} bytes)", bytes.len()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("the message is not a readable email (no headers could be parsed)")]
    Unparseable,
}

pub fn read(raw: &[u8]) -> Result<Letter, LetterError> {
    read_with(raw, &crate::config::Limits::default())
}

/// The Message-ID, read from the header alone (the body is not parsed).
pub fn message_id(raw: &[u8]) -> Option<String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    read(&raw[..end]).ok().and_then(|l| l.message_id)
}

/// Reads at most `limits.max_parts` pieces, and forwarded messages at most
/// `limits.max_depth` deep; what lies beyond is not looked at.
pub fn read_with(raw: &[u8], limits: &crate::config::Limits) -> Result<Letter, LetterError> {
    let msg = MessageParser::default().parse(raw).ok_or(LetterError::Unparseable)?;
    if msg.headers().is_empty() {
        return Err(LetterError::Unparseable);
    }
    let mut pieces = Vec::new();
    let mut budget = Budget { parts: limits.max_parts, depth: limits.max_depth };
    walk(&msg, 0, &mut pieces, &mut budget);
    let addr = |a: Option<&mail_parser::Address>| a.and_then(|a| a.first()).and_then(|a| a.address()).and_then(address);
    let references = msg.references().as_text_list().unwrap_or_default();
    Ok(Letter {
        message_id: msg.message_id().and_then(message_id_value),
        from: addr(msg.from()),
        envelope: msg.return_address().and_then(|s| address(s.trim().trim_matches(['<', '>']))),
        subject: header_text(msg.subject().unwrap_or_default(), MAX_SUBJECT),
        // The latest references are the ones a reply is threaded by.
        references: references.iter().rev().take(MAX_REFERENCES).rev().filter_map(|s| message_id_value(s)).collect(),
        event: msg.header_raw("X-Esurety-Event").map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .map(str::to_string),
        pieces,
    })
}

/// What a stranger's headers may bring to the store, bounded: PostgreSQL refuses a NUL in
/// text and an index entry over ~2.7 KB, and no person needs more than this of a header.
const MAX_MESSAGE_ID: usize = 250;
const MAX_ADDRESS: usize = 320;
const MAX_SUBJECT: usize = 500;
const MAX_REFERENCES: usize = 30;
const MAX_FILE_NAME: usize = 255;

/// A header's text as it may be stored, shown and quoted in a reply: control characters
/// (NUL among them) removed, at most `max` characters.
fn header_text(s: &str, max: usize) -> String {
    let t = crate::text::printable(s).replace('\n', " ");
    let t = t.trim();
    if t.chars().count() <= max { t.to_string() } else { t.chars().take(max).collect::<String>() + "…" }
}

/// An address as given, lower case; none when it carries a control character or a space
/// (no one's address does: such a sender is not one anybody can answer or recognise) or is
/// longer than [`MAX_ADDRESS`].
fn address(s: &str) -> Option<String> {
    let t = s.trim();
    let usable = !t.is_empty() && t.len() <= MAX_ADDRESS && !t.chars().any(|c| c.is_control() || c.is_whitespace());
    usable.then(|| t.to_ascii_lowercase())
}

/// `<id>` as it is stored and threaded by: its controls and spaces removed; one longer than
/// [`MAX_MESSAGE_ID`] is replaced by a digest of it, so the same long id still finds its
/// duplicate and two long ids stay apart.
fn message_id_value(id: &str) -> Option<String> {
    use sha2::Digest;
    let id: String = id.chars().filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>')).collect();
    if id.is_empty() {
        return None;
    }
    if id.len() <= MAX_MESSAGE_ID {
        return Some(format!("<{id}>"));
    }
    Some(format!("<{}@long-message-id.invalid>", crate::text::hex(&sha2::Sha256::digest(id.as_bytes()))))
}

struct Budget {
    parts: usize,
    depth: usize,
}

fn walk(msg: &Message, depth: usize, out: &mut Vec<Piece>, budget: &mut Budget) {
    let text_ids: Vec<u32> = msg.text_body.clone();
    let html_ids: Vec<u32> = msg.html_body.clone();
    for (i, part) in msg.parts.iter().enumerate() {
        if budget.parts == 0 {
            return;
        }
        budget.parts -= 1;
        let i = i as u32;
        let name = part.attachment_name().map(|n| header_text(n, MAX_FILE_NAME)).filter(|n| !n.is_empty());
        let is_body = text_ids.contains(&i) || html_ids.contains(&i);
        let ctype = part.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))).unwrap_or_default().to_ascii_lowercase();
        match &part.body {
            PartType::Text(text) => {
                let origin = if is_body && name.is_none() { Origin::Body } else { Origin::Attachment(name) };
                out.push(Piece::Text { origin, depth, text: without_nul(redecode_if_needed(msg, part, text)) });
            }
            PartType::Html(html) => {
                let origin = if is_body && name.is_none() { Origin::Html } else { Origin::Attachment(name) };
                out.push(Piece::Text { origin, depth, text: without_nul(mail_parser::decoders::html::html_to_text(html)) });
            }
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                let is_pdf = ctype == "application/pdf"
                    || name.as_deref().is_some_and(|n| n.to_ascii_lowercase().ends_with(".pdf"))
                    || bytes.starts_with(b"%PDF-");
                if is_pdf {
                    out.push(Piece::Pdf { name, depth, bytes: bytes.to_vec() });
                } else if name.as_deref().is_some_and(|n| n.to_ascii_lowercase().ends_with(".txt")) {
                    out.push(Piece::Text { origin: Origin::Attachment(name), depth, text: without_nul(decode_unlabelled(bytes)) });
                }
            }
            PartType::Message(inner) => {
                if depth < budget.depth {
                    walk(inner, depth + 1, out, budget);
                }
            }
            PartType::Multipart(_) => {}
        }
    }
}

/// A text part without its NUL characters: no form value, reason or reply quoting it can
/// carry one into the store.
fn without_nul(text: String) -> String {
    if text.contains('\0') { text.replace('\0', "") } else { text }
}

/// mail-parser decodes a text part without a charset as UTF-8, lossily. When that lost
/// characters, decode the part's raw bytes as Japanese legacy text instead.
fn redecode_if_needed(msg: &Message, part: &mail_parser::MessagePart, text: &str) -> String {
    let declared = part.content_type().and_then(|c| c.attribute("charset")).is_some();
    if declared || !text.contains('\u{FFFD}') {
        return text.to_string();
    }
    let raw = msg.raw_message();
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    let Some(body) = raw.get(start..end.min(raw.len())) else { return text.to_string() };
    let bytes = match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => mail_parser::decoders::quoted_printable::quoted_printable_decode(body),
        Encoding::None => Some(body.to_vec()),
    };
    bytes.map(|b| decode_unlabelled(&b)).unwrap_or_else(|| text.to_string())
}

/// Bytes of unknown charset: UTF-8 if valid, ISO-2022-JP if it has its escapes, else the
/// one of Shift_JIS and EUC-JP that loses fewer characters.
pub fn decode_unlabelled(bytes: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let with = |cs: &[u8]| charset_decoder(cs).map(|d| d(bytes));
    if bytes.windows(3).any(|w| w == b"\x1b$B" || w == b"\x1b$@")
        && let Some(s) = with(b"iso-2022-jp")
    {
        return s;
    }
    let bad = |s: &String| s.chars().filter(|c| *c == '\u{FFFD}').count();
    match (with(b"shift_jis"), with(b"euc-jp")) {
        (Some(a), Some(b)) => if bad(&b) < bad(&a) { b } else { a },
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl Letter {
    /// Texts in the order a form is looked for: plain bodies, HTML bodies, text attachments.
    pub fn texts(&self) -> impl Iterator<Item = (&Origin, &str)> {
        let rank = |o: &Origin| match o { Origin::Body => 0, Origin::Html => 1, Origin::Attachment(_) => 2 };
        let mut v: Vec<(&Origin, &str, usize)> = self.pieces.iter().filter_map(|p| match p {
            Piece::Text { origin, depth: 0, text } => Some((origin, text.as_str(), rank(origin))),
            _ => None,
        }).collect();
        v.sort_by_key(|(_, _, r)| *r);
        v.into_iter().map(|(o, t, _)| (o, t))
    }
}
