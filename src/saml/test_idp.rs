//! A test identity provider: signs SAML responses with the keys under
//! `idp-fixtures/` so tests, benchmarks and manual runs get fresh, genuinely
//! signed documents (samael and the validator check the real clock, so signed
//! fixtures cannot be stored).
//!
//! Signatures are real XML-DSig made by libxmlsec1 through samael: exclusive
//! C14N, enveloped-signature, RSA-SHA256 with SHA-256 digests (RSA-SHA1 and
//! SHA-1 digests on request, for the downgrade tests). The Assertion, the
//! Response or both can be signed; when both are, the Assertion is signed
//! first and the Response signature covers the signed Assertion, the order
//! real IdPs use.
//!
//! [`IdpShape`] presets reproduce what Okta, Entra ID and AD FS emit: their
//! namespace prefixes, ID styles, timestamp precision, NameID formats,
//! attribute names and which elements they sign.
//!
//! THE KEYS ARE PUBLIC TEST MATERIAL. Nothing here is for production use.

use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};
use samael::crypto::{CryptoProvider, XmlSec};

use super::authn_request::DecodedAuthnRequest;
use super::certs::IdpCertificate;
use super::quiet::silence_xml_libraries;
use super::xml::{
    escape, format_instant, name_id_format, ALG_ENVELOPED, ALG_EXC_C14N, ALG_RSA_SHA1, ALG_RSA_SHA256, ALG_SHA1,
    ALG_SHA256, NAMEID_ENTITY, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, STATUS_SUCCESS,
};

/// Okta's entity ID in the fixtures (must match `idp-fixtures/okta-metadata.xml`).
pub const OKTA_ENTITY_ID: &str = "http://www.okta.com/exk1provisortest0a1";
/// Entra ID's entity ID in the fixtures (must match `idp-fixtures/entra-metadata.xml`).
pub const ENTRA_ENTITY_ID: &str = "https://sts.windows.net/8d4b1f0e-3c2a-4e5f-9a6b-7c8d9e0f1a2b/";
/// AD FS's entity ID in the fixtures (must match `idp-fixtures/adfs-metadata.xml`).
pub const ADFS_ENTITY_ID: &str = "http://adfs.provisor-test.example/adfs/services/trust";
/// Entity ID of the generic shape.
pub const GENERIC_ENTITY_ID: &str = "https://idp.provisor-test.example/saml";

const CLAIMS: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";
const MS_CLAIMS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims";
const ATTRNAME_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified";
const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
const AC_PASSWORD_PROTECTED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";

/// Errors of the test IdP (fixtures missing, signing failed).
#[derive(Debug, thiserror::Error)]
pub enum TestIdpError {
    /// A fixture file could not be read.
    #[error("cannot read {path}: {message}")]
    Fixture {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A key or certificate could not be used.
    #[error("key error: {0}")]
    Key(String),
    /// libxmlsec1 refused to sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Which fixture key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningKey {
    /// `idp-a`: the IdP's current key.
    IdpA,
    /// `idp-b`: the IdP's next key (certificate rollover).
    IdpB,
    /// `attacker`: a key no configuration trusts.
    Attacker,
}

impl SigningKey {
    /// File name stem under `idp-fixtures/`.
    pub fn file_stem(self) -> &'static str {
        match self {
            Self::IdpA => "idp-a",
            Self::IdpB => "idp-b",
            Self::Attacker => "attacker",
        }
    }

    const ALL: [SigningKey; 3] = [Self::IdpA, Self::IdpB, Self::Attacker];
}

/// Which elements carry a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedParts {
    /// Nothing signed (for the unsigned-response attack).
    None,
    /// Only the Assertion (Entra ID, AD FS default).
    Assertion,
    /// Only the Response.
    Response,
    /// Assertion, then Response over it (Okta default).
    Both,
}

/// Signature and digest algorithms of the generated signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    /// `true`: RSA-SHA1 SignatureMethod; `false`: RSA-SHA256.
    pub sha1_signature: bool,
    /// `true`: SHA-1 DigestMethod; `false`: SHA-256.
    pub sha1_digest: bool,
}

impl Algorithms {
    /// RSA-SHA256 with SHA-256 digests.
    pub const SHA256: Self = Self { sha1_signature: false, sha1_digest: false };
    /// RSA-SHA1 with SHA-1 digests (refused by default).
    pub const SHA1: Self = Self { sha1_signature: true, sha1_digest: true };
}

