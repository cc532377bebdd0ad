//! Genuine responses of every shape are accepted with the right data.

use super::support::*;
use crate::saml::test_idp::{IdpShape, SignedParts, SigningKey};
use crate::saml::validate::OutstandingRequest;
use crate::saml::xml::name_id_format;

#[test]
fn okta_response_is_accepted() {
    let spec = spec(IdpShape::Okta);
    let login = validate(&signed(&spec), &config(IdpShape::Okta)).unwrap();
    assert_eq!(login.name_id.value, "jane.doe@example.com");
    assert_eq!(login.name_id.format.as_deref(), Some(name_id_format::EMAIL));
    assert_eq!(login.first_attribute("firstName"), Some("Jane"));
    assert_eq!(login.first_attribute("lastName"), Some("Doe"));
    assert_eq!(login.first_attribute("email"), Some("jane.doe@example.com"));
    assert_eq!(login.attribute("groups").unwrap(), ["Everyone", "Engineering", "provisor-admins"]);
    assert!(login.signed.response && login.signed.assertion);
    assert_eq!(login.in_response_to.as_deref(), Some(REQUEST_ID));
    assert_eq!(login.issuer, IdpShape::Okta.entity_id());
    assert_eq!(login.session_index, spec.session_index);
    assert_eq!(login.relay_state.as_deref(), Some("/after-login"));
}

#[test]
fn entra_response_is_accepted() {
    let login = validate(&signed(&spec(IdpShape::EntraId)), &config(IdpShape::EntraId)).unwrap();
    let claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";
    assert_eq!(login.first_attribute(&format!("{claims}/emailaddress")), Some("jane.doe@example.com"));
    assert_eq!(login.first_attribute(&format!("{claims}/givenname")), Some("Jane"));
    assert_eq!(login.first_attribute(&format!("{claims}/surname")), Some("Doe"));
    assert_eq!(login.attribute("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups").unwrap().len(), 2);
    assert!(!login.signed.response && login.signed.assertion);
}

#[test]
fn adfs_response_is_accepted() {
    let login = validate(&signed(&spec(IdpShape::Adfs)), &config(IdpShape::Adfs)).unwrap();
    assert_eq!(login.name_id.format.as_deref(), Some(name_id_format::TRANSIENT));
    let claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";
    assert_eq!(login.first_attribute(&format!("{claims}/upn")), Some("jane.doe@corp.example.com"));
    assert_eq!(login.first_attribute(&format!("{claims}/name")), Some("CORP\\jane.doe"));
    assert_eq!(
        login.attribute("http://schemas.microsoft.com/ws/2008/06/identity/claims/role").unwrap(),
        ["Domain Users", "provisor-admins"]
    );
}

#[test]
fn generic_response_exposes_friendly_names() {
    let login = validate(&signed(&spec(IdpShape::Generic)), &config(IdpShape::Generic)).unwrap();
    assert_eq!(login.first_attribute("mail"), Some("jane.doe@example.com"));
    assert_eq!(login.first_attribute("urn:oid:2.5.4.42"), Some("Jane"));
    assert_eq!(login.friendly_names.get("givenName").map(String::as_str), Some("urn:oid:2.5.4.42"));
}

#[test]
fn every_signed_part_combination_is_accepted() {
    for signed_parts in [SignedParts::Assertion, SignedParts::Response, SignedParts::Both] {
        let mut spec = spec(IdpShape::Generic);
        spec.signed = signed_parts;
        let login =
            validate(&signed(&spec), &config(IdpShape::Generic)).unwrap_or_else(|e| panic!("{signed_parts:?}: {e}"));
        assert_eq!(login.signed.response, matches!(signed_parts, SignedParts::Response | SignedParts::Both));
    }
}

#[test]
fn rollover_key_b_is_accepted() {
    let mut spec = spec(IdpShape::Okta);
    spec.key = SigningKey::IdpB;
    validate(&signed(&spec), &config(IdpShape::Okta)).unwrap();
}

