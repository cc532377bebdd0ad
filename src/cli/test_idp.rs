//! `provisor test-idp`: signs a SAML response, to try single sign-on locally without an
//! identity provider. By default it signs with the TEST-ONLY keys in `idp-fixtures/` of the
//! current directory (a source checkout); `--key FILE --cert FILE` sign with any key pair.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{json, Value};

use crate::error::{AppError, AppResult};
use crate::saml::test_idp::{Algorithms, IdpShape, ResponseSpec, SignedParts, SigningKey, TestIdp, TestIdpError};

/// Where `idp-fixtures/` is looked for when `--fixtures` is not given.
pub const DEFAULT_FIXTURES: &str = "idp-fixtures";

#[derive(Debug, Clone, Args)]
pub struct TestIdpArgs {
    /// Vendor look: okta, entra, adfs or generic.
    #[arg(long, default_value = "okta")]
    pub shape: String,
    /// Our SP entity ID (the Audience).
    #[arg(long)]
    pub sp_entity_id: String,
    /// Our ACS URL (Destination and Recipient).
    #[arg(long)]
    pub acs_url: String,
    /// The AuthnRequest ID being answered; unsolicited when absent.
    #[arg(long)]
    pub in_response_to: Option<String>,
    /// The person signing in: their e-mail becomes the NameID (where it is an address) and
    /// every e-mail, UPN and name claim (the shape's default user when absent).
    #[arg(long)]
    pub name_id: Option<String>,
    /// What to sign: none, assertion, response or both (shape default when absent).
    #[arg(long)]
    pub sign: Option<String>,
    /// Signing key: a fixture name (idp-a, idp-b, attacker) or a PEM private-key file.
    #[arg(long, default_value = "idp-a")]
    pub key: String,
    /// The certificate (PEM) of a key given as a file (default: the key file's name with
    /// `.crt.pem` for `.key.pem`).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Use RSA-SHA1/SHA-1 (for downgrade tests).
    #[arg(long)]
    pub sha1: bool,
    /// Print XML instead of base64.
    #[arg(long)]
    pub xml: bool,
    /// Fixture directory for the named keys (default: ./idp-fixtures).
    #[arg(long)]
    pub fixtures: Option<PathBuf>,
    /// Sign as of this instant (RFC 3339) instead of now: IssueInstant, NotBefore and
    /// NotOnOrAfter follow it (for fixed seeds, such as the SAML fuzz corpus).
    #[arg(long)]
    pub at: Option<String>,
}

fn fixture_key(name: &str) -> Option<SigningKey> {
    match name {
        "idp-a" => Some(SigningKey::IdpA),
        "idp-b" => Some(SigningKey::IdpB),
        "attacker" => Some(SigningKey::Attacker),
        _ => None,
    }
}

/// The signer and key of `args`.
fn signer(args: &TestIdpArgs) -> Result<(TestIdp, SigningKey), TestIdpError> {
    if let Some(key) = fixture_key(&args.key) {
        let dir = args.fixtures.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FIXTURES));
        if !dir.is_dir() {
            return Err(TestIdpError::Key(format!(
                "no fixture directory {} (run from a source checkout, or give --fixtures DIR or --key FILE --cert FILE)",
                dir.display()
            )));
        }
        return Ok((TestIdp::load(&dir)?, key));
    }
    let key = Path::new(&args.key);
    let cert = match &args.cert {
        Some(c) => c.clone(),
        None => {
            let name = key.to_string_lossy();
            match name.strip_suffix(".key.pem") {
                Some(stem) => PathBuf::from(format!("{stem}.crt.pem")),
                None => return Err(TestIdpError::Key("give the key's certificate with --cert FILE".into())),
            }
        }
    };
    Ok((TestIdp::from_key_pair(key, &cert)?, SigningKey::IdpA))
}

