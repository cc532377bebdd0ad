//! SAML metadata: reading an IdP's, writing ours.
//!
//! IdP metadata is read with the same strict parser as responses (no DTD,
//! no network). Only what the SP needs is extracted: entity ID, the
//! SingleSignOnService endpoints for HTTP-Redirect and HTTP-POST, and every
//! signing certificate (`KeyDescriptor use="signing"` or without `use`;
//! `use="encryption"` keys are never trusted for signatures). Signatures on
//! the metadata itself are not verified: metadata is configuration an
//! administrator uploads or fetches over TLS, and that is where trust comes
//! from.
//!
//! Our SP metadata advertises one AssertionConsumerService (HTTP-POST),
//! unsigned AuthnRequests and `WantAssertionsSigned="true"`.

use chrono::{DateTime, Utc};

use super::certs::{CertificateError, IdpCertificate};
use super::refusal::sanitize;
use super::validate::SpValidationConfig;
use super::xml::{
    children, escape, is, parse_instant, text_of, BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, NS_DSIG, NS_PROTOCOL,
};

pub(crate) const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// Limit on metadata documents (aggregates are refused well before this matters).
pub const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;
const MAX_METADATA_NODES: u32 = 400_000;

/// Why IdP metadata was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// Over [`MAX_METADATA_BYTES`] or too many nodes.
    #[error("metadata is too large")]
    TooLarge,
    /// DTD or entity declarations.
    #[error("XML document type declarations and entities are refused")]
    DtdRefused,
    /// Not well-formed, or not SAML metadata.
    #[error("malformed metadata: {0}")]
    Malformed(String),
    /// No EntityDescriptor with an IDPSSODescriptor for SAML 2.0.
    #[error("no SAML 2.0 identity provider in the metadata")]
    NoIdentityProvider,
    /// An aggregate with several IdPs and no entity ID to choose.
    #[error("the metadata describes {0} identity providers; name the entity ID to use")]
    Ambiguous(usize),
    /// The requested entity ID is not in the metadata.
    #[error("entity {0:?} is not in the metadata")]
    EntityNotFound(String),
    /// The IdP lists no signing certificate.
    #[error("the identity provider lists no signing certificate")]
    NoSigningCertificate,
    /// A listed certificate could not be parsed.
    #[error("bad certificate in metadata: {0}")]
    BadCertificate(#[from] CertificateError),
}

/// What the SP needs to know about an IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    /// `entityID`: the Issuer of its responses.
    pub entity_id: String,
    /// SingleSignOnService location for the HTTP-Redirect binding.
    pub sso_redirect_url: Option<String>,
    /// SingleSignOnService location for the HTTP-POST binding.
    pub sso_post_url: Option<String>,
    /// Signing certificates, deduplicated, in document order.
    pub signing_certificates: Vec<IdpCertificate>,
    /// `WantAuthnRequestsSigned` (we do not sign; callers may warn).
    pub want_authn_requests_signed: bool,
    /// Advertised NameID formats.
    pub name_id_formats: Vec<String>,
    /// `validUntil` of the EntityDescriptor, if any (not enforced here).
    pub valid_until: Option<DateTime<Utc>>,
}

impl IdpMetadata {
    /// Parses metadata holding exactly one IdP: an EntityDescriptor, or an
    /// EntitiesDescriptor with a single IdP in it.
    pub fn parse(xml: &str) -> Result<Self, MetadataError> {
        parse_metadata(xml, None)
    }

    /// Parses metadata and picks the IdP with this entity ID.
    pub fn parse_for_entity(xml: &str, entity_id: &str) -> Result<Self, MetadataError> {
        parse_metadata(xml, Some(entity_id))
    }

    /// The SSO URL for the HTTP-Redirect binding, else HTTP-POST's.
    pub fn sso_url(&self) -> Option<&str> {
        self.sso_redirect_url.as_deref().or(self.sso_post_url.as_deref())
    }

    /// A validation configuration trusting this IdP's signing certificates.
    pub fn validation_config(&self, sp_entity_id: impl Into<String>, acs_url: impl Into<String>) -> SpValidationConfig {
        SpValidationConfig::new(self.entity_id.clone(), self.signing_certificates.clone(), sp_entity_id, acs_url)
    }
}