/// The look of a vendor's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdpShape {
    /// Okta: `saml2p:`/`saml2:` prefixes, `id…` IDs, emailAddress NameID,
    /// `firstName`/`lastName`/`email`/`groups` attributes, Response and
    /// Assertion signed.
    Okta,
    /// Entra ID: default namespaces, `_GUID` IDs, 7-digit fractional seconds,
    /// claim-URI attribute names, Assertion signed only.
    EntraId,
    /// AD FS: default namespaces, `ds:` signature prefix, claim-URI names
    /// (upn, name, role), transient NameID, Assertion signed only.
    Adfs,
    /// Plain `samlp:`/`saml:` document with friendly attribute names.
    Generic,
}

impl IdpShape {
    /// Entity ID the shape's responses carry as Issuer.
    pub fn entity_id(self) -> &'static str {
        match self {
            Self::Okta => OKTA_ENTITY_ID,
            Self::EntraId => ENTRA_ENTITY_ID,
            Self::Adfs => ADFS_ENTITY_ID,
            Self::Generic => GENERIC_ENTITY_ID,
        }
    }

    /// The metadata file under `idp-fixtures/` describing this IdP, if any.
    pub fn metadata_file(self) -> Option<&'static str> {
        match self {
            Self::Okta => Some("okta-metadata.xml"),
            Self::EntraId => Some("entra-metadata.xml"),
            Self::Adfs => Some("adfs-metadata.xml"),
            Self::Generic => None,
        }
    }

    /// Parses `okta`, `entra`, `adfs`, `generic`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "okta" => Some(Self::Okta),
            "entra" | "entra-id" | "entraid" | "azure" => Some(Self::EntraId),
            "adfs" => Some(Self::Adfs),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }

    fn style(self) -> Style {
        match self {
            Self::Okta => Style {
                protocol: "saml2p",
                assertion: Some("saml2"),
                dsig: Some("ds"),
                typed_values: true,
                inclusive_prefixes: Some("xs"),
            },
            Self::EntraId => {
                Style { protocol: "samlp", assertion: None, dsig: None, typed_values: false, inclusive_prefixes: None }
            }
            Self::Adfs => Style {
                protocol: "samlp",
                assertion: None,
                dsig: Some("ds"),
                typed_values: false,
                inclusive_prefixes: None,
            },
            Self::Generic => Style {
                protocol: "samlp",
                assertion: Some("saml"),
                dsig: Some("ds"),
                typed_values: true,
                inclusive_prefixes: None,
            },
        }
    }
}

/// One attribute of the AttributeStatement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecAttribute {
    /// `Name`.
    pub name: String,
    /// `FriendlyName`, if any.
    pub friendly_name: Option<String>,
    /// `NameFormat`, if any.
    pub name_format: Option<String>,
    /// One `AttributeValue` each.
    pub values: Vec<String>,
}

