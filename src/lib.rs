//! provisor: an identity-provisioning server.
//!
//! See `ARCHITECTURE.md` for the module map. Arrows point inward: protocol adapters
//! (`scim`, `saml`, `csv`, `http`) → `provisioning` → `domain`; `provisioning` → `store`.
//! `domain` is plain Rust over plain data and imports nothing else of ours.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod provisioning;
pub mod saml;
pub mod scim;
pub mod secrets;
pub mod store;
pub mod testing;
