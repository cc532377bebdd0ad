//! Domain rules as plain Rust over plain data: no HTTP, no SQL.

pub mod accounts;
pub mod authz;
pub mod catalog;
pub mod csv_lines;
pub mod delegation;
pub mod field;
pub mod issue;
pub mod licenses;
pub mod mapping;
pub mod phone;
pub mod phone_csv;
pub mod sync;
pub mod users;