#[test]
fn idp_initiated_is_accepted_only_when_allowed() {
    let mut spec = spec(IdpShape::Okta);
    spec.in_response_to = None;
    let xml = signed(&spec);
    let mut cfg = config(IdpShape::Okta);
    assert_eq!(validate_with(&xml, &cfg, OutstandingRequest::None).unwrap_err().code(), "idp_initiated_refused");
    cfg.allow_idp_initiated = true;
    let login = validate_with(&xml, &cfg, OutstandingRequest::None).unwrap();
    assert_eq!(login.in_response_to, None);
    // An outstanding request does not stop an unsolicited response when allowed.
    validate_with(&xml, &cfg, OutstandingRequest::Id(REQUEST_ID)).unwrap();
}

#[test]
fn lookup_callback_sees_the_in_response_to() {
    let xml = signed(&spec(IdpShape::EntraId));
    let seen = std::cell::RefCell::new(Vec::new());
    let lookup = |id: &str| {
        seen.borrow_mut().push(id.to_string());
        id == REQUEST_ID
    };
    validate_with(&xml, &config(IdpShape::EntraId), OutstandingRequest::Lookup(&lookup)).unwrap();
    assert_eq!(*seen.borrow(), [REQUEST_ID]);
}

#[test]
fn replay_is_the_callers_job_same_response_validates_twice_with_same_id() {
    let xml = signed(&spec(IdpShape::Okta));
    let cfg = config(IdpShape::Okta);
    let first = validate(&xml, &cfg).unwrap();
    let second = validate(&xml, &cfg).unwrap();
    assert_eq!(first.assertion_id, second.assertion_id);
    assert_eq!(first.assertion_expires_at, second.assertion_expires_at);
    assert!(first.assertion_expires_at > chrono::Utc::now());
    // Bounded by the bearer NotOnOrAfter (+5 min) plus skew.
    assert!(first.assertion_expires_at < chrono::Utc::now() + chrono::Duration::minutes(9));
}

#[test]
fn sha1_is_accepted_when_allowed() {
    let mut spec = spec(IdpShape::Adfs);
    spec.algorithms = crate::saml::test_idp::Algorithms::SHA1;
    let mut cfg = config(IdpShape::Adfs);
    cfg.allow_sha1 = true;
    validate(&signed(&spec), &cfg).unwrap();
}

#[test]
fn sp_initiated_round_trip_through_metadata_and_the_redirect_binding() {
    use crate::saml::authn_request::{build_redirect, decode_redirect, AuthnRequestParams};
    use crate::saml::metadata::IdpMetadata;
    use crate::saml::test_idp::ResponseSpec;
    use crate::saml::validate::{validate_response, AcsInput};

    for shape in [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs] {
        let metadata_xml =
            std::fs::read_to_string(crate::testing::fixtures_dir().join(shape.metadata_file().unwrap())).unwrap();
        let metadata = IdpMetadata::parse(&metadata_xml).unwrap();
        let redirect = build_redirect(
            &AuthnRequestParams {
                sp_entity_id: SP_ENTITY_ID,
                acs_url: ACS_URL,
                idp_sso_url: metadata.sso_url().unwrap(),
                name_id_format: Some(name_id_format::EMAIL),
                force_authn: false,
                relay_state: Some("/home"),
            },
            chrono::Utc::now(),
        )
        .unwrap();

        // The IdP side.
        let request = decode_redirect(&redirect.redirect_url).unwrap();
        let response = idp().sign_response(&ResponseSpec::answering(shape, &request)).unwrap();

        // Back at our ACS.
        let cfg = metadata.validation_config(SP_ENTITY_ID, ACS_URL);
        let input = AcsInput {
            saml_response: &response,
            relay_state: request.relay_state.as_deref(),
            outstanding_request: OutstandingRequest::Id(&redirect.request_id),
        };
        let login = validate_response(&input, &cfg, chrono::Utc::now()).unwrap();
        assert_eq!(login.in_response_to.as_deref(), Some(redirect.request_id.as_str()));
        assert_eq!(login.relay_state.as_deref(), Some("/home"));
    }
}
