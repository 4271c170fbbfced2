//! The one integration test binary: drives the `esurety` binary against real Maildirs and
//! real SQLite files in temp dirs, and checks what a contractor, branch staff or an owner
//! would see (mails in Maildirs, PDFs read back, JSON of the CLI).

mod after;
mod attack;
mod attack25;
mod auth;
mod backup;
mod branch;
pub mod browser;
mod broken;
mod common;
mod demo;
mod desk;
pub mod desk_web;
mod failover;
mod fixtures;
mod fuzz_regressions;
mod layout;
mod lifecycle;
mod operations;
mod hostile;
mod lists;
pub mod mail_servers;
pub mod oauth;
mod owner;
mod pg;
mod postgres;
mod products;
pub mod registry_service;
pub mod reliability;
mod servers;
mod signing;
mod staff;
mod stranger;
mod support;