fn parse_metadata(xml: &str, wanted: Option<&str>) -> Result<IdpMetadata, MetadataError> {
    if xml.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge);
    }
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    if super::prescan::contains_dtd(xml.as_bytes()) {
        return Err(MetadataError::DtdRefused);
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_METADATA_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => MetadataError::DtdRefused,
        roxmltree::Error::NodesLimitReached => MetadataError::TooLarge,
        other => MetadataError::Malformed(sanitize(&other.to_string())),
    })?;
    let root = doc.root_element();
    let entities: Vec<_> = if is(root, NS_METADATA, "EntityDescriptor") {
        vec![root]
    } else if is(root, NS_METADATA, "EntitiesDescriptor") {
        root.descendants().filter(|n| is(*n, NS_METADATA, "EntityDescriptor")).collect()
    } else {
        return Err(MetadataError::Malformed(format!(
            "root element {:?} is not SAML metadata",
            sanitize(root.tag_name().name())
        )));
    };

    let idps: Vec<_> =
        entities.into_iter().filter_map(|entity| idp_descriptor(entity).map(|idp| (entity, idp))).collect();
    let (entity, idp) = match wanted {
        Some(wanted) => idps
            .into_iter()
            .find(|(entity, _)| entity.attribute("entityID") == Some(wanted))
            .ok_or_else(|| MetadataError::EntityNotFound(sanitize(wanted)))?,
        None => match idps.as_slice() {
            [] => return Err(MetadataError::NoIdentityProvider),
            [one] => *one,
            many => return Err(MetadataError::Ambiguous(many.len())),
        },
    };

    let entity_id = entity
        .attribute("entityID")
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| MetadataError::Malformed("EntityDescriptor without entityID".into()))?
        .to_string();

    let mut sso_redirect_url = None;
    let mut sso_post_url = None;
    for service in children(idp, NS_METADATA, "SingleSignOnService") {
        let location = service.attribute("Location").map(str::to_string);
        match service.attribute("Binding") {
            Some(BINDING_HTTP_REDIRECT) if sso_redirect_url.is_none() => sso_redirect_url = location,
            Some(BINDING_HTTP_POST) if sso_post_url.is_none() => sso_post_url = location,
            _ => {}
        }
    }

    let mut signing_certificates: Vec<IdpCertificate> = Vec::new();
    for key in children(idp, NS_METADATA, "KeyDescriptor") {
        match key.attribute("use") {
            None | Some("signing") | Some("") => {}
            Some(_) => continue,
        }
        for cert in key.descendants().filter(|n| is(*n, NS_DSIG, "X509Certificate")) {
            let cert = IdpCertificate::from_base64(&text_of(cert))?;
            if !signing_certificates.contains(&cert) {
                signing_certificates.push(cert);
            }
        }
    }
    if signing_certificates.is_empty() {
        return Err(MetadataError::NoSigningCertificate);
    }

    let valid_until = match entity.attribute("validUntil") {
        Some(text) => Some(
            parse_instant(text)
                .ok_or_else(|| MetadataError::Malformed(format!("validUntil {:?} is not a date", sanitize(text))))?,
        ),
        None => None,
    };

    Ok(IdpMetadata {
        entity_id,
        sso_redirect_url,
        sso_post_url,
        signing_certificates,
        want_authn_requests_signed: matches!(idp.attribute("WantAuthnRequestsSigned"), Some("true") | Some("1")),
        name_id_formats: children(idp, NS_METADATA, "NameIDFormat").map(|n| text_of(n).trim().to_string()).collect(),
        valid_until,
    })
}

/// The entity's IDPSSODescriptor supporting SAML 2.0, if any.
fn idp_descriptor<'a, 'i>(entity: roxmltree::Node<'a, 'i>) -> Option<roxmltree::Node<'a, 'i>> {
    children(entity, NS_METADATA, "IDPSSODescriptor").find(|d| {
        d.attribute("protocolSupportEnumeration").is_some_and(|p| p.split_whitespace().any(|p| p == NS_PROTOCOL))
    })
}

