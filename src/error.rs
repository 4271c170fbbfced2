//! What processing one stored message can end in, on either side: the branch's and the
//! owner's flows return it, and the daemon's pass acts on it (try again later, hold for
//! staff, an error outcome). It stands above the store, the registry and outbound, whose
//! errors it carries, and below both flows, so neither flow imports the other.

use crate::outbound::compose::ComposeError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The store could not be written: nothing was committed, try again later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Typesetting or composing failed for this message: it is held for staff.
    #[error("cannot typeset the documents: {0}")]
    Render(String),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A bug of ours on this message (caught panic): it gets an error outcome, the rest go on.
    #[error("internal error on this message: {0}")]
    Bug(String),
    /// Nothing can be decided now (a temporary DNS failure while checking the sender):
    /// nothing was written, and the message is tried again by a later pass.
    #[error("deferred: {0}")]
    Deferred(String),
}

impl From<crate::registry::RegistryError> for ProcessError {
    fn from(e: crate::registry::RegistryError) -> Self {
        match e {
            crate::registry::RegistryError::Store(e) => ProcessError::Store(e),
            other => ProcessError::Deferred(other.to_string()),
        }
    }
}

