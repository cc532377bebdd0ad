//! SCIM 2.0 core (RFC 7643 / RFC 7644): schemas, filters, PATCH, errors.
//!
//! Pure logic over `serde_json::Value`: no HTTP and no storage, so the HTTP handlers and
//! the store can share one implementation of the protocol's rules and test it in
//! isolation.
//!
//! - [`schema`]: attribute definitions as static data, path resolution, `/Schemas`.
//! - [`filter`]: filter lexer, parser and AST (`?filter=`), walkable for SQL translation.
//! - [`eval`]: filter validation against a schema and in-memory evaluation.
//! - [`path`]: PATCH `path` parser.
//! - [`patch`]: PatchOp request parsing and application with a change summary.
//! - [`error`]: [`ScimError`], one variant per RFC 7644 `scimType`.
//!
//! The service provider built on that core (it talks to the pipeline and the store):
//!
//! - [`adapter`]: incoming documents → normalized documents → `IdentityChange`.
//! - [`resource`]: stored rows → resources; `attributes`/`excludedAttributes`.
//! - [`query`]: list/search parameters and filter → SQL over the indexed columns.
//! - [`service`]: the operations on Users and Groups (one atomic write each).
//! - [`bulk`]: `/Bulk` with `bulkId` references and `failOnErrors`.
//! - [`discovery`]: `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`.
//! - [`handlers`]: the HTTP edge under `/scim/v2`.

pub mod adapter;
pub mod bulk;
pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod handlers;
pub mod patch;
pub mod path;
pub mod query;
pub mod resource;
pub mod schema;
pub mod service;

#[cfg(test)]
mod proptests;

pub use error::ScimError;
pub use eval::{matches, validate, CompiledFilter};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, FilterError};
pub use patch::{apply, Change, ChangeKind, PatchOpKind, PatchOperation, PatchOutcome, PatchRequest};
pub use path::PatchPath;
pub use schema::{AttributeDef, ResolvedAttr, ResourceSchema, SchemaDef, GROUP, USER};