/// Produces the response described by `args`: base64 (the form value), or XML with `--xml`.
pub fn sign(args: &TestIdpArgs) -> Result<String, TestIdpError> {
    let bad = |what: &str, value: &str| TestIdpError::Key(format!("unknown {what} {value:?}"));
    let shape = IdpShape::from_name(&args.shape).ok_or_else(|| bad("shape", &args.shape))?;
    let mut spec = ResponseSpec::new(shape, &args.sp_entity_id, &args.acs_url);
    spec.in_response_to = args.in_response_to.clone();
    if let Some(user) = &args.name_id {
        spec = spec.for_user(user);
        spec.name_id = user.clone();
    }
    if let Some(sign) = &args.sign {
        spec.signed = match sign.as_str() {
            "none" => SignedParts::None,
            "assertion" => SignedParts::Assertion,
            "response" => SignedParts::Response,
            "both" => SignedParts::Both,
            other => return Err(bad("signed part", other)),
        };
    }
    if args.sha1 {
        spec.algorithms = Algorithms::SHA1;
    }
    let at = match &args.at {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| TestIdpError::Key(format!("--at {text:?} is not an RFC 3339 instant: {e}")))?
            .with_timezone(&Utc),
    };
    let (idp, key) = signer(args)?;
    spec.key = key;
    let xml = idp.response_xml_at(&spec, at)?;
    if args.xml {
        Ok(xml)
    } else {
        Ok(base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()))
    }
}

pub(super) fn run(args: &TestIdpArgs) -> AppResult<Option<Value>> {
    let out = sign(args).map_err(|e| AppError::bad_request("test_idp_failed", e.to_string()))?;
    let key = if args.xml { "xml" } else { "saml_response" };
    Ok(Some(json!({ key: out })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_produces_base64_and_xml() {
        let fixtures = crate::testing::fixtures_dir();
        let args = TestIdpArgs {
            shape: "entra".into(),
            sp_entity_id: "https://sp.example/saml".into(),
            acs_url: "https://sp.example/acs".into(),
            in_response_to: Some("_req1".into()),
            name_id: Some("cli@example.com".into()),
            sign: Some("both".into()),
            key: "idp-b".into(),
            cert: None,
            sha1: false,
            xml: false,
            fixtures: Some(fixtures.clone()),
            at: None,
        };
        let b64 = sign(&args).unwrap();
        let xml = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        assert!(xml.contains("cli@example.com") && xml.contains("InResponseTo=\"_req1\""));
        assert!(!xml.contains("jane.doe@example.com"), "the e-mail claim follows --name-id");
        let as_xml = sign(&TestIdpArgs { xml: true, ..args.clone() }).unwrap();
        assert!(as_xml.starts_with("<samlp:Response"));
        assert!(sign(&TestIdpArgs { shape: "nope".into(), ..args.clone() }).is_err());
        // A key pair given as files signs too; a missing fixture directory says what to do.
        let key = fixtures.join("idp-a.key.pem");
        let by_file = TestIdpArgs { key: key.display().to_string(), fixtures: None, ..args.clone() };
        assert!(sign(&by_file).is_ok());
        let nowhere = TestIdpArgs { fixtures: Some(fixtures.join("missing")), ..args };
        assert!(sign(&nowhere).unwrap_err().to_string().contains("--key FILE --cert FILE"));
    }

    #[test]
    fn cli_signs_as_of_a_given_instant() {
        let args = TestIdpArgs {
            shape: "okta".into(),
            sp_entity_id: "https://sp.example/saml".into(),
            acs_url: "https://sp.example/acs".into(),
            in_response_to: None,
            name_id: None,
            sign: None,
            key: "idp-a".into(),
            cert: None,
            sha1: false,
            xml: true,
            fixtures: Some(crate::testing::fixtures_dir()),
            at: Some("2026-01-01T00:00:00Z".into()),
        };
        let xml = sign(&args).unwrap();
        assert!(xml.contains("IssueInstant=\"2026-01-01T00:00:00"), "{xml}");
        let bad = sign(&TestIdpArgs { at: Some("yesterday".into()), ..args }).unwrap_err();
        assert!(bad.to_string().contains("RFC 3339"), "{bad}");
    }
}
