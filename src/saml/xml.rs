//! Small XML helpers shared by the SAML modules: namespaces, algorithm URIs,
//! escaping, xs:dateTime, and a strict parser configuration.
//!
//! Reading is done with `roxmltree`: a namespace-aware, well-formedness
//! checking parser with no network or file access and no DTD support (DTDs
//! are an error). libxml2 only ever sees a document through samael's
//! signature verification, after the checks in `prescan`.

use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

pub(crate) const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub(crate) const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
pub(crate) const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// SAML binding URIs.
pub const BINDING_HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// SAML binding URIs.
pub const BINDING_HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// Common NameID format URIs.
pub mod name_id_format {
    /// `emailAddress` (SAML 1.1 URI, as every IdP emits it).
    pub const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
    /// `unspecified` (SAML 1.1 URI).
    pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
    /// `persistent`: an opaque, stable, per-SP identifier.
    pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    /// `transient`: an opaque identifier valid for one session.
    pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
}

pub(crate) const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub(crate) const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(crate) const ALG_C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";

pub(crate) const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub(crate) const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub(crate) const ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub(crate) const ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub(crate) const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub(crate) const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub(crate) const ALG_ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";

pub(crate) const ALG_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub(crate) const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub(crate) const ALG_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub(crate) const ALG_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// Upper bound on nodes in one document: a real response has a few hundred.
pub(crate) const MAX_NODES: u32 = 20_000;
/// Upper bound on element nesting: real SAML documents stay under 12. samael
/// walks the tree recursively, so deep nesting must never reach it.
pub(crate) const MAX_DEPTH: usize = 48;

/// Parses with no DTD support and a node limit.
pub(crate) fn parse_strict(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let options =
        roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..roxmltree::ParsingOptions::default() };
    roxmltree::Document::parse_with_options(text, options)
}

/// True when `node` is the element `{ns}local`.
pub(crate) fn is(node: roxmltree::Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

/// Element children named `{ns}local`.
pub(crate) fn children<'a, 'input: 'a>(
    node: roxmltree::Node<'a, 'input>,
    ns: &'a str,
    local: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'input>> + 'a {
    node.children().filter(move |c| is(*c, ns, local))
}

/// The only element child named `{ns}local`; `Err` with a message when there are several.
pub(crate) fn single_child<'a, 'input: 'a>(
    node: roxmltree::Node<'a, 'input>,
    ns: &'a str,
    local: &'a str,
) -> Result<Option<roxmltree::Node<'a, 'input>>, String> {
    let mut found = children(node, ns, local);
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("more than one {local} in {}", node.tag_name().name()));
    }
    Ok(first)
}

/// Concatenated text of all descendant text nodes (CDATA included).
pub(crate) fn text_of(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect()
}

/// Escapes text for element content and attribute values.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// xs:dateTime in UTC with a `Z` suffix and millisecond precision.
pub(crate) fn format_instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an xs:dateTime as SAML uses it: a time zone is required (SAML
/// core 1.3.3 says UTC without offset; we accept any explicit offset and
/// convert). Fraction digits beyond nanoseconds (none seen in practice) are
/// refused by the underlying parser.
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn instants_from_every_shape_parse() {
        for text in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.123Z",
            "2024-05-01T10:00:00.1234567Z",
            "2024-05-01T12:00:00+02:00",
        ] {
            let parsed = parse_instant(text).unwrap();
            assert_eq!(parsed.format("%Y-%m-%dT%H:%M:%S").to_string(), "2024-05-01T10:00:00");
        }
        assert!(parse_instant("2024-05-01T10:00:00").is_none());
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn escape_covers_markup_and_whitespace_controls() {
        assert_eq!(escape("a<b>&\"'\n"), "a&lt;b&gt;&amp;&quot;&apos;&#10;");
    }

    #[test]
    fn strict_parser_refuses_dtd() {
        assert!(matches!(parse_strict("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>"), Err(roxmltree::Error::DtdDetected)));
    }
}
