//! PATCH operation paths (RFC 7644 §3.5.2): `PATH = attrPath / valuePath [subAttr]`.
//!
//! Examples: `members`, `name.givenName`, `emails[type eq "work"].value`,
//! `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
//!
//! Parsing is syntactic and reuses the filter lexer and parser, so value filters follow
//! exactly the filter grammar. Malformed paths yield `invalidPath`; a malformed filter
//! inside the brackets yields `invalidFilter` (RFC 7644 §3.12 lists PATCH path filters
//! under `invalidFilter`). Resolution against a schema happens in [`crate::scim::patch`].

use std::fmt;
use std::str::FromStr;

use super::error::ScimError;
use super::filter::{parse_attr_word, AttrPath, Filter, FilterError, Parser, Root, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LEN};

/// A parsed PATCH `path`.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    /// A plain attribute path: `members`, `name.givenName`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`. A path that
    /// names a whole extension schema also parses here (its last URN segment is the name).
    Attr(AttrPath),
    /// A value-selection path `attr[filter]` with an optional trailing sub-attribute,
    /// e.g. `emails[type eq "work"].value`. `attr` has no sub-attribute; the filter's
    /// paths are relative to the elements of `attr`.
    Filtered { attr: AttrPath, filter: Filter, sub: Option<String> },
}

impl PatchPath {
    /// Parse a PATCH path. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, ScimError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ScimError::InvalidPath("empty path".into()));
        }
        if s.len() > DEFAULT_MAX_LEN {
            return Err(ScimError::InvalidPath(format!(
                "path is {} bytes, more than the {DEFAULT_MAX_LEN}-byte limit",
                s.len()
            )));
        }
        let mut p = Parser::new(s, DEFAULT_MAX_DEPTH);
        let (off, word) = p.next_word("attribute path").map_err(path_error)?;
        let attr = parse_attr_word(word, off).map_err(path_error)?;
        if !p.eat_lbracket().map_err(path_error)? {
            let (off, found, at_end) = p.describe_next().map_err(path_error)?;
            if !at_end {
                return Err(ScimError::InvalidPath(format!(
                    "invalid path at byte {off}: expected `[` or end of path, found {found}"
                )));
            }
            return Ok(Self::Attr(attr));
        }
        if attr.sub.is_some() {
            return Err(ScimError::InvalidPath(format!(
                "invalid path at byte {off}: a value filter applies to an attribute, not a sub-attribute"
            )));
        }
        let filter = p.parse(Root::Bracket)?;
        let rest_at = p.consumed_up_to();
        let rest = s.get(rest_at..).unwrap_or_default();
        let sub = if rest.is_empty() {
            None
        } else {
            match rest.strip_prefix('.') {
                Some(name) if super::filter::is_attr_name(name) => Some(name.to_string()),
                _ => {
                    return Err(ScimError::InvalidPath(format!(
                        "invalid path at byte {rest_at}: expected `.subAttribute` or end of path after `]`"
                    )))
                }
            }
        };
        Ok(Self::Filtered { attr, filter, sub })
    }

    /// The attribute the path starts from (without the trailing sub-attribute of a
    /// filtered path).
    pub fn attr(&self) -> &AttrPath {
        match self {
            Self::Attr(a) | Self::Filtered { attr: a, .. } => a,
        }
    }
}

fn path_error(e: FilterError) -> ScimError {
    ScimError::InvalidPath(format!("invalid path at byte {}: {}", e.offset, e.kind))
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attr(a) => write!(f, "{a}"),
            Self::Filtered { attr, filter, sub } => {
                write!(f, "{attr}[{filter}]")?;
                if let Some(sub) = sub {
                    write!(f, ".{sub}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for PatchPath {
    type Err = ScimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::scim::filter::{CompValue, CompareOp};

    #[test]
    fn plain_paths() {
        assert_eq!(PatchPath::parse("members").unwrap(), PatchPath::Attr(AttrPath::new("members")));
        assert_eq!(
            PatchPath::parse(" name.givenName ").unwrap(),
            PatchPath::Attr(AttrPath::with_sub("name", "givenName"))
        );
        let p = PatchPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        let PatchPath::Attr(a) = &p else { panic!() };
        assert_eq!(a.urn.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!((a.name.as_str(), a.sub.as_deref()), ("manager", Some("value")));
        let p = PatchPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").unwrap();
        assert_eq!(p.attr().name, "department");
    }

    #[test]
    fn filtered_paths() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(
            p,
            PatchPath::Filtered {
                attr: AttrPath::new("emails"),
                filter: Filter::Compare {
                    path: AttrPath::new("type"),
                    op: CompareOp::Eq,
                    value: CompValue::Str("work".into()),
                },
                sub: Some("value".into()),
            }
        );
        assert_eq!(p.to_string(), r#"emails[type eq "work"].value"#);
        let p = PatchPath::parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        let PatchPath::Filtered { attr, sub, .. } = &p else { panic!() };
        assert_eq!((attr.name.as_str(), sub), ("members", &None));
        let p = PatchPath::parse(r#"addresses[type eq "work" and primary eq true].streetAddress"#).unwrap();
        assert!(matches!(p, PatchPath::Filtered { ref filter, .. } if filter.conjuncts().len() == 2));
        assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p);
    }

    #[test]
    fn errors() {
        let cases = [
            ("", "invalidPath"),
            ("   ", "invalidPath"),
            ("emails[", "invalidFilter"),
            ("emails[type eq]", "invalidFilter"),
            (r#"emails[type eq "work""#, "invalidFilter"),
            (r#"emails[type eq "work"]value"#, "invalidPath"),
            (r#"emails[type eq "work"]."#, "invalidPath"),
            (r#"emails[type eq "work"].value.x"#, "invalidPath"),
            (r#"emails[type eq "work"] .value"#, "invalidPath"),
            (r#"name.givenName[x pr]"#, "invalidPath"),
            ("a.b.c", "invalidPath"),
            ("members eq", "invalidPath"),
            ("\"members\"", "invalidPath"),
            ("members)", "invalidPath"),
            ("1abc", "invalidPath"),
        ];
        for (src, ty) in cases {
            let e = PatchPath::parse(src).unwrap_err();
            assert_eq!(e.scim_type(), ty, "{src}: {e}");
        }
    }
}
