//! Validation of a SAML Response posted to our Assertion Consumer Service.
//!
//! # Pipeline
//!
//! 1. **Configuration**: at least one IdP certificate, or every response is
//!    refused (`no_signing_certificate`); samael silently skips signature
//!    verification when it has no key.
//! 2. **Transport**: RelayState and the base64 form value are size-limited
//!    before decoding; the decoded XML (default limit 256 KiB) must be UTF-8.
//! 3. **Raw pre-scan** (`prescan`): DTDs, comments, Reference URIs,
//!    transforms, algorithms, assertion count and signature placement are
//!    checked with a parser that cannot fetch anything, *before* libxml2 and
//!    libxmlsec1 see the document (they would fetch `http://`/`file://`
//!    Reference URIs and run XSLT before checking any signature).
//! 4. **Signature** (samael + libxmlsec1): every `<ds:Signature>` must verify
//!    with one of the configured certificates, and the document is reduced to
//!    what was signed (`ReduceMode::ValidateAndMarkNoAncestors`; never
//!    `ValidateAndMark`, which keeps unsigned ancestors). Certificates inside
//!    the response are ignored.
//! 5. **SAML rules**, read only from the reduced (signed) document, with the
//!    caller's `now` as the only clock (samael's own wall-clock checks are not
//!    used): Status Success; Issuer of Response and Assertion; Destination
//!    (required when the Response is signed, must match when present); bearer
//!    SubjectConfirmation with Recipient = ACS URL and NotOnOrAfter;
//!    Conditions NotBefore/NotOnOrAfter; AudienceRestriction required and
//!    every one of them must name our SP; IssueInstant neither in the future
//!    nor older than skew + `max_response_age`; an AuthnStatement; and
//!    InResponseTo against the caller's outstanding requests.
//!
//! # Decisions
//!
//! * **Comments** anywhere in the document are refused
//!   (`comment_in_signed_text`). Exclusive C14N without comments ignores
//!   them, so `admin@x.com<!---->.evil.com` keeps a valid signature while a
//!   naive reader sees `admin@x.com`; no IdP emits comments. samael alone also
//!   refuses these documents (its reduction no longer matches); we refuse
//!   earlier and with a precise reason. The `#WithComments` C14N variants are
//!   refused as transforms.
//! * **SHA-1** signatures and digests are refused unless
//!   [`SpValidationConfig::allow_sha1`] is set (for legacy AD FS setups).
//! * **Encrypted** assertions, NameIDs and attributes are refused
//!   (`encrypted_content_unsupported`): we do not hold a decryption key.
//!   TLS protects the response in transit; configure the IdP to sign only.
//! * **IssueInstant** may be at most `clock_skew` in the future and at most
//!   `clock_skew + max_response_age` (default 180 s + 300 s) in the past, on
//!   both Response and Assertion.
//! * **Replay**: this function is pure; the same response validates every
//!   time. The caller must persist [`VerifiedLogin::assertion_id`] until
//!   [`VerifiedLogin::assertion_expires_at`] and refuse a second use, and must
//!   mark the request named by [`VerifiedLogin::in_response_to`] as consumed.
//! * **Attributes** come only from the signed assertion. Values are the
//!   element text, unnormalised; `xsi:nil` values are skipped.
//! * **Certificates**: dates are not checked (SAML trust comes from
//!   configuration, see [`IdpCertificate`]).
//! * libxml2/libxmlsec1 error output is silenced process-wide before any
//!   document reaches them (it quotes attacker-controlled content).

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use roxmltree::Node;
use samael::crypto::{AllowedSignatureAlgorithm, CryptoError, CryptoProvider, ReduceMode, XmlSec};

use super::certs::IdpCertificate;
use super::prescan::{prescan, raw_response, RawFacts, RawResponse};
use super::quiet::silence_xml_libraries;
use super::refusal::{sanitize, SamlRefusal};
use super::xml::{
    children, is, parse_instant, parse_strict, single_child, text_of, CM_BEARER, NAMEID_ENTITY, NS_ASSERTION,
    NS_PROTOCOL, NS_XSI, STATUS_SUCCESS,
};

/// Default limit on the decoded XML.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Default limit on RelayState. The SAML bindings spec says 80 bytes; IdP-initiated
/// flows often carry a URL, so we allow more but still bound it.
pub const DEFAULT_MAX_RELAY_STATE_BYTES: usize = 1024;
/// Default tolerated clock difference with the IdP.
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 180;
/// Default maximum age of a response beyond the clock skew.
pub const DEFAULT_MAX_RESPONSE_AGE_SECS: i64 = 300;