impl SpecAttribute {
    /// An attribute without FriendlyName or NameFormat.
    pub fn new(name: &str, values: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            friendly_name: None,
            name_format: None,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// Everything a generated response says. Start from [`ResponseSpec::new`]
/// (shape defaults, valid for the given SP) and change fields; time offsets
/// are relative to the moment of signing.
#[derive(Debug, Clone)]
pub struct ResponseSpec {
    /// Vendor look.
    pub shape: IdpShape,
    /// Issuer of the Response and the Assertion.
    pub issuer: String,
    /// Omit the Issuer element of the Response (it is optional in SAML core).
    pub omit_response_issuer: bool,
    /// NameID value.
    pub name_id: String,
    /// NameID Format, if any.
    pub name_id_format: Option<String>,
    /// Attributes (multi-valued).
    pub attributes: Vec<SpecAttribute>,
    /// Audience; `None` emits no AudienceRestriction.
    pub audience: Option<String>,
    /// Response Destination; `None` omits it.
    pub destination: Option<String>,
    /// SubjectConfirmationData Recipient; `None` omits it.
    pub recipient: Option<String>,
    /// InResponseTo on the Response and the SubjectConfirmationData.
    pub in_response_to: Option<String>,
    /// IssueInstant of Response and Assertion, relative to now.
    pub issue_instant_offset: Duration,
    /// Conditions NotBefore relative to now; `None` omits it.
    pub not_before_offset: Option<Duration>,
    /// Conditions NotOnOrAfter relative to now; `None` omits it.
    pub not_on_or_after_offset: Option<Duration>,
    /// SubjectConfirmationData NotOnOrAfter relative to now.
    pub subject_not_on_or_after_offset: Duration,
    /// AuthnInstant relative to now.
    pub authn_instant_offset: Duration,
    /// SessionIndex on the AuthnStatement, if any.
    pub session_index: Option<String>,
    /// Top-level StatusCode value.
    pub status: String,
    /// Include an Assertion (failed logins carry none).
    pub include_assertion: bool,
    /// What is signed.
    pub signed: SignedParts,
    /// Which key signs.
    pub key: SigningKey,
    /// Signature and digest algorithms.
    pub algorithms: Algorithms,
    /// Response ID; a fresh one in the shape's style when `None`.
    pub response_id: Option<String>,
    /// Assertion ID; a fresh one in the shape's style when `None`.
    pub assertion_id: Option<String>,
}

impl ResponseSpec {
    /// The same response for another person: the e-mail (and the UPN's, and the NameID
    /// where it is an address) become `email`; given and family names follow its local part.
    pub fn for_user(mut self, email: &str) -> Self {
        let (local, _) = email.split_once('@').unwrap_or((email, ""));
        let (given, family) = local.split_once('.').unwrap_or((local, ""));
        let title = |w: &str| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        };
        if self.name_id.contains('@') {
            self.name_id = email.to_owned();
        }
        for a in &mut self.attributes {
            for v in &mut a.values {
                if v.contains("jane.doe@") {
                    *v = email.to_owned();
                } else if v == "CORP\\jane.doe" {
                    *v = format!("CORP\\{local}");
                } else if v == "Jane" {
                    *v = title(given);
                } else if v == "Doe" && !family.is_empty() {
                    *v = title(family);
                }
            }
        }
        self
    }

    /// A response the given SP accepts, in the look of `shape`.
    pub fn new(shape: IdpShape, sp_entity_id: &str, acs_url: &str) -> Self {
        let (name_id, name_id_format, attributes, signed) = match shape {
            IdpShape::Okta => (
                "jane.doe@example.com".to_string(),
                Some(name_id_format::EMAIL.to_string()),
                vec![
                    unspecified("firstName", &["Jane"]),
                    unspecified("lastName", &["Doe"]),
                    unspecified("email", &["jane.doe@example.com"]),
                    unspecified("groups", &["Everyone", "Engineering", "provisor-admins"]),
                ],
                SignedParts::Both,
            ),
            IdpShape::EntraId => (
                "jane.doe@example.com".to_string(),
                Some(name_id_format::EMAIL.to_string()),
                vec![
                    SpecAttribute::new(
                        "http://schemas.microsoft.com/identity/claims/tenantid",
                        &["8d4b1f0e-3c2a-4e5f-9a6b-7c8d9e0f1a2b"],
                    ),
                    SpecAttribute::new(
                        "http://schemas.microsoft.com/identity/claims/objectidentifier",
                        &["5b7c9d1e-2f3a-4b5c-8d6e-7f8a9b0c1d2e"],
                    ),
                    SpecAttribute::new(&format!("{CLAIMS}/emailaddress"), &["jane.doe@example.com"]),
                    SpecAttribute::new(&format!("{CLAIMS}/givenname"), &["Jane"]),
                    SpecAttribute::new(&format!("{CLAIMS}/surname"), &["Doe"]),
                    SpecAttribute::new(&format!("{CLAIMS}/name"), &["jane.doe@example.com"]),
                    SpecAttribute::new(
                        &format!("{MS_CLAIMS}/groups"),
                        &["0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"],
                    ),
                ],
                SignedParts::Assertion,
            ),
            IdpShape::Adfs => (
                "_a7c3e2b1-9d8f-4e6a-b5c4-d3e2f1a0b9c8".to_string(),
                Some(name_id_format::TRANSIENT.to_string()),
                vec![
                    uri(&format!("{CLAIMS}/upn"), &["jane.doe@corp.example.com"]),
                    uri(&format!("{CLAIMS}/name"), &["CORP\\jane.doe"]),
                    uri(&format!("{MS_CLAIMS}/role"), &["Domain Users", "provisor-admins"]),
                ],
                SignedParts::Assertion,
            ),
            IdpShape::Generic => (
                "jane.doe@example.com".to_string(),
                Some(name_id_format::EMAIL.to_string()),
                vec![
                    SpecAttribute {
                        name: "urn:oid:0.9.2342.19200300.100.1.3".to_string(),
                        friendly_name: Some("mail".to_string()),
                        name_format: Some(ATTRNAME_URI.to_string()),
                        values: vec!["jane.doe@example.com".to_string()],
                    },
                    SpecAttribute {
                        name: "urn:oid:2.5.4.42".to_string(),
                        friendly_name: Some("givenName".to_string()),
                        name_format: Some(ATTRNAME_URI.to_string()),
                        values: vec!["Jane".to_string()],
                    },
                ],
                SignedParts::Assertion,
            ),
        };
        Self {
            shape,
            issuer: shape.entity_id().to_string(),
            omit_response_issuer: false,
            name_id,
            name_id_format,
            attributes,
            audience: Some(sp_entity_id.to_string()),
            destination: Some(acs_url.to_string()),
            recipient: Some(acs_url.to_string()),
            in_response_to: None,
            issue_instant_offset: Duration::zero(),
            not_before_offset: Some(Duration::minutes(-5)),
            not_on_or_after_offset: Some(Duration::minutes(60)),
            subject_not_on_or_after_offset: Duration::minutes(5),
            authn_instant_offset: Duration::seconds(-2),
            session_index: Some(format!("_{}", uuid::Uuid::new_v4())),
            status: STATUS_SUCCESS.to_string(),
            include_assertion: true,
            signed,
            key: SigningKey::IdpA,
            algorithms: Algorithms::SHA256,
            response_id: None,
            assertion_id: None,
        }
    }

    /// A response to an AuthnRequest read with
    /// [`crate::saml::authn_request::decode_redirect`]: InResponseTo is its
    /// ID, Destination and Recipient its ACS URL, Audience its Issuer.
    pub fn answering(shape: IdpShape, request: &DecodedAuthnRequest) -> Self {
        let sp_entity_id = request.issuer.clone().unwrap_or_default();
        let acs_url = request.acs_url.clone().unwrap_or_default();
        Self::new(shape, &sp_entity_id, &acs_url).in_response_to(&request.id)
    }

    /// Same spec answering the AuthnRequest `request_id`.
    pub fn in_response_to(mut self, request_id: &str) -> Self {
        self.in_response_to = Some(request_id.to_string());
        self
    }
}

fn unspecified(name: &str, values: &[&str]) -> SpecAttribute {
    SpecAttribute { name_format: Some(ATTRNAME_UNSPECIFIED.to_string()), ..SpecAttribute::new(name, values) }
}

fn uri(name: &str, values: &[&str]) -> SpecAttribute {
    SpecAttribute { name_format: Some(ATTRNAME_URI.to_string()), ..SpecAttribute::new(name, values) }
}

struct Style {
    protocol: &'static str,
    /// Prefix for assertion-namespace elements; `None` = default namespace.
    assertion: Option<&'static str>,
    /// Prefix for XML-DSig elements; `None` = default namespace.
    dsig: Option<&'static str>,
    /// `xsi:type="xs:string"` on attribute values.
    typed_values: bool,
    /// `InclusiveNamespaces PrefixList` on the exclusive C14N transform.
    inclusive_prefixes: Option<&'static str>,
}

impl Style {
    fn a(&self, local: &str) -> String {
        match self.assertion {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_string(),
        }
    }

