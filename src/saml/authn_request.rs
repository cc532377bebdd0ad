//! AuthnRequest for the HTTP-Redirect binding.
//!
//! [`build_redirect`] makes a fresh request ID (128 random bits), the
//! AuthnRequest XML (Destination = IdP SSO URL, AssertionConsumerServiceURL
//! and ProtocolBinding HTTP-POST so the IdP posts back to our ACS, Issuer =
//! our entity ID), and encodes it as SAML bindings 3.4.4.1 says: raw
//! DEFLATE, base64, URL-encoded `SAMLRequest`, then `RelayState`. Requests
//! are not signed (our metadata says `AuthnRequestsSigned="false"`).
//!
//! The caller persists [`RedirectRequest::request_id`] (ideally bound to the
//! browser session) and hands it to the validator as the outstanding request.
//!
//! [`decode_redirect`] is the inverse, bounded against inflation bombs; the
//! test IdP uses it to answer our requests.

use std::io::{Read, Write};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use url::Url;

use super::refusal::sanitize;
use super::xml::{
    escape, format_instant, is, parse_strict, single_child, text_of, BINDING_HTTP_POST, NS_ASSERTION, NS_PROTOCOL,
};

/// SAML bindings 3.4.3: RelayState MUST NOT exceed 80 bytes.
pub const MAX_RELAY_STATE_BYTES: usize = 80;
/// Limit on an inflated AuthnRequest in [`decode_redirect`].
pub const MAX_INFLATED_REQUEST_BYTES: usize = 64 * 1024;

/// What the AuthnRequest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequestParams<'a> {
    /// Our entity ID (Issuer).
    pub sp_entity_id: &'a str,
    /// Our ACS URL (AssertionConsumerServiceURL).
    pub acs_url: &'a str,
    /// The IdP's SSO URL for HTTP-Redirect (Destination, and where we redirect).
    pub idp_sso_url: &'a str,
    /// NameIDPolicy Format to ask for, if any.
    pub name_id_format: Option<&'a str>,
    /// Ask the IdP to re-authenticate the user.
    pub force_authn: bool,
    /// RelayState to send along (at most 80 bytes), if any.
    pub relay_state: Option<&'a str>,
}

/// A built request: where to redirect the browser, and what to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRequest {
    /// The AuthnRequest ID: persist it as outstanding; the response's
    /// InResponseTo must name it.
    pub request_id: String,
    /// IssueInstant of the request.
    pub issue_instant: DateTime<Utc>,
    /// The URL to redirect the browser to (HTTP 302/303 Location).
    pub redirect_url: String,
    /// The AuthnRequest XML (for logs and tests).
    pub xml: String,
}

/// Why a request could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnRequestError {
    /// The IdP SSO URL is not an absolute http(s) URL.
    #[error("IdP SSO URL is not an absolute http(s) URL: {0}")]
    BadSsoUrl(String),
    /// RelayState over 80 bytes.
    #[error("RelayState is longer than {MAX_RELAY_STATE_BYTES} bytes")]
    RelayStateTooLong,
    /// DEFLATE failed.
    #[error("compression failed: {0}")]
    Compression(String),
    /// A redirect URL without a valid `SAMLRequest`.
    #[error("not a SAML HTTP-Redirect request: {0}")]
    Malformed(String),
}

/// A fresh request ID: `_` and 32 hex digits from the OS random generator.
/// Starts with `_` so it is a valid xs:ID (NCName).
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        // openssl's CSPRNG failing is not recoverable in any useful way;
        // fall back to the thread RNG (also a CSPRNG) rather than panic.
        bytes = rand::random();
    }
    format!("_{}", hex::encode(bytes))
}

/// Builds the AuthnRequest and its HTTP-Redirect URL.
pub fn build_redirect(
    params: &AuthnRequestParams<'_>,
    now: DateTime<Utc>,
) -> Result<RedirectRequest, AuthnRequestError> {
    let mut url =
        Url::parse(params.idp_sso_url).map_err(|_| AuthnRequestError::BadSsoUrl(sanitize(params.idp_sso_url)))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(AuthnRequestError::BadSsoUrl(sanitize(params.idp_sso_url)));
    }
    if params.relay_state.is_some_and(|r| r.len() > MAX_RELAY_STATE_BYTES) {
        return Err(AuthnRequestError::RelayStateTooLong);
    }

    let request_id = new_request_id();
    let xml = authn_request_xml(params, &request_id, now);

    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(xml.as_bytes()).map_err(|e| AuthnRequestError::Compression(e.to_string()))?;
    let deflated = encoder.finish().map_err(|e| AuthnRequestError::Compression(e.to_string()))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);

    {
        let mut query = url.query_pairs_mut();
        query.append_pair("SAMLRequest", &encoded);
        if let Some(relay_state) = params.relay_state {
            query.append_pair("RelayState", relay_state);
        }
    }

    Ok(RedirectRequest { request_id, issue_instant: now, redirect_url: url.into(), xml })
}

