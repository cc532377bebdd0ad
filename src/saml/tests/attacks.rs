//! The attack suite: every case must be refused with its specific code.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use base64::Engine as _;
use chrono::{Duration, Utc};

use super::dom::{parse, XElement};
use super::support::*;
use crate::saml::test_idp::{Algorithms, IdpShape, SignedParts, SigningKey};
use crate::saml::validate::{validate_response, verify_and_reduce, AcsInput, OutstandingRequest};

const EVIL_NAME_ID: &str = "admin@example.com";

fn code_of(xml: &str, shape: IdpShape) -> &'static str {
    refusal(xml, &config(shape)).code()
}

// ---------------------------------------------------------------- signatures

#[test]
fn unsigned_response_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.signed = SignedParts::None;
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "signature_missing");
}

#[test]
fn response_signed_by_another_key_is_refused_even_with_its_certificate_embedded() {
    for signed_parts in [SignedParts::Assertion, SignedParts::Response, SignedParts::Both] {
        let mut spec = spec(IdpShape::Okta);
        spec.signed = signed_parts;
        spec.key = SigningKey::Attacker;
        let xml = signed(&spec);
        // The test IdP embeds the signer's certificate in KeyInfo.
        let attacker_cert = idp().certificate(SigningKey::Attacker).unwrap();
        assert!(xml.contains(&attacker_cert.to_base64()));
        assert_eq!(code_of(&xml, IdpShape::Okta), "signature_invalid", "{signed_parts:?}");
    }
}

#[test]
fn configuration_without_certificate_refuses_everything() {
    let xml = signed(&spec(IdpShape::Okta));
    let mut cfg = config(IdpShape::Okta);
    cfg.idp_certificates.clear();
    let refusal = refusal(&xml, &cfg);
    assert_eq!(refusal.code(), "no_signing_certificate");
    assert!(refusal.is_configuration_error());
}

#[test]
fn attribute_tampered_after_signing_is_refused() {
    for shape in [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs] {
        let xml = signed(&spec(shape));
        let tampered = match shape {
            IdpShape::Okta => xml.replace(">Engineering<", ">Domain Admins<"),
            IdpShape::EntraId => xml.replace(">Jane<", ">Mallory<"),
            _ => xml.replace(">Domain Users<", ">Enterprise Admins<"),
        };
        assert_ne!(tampered, xml);
        assert_eq!(code_of(&tampered, shape), "signature_invalid", "{shape:?}");
    }
}

#[test]
fn name_id_tampered_after_signing_is_refused() {
    let xml = signed(&spec(IdpShape::EntraId));
    let tampered = xml.replace(">jane.doe@example.com</NameID>", ">admin@example.com</NameID>");
    assert_ne!(tampered, xml);
    assert_eq!(code_of(&tampered, IdpShape::EntraId), "signature_invalid");
}

#[test]
fn sha1_signature_and_digest_are_refused_by_default() {
    let mut spec = spec(IdpShape::Adfs);
    spec.algorithms = Algorithms::SHA1;
    assert_eq!(code_of(&signed(&spec), IdpShape::Adfs), "signature_algorithm_refused");

    spec.algorithms = Algorithms { sha1_signature: false, sha1_digest: true };
    assert_eq!(code_of(&signed(&spec), IdpShape::Adfs), "digest_algorithm_refused");

    spec.algorithms = Algorithms { sha1_signature: true, sha1_digest: false };
    assert_eq!(code_of(&signed(&spec), IdpShape::Adfs), "signature_algorithm_refused");
}

#[test]
fn signature_moved_away_from_the_element_it_signs_is_refused() {
    // The Assertion's own signature, placed on the Response instead.
    let xml = signed(&spec(IdpShape::Adfs));
    let mut root = parse(&xml);
    let assertion_index = root.child_index("Assertion");
    let signature = root.at_mut(&[assertion_index]).take_child("Signature");
    root.insert(1, signature);
    assert_eq!(code_of(&root.to_xml(), IdpShape::Adfs), "signature_misplaced");
}

// ------------------------------------------------------ signature wrapping

/// What an attacker changes in the copy they want us to read.
fn make_evil(element: &mut XElement) {
    element.find_mut("NameID").set_text(EVIL_NAME_ID);
}

/// A genuinely signed response with a signed Response (for XSW1/2) or a
/// signed Assertion only (XSW3–8).
fn xsw_base(response_signed: bool) -> String {
    let mut spec = spec(IdpShape::Generic);
    spec.signed = if response_signed { SignedParts::Response } else { SignedParts::Assertion };
    signed(&spec)
}

