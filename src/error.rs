//! The application error. Layering (as in crates.io): storage code returns
//! [`StoreError`]/`QueryResult`, domain rules return their own small enums, and everything
//! meets here as [`AppError`]. The variant says what kind of failure it is; `http::error`
//! alone turns variants into statuses (and SCIM `scimType`s), and the CLI prints the code.

use crate::domain::accounts::{AccountRuleError, DisassociationError};
use crate::domain::authz::GrantError;
use crate::domain::licenses::LicenseError;
use crate::domain::users::RoleChangeError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or breaks a rule (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No or unknown credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A delegated token whose relationship or delegate has ended (401 `delegation_ended`).
    #[error("{0}")]
    DelegationEnded(String),
    /// Authenticated, but not allowed (403): `missing_permission`, `not_held`,
    /// `owner_only`, `owner_protected`, or plain `forbidden`.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Unknown, or belonging to another tenant (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// Not found, with a code and an explanation of why that helps the caller (404).
    #[error("{message}")]
    NotFoundBecause { code: &'static str, message: String },
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A value that must be unique is already held (409; SCIM `uniqueness`): an e-mail, a
    /// user name, a group or role name, a vanity name, a domain.
    #[error("{message}")]
    Taken { code: &'static str, message: String },
    /// Existed, but no longer (410): an expired invitation.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// `If-Match` did not match (412).
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The request body stopped arriving (408).
    #[error("the request body stopped arriving: nothing came for {seconds} s; send the whole body without pausing")]
    BodyTimeout { seconds: u64 },
    /// Too many requests from one client to an unauthenticated endpoint (429).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The database cannot be reached (503).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500). The message is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Conflict { code, message: message.into() }
    }

    pub fn taken(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Taken { code, message: message.into() }
    }

    pub fn not_found(what: &'static str) -> AppError {
        AppError::NotFound { what }
    }

    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::Forbidden { code: "forbidden", message: message.into() }
    }

    pub fn denied(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Forbidden { code, message: message.into() }
    }

    /// The route or action needs `p`, which the caller does not hold.
    pub fn missing_permission(p: crate::domain::authz::Permission) -> AppError {
        AppError::denied("missing_permission", format!("this action needs the {p} permission"))
    }

    /// For `map_err`: a unique-constraint violation becomes this [`AppError::Taken`] (a
    /// concurrent or earlier insert holds the name); any other database error maps as usual.
    pub fn on_unique(code: &'static str, message: impl Into<String>) -> impl FnOnce(diesel::result::Error) -> AppError {
        let message = message.into();
        move |e| {
            if crate::store::is_unique_violation(&e) {
                AppError::Taken { code, message }
            } else {
                e.into()
            }
        }
    }

    /// Stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::Taken { code, .. }
            | AppError::Gone { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::NotFoundBecause { code, .. } => code,
            AppError::Unauthorized(_) => "unauthorized",
            AppError::DelegationEnded(_) => "delegation_ended",
            AppError::NotFound { .. } => "not_found",
            AppError::PreconditionFailed(_) => "precondition_failed",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::BodyTimeout { .. } => "body_timeout",
            AppError::Unavailable(_) => "unavailable",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Internal(_) => "internal",
        }
    }

    /// The message a client may see (internal details stay in the log).
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal error; the server log has the details".into(),
            other => other.to_string(),
        }
    }
}

/// Serialising our own values (views, stored lists) cannot fail on bad input; a failure
/// is a bug.
impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> AppError {
        AppError::Internal(format!("serialising a value: {e}"))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::Diesel(d) => d.into(),
            StoreError::Connect(m) | StoreError::Pool(m) => AppError::Unavailable(m),
            StoreError::WriterGone => AppError::Unavailable("the database writer has stopped".into()),
            StoreError::Migration(m) => AppError::Internal(m),
            StoreError::JobPanicked(m) => AppError::Internal(format!("a write job panicked: {m}")),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> AppError {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::NotFound => AppError::not_found("record"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::taken("already_exists", "a record with this value already exists")
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, _) => AppError::conflict(
                "limit_exceeded",
                "the change would break a limit (e.g. more licenses used than available)",
            ),
            Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                AppError::conflict("concurrent_update", "a concurrent change won; retry the request")
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => AppError::Unavailable(e.to_string()),
            _ => AppError::Internal(e.to_string()),
        }
    }
}

impl From<AccountRuleError> for AppError {
    fn from(e: AccountRuleError) -> AppError {
        let code = match e {
            AccountRuleError::NotAMaster(_) => "not_a_master",
            AccountRuleError::TooDeep => "too_many_tiers",
            AccountRuleError::InvalidName(_) => "invalid_name",
            AccountRuleError::InvalidEmail(_) => "invalid_email",
            AccountRuleError::InvalidVanity(_) => "invalid_vanity_name",
            AccountRuleError::InvalidDomain(_) => "invalid_domain",
        };
        AppError::bad_request(code, e.to_string())
    }
}

impl From<LicenseError> for AppError {
    fn from(e: LicenseError) -> AppError {
        match e {
            LicenseError::BadQuantity => AppError::bad_request("invalid_quantity", e.to_string()),
            LicenseError::NoBulkLicensing(_) => AppError::conflict("no_bulk_licensing", e.to_string()),
            LicenseError::NotASub(_) => AppError::not_found("sub account"),
            LicenseError::NotEnough { .. } => AppError::conflict("no_seat_left", e.to_string()),
            LicenseError::InUse { .. } => AppError::conflict("licenses_in_use", e.to_string()),
            LicenseError::BelowCommitted { .. } => AppError::conflict("licenses_in_use", e.to_string()),
            LicenseError::Delegated(_) => AppError::conflict("licenses_delegated", e.to_string()),
        }
    }
}

impl From<RoleChangeError> for AppError {
    fn from(e: RoleChangeError) -> AppError {
        match e {
            RoleChangeError::OnlyOwnerManagesAdmins => AppError::denied("owner_only", e.to_string()),
            RoleChangeError::OwnerIsFixed | RoleChangeError::OneOwner => {
                AppError::conflict("owner_role", e.to_string())
            }
        }
    }
}

impl From<GrantError> for AppError {
    fn from(e: GrantError) -> AppError {
        AppError::denied(e.code(), e.to_string())
    }
}

impl From<DisassociationError> for AppError {
    fn from(e: DisassociationError) -> AppError {
        match e {
            DisassociationError::NotASub(_) => AppError::not_found("sub account"),
            DisassociationError::SeatsInUse { .. } => AppError::conflict("licenses_in_use", e.to_string()),
            DisassociationError::HasSubs => AppError::conflict("has_sub_accounts", e.to_string()),
        }
    }
}
