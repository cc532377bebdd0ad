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
//! - [`projection`]: which attributes a response carries (`attributes`, `excludedAttributes`).
//! - [`query`]: list/search parameters.
//! - [`discovery`]: `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`.
//!
//! The service provider built on this core lives in `service::scim` (operations, Bulk,
//! the adapter to the pipeline, rendering), the filter → SQL translation in
//! `store::scim_query`, and the HTTP edge in `http::scim`.

pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod patch;
pub mod path;
pub mod projection;
pub mod query;
pub mod schema;

pub use error::ScimError;
pub use eval::{matches, validate, CompiledFilter};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, FilterError};
pub use patch::{apply, Change, ChangeKind, PatchOpKind, PatchOperation, PatchOutcome, PatchRequest};
pub use path::PatchPath;
pub use schema::{AttributeDef, ResolvedAttr, ResourceSchema, SchemaDef, GROUP, USER};