/// The eight classic wrapping attacks (Somorovsky et al. 2012, as SAML
/// Raider implements them), built by DOM manipulation of a signed response.
fn xsw(variant: u8) -> String {
    match variant {
        // XSW1: evil Response at the root, the signed original inside its Signature.
        1 => {
            let mut response = parse(&xsw_base(true));
            let mut original = response.clone();
            original.take_child("Signature");
            make_evil(&mut response);
            response.set_attr("ID", "_evil_response_ID");
            response.find_mut("Signature").push(original);
            response.to_xml()
        }
        // XSW2: same, with the original placed before the Signature (detached).
        2 => {
            let mut response = parse(&xsw_base(true));
            let mut original = response.clone();
            original.take_child("Signature");
            make_evil(&mut response);
            response.set_attr("ID", "_evil_response_ID");
            let index = response.child_index("Signature");
            response.insert(index, original);
            response.to_xml()
        }
        // XSW3: evil Assertion (new ID, no signature) before the original.
        3 => {
            let mut response = parse(&xsw_base(false));
            let index = response.child_index("Assertion");
            let mut evil = response.at(&[index]).clone();
            make_evil(&mut evil);
            evil.set_attr("ID", "_evil_assertion_ID");
            evil.take_child("Signature");
            response.insert(index, evil);
            response.to_xml()
        }
        // XSW4: evil Assertion wrapping the original.
        4 => {
            let mut response = parse(&xsw_base(false));
            let original = response.take_child("Assertion");
            let mut evil = original.clone();
            make_evil(&mut evil);
            evil.set_attr("ID", "_evil_assertion_ID");
            evil.take_child("Signature");
            evil.push(original);
            response.push(evil);
            response.to_xml()
        }
        // XSW5: evil Assertion keeps the signature; unsigned copy of the
        // original appended at the end.
        5 => {
            let mut response = parse(&xsw_base(false));
            let index = response.child_index("Assertion");
            let mut copy = response.at(&[index]).clone();
            copy.take_child("Signature");
            let evil = response.at_mut(&[index]);
            make_evil(evil);
            evil.set_attr("ID", "_evil_assertion_ID");
            response.push(copy);
            response.to_xml()
        }
        // XSW6: like XSW5, the copy placed inside the (evil) Assertion's Signature.
        6 => {
            let mut response = parse(&xsw_base(false));
            let index = response.child_index("Assertion");
            let mut copy = response.at(&[index]).clone();
            copy.take_child("Signature");
            let evil = response.at_mut(&[index]);
            make_evil(evil);
            evil.set_attr("ID", "_evil_assertion_ID");
            evil.find_mut("Signature").push(copy);
            response.to_xml()
        }
        // XSW7: evil copy (same ID, no signature) inside an Extensions element.
        7 => {
            let mut response = parse(&xsw_base(false));
            let index = response.child_index("Assertion");
            let mut evil = response.at(&[index]).clone();
            make_evil(&mut evil);
            evil.take_child("Signature");
            let mut extensions = XElement::new("Extensions");
            extensions.push(evil);
            response.insert(index, extensions);
            response.to_xml()
        }
        // XSW8: evil Assertion keeps the signature; the original, unsigned,
        // inside an Object element in that signature.
        8 => {
            let mut response = parse(&xsw_base(false));
            let index = response.child_index("Assertion");
            let mut copy = response.at(&[index]).clone();
            copy.take_child("Signature");
            let evil = response.at_mut(&[index]);
            make_evil(evil);
            let mut object = XElement::new("Object");
            object.push(copy);
            evil.find_mut("Signature").push(object);
            response.to_xml()
        }
        _ => unreachable!(),
    }
}

#[test]
fn xsw1_to_xsw8_are_refused() {
    for variant in 1..=8 {
        let xml = xsw(variant);
        assert!(xml.contains(EVIL_NAME_ID), "XSW{variant} built without the evil NameID");
        assert_eq!(code_of(&xml, IdpShape::Generic), "multiple_assertions", "XSW{variant}");
    }
}