    fn a_xmlns(&self) -> String {
        match self.assertion {
            Some(prefix) => format!(" xmlns:{prefix}=\"{NS_ASSERTION}\""),
            None => format!(" xmlns=\"{NS_ASSERTION}\""),
        }
    }

    fn p(&self, local: &str) -> String {
        format!("{}:{local}", self.protocol)
    }

    fn ds(&self, local: &str) -> String {
        match self.dsig {
            Some(prefix) => format!("{prefix}:{local}"),
            None => local.to_string(),
        }
    }

    fn ds_xmlns(&self) -> String {
        match self.dsig {
            Some(prefix) => format!(" xmlns:{prefix}=\"{NS_DSIG}\""),
            None => format!(" xmlns=\"{NS_DSIG}\""),
        }
    }
}

struct LoadedKey {
    private_der: Vec<u8>,
    certificate: IdpCertificate,
}

/// The test IdP: the three fixture key pairs.
pub struct TestIdp {
    keys: Vec<(SigningKey, LoadedKey)>,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp").field("keys", &self.keys.iter().map(|(k, _)| *k).collect::<Vec<_>>()).finish()
    }
}

fn load_pair(key_path: &Path, cert_path: &Path) -> Result<LoadedKey, TestIdpError> {
    let key_pem = read(key_path)?;
    let cert_pem = read(cert_path)?;
    let pkey: PKey<Private> =
        PKey::private_key_from_pem(&key_pem).map_err(|e| TestIdpError::Key(format!("{}: {e}", key_path.display())))?;
    let private_der = pkey.private_key_to_der().map_err(|e| TestIdpError::Key(e.to_string()))?;
    let certificate = IdpCertificate::from_pem(&cert_pem)
        .map_err(|e| TestIdpError::Key(format!("{}: {e}", cert_path.display())))?
        .into_iter()
        .next()
        .ok_or_else(|| TestIdpError::Key(format!("{}: no certificate in the file", cert_path.display())))?;
    Ok(LoadedKey { private_der, certificate })
}

