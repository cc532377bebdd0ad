//! Integration tests over real HTTP, on SQLite and (with PROVISOR_TEST_DATABASE set to a
//! postgres:// URL) on PostgreSQL.

mod harness;
mod layering;

mod accounts;
mod authz;
mod cli;
mod crash;
mod delegation;
mod erasure;
mod fuzz_corpus;
mod mail;
mod migrate_data;
mod moves;
mod multiprocess;
mod newcomer;
mod openapi;
mod ops;
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
mod statements;
mod sync;
mod users;
