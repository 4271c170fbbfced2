//! Typst `World` plumbing for the document renderer.
//!
//! [`Base`] is built once and owns everything that never changes between
//! renders: the standard library, the fonts (from caller-supplied bytes; system
//! fonts are never read), the parsed template sources and the handful of fixed
//! file ids. [`RenderWorld`] is a cheap per-render view that adds the JSON data
//! (served as the one virtual file `/data.json`) and the render date.

use chrono::{DateTime, Datelike, FixedOffset};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};

/// Virtual path of the per-render JSON data, as read by the templates.
pub(crate) const DATA_PATH: &str = "/data.json";

/// Virtual paths of the templates, indexed like [`Base::templates`].
pub(crate) const TEMPLATE_PATHS: [&str; 4] = ["/notice.typ", "/certificate.typ", "/fee.typ", "/reservation.typ"];

/// Interns a project-rooted virtual path. Interning the same path again
/// returns the same id, so this never grows the global id table per render.
fn file_id(path: &str) -> FileId {
    let vpath = VirtualPath::new(path).expect("static virtual path is valid");
    RootedPath::new(VirtualRoot::Project, vpath).intern()
}

/// One parsed template: its source plus the same text as bytes for `file()`.
struct Template {
    source: Source,
    bytes: Bytes,
}

/// Long-lived, immutable state shared by all renders.
pub(crate) struct Base {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    templates: Vec<Template>,
    data_id: FileId,
}

impl Base {
    /// Loads fonts and parses the templates (in [`TEMPLATE_PATHS`] order).
    /// Returns `Err(message)` when no usable font is found.
    pub(crate) fn new(fonts: &[&'static [u8]], templates: [String; 4]) -> Result<Self, String> {
        let mut loaded = Vec::new();
        for (i, data) in fonts.iter().enumerate() {
            let before = loaded.len();
            loaded.extend(Font::iter(Bytes::new(*data)));
            if loaded.len() == before {
                return Err(format!(
                    "font #{i} ({} bytes) could not be parsed",
                    data.len()
                ));
            }
        }
        if loaded.is_empty() {
            return Err("no fonts supplied".into());
        }
        let templates = templates
            .into_iter()
            .zip(TEMPLATE_PATHS)
            .map(|(text, path)| Template {
                bytes: Bytes::from_string(text.clone()),
                source: Source::new(file_id(path), text),
            });
        Ok(Self {
            library: LazyHash::new(Library::default()),
            book: LazyHash::new(FontBook::from_fonts(&loaded)),
            fonts: loaded,
            templates: templates.collect(),
            data_id: file_id(DATA_PATH),
        })
    }

    fn template(&self, id: FileId) -> Option<&Template> {
        self.templates.iter().find(|t| t.source.id() == id)
    }
}

/// A per-render view: the shared base plus this document's data and date.
pub(crate) struct RenderWorld<'a> {
    base: &'a Base,
    main: FileId,
    data: Bytes,
    now: DateTime<FixedOffset>,
}

impl<'a> RenderWorld<'a> {
    /// `template` indexes [`TEMPLATE_PATHS`]; `data` is the raw JSON.
    pub(crate) fn new(
        base: &'a Base,
        template: usize,
        data: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            base,
            main: base.templates[template].source.id(),
            data: Bytes::new(data.to_vec()),
            now,
        }
    }
}

impl World for RenderWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.base.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.base.book
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        match self.base.template(id) {
            Some(t) => Ok(t.source.clone()),
            None if id == self.base.data_id => Err(FileError::NotSource),
            None => Err(not_found(id)),
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.base.data_id {
            return Ok(self.data.clone());
        }
        match self.base.template(id) {
            Some(t) => Ok(t.bytes.clone()),
            None => Err(not_found(id)),
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.base.fonts.get(index).cloned()
    }

    fn today(&self, offset: Option<Duration>) -> Option<Datetime> {
        let date = match offset {
            None => self.now.date_naive(),
            Some(offset) => {
                let secs = offset.seconds().round() as i64;
                (self.now.naive_utc() + chrono::Duration::seconds(secs)).date()
            }
        };
        Datetime::from_ymd(date.year(), date.month() as u8, date.day() as u8)
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::NotFound(id.vpath().get_with_slash().into())
}