#[test]
fn xsw_never_yields_the_evil_identity_even_past_the_prescan() {
    // Defence in depth: samael's reduction alone (no pre-scan) either
    // refuses the wrapped document or returns only the genuinely signed
    // content, never the attacker's copy.
    let certs = config(IdpShape::Generic).idp_certificates;
    for variant in 1..=8 {
        match verify_and_reduce(&xsw(variant), &certs, false) {
            Err(refusal) => assert_eq!(refusal.code(), "signature_invalid", "XSW{variant}"),
            Ok(reduced) => {
                assert!(!reduced.contains(EVIL_NAME_ID), "XSW{variant}: {reduced}");
                assert!(reduced.contains("jane.doe@example.com"), "XSW{variant}");
            }
        }
    }
}

#[test]
fn single_assertion_moved_out_of_place_is_refused() {
    // The genuine signed assertion, alone, hidden in an Extensions element.
    let mut response = parse(&xsw_base(false));
    let assertion = response.take_child("Assertion");
    let mut extensions = XElement::new("samlp:Extensions");
    extensions.push(assertion);
    response.insert(1, extensions);
    assert_eq!(code_of(&response.to_xml(), IdpShape::Generic), "malformed");
}

#[test]
fn two_genuinely_signed_assertions_are_refused() {
    let first = signed(&spec(IdpShape::Generic));
    let mut second_spec = spec(IdpShape::Generic);
    second_spec.name_id = EVIL_NAME_ID.to_string();
    let second = parse(&signed(&second_spec)).take_child("Assertion");
    let mut response = parse(&first);
    response.push(second);
    assert_eq!(code_of(&response.to_xml(), IdpShape::Generic), "multiple_assertions");
}

#[test]
fn encrypted_assertion_is_refused_clearly() {
    let mut response = parse(&signed(&spec(IdpShape::Generic)));
    response.take_child("Assertion");
    let mut encrypted = XElement::new("saml:EncryptedAssertion");
    encrypted.set_attr("xmlns:saml", "urn:oasis:names:tc:SAML:2.0:assertion");
    let mut data = XElement::new("xenc:EncryptedData");
    data.set_attr("xmlns:xenc", "http://www.w3.org/2001/04/xmlenc#");
    encrypted.push(data);
    response.push(encrypted);
    assert_eq!(code_of(&response.to_xml(), IdpShape::Generic), "encrypted_content_unsupported");
}

// ----------------------------------------------------------------- comments

#[test]
fn comment_in_name_id_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.name_id = "admin@x.com.evil.com".to_string();
    let xml = signed(&spec);
    let injected = xml.replace(">admin@x.com.evil.com<", ">admin@x.com<!---->.evil.com<");
    assert_ne!(injected, xml);
    assert_eq!(code_of(&injected, IdpShape::Okta), "comment_in_signed_text");
    // samael alone refuses it too (its reduction no longer matches the
    // document); we keep that behaviour and refuse earlier.
    let certs = config(IdpShape::Okta).idp_certificates;
    assert_eq!(verify_and_reduce(&injected, &certs, false).unwrap_err().code(), "signature_invalid");
}

#[test]
fn comment_anywhere_is_refused() {
    let xml = signed(&spec(IdpShape::EntraId));
    let injected = xml.replacen("<Subject>", "<Subject><!-- hello -->", 1);
    assert_eq!(code_of(&injected, IdpShape::EntraId), "comment_in_signed_text");
    let outside = format!("<!-- before -->{xml}");
    assert_eq!(code_of(&outside, IdpShape::EntraId), "malformed");
}

// ------------------------------------------------------ DTD, XXE, transforms

#[test]
fn dtd_and_xxe_are_refused_before_parsing() {
    let xml = signed(&spec(IdpShape::EntraId));
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        xml.replacen(">Jane<", ">&xxe;<", 1)
    );
    assert_eq!(code_of(&xxe, IdpShape::EntraId), "xml_dtd_refused");

    let laughs =
        format!("<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{xml}");
    assert_eq!(code_of(&laughs, IdpShape::EntraId), "xml_dtd_refused");

    let lower = format!("<!doctype samlp:Response>{xml}");
    assert_eq!(code_of(&lower, IdpShape::EntraId), "xml_dtd_refused");

    // An entity reference without any DTD.
    let undeclared = xml.replacen(">Jane<", ">&xxe;<", 1);
    assert_eq!(code_of(&undeclared, IdpShape::EntraId), "xml_dtd_refused");
}