/// Our SP metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    /// Our entity ID (the Audience IdPs put in assertions).
    pub entity_id: String,
    /// Our ACS URL (HTTP-POST).
    pub acs_url: String,
    /// NameID formats we ask for, most preferred first (may be empty).
    pub name_id_formats: Vec<String>,
}

impl SpMetadata {
    /// Metadata for `entity_id` receiving responses at `acs_url`.
    pub fn new(entity_id: impl Into<String>, acs_url: impl Into<String>) -> Self {
        Self { entity_id: entity_id.into(), acs_url: acs_url.into(), name_id_formats: Vec::new() }
    }

    /// Adds a NameID format.
    pub fn with_name_id_format(mut self, format: impl Into<String>) -> Self {
        self.name_id_formats.push(format.into());
        self
    }

    /// The EntityDescriptor document.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!(
            "<md:EntityDescriptor xmlns:md=\"{NS_METADATA}\" entityID=\"{}\">\n",
            escape(&self.entity_id)
        ));
        out.push_str(&format!(
            "  <md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" protocolSupportEnumeration=\"{NS_PROTOCOL}\">\n"
        ));
        for format in &self.name_id_formats {
            out.push_str(&format!("    <md:NameIDFormat>{}</md:NameIDFormat>\n", escape(format)));
        }
        out.push_str(&format!(
            "    <md:AssertionConsumerService Binding=\"{BINDING_HTTP_POST}\" Location=\"{}\" index=\"0\" isDefault=\"true\"/>\n",
            escape(&self.acs_url)
        ));
        out.push_str("  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n");
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::saml::test_idp::{IdpShape, SigningKey};
    use crate::saml::xml::name_id_format;

    fn fixture(shape: IdpShape) -> String {
        let file = shape.metadata_file().unwrap();
        std::fs::read_to_string(crate::testing::fixtures_dir().join(file)).unwrap()
    }

    #[test]
    fn every_fixture_parses_with_both_rollover_certificates() {
        let idp = crate::testing::fixture_idp().unwrap();
        let a = idp.certificate(SigningKey::IdpA).unwrap();
        let b = idp.certificate(SigningKey::IdpB).unwrap();
        for shape in [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs] {
            let meta = IdpMetadata::parse(&fixture(shape)).unwrap();
            assert_eq!(meta.entity_id, shape.entity_id());
            assert_eq!(meta.signing_certificates, vec![a.clone(), b.clone()], "{shape:?}");
            assert!(meta.sso_redirect_url.as_deref().unwrap().starts_with("https://"));
            assert!(meta.sso_post_url.is_some());
            assert_eq!(meta.sso_url(), meta.sso_redirect_url.as_deref());
        }
    }

    #[test]
    fn encryption_keys_are_never_signing_keys() {
        let attacker = crate::testing::fixture_idp().unwrap().certificate(SigningKey::Attacker).unwrap();
        let xml = fixture(IdpShape::Adfs);
        assert!(xml.contains(&attacker.to_base64()));
        let meta = IdpMetadata::parse(&xml).unwrap();
        assert!(!meta.signing_certificates.contains(&attacker));
        assert!(meta.name_id_formats.contains(&name_id_format::TRANSIENT.to_string()));
    }

    #[test]
    fn config_from_metadata_validates_a_response() {
        use crate::saml::test_idp::ResponseSpec;
        use crate::saml::validate::{validate_response, AcsInput, OutstandingRequest};
        let meta = IdpMetadata::parse(&fixture(IdpShape::EntraId)).unwrap();
        let cfg = meta.validation_config("https://sp.example/saml", "https://sp.example/acs");
        let spec = ResponseSpec::new(IdpShape::EntraId, "https://sp.example/saml", "https://sp.example/acs")
            .in_response_to("_r1");
        let b64 = crate::testing::fixture_idp().unwrap().sign_response(&spec).unwrap();
        let input =
            AcsInput { saml_response: &b64, relay_state: None, outstanding_request: OutstandingRequest::Id("_r1") };
        validate_response(&input, &cfg, Utc::now()).unwrap();
    }

    #[test]
    fn aggregates_need_an_entity_id_when_ambiguous() {
        let strip = |xml: String| {
            let start = xml.find("<md:EntityDescriptor").unwrap();
            xml[start..].to_string()
        };
        let okta = strip(fixture(IdpShape::Okta));
        let other = okta.replace(IdpShape::Okta.entity_id(), "https://other.example/idp");
        let aggregate =
            format!("<md:EntitiesDescriptor xmlns:md=\"{NS_METADATA}\">{okta}{other}</md:EntitiesDescriptor>");
        assert_eq!(IdpMetadata::parse(&aggregate), Err(MetadataError::Ambiguous(2)));
        let picked = IdpMetadata::parse_for_entity(&aggregate, "https://other.example/idp").unwrap();
        assert_eq!(picked.entity_id, "https://other.example/idp");
        assert!(matches!(
            IdpMetadata::parse_for_entity(&aggregate, "https://missing.example"),
            Err(MetadataError::EntityNotFound(_))
        ));
        let single = format!("<md:EntitiesDescriptor xmlns:md=\"{NS_METADATA}\">{okta}</md:EntitiesDescriptor>");
        assert_eq!(IdpMetadata::parse(&single).unwrap().entity_id, IdpShape::Okta.entity_id());
    }

    #[test]
    fn hostile_or_useless_metadata_is_refused() {
        let okta = fixture(IdpShape::Okta);
        let with_dtd = okta.replacen(
            "<md:EntityDescriptor",
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><md:EntityDescriptor",
            1,
        );
        assert_eq!(IdpMetadata::parse(&with_dtd), Err(MetadataError::DtdRefused));
        assert!(matches!(IdpMetadata::parse("<a/>"), Err(MetadataError::Malformed(_))));
        assert!(matches!(IdpMetadata::parse("not xml"), Err(MetadataError::Malformed(_))));
        let sp_only = SpMetadata::new("https://sp.example", "https://sp.example/acs").to_xml();
        assert_eq!(IdpMetadata::parse(&sp_only), Err(MetadataError::NoIdentityProvider));
        let no_keys = okta
            .split("<md:KeyDescriptor")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_string()
                } else {
                    part[part.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len()..].to_string()
                }
            })
            .collect::<String>();
        assert_eq!(IdpMetadata::parse(&no_keys), Err(MetadataError::NoSigningCertificate));
        let bad_cert = okta.replacen("<ds:X509Certificate>", "<ds:X509Certificate>AAAA", 1);
        assert!(matches!(IdpMetadata::parse(&bad_cert), Err(MetadataError::BadCertificate(_))));
        let saml11 = okta.replace(NS_PROTOCOL, "urn:oasis:names:tc:SAML:1.1:protocol");
        assert_eq!(IdpMetadata::parse(&saml11), Err(MetadataError::NoIdentityProvider));
        assert_eq!(IdpMetadata::parse(&" ".repeat(MAX_METADATA_BYTES + 1)), Err(MetadataError::TooLarge));
    }

    #[test]
    fn sp_metadata_is_well_formed_and_readable_by_samael() {
        let xml = SpMetadata::new("https://sp.example/saml?a=1&b=2", "https://sp.example/acs")
            .with_name_id_format(name_id_format::EMAIL)
            .to_xml();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("entityID"), Some("https://sp.example/saml?a=1&b=2"));
        let sp = children(root, NS_METADATA, "SPSSODescriptor").next().unwrap();
        assert_eq!(sp.attribute("AuthnRequestsSigned"), Some("false"));
        assert_eq!(sp.attribute("WantAssertionsSigned"), Some("true"));
        let acs = children(sp, NS_METADATA, "AssertionConsumerService").next().unwrap();
        assert_eq!(acs.attribute("Binding"), Some(BINDING_HTTP_POST));
        assert_eq!(acs.attribute("Location"), Some("https://sp.example/acs"));

        let parsed: samael::metadata::EntityDescriptor = xml.parse().unwrap();
        let sp = &parsed.sp_sso_descriptors.unwrap()[0];
        assert_eq!(sp.assertion_consumer_services[0].location, "https://sp.example/acs");
        assert_eq!(sp.name_id_formats, Some(vec![name_id_format::EMAIL.to_string()]));
    }
}
