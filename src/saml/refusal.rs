//! Why a SAML response was refused.
//!
//! Every refusal has a stable machine code ([`SamlRefusal::code`]) for logs,
//! metrics and tests, and a human message (`Display`). Messages may quote
//! values taken from the response (an issuer, a URI); those are passed through
//! [`sanitize`] first so they are short, printable and single-line.
//!
//! The type owns plain data only, so it is `Send + Sync + 'static`: samael's
//! `Box<dyn Error>` values are mapped to a variant the moment they appear and
//! never stored.

use chrono::{DateTime, Utc};

/// A SAML response was not accepted. See [`SamlRefusal::code`] for the stable codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SamlRefusal {
    /// The configuration holds no IdP signing certificate. samael would then
    /// skip signature verification entirely, so we refuse everything instead.
    #[error("no IdP signing certificate is configured; every response is refused")]
    NoSigningCertificate,
    /// The form value, its decoded XML or the RelayState is over the size limit.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// Not base64, or the decoded bytes are not UTF-8.
    #[error("SAMLResponse is not valid base64-encoded UTF-8: {0}")]
    BadEncoding(String),
    /// A `<!DOCTYPE`/`<!ENTITY` declaration: refused before any XML parser sees it.
    #[error("XML document type declarations and entities are refused")]
    XmlDtdRefused,
    /// Not well-formed XML, not a SAML Response, or a structure we do not accept.
    #[error("malformed SAML response: {0}")]
    Malformed(String),
    /// An XML comment inside the document. Comments are invisible to the
    /// signature (exclusive C14N without comments) yet split text nodes, the
    /// classic `admin@x.com<!---->.evil.com` NameID truncation.
    #[error("XML comments inside the SAML response are refused")]
    CommentInSignedText,
    /// No `<ds:Signature>` at all.
    #[error("the SAML response carries no XML signature")]
    SignatureMissing,
    /// The signature did not verify with any configured certificate, or what
    /// it covers does not match what the document claims.
    #[error("signature verification failed: {0}")]
    SignatureInvalid(String),
    /// A `<ds:Signature>` somewhere other than directly inside the Response or
    /// the Assertion it signs, or more than one signature on one element.
    #[error("signature is not placed on the element it signs: {0}")]
    SignatureMisplaced(String),
    /// SignatureMethod is not on the allow list (SHA-1 unless allowed).
    #[error("signature algorithm refused: {0}")]
    SignatureAlgorithmRefused(String),
    /// DigestMethod is not on the allow list (SHA-1 unless allowed).
    #[error("digest algorithm refused: {0}")]
    DigestAlgorithmRefused(String),
    /// A Reference URI other than `""` (whole document) or `#<ID of the signed element>`,
    /// or a `RetrievalMethod`. Such URIs make libxmlsec1 fetch or read them.
    #[error("signature reference URI refused: {0}")]
    ReferenceUriRefused(String),
    /// A Transform or CanonicalizationMethod other than enveloped-signature and
    /// (exclusive) C14N 1.0 without comments; XPath and XSLT included.
    #[error("signature transform refused: {0}")]
    TransformRefused(String),
    /// More than one Assertion anywhere in the document.
    #[error("the response carries {0} assertions; exactly one is accepted")]
    MultipleAssertions(usize),
    /// No Assertion in a Success response.
    #[error("the response carries no assertion")]
    AssertionMissing,
    /// EncryptedAssertion, EncryptedID or EncryptedAttribute: decryption is not supported.
    #[error("encrypted SAML content is not supported ({0}); configure the IdP to sign, not encrypt")]
    EncryptedContentUnsupported(&'static str),
    /// Response or Assertion Issuer is not the configured IdP entity ID.
    #[error("{}", issuer_mismatch_message(element, found.as_deref()))]
    IssuerMismatch {
        /// `Response` or `Assertion`.
        element: &'static str,
        /// The issuer found, sanitized; `None` when it was missing.
        found: Option<String>,
    },
    /// The assertion has no AudienceRestriction.
    #[error("the assertion has no AudienceRestriction")]
    AudienceMissing,
    /// An AudienceRestriction does not list our SP entity ID.
    #[error("the assertion is restricted to other audiences: {0:?}")]
    AudienceMismatch(Vec<String>),
    /// A signed Response without a Destination.
    #[error("the signed Response has no Destination")]
    DestinationMissing,
    /// Destination is not our ACS URL.
    #[error("the Response Destination is {0:?}, not our ACS URL")]
    DestinationMismatch(String),
    /// The bearer SubjectConfirmationData Recipient is missing or not our ACS URL.
    #[error("the bearer SubjectConfirmation Recipient is {0:?}, not our ACS URL")]
    RecipientMismatch(Option<String>),
    /// No bearer SubjectConfirmation with SubjectConfirmationData.
    #[error("the assertion has no bearer SubjectConfirmation with SubjectConfirmationData")]
    SubjectConfirmationMissing,
    /// No Subject/NameID.
    #[error("the assertion has no Subject NameID")]
    SubjectMissing,
    /// No AuthnStatement: not an authentication assertion.
    #[error("the assertion has no AuthnStatement")]
    AuthnStatementMissing,
    /// A NotOnOrAfter (Conditions, SubjectConfirmationData or
    /// SessionNotOnOrAfter) has passed, clock skew included.
    #[error("{what} expired at {at}")]
    Expired {
        /// Which time bound.
        what: &'static str,
        /// The bound as found in the assertion.
        at: DateTime<Utc>,
    },
    /// A NotBefore is still in the future, clock skew included.
    #[error("{what} is not valid before {at}")]
    NotYetValid {
        /// Which time bound.
        what: &'static str,
        /// The bound as found in the assertion.
        at: DateTime<Utc>,
    },
    /// IssueInstant (Response or Assertion) is later than now plus clock skew.
    #[error("{what} IssueInstant {at} is in the future")]
    IssueInstantInFuture {
        /// `Response` or `Assertion`.
        what: &'static str,
        /// The IssueInstant.
        at: DateTime<Utc>,
    },
    /// IssueInstant is older than clock skew plus the maximum response age.
    #[error("{what} IssueInstant {at} is too old")]
    IssueInstantTooOld {
        /// `Response` or `Assertion`.
        what: &'static str,
        /// The IssueInstant.
        at: DateTime<Utc>,
    },
    /// InResponseTo names a request we did not issue, already consumed, or
    /// that belongs to another browser session; also when IdP-initiated login
    /// is allowed.
    #[error("InResponseTo {0:?} does not name an outstanding AuthnRequest of ours")]
    InResponseToUnknown(String),
    /// Response and SubjectConfirmationData disagree on InResponseTo.
    #[error("InResponseTo differs between the Response and its assertion")]
    InResponseToMismatch,
    /// No InResponseTo (unsolicited response) and IdP-initiated login is off.
    #[error("unsolicited (IdP-initiated) responses are not allowed")]
    IdpInitiatedRefused,
    /// The top-level StatusCode is not Success.
    #[error("the IdP reported status {0:?}")]
    StatusNotSuccess(String),
}

