//! Branch side, step 4: documents. The key notice, the certificate and the fee statement
//! typeset with Typst from `templates/*.typ`, with the project's own fonts; data goes in
//! as the virtual file `/data.json` built by [`data`], never pasted into markup.
//! [`Documents`] is built once per process (fonts loaded, templates parsed) and reused;
//! with `[signing]`, every PDF it makes is signed (PAdES, `crate::signature`).

pub mod data;
mod render;
mod world;

use crate::config::Config;
use crate::domain::{AuthKey, Certificate};
use crate::templates::{FONTS, TemplateSet};
use chrono::{DateTime, FixedOffset};
pub use render::{DocumentKind, RenderError, Renderer, Templates};

pub struct Documents {
    renderer: Renderer,
    /// The company's signature on every PDF (`[signing]`); none: unsigned.
    signer: Option<std::sync::Arc<crate::signature::Signer>>,
}

impl Documents {
    pub fn new(templates: &TemplateSet) -> Result<Self, RenderError> {
        let t = Templates {
            notice: templates.get("notice.typ").to_string(),
            certificate: templates.get("certificate.typ").to_string(),
            fee: templates.get("fee.typ").to_string(),
            reservation: templates.get("reservation.typ").to_string(),
        };
        Ok(Documents { renderer: Renderer::new(FONTS, t)?, signer: None })
    }

    /// Every PDF signed by `signer` from now on.
    pub fn with_signer(mut self, signer: Option<std::sync::Arc<crate::signature::Signer>>) -> Self {
        self.signer = signer;
        self
    }

    /// Whether the PDFs are signed.
    pub fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// One PDF for one certificate version. `key` is printed on the notice only.
    pub fn render(&self, kind: DocumentKind, config: &Config, cert: &Certificate, key: Option<&AuthKey>, now: DateTime<FixedOffset>) -> Result<Vec<u8>, RenderError> {
        let kind = kind.of(cert);
        let key = if kind == DocumentKind::Notice { key } else { None };
        let data = data::document_data(config, cert, key);
        let bytes = serde_json::to_vec(&data).expect("document data serialises");
        let pdf = self.renderer.render(kind, &bytes, now)?;
        match &self.signer {
            Some(signer) => signer.sign(&pdf, now).map_err(|e| RenderError::Sign { kind, message: e.to_string() }),
            None => Ok(pdf),
        }
    }

    /// Several PDFs at once, typeset in parallel on the worker pool (one thread per core:
    /// typesetting is CPU-bound and independent per document), in the order given.
    pub fn render_all(&self, jobs: &[(DocumentKind, &Certificate, Option<&AuthKey>)], config: &Config, now: DateTime<FixedOffset>) -> Result<Vec<Vec<u8>>, RenderError> {
        use rayon::prelude::*;
        jobs.par_iter().map(|(kind, cert, key)| self.render(*kind, config, cert, *key, now)).collect()
    }
}
