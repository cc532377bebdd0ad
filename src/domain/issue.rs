//! Provisioning issues: problems with one user's incoming data that are reported, not raised.
//!
//! A taken extension or an incomplete phone number must never fail a SCIM push or a SAML login;
//! the user keeps what they had and the issue travels with the outcome (audit log, SCIM/SAML
//! response). Codes are stable snake_case strings so clients can match on them.

use std::fmt;

use serde::Serialize;

/// What went wrong, as a stable machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
        }
    }
}

impl fmt::Display for IssueCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reported problem for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisioningIssue {
    pub code: IssueCode,
    /// The identity attribute the problem came from, when there is one.
    pub attribute: Option<String>,
    /// A sentence for the administrator.
    pub message: String,
}

impl ProvisioningIssue {
    pub fn new(code: IssueCode, message: impl Into<String>) -> Self {
        ProvisioningIssue { code, attribute: None, message: message.into() }
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