impl SamlRefusal {
    /// Stable, machine-readable reason code (snake_case). Safe to log, to count
    /// in metrics and to show an administrator; never changes for a variant.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSigningCertificate => "no_signing_certificate",
            Self::TooLarge { .. } => "too_large",
            Self::BadEncoding(_) => "bad_encoding",
            Self::XmlDtdRefused => "xml_dtd_refused",
            Self::Malformed(_) => "malformed",
            Self::CommentInSignedText => "comment_in_signed_text",
            Self::SignatureMissing => "signature_missing",
            Self::SignatureInvalid(_) => "signature_invalid",
            Self::SignatureMisplaced(_) => "signature_misplaced",
            Self::SignatureAlgorithmRefused(_) => "signature_algorithm_refused",
            Self::DigestAlgorithmRefused(_) => "digest_algorithm_refused",
            Self::ReferenceUriRefused(_) => "reference_uri_refused",
            Self::TransformRefused(_) => "transform_refused",
            Self::MultipleAssertions(_) => "multiple_assertions",
            Self::AssertionMissing => "assertion_missing",
            Self::EncryptedContentUnsupported(_) => "encrypted_content_unsupported",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::AudienceMissing => "audience_missing",
            Self::AudienceMismatch(_) => "audience_mismatch",
            Self::DestinationMissing => "destination_missing",
            Self::DestinationMismatch(_) => "destination_mismatch",
            Self::RecipientMismatch(_) => "recipient_mismatch",
            Self::SubjectConfirmationMissing => "subject_confirmation_missing",
            Self::SubjectMissing => "subject_missing",
            Self::AuthnStatementMissing => "authn_statement_missing",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssueInstantInFuture { .. } => "issue_instant_in_future",
            Self::IssueInstantTooOld { .. } => "issue_instant_too_old",
            Self::InResponseToUnknown(_) => "in_response_to_unknown",
            Self::InResponseToMismatch => "in_response_to_mismatch",
            Self::IdpInitiatedRefused => "idp_initiated_refused",
            Self::StatusNotSuccess(_) => "status_not_success",
        }
    }

    /// True when the refusal is caused by our own configuration rather than
    /// by the response (the caller should alert an administrator).
    pub fn is_configuration_error(&self) -> bool {
        matches!(self, Self::NoSigningCertificate)
    }
}

