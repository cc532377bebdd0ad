//! Checks on the raw, unauthenticated document before libxml2/libxmlsec1
//! see it.
//!
//! libxmlsec1 acts on a signature before it knows whether the signature is
//! any good: it dereferences every `<ds:Reference URI>` (an `http://` URI is
//! fetched, a `file://` one read: SSRF and local file disclosure), runs every
//! `<ds:Transform>` (XPath, XSLT), and libxml2 would process a DTD. samael
//! does not restrict any of that, so this module does, using roxmltree, a
//! parser without DTD, network or file support:
//!
//! * no `<!DOCTYPE`/`<!ENTITY` anywhere (checked on the bytes, then by the parser);
//! * UTF-8 only (so both parsers read the same characters);
//! * well-formed, at most [`MAX_NODES`] nodes and [`MAX_DEPTH`] levels;
//! * no comments (they split text without affecting the signature) and no
//!   processing instructions inside the document;
//! * root is `samlp:Response`; exactly one `saml:Assertion` in the whole
//!   document, a direct child of the Response; no encrypted content;
//! * every `<ds:Reference>` URI is `""` (whole document, only for a signature
//!   on the root) or `#ID` of the element the signature sits in; no
//!   `RetrievalMethod`, `Object` or `Manifest`;
//! * transforms and canonicalization are enveloped-signature and C14N 1.0 /
//!   exclusive C14N 1.0 *without comments*, nothing else;
//! * signature and digest algorithms are SHA-256 or stronger (SHA-1 only
//!   when explicitly allowed);
//! * signatures sit directly in the Response or the Assertion they sign, at
//!   most one each, one Reference each.
//!
//! The facts gathered here are unauthenticated. The validator uses them only
//! to refuse, to cross-check what samael verified, and for Response fields
//! of an unsigned Response (which SAML leaves unauthenticated anyway).

use roxmltree::{Node, NodeType};

use super::refusal::{sanitize, SamlRefusal};
use super::xml::{
    is, parse_strict, ALG_C14N10, ALG_ECDSA_SHA256, ALG_ECDSA_SHA384, ALG_ECDSA_SHA512, ALG_ENVELOPED, ALG_EXC_C14N,
    ALG_RSA_SHA1, ALG_RSA_SHA256, ALG_RSA_SHA384, ALG_RSA_SHA512, ALG_SHA1, ALG_SHA256, ALG_SHA384, ALG_SHA512,
    MAX_DEPTH, MAX_NODES, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, STATUS_SUCCESS,
};

/// What the raw document claims (unauthenticated).
#[derive(Debug, Clone, Default)]
pub(crate) struct RawFacts {
    pub response_signed: bool,
    pub assertion_signed: bool,
    pub assertion_id: String,
    pub response: RawResponse,
}

/// Response attributes and children as found in the raw document.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawResponse {
    pub version: Option<String>,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    pub issue_instant: Option<String>,
    pub issuer: Option<String>,
    pub issuer_format: Option<String>,
    pub status: Option<String>,
}

/// Refuses `<!DOCTYPE` and `<!ENTITY` wherever they appear (ASCII case-insensitive).
pub(crate) fn contains_dtd(bytes: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 2] = [b"<!doctype", b"<!entity"];
    NEEDLES.iter().any(|needle| bytes.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle)))
}

/// The declared encoding must be absent or UTF-8.
fn check_declared_encoding(xml: &str) -> Result<(), SamlRefusal> {
    let Some(rest) = xml.strip_prefix("<?xml") else {
        return Ok(());
    };
    let Some((declaration, _)) = rest.split_once("?>") else {
        return Err(SamlRefusal::Malformed("unterminated XML declaration".into()));
    };
    let Some((_, after)) = declaration.split_once("encoding") else {
        return Ok(());
    };
    let value: String = after
        .trim_start()
        .trim_start_matches('=')
        .trim_start()
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| *c != '"' && *c != '\'')
        .collect();
    let normalized = value.to_ascii_lowercase();
    if normalized == "utf-8" || normalized == "utf8" {
        Ok(())
    } else {
        Err(SamlRefusal::Malformed(format!("declared encoding {:?}; only UTF-8 is accepted", sanitize(&value))))
    }
}