pub(crate) const STRONG_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// What we trust and who we are. One per configured IdP.
#[derive(Debug, Clone)]
pub struct SpValidationConfig {
    /// The IdP's entity ID: the expected Issuer of Response and Assertion.
    pub idp_entity_id: String,
    /// IdP signing certificates; a signature by any of them is accepted
    /// (certificate rollover). Empty: everything is refused.
    pub idp_certificates: Vec<IdpCertificate>,
    /// Our SP entity ID: must appear in every AudienceRestriction.
    pub sp_entity_id: String,
    /// Our ACS URL: expected Destination and Recipient, compared exactly.
    pub acs_url: String,
    /// Tolerated clock difference (default 180 s).
    pub clock_skew: Duration,
    /// How old an IssueInstant may be beyond the clock skew (default 300 s).
    pub max_response_age: Duration,
    /// Accept unsolicited responses (no InResponseTo). Default `false`.
    /// Even when `true`, an InResponseTo we did not issue is refused.
    pub allow_idp_initiated: bool,
    /// Accept RSA-SHA1 signatures and SHA-1 digests. Default `false`.
    pub allow_sha1: bool,
    /// Limit on the decoded XML (default 256 KiB).
    pub max_response_bytes: usize,
    /// Limit on RelayState (default 1024 bytes).
    pub max_relay_state_bytes: usize,
}

impl SpValidationConfig {
    /// A configuration with the defaults described on each field.
    pub fn new(
        idp_entity_id: impl Into<String>,
        idp_certificates: Vec<IdpCertificate>,
        sp_entity_id: impl Into<String>,
        acs_url: impl Into<String>,
    ) -> Self {
        Self {
            idp_entity_id: idp_entity_id.into(),
            idp_certificates,
            sp_entity_id: sp_entity_id.into(),
            acs_url: acs_url.into(),
            clock_skew: Duration::seconds(DEFAULT_CLOCK_SKEW_SECS),
            max_response_age: Duration::seconds(DEFAULT_MAX_RESPONSE_AGE_SECS),
            allow_idp_initiated: false,
            allow_sha1: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_relay_state_bytes: DEFAULT_MAX_RELAY_STATE_BYTES,
        }
    }
}

/// Which AuthnRequest the caller is waiting for. The caller owns the store
/// of issued requests; this is how it lets the validator ask.
///
/// Contract, with `irt` the InResponseTo of the verified assertion:
///
/// | response          | `None`                  | `Id(x)`                      | `Lookup(f)`                  |
/// |-------------------|-------------------------|------------------------------|------------------------------|
/// | has `irt`         | `in_response_to_unknown`| accepted iff `irt == x`      | accepted iff `f(irt)`        |
/// | no InResponseTo   | accepted iff IdP-initiated is allowed, otherwise `idp_initiated_refused` |||
///
/// An InResponseTo we never issued is refused even when IdP-initiated login
/// is allowed: the IdP believes it is answering someone else's request.
/// After a successful validation the caller must mark the request consumed.
#[derive(Clone, Copy)]
pub enum OutstandingRequest<'a> {
    /// No AuthnRequest is pending (or the caller tracks none).
    None,
    /// The ID of the AuthnRequest this browser's session started (best:
    /// binds the response to the browser that asked for it).
    Id(&'a str),
    /// Asks the caller's store. Must return `true` only for an ID we issued
    /// and have not consumed, and `false` on store errors (fail closed).
    /// Called at most once, after every other check has passed.
    Lookup(&'a dyn Fn(&str) -> bool),
}

impl std::fmt::Debug for OutstandingRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Id(id) => f.debug_tuple("Id").field(id).finish(),
            Self::Lookup(_) => f.write_str("Lookup(..)"),
        }
    }
}

/// One POST to the ACS endpoint.
#[derive(Debug, Clone, Copy)]
pub struct AcsInput<'a> {
    /// The `SAMLResponse` form value (base64; line breaks tolerated).
    pub saml_response: &'a str,
    /// The `RelayState` form value, if any. Unauthenticated: validate it
    /// (e.g. a local path) before redirecting to it.
    pub relay_state: Option<&'a str>,
    /// The request(s) we are waiting for.
    pub outstanding_request: OutstandingRequest<'a>,
}

