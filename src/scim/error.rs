//! The SCIM error vocabulary (RFC 7644 §3.12).
//!
//! Every fallible operation in the SCIM core reports a [`ScimError`]. Each variant maps
//! one-to-one onto a `scimType` keyword so the HTTP layer can render the error body (and
//! choose the status, in `http::error`) without re-classifying anything; the payload is a
//! human-readable `detail` message.

/// URN of the SCIM error response message (RFC 7644 §3.12).
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM protocol error: one variant per `scimType` keyword of RFC 7644 §3.12.
///
/// The `String` payload is the human-readable `detail` sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    /// The filter syntax was invalid, or the attribute/operator combination is not supported.
    #[error("{0}")]
    InvalidFilter(String),
    /// The filter yields too many results for the server to process.
    #[error("{0}")]
    TooMany(String),
    /// One or more attribute values are already in use or reserved.
    #[error("{0}")]
    Uniqueness(String),
    /// The attempted modification is not compatible with the attribute's mutability
    /// (readOnly, immutable) or would unassign a required attribute.
    #[error("{0}")]
    Mutability(String),
    /// The request body structure was invalid or did not conform to the schema.
    #[error("{0}")]
    InvalidSyntax(String),
    /// The `path` attribute was invalid or malformed.
    #[error("{0}")]
    InvalidPath(String),
    /// The `path` did not yield an attribute or value that could be operated on.
    #[error("{0}")]
    NoTarget(String),
    /// A required value was missing, or the value is incompatible with the attribute type.
    #[error("{0}")]
    InvalidValue(String),
    /// The specified SCIM protocol version is not supported.
    #[error("{0}")]
    InvalidVers(String),
    /// The request cannot be completed because sensitive information would be exposed.
    #[error("{0}")]
    Sensitive(String),
}

impl ScimError {
    /// The RFC 7644 `scimType` keyword, e.g. `"invalidFilter"`.
    pub fn scim_type(&self) -> &'static str {
        match self {
            Self::InvalidFilter(_) => "invalidFilter",
            Self::TooMany(_) => "tooMany",
            Self::Uniqueness(_) => "uniqueness",
            Self::Mutability(_) => "mutability",
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::InvalidPath(_) => "invalidPath",
            Self::NoTarget(_) => "noTarget",
            Self::InvalidValue(_) => "invalidValue",
            Self::InvalidVers(_) => "invalidVers",
            Self::Sensitive(_) => "sensitive",
        }
    }

    /// The human-readable message (the `detail` of the error response).
    pub fn detail(&self) -> &str {
        match self {
            Self::InvalidFilter(m)
            | Self::TooMany(m)
            | Self::Uniqueness(m)
            | Self::Mutability(m)
            | Self::InvalidSyntax(m)
            | Self::InvalidPath(m)
            | Self::NoTarget(m)
            | Self::InvalidValue(m)
            | Self::InvalidVers(m)
            | Self::Sensitive(m) => m,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scim_types_match_the_rfc_keywords() {
        let cases = [
            (ScimError::InvalidFilter(String::new()), "invalidFilter"),
            (ScimError::TooMany(String::new()), "tooMany"),
            (ScimError::Uniqueness(String::new()), "uniqueness"),
            (ScimError::Mutability(String::new()), "mutability"),
            (ScimError::InvalidSyntax(String::new()), "invalidSyntax"),
            (ScimError::InvalidPath(String::new()), "invalidPath"),
            (ScimError::NoTarget(String::new()), "noTarget"),
            (ScimError::InvalidValue(String::new()), "invalidValue"),
            (ScimError::InvalidVers(String::new()), "invalidVers"),
            (ScimError::Sensitive(String::new()), "sensitive"),
        ];
        for (err, ty) in cases {
            assert_eq!(err.scim_type(), ty);
        }
        // Statuses and the error body: `http::error` tests.
        assert_eq!(ScimError::NoTarget("no member matched".into()).to_string(), "no member matched");
    }
}