fn authn_request_xml(params: &AuthnRequestParams<'_>, id: &str, now: DateTime<Utc>) -> String {
    let name_id_policy = match params.name_id_format {
        Some(format) => format!("<samlp:NameIDPolicy Format=\"{}\" AllowCreate=\"true\"/>", escape(format)),
        None => "<samlp:NameIDPolicy AllowCreate=\"true\"/>".to_string(),
    };
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{NS_PROTOCOL}\" xmlns:saml=\"{NS_ASSERTION}\" \
ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{destination}\" \
AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"{BINDING_HTTP_POST}\"{force}>\
<saml:Issuer>{issuer}</saml:Issuer>{name_id_policy}</samlp:AuthnRequest>",
        id = escape(id),
        instant = format_instant(now),
        destination = escape(params.idp_sso_url),
        acs = escape(params.acs_url),
        force = if params.force_authn { " ForceAuthn=\"true\"" } else { "" },
        issuer = escape(params.sp_entity_id),
    )
}

/// An AuthnRequest read back from a redirect URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedAuthnRequest {
    /// Request ID.
    pub id: String,
    /// Issuer (the SP entity ID).
    pub issuer: Option<String>,
    /// Destination.
    pub destination: Option<String>,
    /// AssertionConsumerServiceURL.
    pub acs_url: Option<String>,
    /// ProtocolBinding.
    pub protocol_binding: Option<String>,
    /// IssueInstant as written.
    pub issue_instant: Option<String>,
    /// NameIDPolicy Format.
    pub name_id_format: Option<String>,
    /// ForceAuthn.
    pub force_authn: bool,
    /// RelayState query parameter.
    pub relay_state: Option<String>,
}

