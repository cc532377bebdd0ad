//! Provisioning issues: problems with one user's incoming data that are reported, not raised.
//!
//! A taken extension or an incomplete phone number must never fail a SCIM push or a SAML login;
//! the user keeps what they had and the issue travels with the outcome (audit log, SCIM/SAML
//! response). Codes are stable snake_case strings so clients can match on them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueCode {
    /// Some, but not all, conditions of a sub-account placement rule held.
    PlacementPartialMatch,
    /// An attribute value could not be read as the target's type (user type, add-on, role…).
    InvalidValue,
    /// A phone number was not a complete international number.
    InvalidPhoneNumber,
    /// A phone number is not in the account's number pool.
    NumberNotInPool,
    /// A phone number belongs to someone else.
    NumberTaken,
    /// An extension is malformed or outside the site's range.
    InvalidExtension,
    /// A requested extension belongs to someone else in the site.
    ExtensionTaken,
    /// The site has no free extension left.
    ExtensionRangeExhausted,
    /// A phone add-on was requested for someone who is not a phone user.
    AddonRequiresPhoneUser,
    /// A placement rule names a sub account that does not exist.
    PlacementTargetNotFound,
    /// A custom role named by a rule or the IdP does not exist.
    RoleNotFound,
    /// No seat of a product is left for this user.
    NoSeatLeft,
    /// Phone fields were sent to an account without phone.
    PhoneNotEnabled,
    /// A group named by a rule or the IdP does not exist.
    GroupNotFound,
    /// Mapping rules would change the owner (role, status, placement) or place an Admin:
    /// they never do; the user keeps what they have.
    PrivilegedUserKept,
}

impl IssueCode {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            IssueCode::PlacementPartialMatch => "placement_partial_match",
            IssueCode::InvalidValue => "invalid_value",
            IssueCode::InvalidPhoneNumber => "invalid_phone_number",
            IssueCode::NumberNotInPool => "number_not_in_pool",
            IssueCode::NumberTaken => "number_taken",
            IssueCode::InvalidExtension => "invalid_extension",
            IssueCode::ExtensionTaken => "extension_taken",
            IssueCode::ExtensionRangeExhausted => "extension_range_exhausted",
            IssueCode::AddonRequiresPhoneUser => "addon_requires_phone_user",
            IssueCode::PlacementTargetNotFound => "placement_target_not_found",
            IssueCode::RoleNotFound => "role_not_found",
            IssueCode::NoSeatLeft => "no_seat_left",
            IssueCode::PhoneNotEnabled => "phone_not_enabled",
            IssueCode::GroupNotFound => "group_not_found",
            IssueCode::PrivilegedUserKept => "privileged_user_kept",
        }
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reported problem for one user: stored on the user, readable through the API, the
/// SCIM resource and the SAML outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProvisioningIssue {
    #[schema(value_type = String)]
    pub code: IssueCode,
    /// The identity attribute the problem came from, when there is one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attribute: Option<String>,
    /// A sentence for the administrator.
    pub message: String,
}

impl ProvisioningIssue {
    pub fn new(code: IssueCode, message: impl Into<String>) -> Self {
        ProvisioningIssue { code, attribute: None, message: message.into() }
    }

    /// An issue about one attribute.
    pub fn on(code: IssueCode, attribute: &str, message: impl Into<String>) -> Self {
        ProvisioningIssue { code, attribute: Some(attribute.to_owned()), message: message.into() }
    }

    pub fn with_attribute(mut self, attribute: impl Into<String>) -> Self {
        self.attribute = Some(attribute.into());
        self
    }
}

impl fmt::Display for ProvisioningIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.attribute {
            Some(attribute) => write!(f, "{} ({attribute}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}
