//! Filter validation and in-memory evaluation with SCIM semantics (RFC 7644 §3.4.2.2).
//!
//! A [`Filter`] is first compiled against a [`ResourceSchema`]: every path is resolved
//! (unknown attribute → `invalidFilter`), the operator is checked against the attribute
//! type (`gt` on a boolean → `invalidFilter`) and the comparison value is converted once
//! (case-folded for `caseExact: false` strings, parsed to an instant for dateTimes). The
//! compiled form then evaluates without allocating on ASCII data, which matters because
//! it runs per resource on list endpoints.
//!
//! Semantics:
//! - A multi-valued attribute matches if **any** of its values matches.
//! - `emails eq "x"` on a complex attribute with a `value` sub-attribute means
//!   `emails.value eq "x"`; other complex attributes need an explicit sub-attribute.
//! - Strings compare per the attribute's `caseExact` (case-insensitive by default, using
//!   Unicode lowercase); `gt`/`lt` order strings lexicographically.
//! - dateTimes compare as instants (`2011-05-13T04:42:34Z` equals `2011-05-13T06:42:34+02:00`);
//!   `co`/`sw`/`ew` on a dateTime match its text.
//! - `pr` matches a value that is not null, not `""`, not `[]` and, for complex values, has
//!   at least one present sub-attribute.
//! - `ne` is `not (eq)`: it matches when no value equals (including when the attribute is
//!   absent), which is what SQL `IS DISTINCT FROM` / `NOT (…)` translations give.
//! - `eq null` means "not present" and `ne null` means "present".
//! - Ordering operators on boolean, binary or complex attributes, substring operators on
//!   boolean or numeric attributes, and type-mismatched values are `invalidFilter`.
//! - Boolean attributes accept the strings `"true"`/`"false"` (any case) as values,
//!   because some clients quote them.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Number, Value};

use super::error::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::schema::{AttrType, AttributeDef, ResolveError, ResourceSchema};

/// A filter validated against a schema, ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: Node,
}

impl CompiledFilter {
    /// Validate `filter` against `schema` and compile it. Errors are `invalidFilter`.
    pub fn compile(filter: &Filter, schema: &ResourceSchema) -> Result<Self, ScimError> {
        Ok(Self { root: compile(filter, Ctx::Root(schema))? })
    }

    /// Compile a value filter (the part inside `attr[…]`) whose paths are relative to the
    /// elements of `parent`, as used by PATCH paths like `emails[type eq "work"]`.
    pub fn compile_value_filter(filter: &Filter, parent: &'static AttributeDef) -> Result<Self, ScimError> {
        if !parent.multi_valued && !parent.is_complex() {
            return Err(ScimError::InvalidFilter(format!(
                "`{}` is neither multi-valued nor complex and cannot take a value filter",
                parent.name
            )));
        }
        Ok(Self { root: compile(filter, Ctx::Element(parent))? })
    }

    /// Whether `value` matches: a whole resource for [`CompiledFilter::compile`], one
    /// element for [`CompiledFilter::compile_value_filter`].
    pub fn matches(&self, value: &Value) -> bool {
        self.root.eval(value)
    }
}

/// Validate `filter` against `schema` without evaluating it.
pub fn validate(filter: &Filter, schema: &ResourceSchema) -> Result<(), ScimError> {
    CompiledFilter::compile(filter, schema).map(|_| ())
}

/// Whether `resource` matches `filter`. An invalid filter matches nothing; call
/// [`validate`] first to report it, or compile once with [`CompiledFilter::compile`] when
/// evaluating against many resources.
pub fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema) -> bool {
    CompiledFilter::compile(filter, schema).is_ok_and(|c| c.matches(resource))
}

// ---------------------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Node {
    Cmp {
        target: Target,
        op: CompareOp,
        operand: Operand,
    },
    Present(Target),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Some element of `target` matches `filter`.
    Any {
        target: Target,
        filter: Box<Node>,
    },
}

/// Where the compared values live, relative to the evaluation root.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// `root[container]?[attr]` and, for each item, `[sub]`.
    Path { container: Option<&'static str>, attr: &'static str, sub: Option<&'static str> },
    /// The root itself (`value` inside a value filter on a simple multi-valued attribute).
    Element,
}