/// Every code [`SamlRefusal::code`] can return, for documentation and dashboards.
pub const REFUSAL_CODES: &[&str] = &[
    "no_signing_certificate",
    "too_large",
    "bad_encoding",
    "xml_dtd_refused",
    "malformed",
    "comment_in_signed_text",
    "signature_missing",
    "signature_invalid",
    "signature_misplaced",
    "signature_algorithm_refused",
    "digest_algorithm_refused",
    "reference_uri_refused",
    "transform_refused",
    "multiple_assertions",
    "assertion_missing",
    "encrypted_content_unsupported",
    "issuer_mismatch",
    "audience_missing",
    "audience_mismatch",
    "destination_missing",
    "destination_mismatch",
    "recipient_mismatch",
    "subject_confirmation_missing",
    "subject_missing",
    "authn_statement_missing",
    "expired",
    "not_yet_valid",
    "issue_instant_in_future",
    "issue_instant_too_old",
    "in_response_to_unknown",
    "in_response_to_mismatch",
    "idp_initiated_refused",
    "status_not_success",
];

/// Makes a value taken from a hostile document fit for a log line: at most
/// 120 characters, control characters replaced by `?`, an ellipsis when cut.
pub fn sanitize(value: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = value.chars().take(MAX).map(|c| if c.is_control() { '?' } else { c }).collect();
    if value.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

fn issuer_mismatch_message(element: &str, found: Option<&str>) -> String {
    match found {
        Some(issuer) => format!(
            "the {element}'s Issuer is \"{issuer}\", which is not the IdP entity ID this account trusts (check the SSO configuration's idp_entity_id)"
        ),
        None => format!("the {element} has no Issuer"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn refusal_is_send_sync_and_static() {
        assert_send_sync_static::<SamlRefusal>();
    }

    #[test]
    fn codes_are_unique_snake_case_and_listed() {
        let mut seen = std::collections::BTreeSet::new();
        for code in REFUSAL_CODES {
            assert!(seen.insert(*code), "duplicate code {code}");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        let now = Utc::now();
        let samples = [
            SamlRefusal::NoSigningCertificate,
            SamlRefusal::TooLarge { what: "x", limit: 1 },
            SamlRefusal::Expired { what: "x", at: now },
            SamlRefusal::IssueInstantTooOld { what: "x", at: now },
            SamlRefusal::StatusNotSuccess("x".into()),
        ];
        for sample in samples {
            assert!(REFUSAL_CODES.contains(&sample.code()));
        }
    }

    #[test]
    fn sanitize_cuts_and_strips_control_characters() {
        assert_eq!(sanitize("a\nb\u{0}c"), "a?b?c");
        let long = "x".repeat(500);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), 121);
        assert!(cut.ends_with('…'));
    }
}
