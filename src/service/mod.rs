//! The services layer: every operation the admin API, SCIM, SAML and the CLI perform, as
//! plain functions over plain inputs (a connection or [`Services`], an [`Env`], the acting
//! principal) returning typed results. Nothing here knows actix or HTTP status codes: the
//! `http` module translates requests into these calls and their results and errors into
//! responses, and the CLI prints them.
//!
//! User changes go through `provisioning::run`; group memberships through
//! `provisioning::groups` (the only writer of `group_members` and its outbox); audit entries
//! through `provisioning::audit`.

pub mod accounts;
pub mod auth;
pub mod batch;
pub mod delegation;
pub mod dns;
pub mod erasure;
pub mod groups;
pub mod licenses;
pub mod mapping;
pub mod moves;
pub mod phone;
pub mod reports;
pub mod retention;
pub mod roles;
pub mod saml_login;
pub mod scim;
pub mod sso;
pub mod sync;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::provisioning::mapping::MappingCache;
use crate::provisioning::Env;
use crate::store::Db;

/// What every operation of a running server shares: the database, the clock, the public
/// URL links are built from, and the per-process caches.
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    /// The externally visible base URL (no trailing slash).
    pub public_url: String,
    pub tokens: auth::TokenCache,
    pub contexts: auth::ContextCache,
    pub mappings: Arc<MappingCache>,
    pub sso: sso::SsoCache,
    /// TXT lookups for domain verification (the system resolver; a table in tests).
    pub dns: Arc<dyn dns::TxtResolver>,
}

impl Services {
    pub fn new(db: Db, clock: SharedClock, public_url: impl Into<String>) -> Services {
        Services {
            db,
            clock,
            public_url: public_url.into(),
            tokens: Default::default(),
            contexts: Default::default(),
            mappings: Default::default(),
            sso: Default::default(),
            dns: Arc::new(dns::SystemResolver::default()),
        }
    }

    /// Call after changing roles, permissions, users or tokens: cached authorisations go.
    pub fn authorization_changed(&self) {
        self.contexts.clear();
    }

    /// The pipeline's environment at this instant.
    pub fn env(&self) -> Env {
        Env {
            now: self.clock.now_naive(),
            public_url: self.public_url.clone(),
            mappings: self.mappings.clone(),
            batch: None,
        }
    }
}