/// The NameID of the authenticated subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameId {
    /// The identifier, exactly as sent.
    pub value: String,
    /// The Format URI, if any (see [`crate::saml::xml::name_id_format`]).
    pub format: Option<String>,
    /// NameQualifier, if any.
    pub name_qualifier: Option<String>,
    /// SPNameQualifier, if any.
    pub sp_name_qualifier: Option<String>,
}

/// Which elements carried a verified signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedElements {
    /// The Response was signed (and verified).
    pub response: bool,
    /// The Assertion carried its own signature (verified). When only the
    /// Response is signed this is `false` but the assertion is still covered.
    pub assertion: bool,
}

/// A verified login. Everything here comes from signed content, except
/// `relay_state` (and Response fields of an unsigned Response, which are
/// checked but not returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogin {
    /// The subject.
    pub name_id: NameId,
    /// AuthnStatement SessionIndex (needed for single logout), if any.
    pub session_index: Option<String>,
    /// Assertion ID: the replay-cache key.
    pub assertion_id: String,
    /// Keep `assertion_id` in the replay cache at least until then: after
    /// this instant the assertion is refused anyway (its NotOnOrAfter or
    /// maximum age, plus clock skew, has passed).
    pub assertion_expires_at: DateTime<Utc>,
    /// The AuthnRequest this answers; `None` for IdP-initiated logins. The
    /// caller marks it consumed.
    pub in_response_to: Option<String>,
    /// The Assertion Issuer (equals the configured IdP entity ID).
    pub issuer: String,
    /// Attributes by `Name`, values in document order. Repeated Attribute
    /// elements with the same Name are merged.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// `FriendlyName` → `Name` for attributes that have one.
    pub friendly_names: BTreeMap<String, String>,
    /// When the user authenticated at the IdP.
    pub authn_instant: DateTime<Utc>,
    /// AuthnStatement SessionNotOnOrAfter: the IdP's cap on our session.
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    /// AuthnContextClassRef, if any.
    pub authn_context_class: Option<String>,
    /// Which elements were signed.
    pub signed: SignedElements,
    /// RelayState as posted (unauthenticated).
    pub relay_state: Option<String>,
}

impl VerifiedLogin {
    /// Values of the attribute with this `Name`, or else this `FriendlyName`.
    pub fn attribute(&self, name_or_friendly_name: &str) -> Option<&[String]> {
        self.attributes
            .get(name_or_friendly_name)
            .or_else(|| self.friendly_names.get(name_or_friendly_name).and_then(|name| self.attributes.get(name)))
            .map(Vec::as_slice)
    }

    /// First value of [`VerifiedLogin::attribute`].
    pub fn first_attribute(&self, name_or_friendly_name: &str) -> Option<&str> {
        self.attribute(name_or_friendly_name).and_then(|values| values.first()).map(String::as_str)
    }
}

/// Validates a posted SAML Response. See the module documentation for every
/// check; `now` is the only clock used.
pub fn validate_response(
    input: &AcsInput<'_>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<VerifiedLogin, SamlRefusal> {
    if cfg.idp_certificates.is_empty() {
        return Err(SamlRefusal::NoSigningCertificate);
    }
    if let Some(relay_state) = input.relay_state {
        if relay_state.len() > cfg.max_relay_state_bytes {
            return Err(SamlRefusal::TooLarge { what: "RelayState", limit: cfg.max_relay_state_bytes });
        }
    }
    let xml = decode_saml_response(input.saml_response, cfg.max_response_bytes)?;
    validate_xml(&xml, input, cfg, now)
}