impl TestIdp {
    /// Loads `<stem>.key.pem` and `<stem>.crt.pem` for every [`SigningKey`] from `dir`
    /// (the layout of `idp-fixtures/`).
    pub fn load(dir: &Path) -> Result<Self, TestIdpError> {
        let mut keys = Vec::new();
        for key in SigningKey::ALL {
            let key_path = dir.join(format!("{}.key.pem", key.file_stem()));
            let cert_path = dir.join(format!("{}.crt.pem", key.file_stem()));
            keys.push((key, load_pair(&key_path, &cert_path)?));
        }
        Ok(Self { keys })
    }

    /// One key pair (PEM files) that signs as [`SigningKey::IdpA`].
    pub fn from_key_pair(key_path: &Path, cert_path: &Path) -> Result<Self, TestIdpError> {
        Ok(Self { keys: vec![(SigningKey::IdpA, load_pair(key_path, cert_path)?)] })
    }

    fn key(&self, which: SigningKey) -> Result<&LoadedKey, TestIdpError> {
        self.keys
            .iter()
            .find(|(k, _)| *k == which)
            .map(|(_, loaded)| loaded)
            .ok_or_else(|| TestIdpError::Key(format!("{which:?} not loaded")))
    }

    /// The certificate of a fixture key.
    pub fn certificate(&self, which: SigningKey) -> Result<IdpCertificate, TestIdpError> {
        Ok(self.key(which)?.certificate.clone())
    }

