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
    /// A checked submission in an owner's shared mailbox: the keyword `esurety-checked`,
    /// left unread for the people who read the mailbox.
    Checked,
}

/// The keyword a mail client shows on a checked submission.
pub const CHECKED_KEYWORD: &str = "esurety-checked";