#[test]
fn dangerous_transforms_are_refused() {
    let xml = signed(&spec(IdpShape::Adfs));
    let enveloped = "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
    assert!(xml.contains(enveloped));
    let cases = [
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"><xsl:stylesheet xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" version=\"1.0\"><xsl:template match=\"/\"><xsl:copy-of select=\"document('http://127.0.0.1:9/x')\"/></xsl:template></xsl:stylesheet></ds:Transform>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>",
        "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#WithComments\"/>",
        "<ds:Transform Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"/>",
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#base64\"/>",
    ];
    for transform in cases {
        let attacked = xml.replacen(enveloped, &format!("{enveloped}{transform}"), 1);
        assert_eq!(code_of(&attacked, IdpShape::Adfs), "transform_refused", "{transform}");
    }
    let with_comments = xml.replacen(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#WithComments\"/>",
        1,
    );
    assert_ne!(with_comments, xml);
    assert_eq!(code_of(&with_comments, IdpShape::Adfs), "transform_refused");
}

/// A loopback listener that counts connections.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(window: StdDuration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + window;
            while Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_read_timeout(Some(StdDuration::from_millis(200)));
                        let mut buf = [0u8; 512];
                        let _ = stream.read(&mut buf);
                        // Dropping the stream closes it: the client sees EOF.
                    }
                    Err(_) => std::thread::sleep(StdDuration::from_millis(5)),
                }
            }
        });
        Self { port, connections, handle: Some(handle) }
    }

    /// Waits for the listening window to end and returns the connection count.
    fn finish(mut self) -> usize {
        if let Some(handle) = self.handle.take() {
            handle.join().unwrap();
        }
        self.connections.load(Ordering::SeqCst)
    }
}

fn with_reference_uri(xml: &str, uri: &str) -> String {
    let mut root = parse(xml);
    let assertion_index = root.child_index("Assertion");
    root.at_mut(&[assertion_index]).find_mut("Reference").set_attr("URI", uri);
    root.to_xml()
}

#[test]
fn reference_uri_outside_the_document_is_refused_and_never_fetched() {
    let listener = Listener::start(StdDuration::from_millis(1500));
    let xml = signed(&spec(IdpShape::Adfs));
    let attacked = with_reference_uri(&xml, &format!("http://127.0.0.1:{}/steal", listener.port));
    assert_eq!(code_of(&attacked, IdpShape::Adfs), "reference_uri_refused");
    assert_eq!(listener.finish(), 0, "the validator connected to the Reference URI");

    for uri in ["file:///etc/passwd", "/etc/passwd", "#xpointer(/)", "#xpointer(id('x'))", "urn:evil"] {
        let attacked = with_reference_uri(&xml, uri);
        assert_eq!(code_of(&attacked, IdpShape::Adfs), "reference_uri_refused", "{uri}");
    }
}

#[test]
fn without_the_prescan_libxmlsec_would_fetch_the_reference_uri() {
    // Documents the gap the pre-scan closes (and proves the listener above
    // can see a connection): samael hands the URI to libxmlsec1, which
    // fetches it before checking anything. Loopback only.
    let listener = Listener::start(StdDuration::from_millis(1500));
    let xml = signed(&spec(IdpShape::Adfs));
    let attacked = with_reference_uri(&xml, &format!("http://127.0.0.1:{}/steal", listener.port));
    let certs = config(IdpShape::Adfs).idp_certificates;
    assert!(verify_and_reduce(&attacked, &certs, false).is_err());
    assert!(listener.finish() >= 1, "libxmlsec1 did not fetch the URI");
}

#[test]
fn retrieval_method_is_refused() {
    let xml = signed(&spec(IdpShape::Adfs));
    let attacked = xml.replacen("<ds:KeyInfo>", "<ds:KeyInfo><ds:RetrievalMethod URI=\"http://127.0.0.1:9/key\"/>", 1);
    assert_ne!(attacked, xml);
    assert_eq!(code_of(&attacked, IdpShape::Adfs), "reference_uri_refused");
}

// ------------------------------------------------------------- SAML rules

#[test]
fn expired_assertion_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.issue_instant_offset = Duration::minutes(-20);
    spec.authn_instant_offset = Duration::minutes(-20);
    spec.not_before_offset = Some(Duration::minutes(-25));
    spec.subject_not_on_or_after_offset = Duration::minutes(-15);
    spec.not_on_or_after_offset = Some(Duration::minutes(-10));
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "expired");

    // Conditions alone expired (bearer window still open).
    let mut spec = super::support::spec(IdpShape::Okta);
    spec.not_on_or_after_offset = Some(Duration::minutes(-4));
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "expired");
}