    /// The signed response, base64-encoded as the `SAMLResponse` form value.
    pub fn sign_response(&self, spec: &ResponseSpec) -> Result<String, TestIdpError> {
        let xml = self.response_xml(spec)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()))
    }

    /// The signed response as XML text (for tests that tamper with it).
    pub fn response_xml(&self, spec: &ResponseSpec) -> Result<String, TestIdpError> {
        self.response_xml_at(spec, Utc::now())
    }

    /// As [`TestIdp::response_xml`] with an explicit "now".
    pub fn response_xml_at(&self, spec: &ResponseSpec, now: DateTime<Utc>) -> Result<String, TestIdpError> {
        let style = spec.shape.style();
        let key = self.key(spec.key)?;
        let response_id = spec.response_id.clone().unwrap_or_else(|| fresh_id(spec.shape));
        let assertion_id = spec.assertion_id.clone().unwrap_or_else(|| fresh_id(spec.shape));

        let assertion = if spec.include_assertion {
            let sign_assertion = matches!(spec.signed, SignedParts::Assertion | SignedParts::Both);
            let unsigned = assertion_xml(spec, &style, &assertion_id, now, key, sign_assertion);
            if sign_assertion {
                strip_declaration(&sign(&unsigned, key)?)
            } else {
                unsigned
            }
        } else {
            String::new()
        };

        let sign_response = matches!(spec.signed, SignedParts::Response | SignedParts::Both);
        let response = response_xml(spec, &style, &response_id, now, key, sign_response, &assertion);
        if sign_response {
            Ok(strip_declaration(&sign(&response, key)?))
        } else {
            Ok(response)
        }
    }

    /// Signs an arbitrary document whose first `<ds:Signature>` is a template
    /// (empty DigestValue/SignatureValue). For tests that need unusual but
    /// genuinely signed documents.
    pub fn sign_template(&self, xml: &str, which: SigningKey) -> Result<String, TestIdpError> {
        Ok(strip_declaration(&sign(xml, self.key(which)?)?))
    }

    /// A signature template for `reference_id` in the look of `shape`, to
    /// embed in a document passed to [`TestIdp::sign_template`].
    pub fn signature_template(
        &self,
        shape: IdpShape,
        reference_id: &str,
        which: SigningKey,
        algorithms: Algorithms,
    ) -> Result<String, TestIdpError> {
        Ok(signature_template(&shape.style(), reference_id, self.key(which)?, algorithms))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TestIdpError> {
    std::fs::read(path).map_err(|e| TestIdpError::Fixture { path: path.display().to_string(), message: e.to_string() })
}

fn sign(xml: &str, key: &LoadedKey) -> Result<String, TestIdpError> {
    silence_xml_libraries();
    XmlSec::sign_xml(xml.as_bytes(), &key.private_der).map_err(|e| TestIdpError::Signing(e.to_string()))
}

/// libxml2 prepends `<?xml version="1.0"?>` when serialising; IdPs vary, we
/// emit none so signed pieces can be embedded.
fn strip_declaration(xml: &str) -> String {
    let trimmed = xml.trim_start();
    let body = match trimmed.strip_prefix("<?xml").and_then(|rest| rest.split_once("?>")) {
        Some((_, after)) => after,
        None => trimmed,
    };
    body.trim().to_string()
}

fn fresh_id(shape: IdpShape) -> String {
    match shape {
        IdpShape::Okta => {
            let n: u128 = rand::random();
            format!("id{}", n % 10u128.pow(26))
        }
        _ => format!("_{}", uuid::Uuid::new_v4()),
    }
}

fn instant(shape: IdpShape, at: DateTime<Utc>) -> String {
    match shape {
        // Entra ID writes 7 fraction digits (.NET ticks).
        IdpShape::EntraId => {
            let ticks = at.timestamp_subsec_nanos() / 100;
            format!("{}.{ticks:07}Z", at.format("%Y-%m-%dT%H:%M:%S"))
        }
        IdpShape::Generic => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        _ => format_instant(at),
    }
}

fn signature_template(style: &Style, reference_id: &str, key: &LoadedKey, algs: Algorithms) -> String {
    let signature_method = if algs.sha1_signature { ALG_RSA_SHA1 } else { ALG_RSA_SHA256 };
    let digest_method = if algs.sha1_digest { ALG_SHA1 } else { ALG_SHA256 };
    let c14n_transform = match style.inclusive_prefixes {
        Some(prefixes) => format!(
            "<{t} Algorithm=\"{ALG_EXC_C14N}\"><ec:InclusiveNamespaces xmlns:ec=\"{ALG_EXC_C14N}\" PrefixList=\"{prefixes}\"/></{t}>",
            t = style.ds("Transform")
        ),
        None => format!("<{} Algorithm=\"{ALG_EXC_C14N}\"/>", style.ds("Transform")),
    };
    format!(
        "<{sig}{xmlns}><{si}><{cm} Algorithm=\"{ALG_EXC_C14N}\"/><{sm} Algorithm=\"{signature_method}\"/>\
<{r} URI=\"#{id}\"><{ts}><{t} Algorithm=\"{ALG_ENVELOPED}\"/>{c14n_transform}</{ts}>\
<{dm} Algorithm=\"{digest_method}\"/><{dv}></{dv}></{r}></{si}><{sv}></{sv}>\
<{ki}><{xd}><{xc}>{cert}</{xc}></{xd}></{ki}></{sig}>",
        sig = style.ds("Signature"),
        xmlns = style.ds_xmlns(),
        si = style.ds("SignedInfo"),
        cm = style.ds("CanonicalizationMethod"),
        sm = style.ds("SignatureMethod"),
        r = style.ds("Reference"),
        id = escape(reference_id),
        ts = style.ds("Transforms"),
        t = style.ds("Transform"),
        dm = style.ds("DigestMethod"),
        dv = style.ds("DigestValue"),
        sv = style.ds("SignatureValue"),
        ki = style.ds("KeyInfo"),
        xd = style.ds("X509Data"),
        xc = style.ds("X509Certificate"),
        cert = key.certificate.to_base64(),
    )
}

fn opt_attr(name: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => format!(" {name}=\"{}\"", escape(value)),
        None => String::new(),
    }
}