fn map_parse_error(error: roxmltree::Error) -> SamlRefusal {
    match error {
        roxmltree::Error::DtdDetected
        | roxmltree::Error::EntityReferenceLoop(_)
        | roxmltree::Error::UnknownEntityReference(_, _) => SamlRefusal::XmlDtdRefused,
        roxmltree::Error::NodesLimitReached => {
            SamlRefusal::TooLarge { what: "XML node count", limit: MAX_NODES as usize }
        }
        other => SamlRefusal::Malformed(format!("not well-formed XML: {}", sanitize(&other.to_string()))),
    }
}

fn signature_algorithm_allowed(uri: &str, allow_sha1: bool) -> bool {
    matches!(
        uri,
        ALG_RSA_SHA256 | ALG_RSA_SHA384 | ALG_RSA_SHA512 | ALG_ECDSA_SHA256 | ALG_ECDSA_SHA384 | ALG_ECDSA_SHA512
    ) || (allow_sha1 && uri == ALG_RSA_SHA1)
}

fn digest_algorithm_allowed(uri: &str, allow_sha1: bool) -> bool {
    matches!(uri, ALG_SHA256 | ALG_SHA384 | ALG_SHA512) || (allow_sha1 && uri == ALG_SHA1)
}

fn is_c14n(uri: &str) -> bool {
    uri == ALG_EXC_C14N || uri == ALG_C14N10
}

/// A same-document reference to an element by ID: `#` followed by an NCName-ish
/// token (no parentheses, so no XPointer expressions).
fn is_bare_name_fragment(uri: &str) -> bool {
    match uri.strip_prefix('#') {
        Some(id) => {
            !id.is_empty()
                && id.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !id.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        }
        None => false,
    }
}

fn algorithm(node: Node<'_, '_>) -> String {
    node.attribute("Algorithm").unwrap_or_default().to_string()
}