#[derive(Debug, Clone)]
enum Operand {
    /// `value` is pre-lowercased when `fold`.
    Str {
        value: String,
        fold: bool,
    },
    Num(Number),
    Bool(bool),
    Instant(DateTime<Utc>),
}

#[derive(Clone, Copy)]
enum Ctx<'s> {
    Root(&'s ResourceSchema),
    Element(&'static AttributeDef),
}

/// Recursive over `and`/`or`/`not` only; leaf arms live in separate functions to keep
/// this frame small (the depth is bounded by the parser's nesting limit).
fn compile(filter: &Filter, ctx: Ctx<'_>) -> Result<Node, ScimError> {
    match filter {
        Filter::And(terms) => compile_terms(terms, ctx).map(Node::And),
        Filter::Or(terms) => compile_terms(terms, ctx).map(Node::Or),
        Filter::Not(inner) => compile(inner, ctx).map(|n| Node::Not(Box::new(n))),
        Filter::Present(path) => compile_present(path, ctx),
        Filter::ValuePath { path, filter } => compile_value_path(path, filter, ctx),
        Filter::Compare { path, op, value } => compile_compare(path, *op, value, ctx),
    }
}

fn compile_terms(terms: &[Filter], ctx: Ctx<'_>) -> Result<Vec<Node>, ScimError> {
    let mut out = Vec::with_capacity(terms.len());
    for t in terms {
        out.push(compile(t, ctx)?);
    }
    Ok(out)
}

fn compile_present(path: &AttrPath, ctx: Ctx<'_>) -> Result<Node, ScimError> {
    let (target, _) = resolve(path, ctx)?;
    Ok(Node::Present(target))
}

fn compile_value_path(path: &AttrPath, filter: &Filter, ctx: Ctx<'_>) -> Result<Node, ScimError> {
    let Ctx::Root(_) = ctx else {
        return Err(ScimError::InvalidFilter("value filters cannot be nested".into()));
    };
    let (target, def) = resolve(path, ctx)?;
    if path.sub.is_some() || (!def.multi_valued && !def.is_complex()) {
        return Err(ScimError::InvalidFilter(format!(
            "`{path}` is neither multi-valued nor complex and cannot take a value filter"
        )));
    }
    Ok(Node::Any { target, filter: Box::new(compile(filter, Ctx::Element(def))?) })
}

fn resolve(path: &AttrPath, ctx: Ctx<'_>) -> Result<(Target, &'static AttributeDef), ScimError> {
    match ctx {
        Ctx::Root(schema) => {
            let r = schema.resolve(path).map_err(ResolveError::into_invalid_filter)?;
            Ok((
                Target::Path { container: r.container, attr: r.attribute.name, sub: r.sub_attribute.map(|s| s.name) },
                r.leaf(),
            ))
        }
        Ctx::Element(parent) => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(ScimError::InvalidFilter(format!(
                    "`{path}` inside a value filter on `{}` must be a plain sub-attribute name",
                    parent.name
                )));
            }
            if parent.is_complex() {
                let sub = parent.sub_attribute(&path.name).ok_or_else(|| {
                    ScimError::InvalidFilter(format!(
                        "attribute `{}` has no sub-attribute `{}`",
                        parent.name, path.name
                    ))
                })?;
                Ok((Target::Path { container: None, attr: sub.name, sub: None }, sub))
            } else if path.name.eq_ignore_ascii_case("value") {
                Ok((Target::Element, parent))
            } else {
                Err(ScimError::InvalidFilter(format!(
                    "inside a value filter on `{}` only `value` can be referenced",
                    parent.name
                )))
            }
        }
    }
}