fn assertion_xml(
    spec: &ResponseSpec,
    style: &Style,
    id: &str,
    now: DateTime<Utc>,
    key: &LoadedKey,
    signed: bool,
) -> String {
    let shape = spec.shape;
    let a = |local: &str| style.a(local);
    let mut out = String::new();
    out.push_str(&format!(
        "<{}{} ID=\"{}\" IssueInstant=\"{}\" Version=\"2.0\">",
        a("Assertion"),
        style.a_xmlns(),
        escape(id),
        instant(shape, now + spec.issue_instant_offset)
    ));
    out.push_str(&format!(
        "<{i}{fmt}>{}</{i}>",
        escape(&spec.issuer),
        i = a("Issuer"),
        fmt = if shape == IdpShape::Okta { format!(" Format=\"{NAMEID_ENTITY}\"") } else { String::new() }
    ));
    if signed {
        out.push_str(&signature_template(style, id, key, spec.algorithms));
    }

    // Subject
    out.push_str(&format!("<{}>", a("Subject")));
    out.push_str(&format!(
        "<{n}{fmt}>{}</{n}>",
        escape(&spec.name_id),
        n = a("NameID"),
        fmt = opt_attr("Format", spec.name_id_format.as_deref())
    ));
    out.push_str(&format!(
        "<{sc} Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><{scd}{irt} NotOnOrAfter=\"{}\"{rcpt}/></{sc}>",
        instant(shape, now + spec.subject_not_on_or_after_offset),
        sc = a("SubjectConfirmation"),
        scd = a("SubjectConfirmationData"),
        irt = opt_attr("InResponseTo", spec.in_response_to.as_deref()),
        rcpt = opt_attr("Recipient", spec.recipient.as_deref()),
    ));
    out.push_str(&format!("</{}>", a("Subject")));

    // Conditions
    if spec.not_before_offset.is_some() || spec.not_on_or_after_offset.is_some() || spec.audience.is_some() {
        let nb = spec.not_before_offset.map(|o| instant(shape, now + o));
        let noa = spec.not_on_or_after_offset.map(|o| instant(shape, now + o));
        out.push_str(&format!(
            "<{}{}{}>",
            a("Conditions"),
            opt_attr("NotBefore", nb.as_deref()),
            opt_attr("NotOnOrAfter", noa.as_deref())
        ));
        if let Some(audience) = &spec.audience {
            out.push_str(&format!(
                "<{ar}><{au}>{}</{au}></{ar}>",
                escape(audience),
                ar = a("AudienceRestriction"),
                au = a("Audience")
            ));
        }
        out.push_str(&format!("</{}>", a("Conditions")));
    }

    // Statements: Entra ID and AD FS put attributes first, Okta authn first.
    let authn = format!(
        "<{as_}{ai}{si}><{ac}><{acr}>{AC_PASSWORD_PROTECTED}</{acr}></{ac}></{as_}>",
        as_ = a("AuthnStatement"),
        ai = opt_attr("AuthnInstant", Some(&instant(shape, now + spec.authn_instant_offset))),
        si = opt_attr("SessionIndex", spec.session_index.as_deref()),
        ac = a("AuthnContext"),
        acr = a("AuthnContextClassRef"),
    );
    let mut attributes = String::new();
    if !spec.attributes.is_empty() {
        attributes.push_str(&format!("<{}>", a("AttributeStatement")));
        for attribute in &spec.attributes {
            attributes.push_str(&format!(
                "<{}{}{}{}>",
                a("Attribute"),
                opt_attr("Name", Some(&attribute.name)),
                opt_attr("FriendlyName", attribute.friendly_name.as_deref()),
                opt_attr("NameFormat", attribute.name_format.as_deref()),
            ));
            for value in &attribute.values {
                let typed = if style.typed_values {
                    " xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"xs:string\""
                } else {
                    ""
                };
                attributes.push_str(&format!("<{av}{typed}>{}</{av}>", escape(value), av = a("AttributeValue")));
            }
            attributes.push_str(&format!("</{}>", a("Attribute")));
        }
        attributes.push_str(&format!("</{}>", a("AttributeStatement")));
    }
    if shape == IdpShape::Okta || shape == IdpShape::Generic {
        out.push_str(&authn);
        out.push_str(&attributes);
    } else {
        out.push_str(&attributes);
        out.push_str(&authn);
    }
    out.push_str(&format!("</{}>", a("Assertion")));
    out
}