/// Base64 → UTF-8 text with size limits. A leading UTF-8 byte-order mark is dropped.
pub(crate) fn decode_saml_response(value: &str, max_bytes: usize) -> Result<String, SamlRefusal> {
    let max_encoded = max_bytes.div_ceil(3) * 4;
    // Generous bound on whitespace before looking at every byte.
    if value.len() > max_encoded.saturating_mul(2) {
        return Err(SamlRefusal::TooLarge { what: "SAMLResponse", limit: max_bytes });
    }
    let compact: Vec<u8> = value.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() > max_encoded {
        return Err(SamlRefusal::TooLarge { what: "SAMLResponse", limit: max_bytes });
    }
    if compact.is_empty() {
        return Err(SamlRefusal::BadEncoding("empty SAMLResponse".into()));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(&compact).map_err(|e| SamlRefusal::BadEncoding(e.to_string()))?;
    if bytes.len() > max_bytes {
        return Err(SamlRefusal::TooLarge { what: "SAMLResponse", limit: max_bytes });
    }
    let text = String::from_utf8(bytes).map_err(|e| SamlRefusal::BadEncoding(format!("not UTF-8: {e}")))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// [`validate_response`] after decoding: `xml` is the Response document.
pub(crate) fn validate_xml(
    xml: &str,
    input: &AcsInput<'_>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<VerifiedLogin, SamlRefusal> {
    if cfg.idp_certificates.is_empty() {
        return Err(SamlRefusal::NoSigningCertificate);
    }
    let facts = prescan(xml, cfg.allow_sha1)?;
    let reduced = verify_and_reduce(xml, &cfg.idp_certificates, cfg.allow_sha1)?;
    check_signed_document(&reduced, &facts, input, cfg, now)
}

/// samael: verifies every signature with the configured certificates and
/// returns the document reduced to signed content. Errors are mapped at once
/// (samael's are neither `Send` nor stable).
pub(crate) fn verify_and_reduce(
    xml: &str,
    certificates: &[IdpCertificate],
    allow_sha1: bool,
) -> Result<String, SamlRefusal> {
    if certificates.is_empty() {
        return Err(SamlRefusal::NoSigningCertificate);
    }
    silence_xml_libraries();
    let certs: Vec<_> = certificates.iter().map(IdpCertificate::to_samael).collect();
    let allowed = if allow_sha1 {
        // samael's allow list has no SHA-1 entry; the pre-scan enforces ours.
        None
    } else {
        Some(STRONG_ALGORITHMS)
    };
    XmlSec::reduce_xml_to_signed_with_allowed_algorithms(xml, &certs, ReduceMode::ValidateAndMarkNoAncestors, allowed)
        .map_err(|error| SamlRefusal::SignatureInvalid(describe_crypto_error(&error)))
}

fn describe_crypto_error(error: &CryptoError) -> String {
    match error {
        CryptoError::InvalidSignature => "no configured certificate verifies the signature".to_string(),
        other => {
            let mut text = other.to_string();
            if let Some(source) = std::error::Error::source(other) {
                text.push_str(": ");
                text.push_str(&source.to_string());
            }
            sanitize(&text)
        }
    }
}

fn malformed(message: impl Into<String>) -> SamlRefusal {
    SamlRefusal::Malformed(message.into())
}

fn instant_attr(node: Node<'_, '_>, name: &str) -> Result<Option<DateTime<Utc>>, SamlRefusal> {
    match node.attribute(name) {
        None => Ok(None),
        Some(text) => parse_instant(text).map(Some).ok_or_else(|| {
            malformed(format!("{}@{name} is not an xs:dateTime: {:?}", node.tag_name().name(), sanitize(text)))
        }),
    }
}

fn check_issue_instant(
    what: &'static str,
    text: Option<&str>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, SamlRefusal> {
    let text = text.ok_or_else(|| malformed(format!("{what} has no IssueInstant")))?;
    let at = parse_instant(text).ok_or_else(|| malformed(format!("{what} IssueInstant is not an xs:dateTime")))?;
    if at > now + cfg.clock_skew {
        return Err(SamlRefusal::IssueInstantInFuture { what, at });
    }
    if at < now - cfg.clock_skew - cfg.max_response_age {
        return Err(SamlRefusal::IssueInstantTooOld { what, at });
    }
    Ok(at)
}

fn check_issuer(
    element: &'static str,
    value: Option<&str>,
    format: Option<&str>,
    cfg: &SpValidationConfig,
) -> Result<(), SamlRefusal> {
    if value != Some(cfg.idp_entity_id.as_str()) {
        return Err(SamlRefusal::IssuerMismatch { element, found: value.map(sanitize) });
    }
    if let Some(format) = format {
        if format != NAMEID_ENTITY {
            return Err(SamlRefusal::IssuerMismatch {
                element,
                found: Some(format!("{} (Format {})", sanitize(value.unwrap_or("")), sanitize(format))),
            });
        }
    }
    Ok(())
}

/// SAML rules on the signed content. `reduced` is samael's output.
fn check_signed_document(
    reduced: &str,
    facts: &RawFacts,
    input: &AcsInput<'_>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<VerifiedLogin, SamlRefusal> {
    let doc =
        parse_strict(reduced).map_err(|e| SamlRefusal::SignatureInvalid(format!("signed content unreadable: {e}")))?;
    let root = doc.root_element();

    // What samael verified must be what the document said it signed.
    let (response_fields, assertion) = if is(root, NS_PROTOCOL, "Response") {
        if !facts.response_signed {
            return Err(SamlRefusal::SignatureInvalid(
                "verified a Response signature the document does not place on the Response".into(),
            ));
        }
        let mut assertions = children(root, NS_ASSERTION, "Assertion");
        let assertion = assertions.next().ok_or(SamlRefusal::AssertionMissing)?;
        if assertions.next().is_some() {
            return Err(SamlRefusal::MultipleAssertions(2));
        }
        (raw_response(root)?, assertion)
    } else if is(root, NS_ASSERTION, "Assertion") {
        if facts.response_signed || !facts.assertion_signed {
            return Err(SamlRefusal::SignatureInvalid(
                "the verified content is not the element the document signs".into(),
            ));
        }
        (facts.response.clone(), root)
    } else {
        return Err(SamlRefusal::SignatureInvalid("the signed content is neither a Response nor an Assertion".into()));
    };
    let assertion_id = assertion.attribute("ID").ok_or_else(|| malformed("Assertion has no ID"))?;
    if assertion_id != facts.assertion_id {
        return Err(SamlRefusal::SignatureInvalid(
            "the verified assertion is not the assertion of the document".into(),
        ));
    }

    check_response_fields(&response_fields, facts.response_signed, cfg)?;
    let assertion_facts = check_assertion(assertion, cfg, now)?;

    // IssueInstant of both elements.
    check_issue_instant("Response", response_fields.issue_instant.as_deref(), cfg, now)?;

    // InResponseTo, last: it may cost the caller a store lookup.
    let in_response_to = match (response_fields.in_response_to.as_deref(), assertion_facts.in_response_to.as_deref()) {
        (Some(on_response), Some(on_assertion)) if on_response != on_assertion => {
            return Err(SamlRefusal::InResponseToMismatch)
        }
        (Some(_), None) => return Err(SamlRefusal::InResponseToMismatch),
        (_, on_assertion) => on_assertion.map(str::to_string),
    };
    match &in_response_to {
        Some(irt) => {
            let known = match input.outstanding_request {
                OutstandingRequest::None => false,
                OutstandingRequest::Id(expected) => expected == irt,
                OutstandingRequest::Lookup(lookup) => lookup(irt),
            };
            if !known {
                return Err(SamlRefusal::InResponseToUnknown(sanitize(irt)));
            }
        }
        None => {
            if !cfg.allow_idp_initiated {
                return Err(SamlRefusal::IdpInitiatedRefused);
            }
        }
    }

    Ok(VerifiedLogin {
        name_id: assertion_facts.name_id,
        session_index: assertion_facts.session_index,
        assertion_id: assertion_id.to_string(),
        assertion_expires_at: assertion_facts.expires_at,
        in_response_to,
        issuer: cfg.idp_entity_id.clone(),
        attributes: assertion_facts.attributes,
        friendly_names: assertion_facts.friendly_names,
        authn_instant: assertion_facts.authn_instant,
        session_not_on_or_after: assertion_facts.session_not_on_or_after,
        authn_context_class: assertion_facts.authn_context_class,
        signed: SignedElements { response: facts.response_signed, assertion: facts.assertion_signed },
        relay_state: input.relay_state.map(str::to_string),
    })
}

/// Version, Status, Issuer, Destination of the Response (signed or raw).
fn check_response_fields(
    response: &RawResponse,
    response_signed: bool,
    cfg: &SpValidationConfig,
) -> Result<(), SamlRefusal> {
    if response.version.as_deref() != Some("2.0") {
        return Err(malformed("Response Version is not 2.0"));
    }
    match response.status.as_deref() {
        Some(STATUS_SUCCESS) => {}
        Some(other) => return Err(SamlRefusal::StatusNotSuccess(sanitize(other))),
        None => return Err(malformed("Response has no Status/StatusCode")),
    }
    // The Response Issuer is optional (SAML core 3.2.2), but must be right when present.
    if let Some(issuer) = &response.issuer {
        check_issuer("Response", Some(issuer.as_str()), response.issuer_format.as_deref(), cfg)?;
    }
    match response.destination.as_deref() {
        None if response_signed => return Err(SamlRefusal::DestinationMissing),
        None => {}
        Some(destination) if destination == cfg.acs_url => {}
        Some(other) => return Err(SamlRefusal::DestinationMismatch(sanitize(other))),
    }
    Ok(())
}

struct AssertionFacts {
    name_id: NameId,
    in_response_to: Option<String>,
    session_index: Option<String>,
    authn_instant: DateTime<Utc>,
    session_not_on_or_after: Option<DateTime<Utc>>,
    authn_context_class: Option<String>,
    attributes: BTreeMap<String, Vec<String>>,
    friendly_names: BTreeMap<String, String>,
    expires_at: DateTime<Utc>,
}

/// The only `saml:{local}` child of `parent`, if any.
fn one<'a, 'i>(parent: Node<'a, 'i>, local: &'static str) -> Result<Option<Node<'a, 'i>>, SamlRefusal> {
    single_child(parent, NS_ASSERTION, local).map_err(SamlRefusal::Malformed)
}

fn check_assertion(
    assertion: Node<'_, '_>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<AssertionFacts, SamlRefusal> {
    if assertion.attribute("Version") != Some("2.0") {
        return Err(malformed("Assertion Version is not 2.0"));
    }

    // Issuer (required on an Assertion).
    let issuer = one(assertion, "Issuer")?;
    check_issuer("Assertion", issuer.map(text_of).as_deref(), issuer.and_then(|i| i.attribute("Format")), cfg)?;

    // Subject and NameID.
    let subject = one(assertion, "Subject")?.ok_or(SamlRefusal::SubjectMissing)?;
    let name_id_node = one(subject, "NameID")?.ok_or(SamlRefusal::SubjectMissing)?;
    if name_id_node.children().any(|c| c.is_element()) {
        return Err(malformed("NameID has element content"));
    }
    let name_id = NameId {
        value: text_of(name_id_node),
        format: name_id_node.attribute("Format").map(str::to_string),
        name_qualifier: name_id_node.attribute("NameQualifier").map(str::to_string),
        sp_name_qualifier: name_id_node.attribute("SPNameQualifier").map(str::to_string),
    };
    if name_id.value.trim().is_empty() {
        return Err(SamlRefusal::SubjectMissing);
    }

    // Bearer SubjectConfirmation: the first one that satisfies every rule is
    // used; when none does, the first failure is reported.
    let mut first_error = None;
    let mut confirmed = None;
    for confirmation in
        children(subject, NS_ASSERTION, "SubjectConfirmation").filter(|c| c.attribute("Method") == Some(CM_BEARER))
    {
        match check_bearer(confirmation, cfg, now) {
            Ok(found) => {
                confirmed = Some(found);
                break;
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let (in_response_to, subject_not_on_or_after) = match confirmed {
        Some(found) => found,
        None => return Err(first_error.unwrap_or(SamlRefusal::SubjectConfirmationMissing)),
    };

    // Conditions: time window, then audience.
    let conditions = one(assertion, "Conditions")?.ok_or(SamlRefusal::AudienceMissing)?;
    let conditions_not_on_or_after = instant_attr(conditions, "NotOnOrAfter")?;
    if let Some(not_before) = instant_attr(conditions, "NotBefore")? {
        if now < not_before - cfg.clock_skew {
            return Err(SamlRefusal::NotYetValid { what: "Conditions", at: not_before });
        }
    }
    if let Some(not_on_or_after) = conditions_not_on_or_after {
        if now >= not_on_or_after + cfg.clock_skew {
            return Err(SamlRefusal::Expired { what: "Conditions", at: not_on_or_after });
        }
    }
    let mut restrictions = 0usize;
    for condition in conditions.children().filter(|c| c.is_element()) {
        if is(condition, NS_ASSERTION, "AudienceRestriction") {
            restrictions += 1;
            let audiences: Vec<String> =
                children(condition, NS_ASSERTION, "Audience").map(|a| text_of(a).trim().to_string()).collect();
            if !audiences.contains(&cfg.sp_entity_id) {
                return Err(SamlRefusal::AudienceMismatch(audiences.iter().take(5).map(|a| sanitize(a)).collect()));
            }
        } else if is(condition, NS_ASSERTION, "OneTimeUse") || is(condition, NS_ASSERTION, "ProxyRestriction") {
            // OneTimeUse is what the caller's replay cache enforces;
            // ProxyRestriction limits further delegation, which we never do.
        } else {
            // SAML core 2.5.1.5: an unknown condition makes the assertion indeterminate.
            return Err(malformed(format!("unsupported condition {:?}", sanitize(condition.tag_name().name()))));
        }
    }
    if restrictions == 0 {
        return Err(SamlRefusal::AudienceMissing);
    }

    let issue_instant = check_issue_instant("Assertion", assertion.attribute("IssueInstant"), cfg, now)?;

    // AuthnStatement.
    let authn = one(assertion, "AuthnStatement")?.ok_or(SamlRefusal::AuthnStatementMissing)?;
    let authn_instant =
        instant_attr(authn, "AuthnInstant")?.ok_or_else(|| malformed("AuthnStatement has no AuthnInstant"))?;
    if authn_instant > now + cfg.clock_skew {
        return Err(SamlRefusal::NotYetValid { what: "AuthnInstant", at: authn_instant });
    }
    let session_not_on_or_after = instant_attr(authn, "SessionNotOnOrAfter")?;
    if let Some(limit) = session_not_on_or_after {
        if now >= limit + cfg.clock_skew {
            return Err(SamlRefusal::Expired { what: "AuthnStatement SessionNotOnOrAfter", at: limit });
        }
    }
    let authn_context_class = one(authn, "AuthnContext")?
        .map(|context| one(context, "AuthnContextClassRef"))
        .transpose()?
        .flatten()
        .map(|class| text_of(class).trim().to_string());

    // Attributes.
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut friendly_names = BTreeMap::new();
    for statement in children(assertion, NS_ASSERTION, "AttributeStatement") {
        for attribute in children(statement, NS_ASSERTION, "Attribute") {
            let name = attribute.attribute("Name").ok_or_else(|| malformed("Attribute without Name"))?;
            if let Some(friendly) = attribute.attribute("FriendlyName") {
                friendly_names.insert(friendly.to_string(), name.to_string());
            }
            let values = attributes.entry(name.to_string()).or_default();
            for value in children(attribute, NS_ASSERTION, "AttributeValue") {
                if value.attribute((NS_XSI, "nil")) == Some("true") {
                    continue;
                }
                values.push(text_of(value));
            }
        }
    }

    // Replay-cache horizon: the earliest instant from which this assertion
    // is refused anyway.
    let mut expires_at = issue_instant + cfg.clock_skew + cfg.max_response_age;
    for bound in [Some(subject_not_on_or_after), conditions_not_on_or_after].into_iter().flatten() {
        expires_at = expires_at.min(bound + cfg.clock_skew);
    }

    Ok(AssertionFacts {
        name_id,
        in_response_to,
        session_index: authn.attribute("SessionIndex").map(str::to_string),
        authn_instant,
        session_not_on_or_after,
        authn_context_class,
        attributes,
        friendly_names,
        expires_at,
    })
}

/// One bearer SubjectConfirmation: Recipient, time window. Returns its
/// InResponseTo and NotOnOrAfter.
fn check_bearer(
    confirmation: Node<'_, '_>,
    cfg: &SpValidationConfig,
    now: DateTime<Utc>,
) -> Result<(Option<String>, DateTime<Utc>), SamlRefusal> {
    let data = single_child(confirmation, NS_ASSERTION, "SubjectConfirmationData")
        .map_err(SamlRefusal::Malformed)?
        .ok_or(SamlRefusal::SubjectConfirmationMissing)?;
    match data.attribute("Recipient") {
        Some(recipient) if recipient == cfg.acs_url => {}
        other => return Err(SamlRefusal::RecipientMismatch(other.map(sanitize))),
    }
    if let Some(not_before) = instant_attr(data, "NotBefore")? {
        if now < not_before - cfg.clock_skew {
            return Err(SamlRefusal::NotYetValid { what: "SubjectConfirmationData", at: not_before });
        }
    }
    let not_on_or_after = instant_attr(data, "NotOnOrAfter")?
        .ok_or_else(|| malformed("bearer SubjectConfirmationData has no NotOnOrAfter"))?;
    if now >= not_on_or_after + cfg.clock_skew {
        return Err(SamlRefusal::Expired { what: "SubjectConfirmationData", at: not_on_or_after });
    }
    Ok((data.attribute("InResponseTo").map(str::to_string), not_on_or_after))
}
