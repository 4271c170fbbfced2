//! PDF rendering of the surety documents (key notice, certificate, fee
//! statement) with Typst.
//!
//! Owns the public renderer API: [`Renderer`] is built once from font bytes
//! and template sources, then renders any [`DocumentKind`] from the JSON data
//! document. Data reaches the templates only as the virtual file
//! `/data.json` (`#let d = json("/data.json")`), never pasted into markup, so
//! values print literally whatever characters they contain.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use typst::World;
use typst::WorldExt;
use typst::diag::{SourceDiagnostic, Warned};
use typst::foundations::{Datetime, Smart};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, Timestamp};

use super::world::{Base, RenderWorld};

/// Which document to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// 電子保証にかかる「認証キー」のお知らせ.
    Notice,
    /// 保証証書（前払金保証／契約保証）.
    Certificate,
    /// 保証料計算書.
    Fee,
    /// 契約保証予約証書: what a 契約保証予約 prints in place of a certificate.
    Reservation,
}

impl DocumentKind {
    /// All kinds, in template order.
    pub const ALL: [DocumentKind; 4] = [Self::Notice, Self::Certificate, Self::Fee, Self::Reservation];

    /// Stable lower-case name ("notice", "certificate", "fee").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::Certificate => "certificate",
            Self::Fee => "fee",
            Self::Reservation => "reservation",
        }
    }

    /// The document a certificate prints as this kind: a 契約保証予約's certificate is
    /// its 予約証書.
    pub fn of(self, cert: &crate::domain::Certificate) -> DocumentKind {
        match (self, cert.product) {
            (Self::Certificate, crate::domain::Product::BidBond) => Self::Reservation,
            (kind, _) => kind,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Typst source text of the three templates.
#[derive(Debug, Clone)]
pub struct Templates {
    pub notice: String,
    pub certificate: String,
    pub fee: String,
    pub reservation: String,
}

/// Rendering failure.
#[derive(thiserror::Error, Debug)]
pub enum RenderError {
    /// The template failed to compile with this data (Typst diagnostics,
    /// one per line, as `path:line:col: message`), or the data is not JSON.
    #[error("{kind} template failed: {message}")]
    Template { kind: DocumentKind, message: String },
    /// PDF export failed.
    #[error("PDF export failed: {0}")]
    Pdf(String),
    /// The typeset PDF could not be signed (`[signing]`).
    #[error("{kind} could not be signed: {message}")]
    Sign { kind: DocumentKind, message: String },
    /// The timestamp authority did not give a token (`tsa_url`): the document waits.
    #[error("no timestamp: {0}")]
    Timestamp(String),
    /// The signing certificate is not in force now (it ended while the daemon ran): the
    /// document waits for a renewed one (a reload).
    #[error("not signed: {0}")]
    SignerOutOfValidity(String),
    /// The supplied fonts could not be loaded.
    #[error("font loading failed: {0}")]
    Font(String),
}

/// Renders surety documents to PDF. Fonts are loaded and templates parsed
/// once in [`Renderer::new`]; [`Renderer::render`] takes `&self` and may be
/// called concurrently from several threads.
pub struct Renderer {
    base: Base,
}

impl Renderer {
    /// Builds a renderer from font files (TTF/OTF/TTC bytes; system fonts are
    /// never consulted) and the template sources.
    pub fn new(fonts: &[&'static [u8]], templates: Templates) -> Result<Self, RenderError> {
        let Templates {
            notice,
            certificate,
            fee,
            reservation,
        } = templates;
        let base = Base::new(fonts, [notice, certificate, fee, reservation]).map_err(RenderError::Font)?;
        Ok(Self { base })
    }

    /// Renders one document. `data_json` is the serialized data document;
    /// `now` (JST) is used for `datetime.today()` and the PDF timestamp.
    pub fn render(
        &self,
        kind: DocumentKind,
        data_json: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<u8>, RenderError> {
        self.render_with_warnings(kind, data_json, now)
            .map(|(pdf, _)| pdf)
    }

    /// Like [`render`](Self::render), but also returns Typst's warnings
    /// (e.g. an unknown font family), formatted like errors.
    pub fn render_with_warnings(
        &self,
        kind: DocumentKind,
        data_json: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Result<(Vec<u8>, Vec<String>), RenderError> {
        let result = self.render_inner(kind, data_json, now);
        // Drop memoized results older than a few renders; without this the
        // global comemo cache grows with every document.
        typst::comemo::evict(10);
        result
    }

    fn render_inner(
        &self,
        kind: DocumentKind,
        data_json: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Result<(Vec<u8>, Vec<String>), RenderError> {
        let template_err = |message: String| RenderError::Template { kind, message };
        let data: serde_json::Value = serde_json::from_slice(data_json)
            .map_err(|e| template_err(format!("data is not valid JSON: {e}")))?;

        let world = RenderWorld::new(&self.base, kind.index(), data_json, now);
        let Warned { output, warnings } = typst::compile::<PagedDocument>(&world);
        let warnings = warnings
            .iter()
            .map(|d| format_diagnostic(&world, d))
            .collect();
        let document =
            output.map_err(|errors| template_err(format_diagnostics(&world, &errors)))?;

        let options = PdfOptions {
            ident: Smart::Custom(pdf_ident(kind, &data)),
            timestamp: timestamp(now),
            ..Default::default()
        };
        let pdf = typst_pdf::pdf(&document, &options)
            .map_err(|errors| RenderError::Pdf(format_diagnostics(&world, &errors)))?;
        Ok((pdf, warnings))
    }
}

/// A stable document identifier: same kind, number and change label give the
/// same PDF `/ID` base, as the PDF spec intends for revisions of one document.
fn pdf_ident(kind: DocumentKind, data: &serde_json::Value) -> String {
    let field = |name: &str| data.get(name).and_then(|v| v.as_str()).unwrap_or("");
    format!(
        "esurety/{kind}/{}/{}",
        field("number"),
        field("change_label")
    )
}

fn timestamp(now: DateTime<FixedOffset>) -> Option<Timestamp> {
    let datetime = Datetime::from_ymd_hms(
        now.year(),
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second() as u8,
    )?;
    Timestamp::new_local(datetime, now.offset().local_minus_utc() / 60)
}

fn format_diagnostics(world: &dyn World, diags: &[SourceDiagnostic]) -> String {
    let lines: Vec<String> = diags.iter().map(|d| format_diagnostic(world, d)).collect();
    lines.join("\n")
}

/// `path:line:col: message (hint: ...)`, with 1-based line and column.
fn format_diagnostic(world: &dyn World, diag: &SourceDiagnostic) -> String {
    let mut out = String::new();
    if let Some(id) = diag.span.id() {
        out.push_str(id.vpath().get_with_slash());
        let position = world.range(diag.span).and_then(|range| {
            world
                .source(id)
                .ok()?
                .lines()
                .byte_to_line_column(range.start)
        });
        if let Some((line, col)) = position {
            out.push_str(&format!(":{}:{}", line + 1, col + 1));
        }
        out.push_str(": ");
    }
    out.push_str(&diag.message);
    for hint in &diag.hints {
        out.push_str(&format!(" (hint: {})", hint.v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Renderer>();
    }
}