#[test]
fn clock_skew_is_tolerated_but_bounded() {
    // 2 minutes past NotOnOrAfter: inside the 180 s skew.
    let mut spec = spec(IdpShape::Okta);
    spec.subject_not_on_or_after_offset = Duration::minutes(-2);
    validate(&signed(&spec), &config(IdpShape::Okta)).unwrap();
    let mut strict = config(IdpShape::Okta);
    strict.clock_skew = Duration::seconds(30);
    assert_eq!(refusal(&signed(&spec), &strict).code(), "expired");
}

#[test]
fn not_yet_valid_assertion_is_refused() {
    let mut spec = spec(IdpShape::EntraId);
    spec.not_before_offset = Some(Duration::minutes(10));
    assert_eq!(code_of(&signed(&spec), IdpShape::EntraId), "not_yet_valid");
}

#[test]
fn wrong_audience_is_refused() {
    let mut spec = spec(IdpShape::EntraId);
    spec.audience = Some("https://other-sp.example/saml".to_string());
    assert_eq!(code_of(&signed(&spec), IdpShape::EntraId), "audience_mismatch");
}

#[test]
fn missing_audience_restriction_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.audience = None;
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "audience_missing");
    // No Conditions element at all.
    spec.not_before_offset = None;
    spec.not_on_or_after_offset = None;
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "audience_missing");
}

#[test]
fn wrong_destination_is_refused() {
    for signed_parts in [SignedParts::Both, SignedParts::Assertion] {
        let mut spec = spec(IdpShape::Okta);
        spec.signed = signed_parts;
        spec.destination = Some("https://evil.example/acs".to_string());
        assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "destination_mismatch", "{signed_parts:?}");
    }
}

#[test]
fn missing_destination_on_a_signed_response_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.destination = None;
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "destination_missing");
    // An unsigned Response may omit it (SAML bindings 3.5.5.2).
    spec.signed = SignedParts::Assertion;
    validate(&signed(&spec), &config(IdpShape::Okta)).unwrap();
}

#[test]
fn wrong_or_missing_recipient_is_refused() {
    let mut spec = spec(IdpShape::Adfs);
    spec.recipient = Some("https://evil.example/acs".to_string());
    assert_eq!(code_of(&signed(&spec), IdpShape::Adfs), "recipient_mismatch");
    spec.recipient = None;
    assert_eq!(code_of(&signed(&spec), IdpShape::Adfs), "recipient_mismatch");
}

#[test]
fn wrong_issuer_is_refused() {
    let mut spec = spec(IdpShape::EntraId);
    spec.issuer = "https://sts.windows.net/00000000-0000-0000-0000-000000000000/".to_string();
    assert_eq!(code_of(&signed(&spec), IdpShape::EntraId), "issuer_mismatch");
    // Only the unsigned Response Issuer changed.
    let xml = signed(&super::support::spec(IdpShape::EntraId));
    let mut root = parse(&xml);
    root.find_mut("Issuer").set_text("https://evil.example/idp");
    assert_eq!(code_of(&root.to_xml(), IdpShape::EntraId), "issuer_mismatch");
}

#[test]
fn issue_instant_far_in_the_future_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.issue_instant_offset = Duration::hours(1);
    spec.not_before_offset = None;
    spec.not_on_or_after_offset = Some(Duration::hours(2));
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "issue_instant_in_future");
}

#[test]
fn issue_instant_too_old_is_refused() {
    let mut spec = spec(IdpShape::Okta);
    spec.issue_instant_offset = Duration::minutes(-30);
    spec.authn_instant_offset = Duration::minutes(-30);
    // The IdP granted long windows; the age limit still applies.
    spec.subject_not_on_or_after_offset = Duration::minutes(30);
    spec.not_on_or_after_offset = Some(Duration::hours(2));
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "issue_instant_too_old");
}

#[test]
fn in_response_to_we_never_issued_is_refused_even_when_idp_initiated_is_allowed() {
    let mut spec = spec(IdpShape::Okta);
    spec.in_response_to = Some("_never_issued_by_us".to_string());
    let xml = signed(&spec);
    let mut cfg = config(IdpShape::Okta);
    let reject_all = |_: &str| false;
    for allow_idp_initiated in [false, true] {
        cfg.allow_idp_initiated = allow_idp_initiated;
        for outstanding in
            [OutstandingRequest::None, OutstandingRequest::Id(REQUEST_ID), OutstandingRequest::Lookup(&reject_all)]
        {
            assert_eq!(
                validate_with(&xml, &cfg, outstanding).unwrap_err().code(),
                "in_response_to_unknown",
                "allow_idp_initiated={allow_idp_initiated} {outstanding:?}"
            );
        }
    }
}