/// Decodes the `SAMLRequest` of an HTTP-Redirect URL (inflated size bounded).
pub fn decode_redirect(redirect_url: &str) -> Result<DecodedAuthnRequest, AuthnRequestError> {
    let malformed = |m: &str| AuthnRequestError::Malformed(m.to_string());
    let url = Url::parse(redirect_url).map_err(|_| malformed("not a URL"))?;
    let mut saml_request = None;
    let mut relay_state = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "SAMLRequest" => saml_request = Some(value.into_owned()),
            "RelayState" => relay_state = Some(value.into_owned()),
            _ => {}
        }
    }
    let saml_request = saml_request.ok_or_else(|| malformed("no SAMLRequest"))?;
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(saml_request.as_bytes())
        .map_err(|_| malformed("SAMLRequest is not base64"))?;
    let mut inflated = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_INFLATED_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| malformed("SAMLRequest is not raw DEFLATE"))?;
    if inflated.len() > MAX_INFLATED_REQUEST_BYTES {
        return Err(malformed("SAMLRequest inflates beyond the limit"));
    }
    let xml = String::from_utf8(inflated).map_err(|_| malformed("SAMLRequest is not UTF-8"))?;
    if super::prescan::contains_dtd(xml.as_bytes()) {
        return Err(malformed("DTD in SAMLRequest"));
    }
    let doc = parse_strict(&xml).map_err(|_| malformed("SAMLRequest is not well-formed XML"))?;
    let root = doc.root_element();
    if !is(root, NS_PROTOCOL, "AuthnRequest") {
        return Err(malformed("not an AuthnRequest"));
    }
    let issuer = single_child(root, NS_ASSERTION, "Issuer").map_err(|_| malformed("several Issuers"))?.map(text_of);
    let name_id_format = single_child(root, NS_PROTOCOL, "NameIDPolicy")
        .map_err(|_| malformed("several NameIDPolicy"))?
        .and_then(|p| p.attribute("Format"))
        .map(str::to_string);
    let attr = |name: &str| root.attribute(name).map(str::to_string);
    Ok(DecodedAuthnRequest {
        id: attr("ID").ok_or_else(|| malformed("AuthnRequest without ID"))?,
        issuer,
        destination: attr("Destination"),
        acs_url: attr("AssertionConsumerServiceURL"),
        protocol_binding: attr("ProtocolBinding"),
        issue_instant: attr("IssueInstant"),
        name_id_format,
        force_authn: matches!(root.attribute("ForceAuthn"), Some("true") | Some("1")),
        relay_state,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::saml::xml::name_id_format;

    fn params() -> AuthnRequestParams<'static> {
        AuthnRequestParams {
            sp_entity_id: "https://sp.example/saml",
            acs_url: "https://sp.example/saml/acs",
            idp_sso_url: "https://idp.example/sso/saml",
            name_id_format: Some(name_id_format::EMAIL),
            force_authn: false,
            relay_state: Some("/dashboard?tab=1&x=é"),
        }
    }

    #[test]
    fn redirect_round_trips() {
        let now = Utc::now();
        let built = build_redirect(&params(), now).unwrap();
        assert!(built.redirect_url.starts_with("https://idp.example/sso/saml?SAMLRequest="));
        assert!(built.redirect_url.contains("&RelayState="));
        let decoded = decode_redirect(&built.redirect_url).unwrap();
        assert_eq!(decoded.id, built.request_id);
        assert_eq!(decoded.issuer.as_deref(), Some("https://sp.example/saml"));
        assert_eq!(decoded.destination.as_deref(), Some("https://idp.example/sso/saml"));
        assert_eq!(decoded.acs_url.as_deref(), Some("https://sp.example/saml/acs"));
        assert_eq!(decoded.protocol_binding.as_deref(), Some(BINDING_HTTP_POST));
        assert_eq!(decoded.name_id_format.as_deref(), Some(name_id_format::EMAIL));
        assert_eq!(decoded.relay_state.as_deref(), Some("/dashboard?tab=1&x=é"));
        assert_eq!(decoded.issue_instant, Some(format_instant(now)));
        assert!(!decoded.force_authn);
    }

    #[test]
    fn samael_reads_our_request() {
        let built = build_redirect(&params(), Utc::now()).unwrap();
        let parsed: samael::schema::AuthnRequest = built.xml.parse().unwrap();
        assert_eq!(parsed.id, built.request_id);
        assert_eq!(parsed.assertion_consumer_service_url.as_deref(), Some("https://sp.example/saml/acs"));
    }

    #[test]
    fn existing_query_and_force_authn_are_kept() {
        let mut p = params();
        p.idp_sso_url = "https://idp.example/sso?tenant=42";
        p.force_authn = true;
        p.relay_state = None;
        let built = build_redirect(&p, Utc::now()).unwrap();
        assert!(built.redirect_url.starts_with("https://idp.example/sso?tenant=42&SAMLRequest="));
        assert!(!built.redirect_url.contains("RelayState"));
        assert!(decode_redirect(&built.redirect_url).unwrap().force_authn);
    }

    #[test]
    fn ids_are_fresh_ncnames() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 33);
        assert!(a.starts_with('_'));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let long = "r".repeat(MAX_RELAY_STATE_BYTES + 1);
        let with_long = AuthnRequestParams { relay_state: Some(&long), ..params() };
        assert_eq!(build_redirect(&with_long, Utc::now()), Err(AuthnRequestError::RelayStateTooLong));
        for url in ["not a url", "javascript:alert(1)", "file:///etc/passwd", "/relative"] {
            let bad = AuthnRequestParams { idp_sso_url: url, ..params() };
            assert!(matches!(build_redirect(&bad, Utc::now()), Err(AuthnRequestError::BadSsoUrl(_))));
        }
    }

    #[test]
    fn decode_refuses_garbage_and_bombs() {
        assert!(decode_redirect("https://idp.example/sso").is_err());
        assert!(decode_redirect("https://idp.example/sso?SAMLRequest=%%%").is_err());
        // A DEFLATE bomb: 10 MB of zeros compresses to a few kB.
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b'a'; 10 * 1024 * 1024]).unwrap();
        let bomb = base64::engine::general_purpose::STANDARD.encode(encoder.finish().unwrap());
        let mut url = Url::parse("https://idp.example/sso").unwrap();
        url.query_pairs_mut().append_pair("SAMLRequest", &bomb);
        assert_eq!(
            decode_redirect(url.as_str()),
            Err(AuthnRequestError::Malformed("SAMLRequest inflates beyond the limit".into()))
        );
    }
}
