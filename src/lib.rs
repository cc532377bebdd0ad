//! provisor: an identity-provisioning server.
//!
//! See `ARCHITECTURE.md` for the module map. Arrows point inward: `http` and `cli` →
//! `service` → `provisioning` → `store` and `domain`; the protocol cores `scim` and `saml`
//! know no HTTP and no storage. `domain` is plain Rust over plain data and imports nothing
//! else of ours.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]
#![cfg_attr(not(test), deny(clippy::string_slice, clippy::indexing_slicing))]

pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod fault;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod mail;
pub mod provisioning;
pub mod saml;
pub mod scim;
pub mod secrets;
pub mod service;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// jemalloc serves every allocation of the process — Rust's and, through its unprefixed
/// `malloc`/`free`, those of libxml2, xmlsec, SQLite and OpenSSL — because glibc's malloc
/// was a fifth of a SAML login's CPU and a sixth of a membership PATCH's (profiled with the
/// load bench). Declared in the library so that the binary, the tests and the benchmarks
/// all run on the allocator that ships.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