/// Runs every check listed in the module documentation.
pub(crate) fn prescan(xml: &str, allow_sha1: bool) -> Result<RawFacts, SamlRefusal> {
    if contains_dtd(xml.as_bytes()) {
        return Err(SamlRefusal::XmlDtdRefused);
    }
    check_declared_encoding(xml)?;
    let doc = parse_strict(xml).map_err(map_parse_error)?;
    let root = doc.root_element();

    // Depth, comments, processing instructions. Nodes come in document
    // order, so a parent's depth is known before its children's.
    let mut depths = vec![0usize; doc.descendants().count() + 1];
    for node in doc.root().descendants() {
        let index = node.id().get_usize();
        let parent_depth = node.parent().and_then(|p| depths.get(p.id().get_usize()).copied()).unwrap_or(0);
        match node.node_type() {
            NodeType::Element => {
                let depth = parent_depth + 1;
                if depth > MAX_DEPTH {
                    return Err(SamlRefusal::Malformed(format!("elements nested deeper than {MAX_DEPTH} levels")));
                }
                if let Some(slot) = depths.get_mut(index) {
                    *slot = depth;
                }
            }
            NodeType::Comment => {
                let outside = node.parent().is_some_and(|p| p.is_root());
                return Err(if outside {
                    SamlRefusal::Malformed("comment outside the root element".into())
                } else {
                    SamlRefusal::CommentInSignedText
                });
            }
            NodeType::PI => return Err(SamlRefusal::Malformed("processing instructions are not accepted".into())),
            _ => {}
        }
    }

    if !is(root, NS_PROTOCOL, "Response") {
        return Err(SamlRefusal::Malformed(format!(
            "root element is {:?} in namespace {:?}, not a SAML protocol Response",
            sanitize(root.tag_name().name()),
            sanitize(root.tag_name().namespace().unwrap_or(""))
        )));
    }

    for node in root.descendants() {
        if node.is_element() && node.tag_name().namespace() == Some(NS_ASSERTION) {
            match node.tag_name().name() {
                "EncryptedAssertion" => return Err(SamlRefusal::EncryptedContentUnsupported("EncryptedAssertion")),
                "EncryptedID" => return Err(SamlRefusal::EncryptedContentUnsupported("EncryptedID")),
                "EncryptedAttribute" => return Err(SamlRefusal::EncryptedContentUnsupported("EncryptedAttribute")),
                _ => {}
            }
        }
    }

    let assertions: Vec<Node<'_, '_>> = root.descendants().filter(|n| is(*n, NS_ASSERTION, "Assertion")).collect();
    if assertions.len() > 1 {
        return Err(SamlRefusal::MultipleAssertions(assertions.len()));
    }

    let response = raw_response(root)?;
    match response.status.as_deref() {
        Some(STATUS_SUCCESS) => {}
        Some(other) => return Err(SamlRefusal::StatusNotSuccess(sanitize(other))),
        None => return Err(SamlRefusal::Malformed("Response has no Status/StatusCode".into())),
    }

    let Some(assertion) = assertions.first().copied() else {
        return Err(SamlRefusal::AssertionMissing);
    };
    if assertion.parent() != Some(root) {
        return Err(SamlRefusal::Malformed("the Assertion is not a direct child of the Response".into()));
    }

    // IDs must be unique, or "#ID" would not say which element is signed.
    let mut ids = std::collections::HashSet::new();
    for node in root.descendants().filter(|n| n.is_element()) {
        if let Some(id) = node.attribute("ID") {
            if !ids.insert(id) {
                return Err(SamlRefusal::Malformed(format!("duplicate ID {:?}", sanitize(id))));
            }
        }
    }

    let signatures: Vec<Node<'_, '_>> = root.descendants().filter(|n| is(*n, NS_DSIG, "Signature")).collect();
    if signatures.is_empty() {
        return Err(SamlRefusal::SignatureMissing);
    }

    // Everything libxmlsec1 would dereference or execute, wherever it is.
    for node in root.descendants().filter(|n| n.is_element() && n.tag_name().namespace() == Some(NS_DSIG)) {
        match node.tag_name().name() {
            "Reference" => match node.attribute("URI") {
                Some("") => {}
                Some(uri) if is_bare_name_fragment(uri) => {}
                Some(uri) => return Err(SamlRefusal::ReferenceUriRefused(sanitize(uri))),
                None => return Err(SamlRefusal::ReferenceUriRefused("Reference without URI".into())),
            },
            "RetrievalMethod" => {
                return Err(SamlRefusal::ReferenceUriRefused(format!(
                    "RetrievalMethod {}",
                    sanitize(node.attribute("URI").unwrap_or(""))
                )))
            }
            "Object" | "Manifest" | "SignatureProperties" => {
                return Err(SamlRefusal::SignatureMisplaced(format!("ds:{} is not accepted", node.tag_name().name())))
            }
            _ => {}
        }
    }
    for node in root.descendants().filter(|n| n.is_element() && n.tag_name().namespace() == Some(NS_DSIG)) {
        match node.tag_name().name() {
            "Transform" => {
                let alg = algorithm(node);
                if alg != ALG_ENVELOPED && !is_c14n(&alg) {
                    return Err(SamlRefusal::TransformRefused(sanitize(&alg)));
                }
                // Only exclusive C14N may carry a child: its InclusiveNamespaces.
                for child in node.children().filter(|c| c.is_element()) {
                    let inclusive = alg == ALG_EXC_C14N
                        && is(child, ALG_EXC_C14N, "InclusiveNamespaces")
                        && !child.children().any(|c| c.is_element());
                    if !inclusive {
                        return Err(SamlRefusal::TransformRefused(format!(
                            "{} with a {} parameter",
                            sanitize(&alg),
                            sanitize(child.tag_name().name())
                        )));
                    }
                }
            }
            "CanonicalizationMethod" => {
                let alg = algorithm(node);
                if !is_c14n(&alg) {
                    return Err(SamlRefusal::TransformRefused(sanitize(&alg)));
                }
            }
            _ => {}
        }
    }
    for node in root.descendants().filter(|n| n.is_element() && n.tag_name().namespace() == Some(NS_DSIG)) {
        match node.tag_name().name() {
            "SignatureMethod" => {
                let alg = algorithm(node);
                if !signature_algorithm_allowed(&alg, allow_sha1) {
                    return Err(SamlRefusal::SignatureAlgorithmRefused(sanitize(&alg)));
                }
            }
            "DigestMethod" => {
                let alg = algorithm(node);
                if !digest_algorithm_allowed(&alg, allow_sha1) {
                    return Err(SamlRefusal::DigestAlgorithmRefused(sanitize(&alg)));
                }
            }
            _ => {}
        }
    }

    // Placement: each signature directly inside the element it signs.
    let mut response_signed = false;
    let mut assertion_signed = false;
    for signature in &signatures {
        let parent = signature
            .parent()
            .filter(|p| p.is_element())
            .ok_or_else(|| SamlRefusal::SignatureMisplaced("signature without parent".into()))?;
        let on_root = parent == root;
        let on_assertion = parent == assertion;
        if !on_root && !on_assertion {
            return Err(SamlRefusal::SignatureMisplaced(format!(
                "signature inside {:?}",
                sanitize(parent.tag_name().name())
            )));
        }
        if (on_root && response_signed) || (on_assertion && assertion_signed) {
            return Err(SamlRefusal::SignatureMisplaced("more than one signature on one element".into()));
        }
        let signed_info: Vec<_> = signature.children().filter(|c| is(*c, NS_DSIG, "SignedInfo")).collect();
        let references: Vec<_> =
            signed_info.iter().flat_map(|si| si.children().filter(|c| is(*c, NS_DSIG, "Reference"))).collect();
        let (1, [reference]) = (signed_info.len(), references.as_slice()) else {
            return Err(SamlRefusal::SignatureMisplaced(
                "a signature must have one SignedInfo with one Reference".into(),
            ));
        };
        let uri = reference.attribute("URI").unwrap_or_default();
        let parent_id = parent.attribute("ID").unwrap_or_default();
        let points_at_parent =
            (uri.is_empty() && on_root) || (!parent_id.is_empty() && uri.strip_prefix('#') == Some(parent_id));
        if !points_at_parent {
            return Err(SamlRefusal::SignatureMisplaced(format!(
                "signature in {} references {:?}, not its parent",
                parent.tag_name().name(),
                sanitize(uri)
            )));
        }
        if on_root {
            response_signed = true;
        } else {
            assertion_signed = true;
        }
    }

    Ok(RawFacts {
        response_signed,
        assertion_signed,
        assertion_id: assertion.attribute("ID").unwrap_or_default().to_string(),
        response,
    })
}

