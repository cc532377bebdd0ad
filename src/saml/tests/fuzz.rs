//! Property tests: hostile input never panics, and no mutation of a signed
//! response is accepted with a different identity.

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::Utc;
use proptest::prelude::*;

use super::support::*;
use crate::saml::authn_request::decode_redirect;
use crate::saml::metadata::IdpMetadata;
use crate::saml::test_idp::IdpShape;
use crate::saml::validate::{validate_response, AcsInput, OutstandingRequest, VerifiedLogin};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// One genuine Okta response and what it says, made once per test run.
fn genuine() -> &'static (String, VerifiedLogin) {
    static GENUINE: OnceLock<(String, VerifiedLogin)> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let xml = signed(&spec(IdpShape::Okta));
        let login = validate(&xml, &super::support::config(IdpShape::Okta)).unwrap();
        (xml, login)
    })
}

fn validate_form_value(value: &str) -> Result<VerifiedLogin, crate::saml::refusal::SamlRefusal> {
    let input =
        AcsInput { saml_response: value, relay_state: None, outstanding_request: OutstandingRequest::Id(REQUEST_ID) };
    validate_response(&input, &super::support::config(IdpShape::Okta), Utc::now())
}

const SAML_WORDS: &[&str] = &[
    "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"r\" Version=\"2.0\">",
    "</samlp:Response>",
    "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"a\">",
    "</saml:Assertion>",
    "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
    "</ds:Signature>",
    "<ds:Reference URI=\"#a\">",
    "<ds:Reference URI=\"http://127.0.0.1:9/\">",
    "</ds:Reference>",
    "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
    "<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>",
    "<!---->",
    "<!DOCTYPE x>",
    "&amp;",
    "&x;",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "text",
    "<a>",
    "</a>",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        prop_assert!(validate_form_value(&encoded).is_err());
    }

    #[test]
    fn random_form_values_are_refused_without_panic(value in ".{0,2000}") {
        prop_assert!(validate_form_value(&value).is_err());
    }

    #[test]
    fn xml_shaped_garbage_is_refused_without_panic(
        words in proptest::collection::vec(proptest::sample::select(SAML_WORDS), 0..40)
    ) {
        let xml: String = words.concat();
        prop_assert!(validate(&xml, &super::support::config(IdpShape::Okta)).is_err());
    }

    #[test]
    fn mutated_signed_responses_never_change_the_identity(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..4)
    ) {
        let (xml, genuine_login) = genuine();
        let mut bytes = xml.as_bytes().to_vec();
        for (index, byte, kind) in edits {
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        if let Ok(login) = validate_form_value(&encoded) {
            // Only edits outside the signed content (or none at all) may pass.
            prop_assert_eq!(&login.name_id, &genuine_login.name_id);
            prop_assert_eq!(&login.attributes, &genuine_login.attributes);
            prop_assert_eq!(&login.assertion_id, &genuine_login.assertion_id);
        }
    }

    #[test]
    fn metadata_and_redirect_parsers_never_panic(value in ".{0,2000}") {
        let _ = IdpMetadata::parse(&value);
        let _ = decode_redirect(&format!("https://idp.example/sso?SAMLRequest={value}"));
        let _ = decode_redirect(&value);
    }
}
