//! SAML 2.0 service provider around samael: no HTTP, no storage.
//!
//! The HTTP layer owns sessions and the database; this module owns the
//! protocol and its security decisions.
//!
//! # Flow
//!
//! 1. Configure an IdP from its metadata ([`IdpMetadata::parse`]) or by hand
//!    ([`SpValidationConfig::new`] with [`IdpCertificate`]s), and publish our
//!    metadata ([`SpMetadata::to_xml`]).
//! 2. Login: [`build_redirect`] gives the redirect URL and a request ID;
//!    store the ID as outstanding, bound to the browser session.
//! 3. ACS (HTTP-POST): [`validate_response`] with the posted `SAMLResponse`
//!    and `RelayState` and the outstanding request ([`OutstandingRequest`]).
//!    On success, atomically (a) refuse and otherwise record
//!    [`VerifiedLogin::assertion_id`] in the replay cache until
//!    [`VerifiedLogin::assertion_expires_at`], and (b) consume the request
//!    named by [`VerifiedLogin::in_response_to`]. On failure, log
//!    [`SamlRefusal::code`] and show a generic error.
//!
//! # Security decisions (details in [`validate`])
//!
//! * Before libxml2/libxmlsec1 see a document, it is pre-scanned with a
//!   parser that cannot fetch anything: DTDs, comments, foreign Reference
//!   URIs (libxmlsec1 would fetch `http://` and read `file://` URIs before
//!   checking the signature), XSLT/XPath and comment-preserving transforms,
//!   SHA-1, misplaced signatures and more than one assertion are refused.
//! * Verification uses only configured certificates and fails closed without
//!   one (samael skips verification when it has no key).
//! * Everything returned is read from samael's reduction of the document to
//!   its signed content; the SAML rules (audience required, destination
//!   required on a signed Response, IssueInstant bounded both ways,
//!   InResponseTo never ignored) use the caller's clock.
//! * Encrypted assertions are not supported and refused clearly.
//! * libxml2/libxmlsec1 error output, which quotes documents, is silenced.
//!
//! # Test IdP
//!
//! [`test_idp`] signs fresh responses in Okta, Entra ID and AD FS shapes with
//! the test-only keys in `idp-fixtures/` (or keys given to `provisor test-idp`);
//! `testing::saml_bench` (test support) measures verification throughput.

pub mod adapter;
pub mod authn_request;
pub mod certs;
pub mod metadata;
pub(crate) mod prescan;
pub(crate) mod quiet;
pub mod redirect;
pub mod refusal;
pub mod test_idp;
pub mod validate;
pub mod xml;

pub use authn_request::{build_redirect, AuthnRequestParams, RedirectRequest};
pub use certs::IdpCertificate;
pub use metadata::{IdpMetadata, SpMetadata};
pub use refusal::SamlRefusal;
pub use validate::{validate_response, AcsInput, NameId, OutstandingRequest, SpValidationConfig, VerifiedLogin};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
