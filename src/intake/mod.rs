//! Step 1 on both sides: intake. Mailbox adapters yield raw messages and mark them the way
//! a mail client shows; [`letter`] reads raw bytes into a [`letter::Letter`] (sender,
//! subject, every text and PDF found in the MIME tree). The store keeps the raw bytes
//! before anything else happens; the branch and owner flows take the `Letter` from there.

pub mod letter;
pub mod maildir;

/// How a processed message is left in its mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Handled: seen (`S`).
    Processed,
    /// Waiting for staff: flagged (`F`), left unread.
    Held,
}
