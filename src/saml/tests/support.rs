//! Shared fixtures: one SP, the test IdP, helpers to validate XML text.

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::Utc;

use crate::saml::refusal::SamlRefusal;
use crate::saml::test_idp::{IdpShape, ResponseSpec, SigningKey, TestIdp};
use crate::saml::validate::{validate_response, AcsInput, OutstandingRequest, SpValidationConfig, VerifiedLogin};

pub const SP_ENTITY_ID: &str = "https://provisor.example.test/saml/metadata";
pub const ACS_URL: &str = "https://provisor.example.test/saml/acs";
pub const REQUEST_ID: &str = "_provisor0request0id0001";

pub fn idp() -> &'static TestIdp {
    static IDP: OnceLock<TestIdp> = OnceLock::new();
    IDP.get_or_init(|| crate::testing::fixture_idp().unwrap())
}

/// Trusts idp-a and idp-b (rollover) for `shape`'s entity ID.
pub fn config(shape: IdpShape) -> SpValidationConfig {
    SpValidationConfig::new(
        shape.entity_id(),
        vec![idp().certificate(SigningKey::IdpA).unwrap(), idp().certificate(SigningKey::IdpB).unwrap()],
        SP_ENTITY_ID,
        ACS_URL,
    )
}

/// A valid SP-initiated response spec answering [`REQUEST_ID`].
pub fn spec(shape: IdpShape) -> ResponseSpec {
    ResponseSpec::new(shape, SP_ENTITY_ID, ACS_URL).in_response_to(REQUEST_ID)
}

pub fn b64(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

pub fn validate_with(
    xml: &str,
    cfg: &SpValidationConfig,
    outstanding: OutstandingRequest<'_>,
) -> Result<VerifiedLogin, SamlRefusal> {
    let encoded = b64(xml);
    let input =
        AcsInput { saml_response: &encoded, relay_state: Some("/after-login"), outstanding_request: outstanding };
    validate_response(&input, cfg, Utc::now())
}

/// Validates `xml` expecting [`REQUEST_ID`].
pub fn validate(xml: &str, cfg: &SpValidationConfig) -> Result<VerifiedLogin, SamlRefusal> {
    validate_with(xml, cfg, OutstandingRequest::Id(REQUEST_ID))
}

/// The refusal code for `xml`, panicking (with the login) if it was accepted.
pub fn refusal(xml: &str, cfg: &SpValidationConfig) -> SamlRefusal {
    match validate(xml, cfg) {
        Ok(login) => panic!("accepted: {login:?}\n{xml}"),
        Err(refusal) => refusal,
    }
}

pub fn signed(spec: &ResponseSpec) -> String {
    idp().response_xml(spec).unwrap()
}
