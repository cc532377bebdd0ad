//! libxml2/libxmlsec1 must never print (attacker-controlled) text to stderr.
//!
//! Output to stderr can only be observed from outside the process, so the
//! test re-runs this test binary as a child restricted to
//! [`stderr_probe_child`], once with the sinks installed and once without
//! (proving the probe does make the libraries talk), and reads the child's
//! stderr. In a normal test run `stderr_probe_child` is a no-op.

use std::process::Command;

use samael::crypto::{CryptoProvider, ReduceMode, XmlSec};

use super::support::*;
use crate::saml::test_idp::SigningKey;

const MODE_VAR: &str = "PROVISOR_SAML_STDERR_PROBE";
const MARKER: &str = "attacker-marker-7f3a";

/// Documents that make libxmlsec1 report errors quoting the marker. Built
/// from text (not with the test IdP, whose signing installs the sinks).
fn noisy_documents() -> Vec<String> {
    let document = |reference: &str, transform: &str| {
        format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"r1\">\
<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
<ds:Reference URI=\"{reference}\"><ds:Transforms><ds:Transform Algorithm=\"{transform}\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>AAAA</ds:DigestValue>\
</ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></samlp:Response>"
        )
    };
    vec![
        // Unknown transform: libxmlsec1 reports the href.
        document("#r1", &format!("urn:{MARKER}")),
        // Reference to a missing ID: libxmlsec1 reports the URI.
        document(&format!("#{MARKER}"), "http://www.w3.org/2000/09/xmldsig#enveloped-signature"),
        // Broken XPointer: libxml2's XPath engine reports the expression.
        document(&format!("#xpointer(//{MARKER}[)"), "http://www.w3.org/2000/09/xmldsig#enveloped-signature"),
    ]
}

#[test]
fn stderr_probe_child() {
    let Ok(mode) = std::env::var(MODE_VAR) else {
        return;
    };
    if mode == "quiet" {
        crate::saml::quiet::silence_xml_libraries();
    }
    let cert = idp().certificate(SigningKey::IdpA).unwrap().to_samael();
    for doc in noisy_documents() {
        let _ = XmlSec::reduce_xml_to_signed(&doc, std::slice::from_ref(&cert), ReduceMode::ValidateAndMarkNoAncestors);
    }
}

fn child_stderr(mode: &str) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "saml::tests::stderr::stderr_probe_child", "--test-threads=1", "--nocapture"])
        .env(MODE_VAR, mode)
        .output()
        .unwrap();
    assert!(output.status.success(), "probe failed: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn libxml_and_xmlsec_errors_never_reach_stderr() {
    let loud = child_stderr("loud");
    assert!(loud.contains(MARKER), "libxmlsec1 did not print:\n{loud}");
    assert!(loud.contains("XPath error"), "libxml2 did not print:\n{loud}");
    let quiet = child_stderr("quiet");
    assert!(quiet.trim().is_empty(), "library output reached stderr:\n{quiet}");
}