fn response_xml(
    spec: &ResponseSpec,
    style: &Style,
    id: &str,
    now: DateTime<Utc>,
    key: &LoadedKey,
    signed: bool,
    assertion: &str,
) -> String {
    let shape = spec.shape;
    let mut out = String::new();
    let consent =
        if shape == IdpShape::Adfs { " Consent=\"urn:oasis:names:tc:SAML:2.0:consent:unspecified\"" } else { "" };
    out.push_str(&format!(
        "<{r} xmlns:{p}=\"{NS_PROTOCOL}\" ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\"{}{}{consent}>",
        escape(id),
        instant(shape, now + spec.issue_instant_offset),
        opt_attr("Destination", spec.destination.as_deref()),
        opt_attr("InResponseTo", spec.in_response_to.as_deref()),
        r = style.p("Response"),
        p = style.protocol,
    ));
    if !spec.omit_response_issuer {
        out.push_str(&format!(
            "<{i}{xmlns}{fmt}>{}</{i}>",
            escape(&spec.issuer),
            i = style.a("Issuer"),
            xmlns = style.a_xmlns(),
            fmt = if shape == IdpShape::Okta { format!(" Format=\"{NAMEID_ENTITY}\"") } else { String::new() }
        ));
    }
    if signed {
        out.push_str(&signature_template(style, id, key, spec.algorithms));
    }
    out.push_str(&format!(
        "<{s}><{sc} Value=\"{}\"/>{msg}</{s}>",
        escape(&spec.status),
        s = style.p("Status"),
        sc = style.p("StatusCode"),
        msg = if spec.status == STATUS_SUCCESS {
            String::new()
        } else {
            format!("<{m}>Authentication failed</{m}>", m = style.p("StatusMessage"))
        }
    ));
    out.push_str(assertion);
    out.push_str(&format!("</{}>", style.p("Response")));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use samael::crypto::ReduceMode;

    fn verify_with(xml: &str, cert: &IdpCertificate) -> Result<String, String> {
        silence_xml_libraries();
        XmlSec::reduce_xml_to_signed(xml, &[cert.to_samael()], ReduceMode::ValidateAndMarkNoAncestors)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_shape_and_signed_part_verifies_with_its_key() {
        let idp = crate::testing::fixture_idp().unwrap();
        let cert_a = idp.certificate(SigningKey::IdpA).unwrap();
        for shape in [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs, IdpShape::Generic] {
            for signed in [SignedParts::Assertion, SignedParts::Response, SignedParts::Both] {
                let mut spec = ResponseSpec::new(shape, "https://sp.example/saml", "https://sp.example/acs");
                spec.signed = signed;
                let xml = idp.response_xml(&spec).unwrap();
                let reduced = verify_with(&xml, &cert_a).unwrap_or_else(|e| panic!("{shape:?} {signed:?}: {e}\n{xml}"));
                assert!(reduced.contains(&spec.name_id), "{shape:?} {signed:?}: {reduced}");
            }
        }
    }

    #[test]
    fn another_user_changes_every_claim_of_the_person() {
        for shape in [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs, IdpShape::Generic] {
            let spec = ResponseSpec::new(shape, "https://sp", "https://sp/acs").for_user("max.mustermann@other.test");
            let text = format!("{} {:?}", spec.name_id, spec.attributes);
            assert!(!text.contains("jane") && !text.contains("Jane"), "{shape:?}: {text}");
            assert!(text.contains("max.mustermann@other.test"), "{shape:?}: {text}");
        }
    }

    #[test]
    fn other_key_does_not_verify() {
        let idp = crate::testing::fixture_idp().unwrap();
        let spec = ResponseSpec::new(IdpShape::Okta, "https://sp.example/saml", "https://sp.example/acs");
        let xml = idp.response_xml(&spec).unwrap();
        let cert_b = idp.certificate(SigningKey::IdpB).unwrap();
        assert!(verify_with(&xml, &cert_b).is_err());
    }

    #[test]
    fn sha1_signatures_are_produced_on_request() {
        let idp = crate::testing::fixture_idp().unwrap();
        let mut spec = ResponseSpec::new(IdpShape::Generic, "https://sp.example/saml", "https://sp.example/acs");
        spec.algorithms = Algorithms::SHA1;
        let xml = idp.response_xml(&spec).unwrap();
        assert!(xml.contains(ALG_RSA_SHA1) && xml.contains(ALG_SHA1));
        verify_with(&xml, &idp.certificate(SigningKey::IdpA).unwrap()).unwrap();
    }
}
