//! The one provisioning core. Protocol adapters (admin API, CSV, SCIM, SAML) translate
//! their input into an [`IdentityChange`](change::IdentityChange) and call
//! [`pipeline::run`]; it maps, reconciles and persists in the caller's transaction.

pub mod audit;
pub mod batch_scope;
pub mod change;
pub mod entitlements;
pub mod groups;
pub mod invitations;
pub mod mapping;
pub mod phone;
pub mod pipeline;

pub use change::*;
pub use pipeline::{resolve_placement, run, Applied, Env};