fn compile_compare(path: &AttrPath, op: CompareOp, value: &CompValue, ctx: Ctx<'_>) -> Result<Node, ScimError> {
    let (mut target, mut def) = resolve(path, ctx)?;
    if def.is_complex() {
        // `emails eq "x"` compares the `value` sub-attribute.
        match (&mut target, def.sub_attribute("value")) {
            (Target::Path { sub: sub @ None, .. }, Some(v)) => {
                *sub = Some(v.name);
                def = v;
            }
            _ => {
                return Err(ScimError::InvalidFilter(format!(
                    "complex attribute `{path}` must be compared through a sub-attribute"
                )))
            }
        }
    }
    let bad = |why: &str| {
        ScimError::InvalidFilter(format!(
            "`{path} {op} {value}` is not supported: {why} (`{}` is {})",
            def.name,
            def.attr_type.as_str()
        ))
    };

    if let CompValue::Null = value {
        return match op {
            CompareOp::Eq => Ok(Node::Not(Box::new(Node::Present(target)))),
            CompareOp::Ne => Ok(Node::Present(target)),
            _ => Err(bad("null can only be compared with eq or ne")),
        };
    }

    let operand = match def.attr_type {
        AttrType::Complex => return Err(bad("complex attributes cannot be compared")),
        AttrType::Boolean => {
            if op != CompareOp::Eq && op != CompareOp::Ne {
                return Err(bad("booleans only support eq, ne and pr"));
            }
            match value {
                CompValue::Bool(b) => Operand::Bool(*b),
                CompValue::Str(s) => Operand::Bool(parse_bool_str(s).ok_or_else(|| bad("expected true or false"))?),
                _ => return Err(bad("expected true or false")),
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            if op.is_substring() {
                return Err(bad("numbers do not support co, sw or ew"));
            }
            match value {
                CompValue::Num(n) => Operand::Num(n.clone()),
                _ => return Err(bad("expected a number")),
            }
        }
        AttrType::DateTime => {
            let CompValue::Str(s) = value else {
                return Err(bad("expected a dateTime string"));
            };
            if op.is_substring() {
                Operand::Str { value: s.to_lowercase(), fold: true }
            } else {
                Operand::Instant(
                    parse_datetime(s).ok_or_else(|| bad("expected an xsd:dateTime such as 2011-05-13T04:42:34Z"))?,
                )
            }
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => {
            if def.attr_type == AttrType::Binary && op.is_ordering() {
                return Err(bad("binary attributes cannot be ordered"));
            }
            let CompValue::Str(s) = value else {
                return Err(bad("expected a string"));
            };
            let fold = !def.case_exact;
            Operand::Str { value: if fold { s.to_lowercase() } else { s.clone() }, fold }
        }
    };
    let eq_or = |op| Node::Cmp { target, op, operand: operand.clone() };
    Ok(match op {
        CompareOp::Ne => Node::Not(Box::new(eq_or(CompareOp::Eq))),
        op => eq_or(op),
    })
}

// ---------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------

impl Node {
    fn eval(&self, root: &Value) -> bool {
        match self {
            Node::And(terms) => terms.iter().all(|t| t.eval(root)),
            Node::Or(terms) => terms.iter().any(|t| t.eval(root)),
            Node::Not(inner) => !inner.eval(root),
            Node::Present(target) => target.any(root, |v| is_present(v, 0)),
            Node::Any { target, filter } => target.any(root, |elem| filter.eval(elem)),
            Node::Cmp { target, op, operand } => target.any(root, |v| compare(*op, operand, v)),
        }
    }
}

impl Target {
    /// Whether `f` holds for any value at this target (arrays are flattened one level).
    fn any(&self, root: &Value, mut f: impl FnMut(&Value) -> bool) -> bool {
        match *self {
            Target::Element => each(root, &mut f),
            Target::Path { container, attr, sub } => {
                let scope = match container {
                    Some(urn) => get_ci(root, urn),
                    None => Some(root),
                };
                let Some(v) = scope.and_then(|s| get_ci(s, attr)) else {
                    return false;
                };
                match sub {
                    None => each(v, &mut f),
                    Some(sub) => match v {
                        Value::Array(items) => {
                            items.iter().any(|it| get_ci(it, sub).is_some_and(|sv| each(sv, &mut f)))
                        }
                        other => get_ci(other, sub).is_some_and(|sv| each(sv, &mut f)),
                    },
                }
            }
        }
    }
}

fn each(v: &Value, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(&mut *f),
        other => f(other),
    }
}

fn compare(op: CompareOp, operand: &Operand, v: &Value) -> bool {
    match operand {
        Operand::Str { value, fold } => match v {
            Value::String(s) => compare_str(op, s, value, *fold),
            _ => false,
        },
        Operand::Bool(b) => {
            let actual = match v {
                Value::Bool(x) => *x,
                Value::String(s) => match parse_bool_str(s) {
                    Some(x) => x,
                    None => return false,
                },
                _ => return false,
            };
            op == CompareOp::Eq && actual == *b
        }
        Operand::Num(n) => match v {
            Value::Number(x) => compare_num(x, n).is_some_and(|o| ordering_matches(op, o)),
            _ => false,
        },
        Operand::Instant(t) => match v {
            Value::String(s) => parse_datetime(s).is_some_and(|x| ordering_matches(op, x.cmp(t))),
            _ => false,
        },
    }
}

fn ordering_matches(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_num(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Compare resource string `actual` with `operand` (already lowercased when `fold`).
fn compare_str(op: CompareOp, actual: &str, operand: &str, fold: bool) -> bool {
    if fold && !actual.is_ascii() {
        return compare_plain(op, &actual.to_lowercase(), operand);
    }
    if !fold {
        return compare_plain(op, actual, operand);
    }
    // ASCII fast path: lowercase on the fly, no allocation.
    let a = actual.as_bytes();
    let o = operand.as_bytes();
    let eq_at = |start: usize| {
        a.get(start..start + o.len()).is_some_and(|w| w.iter().zip(o).all(|(x, y)| x.to_ascii_lowercase() == *y))
    };
    match op {
        CompareOp::Eq | CompareOp::Ne => (a.len() == o.len() && eq_at(0)) == (op == CompareOp::Eq),
        CompareOp::Sw => a.len() >= o.len() && eq_at(0),
        CompareOp::Ew => a.len() >= o.len() && eq_at(a.len() - o.len()),
        CompareOp::Co => o.is_empty() || (a.len() >= o.len() && (0..=a.len() - o.len()).any(eq_at)),
        _ => ordering_matches(op, a.iter().map(u8::to_ascii_lowercase).cmp(o.iter().copied())),
    }
}

fn compare_plain(op: CompareOp, actual: &str, operand: &str) -> bool {
    match op {
        CompareOp::Eq => actual == operand,
        CompareOp::Ne => actual != operand,
        CompareOp::Co => actual.contains(operand),
        CompareOp::Sw => actual.starts_with(operand),
        CompareOp::Ew => actual.ends_with(operand),
        _ => ordering_matches(op, actual.cmp(operand)),
    }
}

// ---------------------------------------------------------------------------------------
// Shared JSON helpers
// ---------------------------------------------------------------------------------------

/// `v[key]` for an object `v`, trying the exact key first, then a case-insensitive match.
pub(crate) fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object().and_then(|m| map_get_ci(m, key))
}

/// `m[key]`, trying the exact key first, then a case-insensitive match.
pub(crate) fn map_get_ci<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// `"true"`/`"false"` in any case.
pub(crate) fn parse_bool_str(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parse an xsd:dateTime: RFC 3339 with offset, or without offset (taken as UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

const PRESENCE_DEPTH: usize = 16;

/// RFC 7644 `pr`: not null, not empty string, not an empty array, and (for objects) with
/// at least one present member.
pub(crate) fn is_present(v: &Value, depth: usize) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
        Value::Array(items) => depth < PRESENCE_DEPTH && items.iter().any(|x| is_present(x, depth + 1)),
        Value::Object(m) => depth < PRESENCE_DEPTH && m.values().any(|x| is_present(x, depth + 1)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP, USER};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "Ext-42",
            "userName": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara", "formatted": "Ms. Barbara J Jensen III"},
            "displayName": "Babs Jensen",
            "nickName": "",
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "addresses": [{"type": "work", "locality": "Hollywood", "postalCode": "91608"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAw"}],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"a330bc54f0671c9\""
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "urn:ietf:params:scim:schemas:extension:provisor:2.0:User": {
                "userType": "business_plus",
                "addons": {"webinar": true, "powerPack": false},
                "phone": {"extension": 1234, "number": "+15551234"}
            }
        })
    }

    fn m(filter: &str) -> bool {
        let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let c = CompiledFilter::compile(&f, &USER).unwrap_or_else(|e| panic!("{filter}: {e}"));
        c.matches(&user())
    }

    #[test]
    fn operators_on_strings() {
        let cases = [
            (r#"userName eq "bjensen""#, true),
            (r#"userName eq "BJENSEN""#, true),
            (r#"userName eq "bjense""#, false),
            (r#"userName ne "BJENSEN""#, false),
            (r#"userName ne "other""#, true),
            (r#"userName co "JENS""#, true),
            (r#"userName co "x""#, false),
            (r#"userName co """#, true),
            (r#"userName sw "BJ""#, true),
            (r#"userName sw "je""#, false),
            (r#"userName ew "SEN""#, true),
            (r#"userName ew "bj""#, false),
            (r#"userName gt "a""#, true),
            (r#"userName gt "C""#, false),
            (r#"userName ge "BJENSEN""#, true),
            (r#"userName lt "c""#, true),
            (r#"userName le "bjensen""#, true),
            (r#"userName lt "bjensen""#, false),
            (r#"title pr"#, true),
            (r#"nickName pr"#, false),
            (r#"phoneNumbers pr"#, false),
            (r#"locale pr"#, false),
            (r#"name pr"#, true),
            (r#"emails pr"#, true),
            (r#"locale ne "x""#, true),
            (r#"locale eq null"#, true),
            (r#"title eq null"#, false),
            (r#"title ne null"#, true),
        ];
        for (f, want) in cases {
            assert_eq!(m(f), want, "{f}");
        }
    }

    #[test]
    fn case_exact_attributes() {
        assert!(m(r#"id eq "2819c223-7f76-453a-919d-413861904646""#));
        assert!(!m(r#"id eq "2819C223-7F76-453A-919D-413861904646""#));
        assert!(m(r#"externalId eq "Ext-42""#));
        assert!(!m(r#"externalId eq "ext-42""#));
        assert!(!m(r#"externalId sw "ext""#));
        assert!(m(r#"meta.version co "a330bc""#));
        assert!(!m(r#"meta.version co "A330BC""#));
    }

    #[test]
    fn unicode_case_folding() {
        let f = Filter::parse(r#"displayName eq "ÉLODIE""#).unwrap();
        assert!(matches(&f, &json!({"displayName": "élodie"}), &USER));
        let f = Filter::parse(r#"displayName co "LOD""#).unwrap();
        assert!(matches(&f, &json!({"displayName": "Élodie"}), &USER));
    }

    #[test]
    fn booleans_numbers_and_dates() {
        let cases = [
            ("active eq true", true),
            ("active eq false", false),
            ("active ne false", true),
            (r#"active eq "TRUE""#, true),
            ("emails[primary eq true]", true),
            (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
            (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
            (r#"meta.lastModified lt "2011-05-13T06:42:33+02:00""#, false),
            // Would be true if compared as strings ("2011-05-13T04…" > "2011-05-13T00…+01:00" … ).
            (r#"meta.created lt "2010-01-23T05:56:21+01:00""#, false),
            (r#"meta.created gt "2010-01-23T04:56:21.999Z""#, true),
            (r#"meta.created eq "2010-01-23T04:56:22""#, true),
            (r#"meta.lastModified sw "2011-05""#, true),
        ];
        for (f, want) in cases {
            assert_eq!(m(f), want, "{f}");
        }
    }

    #[test]
    fn multi_valued_any_semantics() {
        let cases = [
            (r#"emails.value eq "babs@jensen.org""#, true),
            (r#"emails eq "BABS@jensen.org""#, true),
            (r#"emails co "example.com""#, true),
            (r#"emails ne "babs@jensen.org""#, false),
            (r#"emails.type eq "home""#, true),
            (r#"emails[type eq "work" and value co "@example.com"]"#, true),
            (r#"emails[type eq "home" and value co "@example.com"]"#, false),
            (r#"emails[type eq "work"] and emails[value co "jensen.org"]"#, true),
            (r#"emails[not (type eq "work")]"#, true),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                true,
            ),
            (r#"ims[type eq "xmpp"]"#, false),
            (r#"addresses[type eq "work" and postalCode sw "916"]"#, true),
            (r#"name[givenName eq "barbara"]"#, true),
        ];
        for (f, want) in cases {
            assert_eq!(m(f), want, "{f}");
        }
    }

    #[test]
    fn precedence_not_and_grouping() {
        let cases = [
            // a or (b and c): a true
            (r#"userName eq "bjensen" or title eq "x" and active eq false"#, true),
            // (a or b) and c: c false
            (r#"(userName eq "bjensen" or title eq "x") and active eq false"#, false),
            (r#"not (userName eq "bjensen")"#, false),
            (r#"not (userName eq "x") and not (title pr and active eq false)"#, true),
            (r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#, false),
            (r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#, true),
        ];
        for (f, want) in cases {
            assert_eq!(m(f), want, "{f}");
        }
    }

    #[test]
    fn extension_attributes() {
        let cases = [
            (r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#, true),
            (r#"department eq "Tour Operations""#, true),
            (r#"employeeNumber eq "701984""#, true),
            (r#"manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
                true,
            ),
            (r#"userType eq "Employee""#, true),
            (r#"urn:ietf:params:scim:schemas:extension:provisor:2.0:User:userType eq "BUSINESS_PLUS""#, true),
            (r#"urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons.webinar eq true"#, true),
            (r#"urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons.powerPack eq true"#, false),
            (r#"urn:ietf:params:scim:schemas:extension:provisor:2.0:User:phone.extension eq 1234"#, true),
            (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#, true),
            (r#"URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:USERNAME EQ "bjensen""#, true),
            (r#"costCenter pr"#, false),
        ];
        for (f, want) in cases {
            assert_eq!(m(f), want, "{f}");
        }
    }

    #[test]
    fn groups() {
        let g = json!({
            "displayName": "Tour Guides",
            "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs"}, {"value": "902c246b"}]
        });
        for (f, want) in [
            (r#"members.value eq "902C246B""#, true),
            (r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#, true),
            (r#"members eq "nobody""#, false),
            (r#"displayName eq "tour guides" and members pr"#, true),
        ] {
            let f = Filter::parse(f).unwrap();
            assert_eq!(matches(&f, &g, &GROUP), want, "{f}");
        }
    }

    #[test]
    fn validation_errors() {
        for bad in [
            r#"nope eq "x""#,
            r#"name.nope eq "x""#,
            r#"userName.x eq "x""#,
            r#"urn:example:bad:1.0:User:x eq "x""#,
            "active gt true",
            "active lt false",
            r#"active co "t""#,
            r#"active eq "yes""#,
            "active eq 1",
            r#"name eq "x""#,
            r#"name gt "x""#,
            r#"userName eq 12"#,
            r#"userName eq true"#,
            r#"userName gt null"#,
            r#"x509Certificates.value gt "a""#,
            r#"meta.lastModified gt "yesterday""#,
            r#"meta.lastModified gt 5"#,
            r#"userName[value eq "x"]"#,
            r#"emails[nope eq "x"]"#,
            r#"emails[type.x eq "x"]"#,
            r#"emails[urn:a:b:type eq "x"]"#,
            r#"urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons[type eq "x"]"#,
            r#"members pr"#,
        ] {
            let f = Filter::parse(bad).unwrap();
            let e = validate(&f, &USER).unwrap_err();
            assert_eq!(e.scim_type(), "invalidFilter", "{bad}");
            assert!(!matches(&f, &user(), &USER));
        }
        let f = Filter::parse("members pr").unwrap();
        assert!(validate(&f, &GROUP).is_ok());
    }

    #[test]
    fn numbers() {
        assert_eq!(compare_num(&1.into(), &Number::from_f64(1.0).unwrap()), Some(Ordering::Equal));
        assert_eq!(compare_num(&u64::MAX.into(), &1.into()), Some(Ordering::Greater));
        assert!(compare(CompareOp::Gt, &Operand::Num(2.into()), &json!(2.5)));
        assert!(!compare(CompareOp::Gt, &Operand::Num(2.into()), &json!("3")));
    }

    #[test]
    fn value_filter_on_element() {
        let f = Filter::parse(r#"type eq "work" and value ew "example.com""#).unwrap();
        let emails = USER.core.attribute("emails").unwrap();
        let c = CompiledFilter::compile_value_filter(&f, emails).unwrap();
        assert!(c.matches(&json!({"type": "Work", "value": "a@EXAMPLE.com"})));
        assert!(!c.matches(&json!({"type": "home", "value": "a@example.com"})));
        let active = USER.core.attribute("active").unwrap();
        assert!(CompiledFilter::compile_value_filter(&f, active).is_err());
    }
}
