//! A number/key pair as read from a submission (a PDF page, a mail body), before any check.

use serde::Serialize;

/// One pair as read, before any check. `key` is what was read, malformed or not; `Debug`
/// prints it as `****`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub number: String,
    #[serde(skip)]
    pub key: String,
    pub product: Option<String>,
    pub project: Option<String>,
    pub contractor: Option<String>,
    /// `pdf`, `body`, `json`…
    pub source: String,
    /// `変更-N` when the notice says it is of a change.
    pub label: Option<String>,
    /// The company named on the notice as its issuer (a surety company, an insurer).
    pub issuer: Option<String>,
    /// A non-life insurer's notice: `number` is its 証券番号, and it carries a viewing URL
    /// and password instead of a key (`key` is empty; the password is not kept).
    pub viewing: bool,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found").field("number", &self.number).field("key", &"****").field("product", &self.product)
            .field("project", &self.project).field("contractor", &self.contractor).field("source", &self.source).field("label", &self.label)
            .field("issuer", &self.issuer).field("viewing", &self.viewing).finish()
    }
}