#[test]
fn in_response_to_disagreeing_between_response_and_assertion_is_refused() {
    // Only the (unsigned) Response envelope is changed.
    let xml = signed(&spec(IdpShape::EntraId));
    let mut root = parse(&xml);
    root.set_attr("InResponseTo", "_other_request");
    assert_eq!(code_of(&root.to_xml(), IdpShape::EntraId), "in_response_to_mismatch");
}

#[test]
fn non_success_status_is_refused() {
    // Unsigned failure response without assertion, as IdPs send them.
    let mut spec = spec(IdpShape::Okta);
    spec.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_string();
    spec.include_assertion = false;
    spec.signed = SignedParts::None;
    let refusal = refusal(&signed(&spec), &config(IdpShape::Okta));
    assert_eq!(refusal.code(), "status_not_success");
    assert!(refusal.to_string().contains("Responder"));
    // Signed failure response that still carries an assertion.
    let mut spec = super::support::spec(IdpShape::Okta);
    spec.status = "urn:oasis:names:tc:SAML:2.0:status:Requester".to_string();
    assert_eq!(code_of(&signed(&spec), IdpShape::Okta), "status_not_success");
}

// -------------------------------------------------------------- transport

#[test]
fn oversized_body_is_refused() {
    let cfg = config(IdpShape::Okta);
    let huge = "A".repeat(cfg.max_response_bytes * 2);
    let input = AcsInput { saml_response: &huge, relay_state: None, outstanding_request: OutstandingRequest::None };
    assert_eq!(validate_response(&input, &cfg, Utc::now()).unwrap_err().code(), "too_large");

    // Just over the decoded limit, with a valid document inside.
    let xml = signed(&spec(IdpShape::Okta));
    let padded = format!("{xml}{}", " ".repeat(cfg.max_response_bytes - xml.len() + 1));
    assert_eq!(refusal(&padded, &cfg).code(), "too_large");

    let long_relay_state = "r".repeat(cfg.max_relay_state_bytes + 1);
    let encoded = b64(&xml);
    let input = AcsInput {
        saml_response: &encoded,
        relay_state: Some(&long_relay_state),
        outstanding_request: OutstandingRequest::Id(REQUEST_ID),
    };
    assert_eq!(validate_response(&input, &cfg, Utc::now()).unwrap_err().code(), "too_large");
}

#[test]
fn broken_encoding_is_refused() {
    let cfg = config(IdpShape::Okta);
    let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, 0x3c, 0x00]);
    for value in ["%%%not base64%%%", "", "   ", "PHNhbWxwOlJlc3BvbnNl=====", not_utf8.as_str()] {
        let input = AcsInput { saml_response: value, relay_state: None, outstanding_request: OutstandingRequest::None };
        assert_eq!(validate_response(&input, &cfg, Utc::now()).unwrap_err().code(), "bad_encoding", "{value:?}");
    }
}

#[test]
fn line_wrapped_base64_and_byte_order_mark_are_accepted() {
    let xml = format!("\u{feff}{}", signed(&spec(IdpShape::Okta)));
    let encoded = b64(&xml);
    let wrapped: String =
        encoded.as_bytes().chunks(76).map(|c| format!("{}\r\n", String::from_utf8_lossy(c))).collect();
    let input = AcsInput {
        saml_response: &wrapped,
        relay_state: None,
        outstanding_request: OutstandingRequest::Id(REQUEST_ID),
    };
    validate_response(&input, &config(IdpShape::Okta), Utc::now()).unwrap();
}

#[test]
fn non_utf8_declared_encoding_is_refused() {
    let xml = format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}", signed(&spec(IdpShape::Okta)));
    assert_eq!(code_of(&xml, IdpShape::Okta), "malformed");
}

#[test]
fn not_a_response_is_refused() {
    let xml = signed(&spec(IdpShape::Generic));
    let assertion_only = parse(&xml).take_child("Assertion").to_xml();
    assert_eq!(code_of(&assertion_only, IdpShape::Generic), "malformed");
    assert_eq!(code_of("<html><body>hi</body></html>", IdpShape::Generic), "malformed");
    assert_eq!(code_of("<unclosed>", IdpShape::Generic), "malformed");
}
