//! Administrative operations shared by the admin API and the CLI (both are thin adapters
//! over these). User changes go through `provisioning`; account, license and token
//! management lives here.

pub mod accounts;
pub mod batch;
pub mod groups;
pub mod licenses;
pub mod mapping;
pub mod phone;
pub mod roles;
pub mod saml_login;
pub mod sso;
pub mod tokens;
pub mod users;