/// Response attributes, Issuer and top-level StatusCode of `response`.
pub(crate) fn raw_response(response: Node<'_, '_>) -> Result<RawResponse, SamlRefusal> {
    let malformed = |m: String| SamlRefusal::Malformed(m);
    let issuer = super::xml::single_child(response, NS_ASSERTION, "Issuer").map_err(malformed)?;
    let status = super::xml::single_child(response, NS_PROTOCOL, "Status").map_err(malformed)?;
    let status_code = match status {
        Some(status) => super::xml::single_child(status, NS_PROTOCOL, "StatusCode").map_err(malformed)?,
        None => None,
    };
    Ok(RawResponse {
        version: response.attribute("Version").map(str::to_string),
        destination: response.attribute("Destination").map(str::to_string),
        in_response_to: response.attribute("InResponseTo").map(str::to_string),
        issue_instant: response.attribute("IssueInstant").map(str::to_string),
        issuer: issuer.map(super::xml::text_of),
        issuer_format: issuer.and_then(|i| i.attribute("Format")).map(str::to_string),
        status: status_code.and_then(|c| c.attribute("Value")).map(str::to_string),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dtd_markers_are_found_in_any_case() {
        assert!(contains_dtd(b"<?xml version='1.0'?><!DOCTYPE x><x/>"));
        assert!(contains_dtd(b"<!doctype x>"));
        assert!(contains_dtd(b"<x><!ENTITY a 'b'></x>"));
        assert!(!contains_dtd(b"<x>DOCTYPE</x>"));
    }

    #[test]
    fn only_utf8_declarations_pass() {
        assert!(check_declared_encoding("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>").is_ok());
        assert!(check_declared_encoding("<?xml version='1.0' encoding='utf-8'?><a/>").is_ok());
        assert!(check_declared_encoding("<?xml version=\"1.0\"?><a/>").is_ok());
        assert!(check_declared_encoding("<a/>").is_ok());
        assert!(check_declared_encoding("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>").is_err());
        assert!(check_declared_encoding("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>").is_err());
    }

    #[test]
    fn bare_name_fragments() {
        assert!(is_bare_name_fragment("#_abc-1.2"));
        assert!(is_bare_name_fragment("#id123"));
        assert!(!is_bare_name_fragment("#xpointer(/)"));
        assert!(!is_bare_name_fragment("#xpointer(id('a'))"));
        assert!(!is_bare_name_fragment("#"));
        assert!(!is_bare_name_fragment("#1abc"));
        assert!(!is_bare_name_fragment("http://127.0.0.1/x"));
        assert!(!is_bare_name_fragment("file:///etc/passwd"));
        assert!(!is_bare_name_fragment("#a b"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 5_000;
        let xml = format!(
            "<samlp:Response xmlns:samlp=\"{NS_PROTOCOL}\">{}{}</samlp:Response>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let refusal = prescan(&xml, false).unwrap_err();
        assert!(matches!(refusal, SamlRefusal::Malformed(_)), "{refusal:?}");
    }
}
