//! Step 1 on both sides: intake. Mailbox adapters yield raw messages and mark them the way
//! a mail client shows; [`letter`] reads raw bytes into a [`letter::Letter`] (sender,
//! subject, every text and PDF found in the MIME tree). The store keeps the raw bytes
//! before anything else happens; the branch and owner flows take the `Letter` from there.
//!
//! This folder holds adapters only (`maildir.rs`, `imap.rs` and its `login.rs`) and the reader of a message
//! ([`letter`]); what a message means is decided by the branch's and owner's flows.

pub mod imap;
pub mod letter;
pub mod login;
pub mod maildir;

use crate::store::{Store, StoreError};
use chrono::{DateTime, FixedOffset};

/// A watched mailbox: local Maildir or IMAP folder.
pub trait Mailbox {
    fn address(&self) -> &str;
    /// Stores every message not stored yet, committed before this returns; returns how
    /// many were new.
    fn fetch_new(&mut self, store: &mut Store, now: DateTime<FixedOffset>) -> Result<usize, MailboxError>;
    /// Marks a message the way a mail client shows it. Doing it twice does no harm.
    fn mark(&mut self, source_uid: &str, mark: Mark) -> Result<(), MailboxError>;
    /// Connects and logs in now if it is not (IMAP), so that no login happens while the
    /// store is held for marking (a login may have to refresh an OAuth token in the store).
    fn ready(&mut self) -> Result<(), MailboxError> {
        Ok(())
    }
    /// Makes the marks made so far durable (before the store records them as made).
    fn sync(&mut self) -> Result<(), MailboxError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The server or the folder cannot be reached now: try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A login on OAuth 2.0 without an access token: the mailbox waits (a refused refresh
/// token is on the desk and in the digest until someone authorizes it again).
impl From<crate::oauth::TokenError> for MailboxError {
    fn from(e: crate::oauth::TokenError) -> Self {
        MailboxError::Unavailable(e.to_string())
    }
}

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
