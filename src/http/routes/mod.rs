//! Admin API routes. Account-scoped routes are registered twice by `http::configure`:
//! under `/api/v1` (the token's own account) and under `/api/v1/accounts/{account_id}`
//! (the master mirror), with identical bodies.

pub mod account;
pub mod groups;
pub mod licenses;
pub mod mapping;
pub mod phone;
pub mod platform;
pub mod roles;
pub mod saml;
pub mod sso;
pub mod system;
pub mod tokens;
pub mod users;

use actix_web::web;
use serde::Deserialize;

pub fn account_scoped(cfg: &mut web::ServiceConfig) {
    cfg.configure(account::configure)
        .configure(licenses::configure)
        .configure(users::configure)
        .configure(roles::configure)
        .configure(groups::configure)
        .configure(mapping::configure)
        .configure(phone::configure)
        .configure(sso::configure)
        .configure(tokens::configure);
}

/// `?limit=&offset=` paging (limit 1–1000, default 100).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
pub struct Page {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Page {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
}

/// Path parameters by name (on the mirror, `account_id` comes first, so positional
/// extraction would read the wrong segment).
#[derive(Debug, Deserialize)]
pub struct Params {
    pub user_id: Option<String>,
    pub sub_id: Option<String>,
    pub product: Option<String>,
    pub token_id: Option<String>,
    pub role_id: Option<String>,
    pub domain: Option<String>,
    pub group_id: Option<String>,
    pub site_id: Option<String>,
    pub number: Option<String>,
    pub certificate_id: Option<String>,
}

impl Params {
    pub fn get(v: &Option<String>, name: &'static str) -> crate::error::AppResult<String> {
        v.clone().ok_or(crate::error::AppError::bad_request("invalid_path", format!("missing path parameter {name}")))
    }
}
