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
    /// The timestamp authority that stamps each signature (`tsa_url`: PAdES B-T).
    tsa: Option<std::sync::Arc<crate::signature::tsa::Tsa>>,
}

impl Documents {
    pub fn new(templates: &TemplateSet) -> Result<Self, RenderError> {
        let t = Templates {
            notice: templates.get("notice.typ").to_string(),
            certificate: templates.get("certificate.typ").to_string(),
            fee: templates.get("fee.typ").to_string(),
            reservation: templates.get("reservation.typ").to_string(),
        };
        Ok(Documents { renderer: Renderer::new(FONTS, t)?, signer: None, tsa: None })
    }

    /// Every PDF signed by `signer` from now on.
    pub fn with_signer(mut self, signer: Option<std::sync::Arc<crate::signature::Signer>>) -> Self {
        self.signer = signer;
        self
    }

    /// Every signature timestamped by `tsa` from now on (with a signer).
    pub fn with_tsa(mut self, tsa: Option<std::sync::Arc<crate::signature::tsa::Tsa>>) -> Self {
        self.tsa = tsa;
        self
    }

    /// Whether the PDFs are signed.
    pub fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// One PDF for one certificate version. `key` is printed on the notice only.
    pub fn render(&self, kind: DocumentKind, config: &Config, cert: &Certificate, key: Option<&AuthKey>, now: DateTime<FixedOffset>) -> Result<Vec<u8>, RenderError> {
        let pdf = self.typeset(kind, config, cert, key, now)?;
        Ok(self.sign_all(vec![(kind.of(cert), pdf)], now)?.pop().expect("one in, one out"))
    }

    /// One PDF typeset, not signed.
    fn typeset(&self, kind: DocumentKind, config: &Config, cert: &Certificate, key: Option<&AuthKey>, now: DateTime<FixedOffset>) -> Result<Vec<u8>, RenderError> {
        let kind = kind.of(cert);
        let key = if kind == DocumentKind::Notice { key } else { None };
        let data = data::document_data(config, cert, key);
        let bytes = serde_json::to_vec(&data).expect("document data serialises");
        self.renderer.render(kind, &bytes, now)
    }

    /// Several PDFs at once, typeset in parallel on the worker pool (one thread per core:
    /// typesetting is CPU-bound and independent per document), then signed, their
    /// timestamps asked for all at once; in the order given.
    pub fn render_all(&self, jobs: &[(DocumentKind, &Certificate, Option<&AuthKey>)], config: &Config, now: DateTime<FixedOffset>) -> Result<Vec<Vec<u8>>, RenderError> {
        use rayon::prelude::*;
        let typeset = jobs.par_iter().map(|(kind, cert, key)| Ok((kind.of(cert), self.typeset(*kind, config, cert, *key, now)?))).collect::<Result<Vec<_>, RenderError>>()?;
        self.sign_all(typeset, now)
    }

    /// The PDFs signed (and timestamped), or as they are without `[signing]`.
    fn sign_all(&self, pdfs: Vec<(DocumentKind, Vec<u8>)>, now: DateTime<FixedOffset>) -> Result<Vec<Vec<u8>>, RenderError> {
        let Some(signer) = &self.signer else { return Ok(pdfs.into_iter().map(|(_, pdf)| pdf).collect()) };
        // Against the real time, as at start: a certificate's validity is the world's
        // (a test's fixed clock only dates the documents).
        let at = std::time::SystemTime::now();
        if !(signer.not_before() <= at && at <= signer.not_after()) {
            return Err(RenderError::SignerOutOfValidity(format!("the signing certificate ({}) is not in force; renew it and reload", signer.subject())));
        }
        let sign_err = |kind: DocumentKind| move |e: crate::signature::SignError| RenderError::Sign { kind, message: e.to_string() };
        let presigned = pdfs.iter().map(|(kind, pdf)| signer.presign(pdf, now, self.tsa.is_some()).map_err(sign_err(*kind))).collect::<Result<Vec<_>, _>>()?;
        let tokens = match &self.tsa {
            Some(tsa) => {
                let digests: Vec<[u8; 32]> = presigned.iter().map(|p| p.signature_digest()).collect();
                tsa.stamp_all(&digests).map_err(|e| RenderError::Timestamp(e.to_string()))?.into_iter().map(Some).collect()
            }
            None => vec![None; presigned.len()],
        };
        presigned.into_iter().zip(tokens).zip(&pdfs).map(|((p, token), (kind, pdf))| match signer.finish(p, token.as_deref()) {
            // A token larger than the room kept (a long chain in it): signed again with
            // room for it, and stamped again (the signature value is new).
            Err(crate::signature::SignError::Pdf(crate::signature::pdf::PdfError::TooLong(..))) if let (Some(tsa), Some(t)) = (&self.tsa, &token) => {
                let again = signer.presign_with_room(pdf, now, true, t.len()).map_err(sign_err(*kind))?;
                let token = tsa.stamp_all(&[again.signature_digest()]).map_err(|e| RenderError::Timestamp(e.to_string()))?.pop();
                signer.finish(again, token.as_deref()).map_err(sign_err(*kind))
            }
            other => other.map_err(sign_err(*kind)),
        }).collect()
    }
}
