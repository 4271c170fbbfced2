//! esurety: Japan's electronic surety certificate flow (電子保証) over email.
//!
//! # Layout
//!
//! The branch side reads as the flow it automates:
//! [`intake`] (Maildir → stored raw message → [`intake::letter::Letter`]) →
//! [`application`] (form → `RawApplication` → rules R1–R10 → `Application`) →
//! [`issuance`] (numbers, keys, contents) → [`documents`] (Typst PDFs) →
//! [`outbound`] (composed mail → outbox → transport). [`branch`] runs those steps for one
//! message; [`run`] does a pass over every mailbox; [`daemon`] keeps passing.
//! The owner side checks number + key through [`registry`].
//!
//! Pure code (form, rules, issuance decisions, key checks, text) takes values and returns
//! values; SQLite ([`store`]), Maildirs, the clock and the random source ([`clock`]) are
//! adapters passed in. `anyhow` lives only in [`cli`], [`daemon`], [`demo`] and `main`.

pub mod branch;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod desk;
pub mod domain;
pub mod engine;
pub mod error;
pub mod faults;
pub mod intake;
pub mod outbound;
pub mod owner;
pub mod registry;
pub mod secrets;
pub mod sender_auth;
pub mod store;
pub mod templates;
pub mod text;
pub mod tls;
pub mod web;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;
