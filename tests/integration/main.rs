//! Integration tests over real HTTP, on SQLite and (with PROVISOR_TEST_DATABASE set to a
//! postgres:// URL) on PostgreSQL.

mod harness;
mod layering;

mod accounts;
mod authz;
mod cli;
mod delegation;
mod fuzz_corpus;
mod mail;
mod moves;
mod newcomer;
mod pages;
mod process;
mod provisioning;
mod races;
mod readme;
mod reports;
mod saml;
mod scim;
mod scim_fixtures;
mod scim_model;
mod sync;
mod users;
