//! The embedded default's transport: "sending" delivers into the recipient's local Maildir
//! (`<root>/<address>/new`, through `tmp/`), or into `<root>/relay` for any address that
//! has no local mailbox. Adds `Return-Path` and `Delivered-To` as a delivery agent does.

use super::{SendError, Transport};
use crate::intake::maildir::Maildir;
use std::path::PathBuf;

pub struct MaildirTransport {
    pub root: PathBuf,
}

impl Transport for MaildirTransport {
    fn send(&self, unique: &str, sender: &str, recipient: &str, raw: &[u8]) -> Result<(), SendError> {
        let rcpt = recipient.to_ascii_lowercase();
        let local = self.root.join(&rcpt);
        let md = if !rcpt.contains(['/', '\\']) && !rcpt.starts_with('.') && local.join("new").is_dir() {
            Maildir::new(local)
        } else {
            Maildir::new(self.root.join("relay"))
        };
        md.create().map_err(|e| SendError::Transient(format!("cannot open the Maildir {}: {e}", md.path.display())))?;
        let mut bytes = format!("Return-Path: <{sender}>\r\nDelivered-To: {rcpt}\r\n").into_bytes();
        bytes.extend_from_slice(raw);
        md.deliver(unique, &bytes)
            .map(|_| ())
            .map_err(|e| SendError::Transient(format!("cannot deliver into {}: {e}", md.path.display())))
    }

    /// A Maildir delivery under the same unique name is found and not made twice.
    fn recognises_redelivery(&self) -> bool {
        true
    }
}
