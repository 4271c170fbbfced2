//! esurety: Japan's electronic surety certificate flow (電子保証) over email.
//!
//! # Layout
//!
//! Two organisations and what stands between them, in floors (README § Layout; the test
//! `layout::` holds every import to a floor below its own):
//!
//! - the ground: [`text`], [`clock`], then [`domain`] (numbers, keys, a certificate, a
//!   fee, the states, a pair found, a caller; no I/O);
//! - small shared pieces: [`secrets`], [`templates`], [`tls`], [`sender_auth`], [`faults`];
//! - [`config`], then [`store`] (one interface, `sqlite/` and `postgres/`);
//! - the mail adapters [`intake`] and [`outbound`], the [`registry`], a flow's [`error`];
//! - the two organisations: [`branch`] (application → issuance → documents → outbound)
//!   and [`owner`] (submission → check → register → reply), neither importing the other;
//! - [`engine`] (what lives as long as the process), [`health`] (what an operator sees),
//!   [`desk`] (what staff do);
//! - the front doors [`web`] and [`cli`], and the composition roots [`daemon`] and [`demo`].
//!
//! Pure code (form, rules, issuance decisions, key checks, text) takes values and returns
//! values; the store, Maildirs, the clock and the random source are adapters passed in.
//! `anyhow` lives only in [`cli`], [`daemon`], [`demo`] and `main`.

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
pub mod health;
pub mod intake;
pub mod oauth;
pub mod outbound;
pub mod owner;
pub mod registry;
pub mod secrets;
pub mod sender_auth;
pub mod signature;
pub mod store;
pub mod templates;
pub mod text;
pub mod tls;
pub mod web;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;
