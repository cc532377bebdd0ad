//! PATCH (RFC 7644 §3.5.2): parse a PatchOp request and apply it to a resource.
//!
//! [`apply`] works on a copy of the resource and is atomic: either every operation
//! applies, or the first failure is returned and nothing changes. The outcome carries the
//! new resource and a [`Change`] per attribute whose value actually changed, so the caller
//! can write only what changed and leave `meta.version`/ETag alone for a no-op request.
//!
//! Semantics follow RFC 7644 §3.5.2.1–3, plus what real clients send:
//! - `op` is case-insensitive (`"Replace"`, `"Add"`, `"Remove"` from Entra ID).
//! - Boolean attributes accept `"True"`/`"False"` strings (Entra ID), any case.
//! - A path-less `add`/`replace` value is an object whose keys are attribute paths
//!   (`active`, `name.givenName`, fully URN-qualified names) or extension URNs whose
//!   objects merge into that extension (Okta: `{"op":"replace","value":{"active":false}}`).
//! - `remove` on a multi-valued path with a `value` array removes the matching values
//!   (Entra ID: `{"op":"Remove","path":"members","value":[{"value":"id1"}]}`).
//! - Multi-valued `add` appends, skipping values already present. Identity is the `value`
//!   sub-attribute (compared per its caseExact; plus `type` when both sides have one), or
//!   whole-value equality when there is no `value`. For an already-present value the
//!   writable sub-attributes sent are merged (immutable ones are kept as stored).
//! - `add` through a value filter that matches nothing creates the element when the filter
//!   is a conjunction of `eq` terms (`emails[type eq "work"].value` creates a work email,
//!   as Entra ID expects); `replace` through a filter that matches nothing is `noTarget`;
//!   `remove` through a filter that matches nothing is a no-op (removal is idempotent).
//! - Setting `primary: true` on one value clears it on the others (RFC 7643 §2.4).
//! - A complex single-valued attribute given a bare string is taken as its `value`
//!   (Entra ID sends the enterprise `manager` as an id string).
//! - readOnly attributes (`id`, `meta`, `groups`, `provisioningIssues`, …) targeted by a
//!   path are `mutability` errors. As keys of a path-less value object they are ignored
//!   when equal to the stored value (Okta echoes `id`) or absent from the stored resource,
//!   and are `mutability` errors otherwise. readOnly sub-attributes inside a value (e.g.
//!   `manager.displayName`) are ignored. Immutable sub-attributes (`members.value`, …) may
//!   be set once; changing or removing them is `mutability`.
//! - Unassigning a required attribute is `mutability`; an unknown path is `invalidPath`;
//!   a value of the wrong type is `invalidValue`; `remove` without a path is `noTarget`.
//! - The `schemas` attribute is maintained automatically: extension URNs are added when
//!   extension data appears and removed when a patch empties the extension; `schemas`
//!   keys inside path-less values and inside extension objects are ignored.
//!
//! Attribute keys are written in their canonical spelling (`username` becomes
//! `userName`) and unassigned values (`null`, `[]`, `{}`) are removed from touched
//! attributes, per RFC 7643 §2.5.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::{Map, Number, Value};

use super::error::ScimError;
use super::eval::{is_present, map_get_ci, parse_bool_str, parse_datetime, CompiledFilter};
use super::filter::{AttrPath, CompValue, CompareOp, Filter};
use super::path::PatchPath;
use super::schema::{AttrType, AttributeDef, Mutability, ResolveError, ResourceSchema, SchemaDef};

/// URN of the PATCH request message (RFC 7644 §3.5.2).
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    /// Parse an `op` value, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("add") {
            Some(Self::Add)
        } else if s.eq_ignore_ascii_case("remove") {
            Some(Self::Remove)
        } else if s.eq_ignore_ascii_case("replace") {
            Some(Self::Replace)
        } else {
            None
        }
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

impl fmt::Display for PatchOpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// `None` when the member is absent; `Some(Value::Null)` when it is `null`.
    pub value: Option<Value>,
}

/// A parsed PatchOp request body.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parse a request body from bytes. Malformed JSON is `invalidSyntax`.
    pub fn from_slice(body: &[u8]) -> Result<Self, ScimError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ScimError::InvalidSyntax(format!("request body is not valid JSON: {e}")))?;
        Self::from_json(&v)
    }

    /// Parse a request body. `schemas` must contain [`PATCH_OP_URN`] and `Operations`
    /// must be a non-empty array. Member names are matched case-insensitively.
    pub fn from_json(body: &Value) -> Result<Self, ScimError> {
        let obj =
            body.as_object().ok_or_else(|| ScimError::InvalidSyntax("PATCH body must be a JSON object".into()))?;
        let has_urn = map_get_ci(obj, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))));
        if !has_urn {
            return Err(ScimError::InvalidSyntax(format!("`schemas` must contain \"{PATCH_OP_URN}\"")));
        }
        let ops = map_get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ScimError::InvalidSyntax("`Operations` must be an array".into()))?;
        if ops.is_empty() {
            return Err(ScimError::InvalidSyntax("`Operations` must not be empty".into()));
        }
        let operations = ops.iter().enumerate().map(|(i, op)| parse_operation(i, op)).collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }
}

fn parse_operation(i: usize, op: &Value) -> Result<PatchOperation, ScimError> {
    let obj = op.as_object().ok_or_else(|| ScimError::InvalidSyntax(format!("Operations[{i}] must be an object")))?;
    let kind = match map_get_ci(obj, "op") {
        Some(Value::String(s)) => PatchOpKind::parse(s).ok_or_else(|| {
            ScimError::InvalidSyntax(format!(
                "Operations[{i}].op must be add, remove or replace, not {:?}",
                truncated(s)
            ))
        })?,
        _ => return Err(ScimError::InvalidSyntax(format!("Operations[{i}].op must be a string"))),
    };
    let path = match map_get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(PatchPath::parse(s)?),
        Some(_) => return Err(ScimError::InvalidPath(format!("Operations[{i}].path must be a string"))),
    };
    let value = map_get_ci(obj, "value").cloned();
    if kind != PatchOpKind::Remove && value.is_none() {
        return Err(ScimError::InvalidValue(format!("Operations[{i}]: `{kind}` requires a value")));
    }
    Ok(PatchOperation { op: kind, path, value })
}

fn truncated(s: &str) -> &str {
    super::filter::truncate(s)
}

/// The result of a successful [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The patched resource (`meta` untouched: the caller bumps it when there are changes).
    pub resource: Value,
    /// One entry per attribute whose value changed, core attributes first.
    pub changes: Vec<Change>,
}

impl PatchOutcome {
    /// True when the request changed nothing: keep the stored resource and its version.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }

    /// The change to the attribute with this canonical name (see [`Change::attribute`]).
    pub fn change(&self, canonical: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.attribute.eq_ignore_ascii_case(canonical))
    }
}

/// How one attribute changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Canonical lowercase attribute name, as [`crate::scim::schema::ResolvedAttr::canonical`]:
    /// `username`, `members`, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager`.
    pub attribute: String,
    pub kind: ChangeKind,
}

/// The shape of a [`Change`].
///
/// Values are copied from the resources as they are, including writeOnly ones such as
/// `password`: do not log changes verbatim.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// A single-valued attribute: old and new values (`None` = unassigned).
    Set { old: Option<Value>, new: Option<Value> },
    /// A multi-valued attribute: values added and removed (a modified value appears in
    /// both). Order-only differences are not changes.
    Elements { added: Vec<Value>, removed: Vec<Value> },
}

/// Apply `request` to `resource` (a resource JSON object as served, extension attributes
/// under their URN). Atomic: on error nothing is returned but the error.
pub fn apply(resource: &Value, request: &PatchRequest, schema: &ResourceSchema) -> Result<PatchOutcome, ScimError> {
    let Value::Object(original) = resource else {
        return Err(ScimError::InvalidValue("the resource is not a JSON object".into()));
    };
    let mut a = Applier { schema, doc: original.clone(), touched: BTreeSet::new() };
    for op in &request.operations {
        a.apply_operation(op)?;
    }
    a.finish();
    let changes = a.diff(original);
    Ok(PatchOutcome { resource: Value::Object(a.doc), changes })
}

// ---------------------------------------------------------------------------------------
// Resolution of paths
// ---------------------------------------------------------------------------------------

struct AttrTarget {
    container: Option<&'static str>,
    attr: &'static AttributeDef,
    sub: Option<&'static AttributeDef>,
    filter: Option<Selector>,
}

struct Selector {
    compiled: CompiledFilter,
    /// For `add` with no match: the element spelled by an all-`eq` filter.
    template: Option<Map<String, Value>>,
    text: String,
}

enum Resolved {
    ExtensionRoot(&'static SchemaDef),
    Attr(AttrTarget),
}

fn resolve_path(path: &PatchPath, schema: &ResourceSchema) -> Result<Resolved, ScimError> {
    match path {
        PatchPath::Attr(p) => {
            if let Some(ext) = schema.extension_for_path(p) {
                return Ok(Resolved::ExtensionRoot(ext));
            }
            let r = schema.resolve(p).map_err(ResolveError::into_invalid_path)?;
            Ok(Resolved::Attr(AttrTarget {
                container: r.container,
                attr: r.attribute,
                sub: r.sub_attribute,
                filter: None,
            }))
        }
        PatchPath::Filtered { attr, filter, sub } => {
            let r = schema.resolve(attr).map_err(ResolveError::into_invalid_path)?;
            let def = r.attribute;
            if !def.multi_valued {
                return Err(ScimError::InvalidPath(format!(
                    "`{attr}` is single-valued; value filters apply to multi-valued attributes"
                )));
            }
            let compiled = CompiledFilter::compile_value_filter(filter, def)?;
            let sub = match sub {
                None => None,
                Some(s) if def.is_complex() => Some(def.sub_attribute(s).ok_or_else(|| {
                    ScimError::InvalidPath(format!("attribute `{}` has no sub-attribute `{s}`", def.name))
                })?),
                Some(s) => {
                    return Err(ScimError::InvalidPath(format!(
                        "`{}` has no sub-attributes, so `.{s}` is invalid",
                        def.name
                    )))
                }
            };
            Ok(Resolved::Attr(AttrTarget {
                container: r.container,
                attr: def,
                sub,
                filter: Some(Selector { compiled, template: element_template(filter, def), text: filter.to_string() }),
            }))
        }
    }
}

/// The element described by a filter made only of `sub eq literal` terms.
fn element_template(filter: &Filter, parent: &'static AttributeDef) -> Option<Map<String, Value>> {
    if !parent.is_complex() {
        return None;
    }
    let mut out = Map::new();
    for term in filter.conjuncts() {
        let Filter::Compare { path, op: CompareOp::Eq, value } = term else {
            return None;
        };
        if path.urn.is_some() || path.sub.is_some() {
            return None;
        }
        let sub = parent.sub_attribute(&path.name)?;
        let v = match value {
            CompValue::Str(s) => Value::String(s.clone()),
            CompValue::Num(n) => Value::Number(n.clone()),
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Null => return None,
        };
        let v = coerce_scalar(sub, &v).ok()?;
        out.insert(sub.name.to_string(), v);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------
// Value coercion (type checking against the schema)
// ---------------------------------------------------------------------------------------

fn invalid(def: &AttributeDef, expected: &str, got: &Value) -> ScimError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ScimError::InvalidValue(format!("`{}` expects {expected}, got {kind}", def.name))
}

/// A whole attribute value: an array for multi-valued attributes (a single value is
/// wrapped), `Null` to unassign.
fn coerce_whole(def: &'static AttributeDef, v: &Value) -> Result<Value, ScimError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if !def.multi_valued {
        return coerce_element(def, v);
    }
    let items: Vec<Value> = match v {
        Value::Array(a) => {
            a.iter().filter(|x| !x.is_null()).map(|x| coerce_element(def, x)).collect::<Result<_, _>>()?
        }
        one => vec![coerce_element(def, one)?],
    };
    Ok(Value::Array(items))
}

/// One value of the attribute: an object with canonical sub-attribute keys for complex
/// attributes (`null` members kept as "unassign" markers), else a scalar.
fn coerce_element(def: &'static AttributeDef, v: &Value) -> Result<Value, ScimError> {
    if !def.is_complex() {
        return coerce_scalar(def, v);
    }
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let sub = def.sub_attribute(k).ok_or_else(|| {
                    ScimError::InvalidValue(format!("attribute `{}` has no sub-attribute `{k}`", def.name))
                })?;
                let x = if x.is_null() { Value::Null } else { coerce_scalar(sub, x)? };
                out.insert(sub.name.to_string(), x);
            }
            Ok(Value::Object(out))
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => match def.sub_attribute("value") {
            Some(value_def) => {
                let mut out = Map::new();
                out.insert(value_def.name.to_string(), coerce_scalar(value_def, v)?);
                Ok(Value::Object(out))
            }
            None => Err(invalid(def, "an object", v)),
        },
        _ => Err(invalid(def, "an object", v)),
    }
}

fn coerce_scalar(def: &AttributeDef, v: &Value) -> Result<Value, ScimError> {
    match def.attr_type {
        AttrType::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) => parse_bool_str(s).map(Value::Bool).ok_or_else(|| invalid(def, "a boolean", v)),
            _ => Err(invalid(def, "a boolean", v)),
        },
        AttrType::Integer => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Value::String(s) => {
                s.trim().parse::<i64>().map(|i| Value::Number(i.into())).map_err(|_| invalid(def, "an integer", v))
            }
            _ => Err(invalid(def, "an integer", v)),
        },
        AttrType::Decimal => match v {
            Value::Number(_) => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| invalid(def, "a decimal number", v)),
            _ => Err(invalid(def, "a decimal number", v)),
        },
        AttrType::DateTime => match v {
            Value::String(s) if parse_datetime(s).is_some() => Ok(v.clone()),
            _ => Err(invalid(def, "an xsd:dateTime string", v)),
        },
        AttrType::String | AttrType::Reference | AttrType::Binary => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(invalid(def, "a string", v)),
        },
        AttrType::Complex => Err(invalid(def, "a sub-attribute value", v)),
    }
}

// ---------------------------------------------------------------------------------------
// JSON slot helpers
// ---------------------------------------------------------------------------------------

/// `map[name]` under its canonical spelling (renaming a differently-cased key), inserted
/// as `Null` when absent.
fn slot<'m>(map: &'m mut Map<String, Value>, name: &str) -> &'m mut Value {
    if !map.contains_key(name) {
        let other = map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
        if let Some(k) = other {
            if let Some(v) = map.remove(&k) {
                map.insert(name.to_string(), v);
            }
        }
    }
    map.entry(name.to_string()).or_insert(Value::Null)
}

fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            *other = Value::Object(Map::new());
            ensure_object(other)
        }
    }
}

/// The value as an array; a stray scalar becomes a one-element array, null an empty one.
fn ensure_array(v: &mut Value) -> &mut Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => {
            let prev = std::mem::take(other);
            *other = Value::Array(if prev.is_null() { Vec::new() } else { vec![prev] });
            ensure_array(other)
        }
    }
}

fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().all(Value::is_null),
        Value::Object(m) => m.values().all(Value::is_null),
        _ => false,
    }
}

/// Remove null members of an object, or null/empty elements of an array (one level,
/// plus null members of array elements).
fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => m.retain(|_, x| !x.is_null()),
        Value::Array(a) => {
            for e in a.iter_mut() {
                if let Value::Object(m) = e {
                    m.retain(|_, x| !x.is_null());
                }
            }
            a.retain(|e| !is_unassigned(e));
        }
        _ => {}
    }
}

fn get_str<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object().and_then(|m| map_get_ci(m, key))
}

fn str_eq(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if !def.case_exact => {
            x.eq_ignore_ascii_case(y) || ((!x.is_ascii() || !y.is_ascii()) && x.to_lowercase() == y.to_lowercase())
        }
        _ => a == b,
    }
}

/// Identity key used to find an existing value equal to a new one (see module docs).
fn identity_key(def: &AttributeDef, v: &Value) -> Option<String> {
    let (key_def, key_val) = if def.is_complex() {
        let value_def = def.sub_attribute("value")?;
        (value_def, get_str(v, "value")?)
    } else {
        (def, v)
    };
    Some(match key_val {
        Value::String(s) if !key_def.case_exact => s.to_lowercase(),
        Value::String(s) => s.clone(),
        other => format!("\u{0}{other}"),
    })
}

/// Whether existing value `a` is the same value as new value `b`.
fn same_element(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    if !def.is_complex() {
        return str_eq(def, a, b);
    }
    let Some(value_def) = def.sub_attribute("value") else {
        return a == b;
    };
    let Some(bv) = get_str(b, "value") else {
        return a == b;
    };
    let Some(av) = get_str(a, "value") else {
        return false;
    };
    if !str_eq(value_def, av, bv) {
        return false;
    }
    match (get_str(a, "type"), get_str(b, "type"), def.sub_attribute("type")) {
        (Some(at), Some(bt), Some(type_def)) => str_eq(type_def, at, bt),
        _ => true,
    }
}

/// Elements of a multi-valued attribute grouped by identity key.
struct ElementIndex {
    keyed: HashMap<String, Vec<usize>>,
    unkeyed: Vec<usize>,
}

impl ElementIndex {
    fn new(def: &AttributeDef, items: &[Value]) -> Self {
        let mut idx = Self { keyed: HashMap::new(), unkeyed: Vec::new() };
        for (i, v) in items.iter().enumerate() {
            idx.insert(def, v, i);
        }
        idx
    }

    fn insert(&mut self, def: &AttributeDef, v: &Value, i: usize) {
        match identity_key(def, v) {
            Some(k) => self.keyed.entry(k).or_default().push(i),
            None => self.unkeyed.push(i),
        }
    }

    fn find(&self, def: &AttributeDef, items: &[Value], v: &Value) -> Option<usize> {
        let candidates = match identity_key(def, v) {
            Some(k) => self.keyed.get(&k).map(Vec::as_slice).unwrap_or_default(),
            None => &self.unkeyed,
        };
        candidates.iter().copied().find(|&i| items.get(i).is_some_and(|e| same_element(def, e, v)))
    }
}

/// Write (or, for `Null`, unassign) `sub` in element `elem`. Returns whether it changed.
///
/// readOnly sub-attributes are server-managed: values for them inside a value object are
/// ignored (paths that target them directly are rejected before getting here). Immutable
/// sub-attributes may only go from unassigned to assigned.
fn set_sub(attr: &AttributeDef, sub: &AttributeDef, elem: &mut Value, v: &Value) -> Result<bool, ScimError> {
    if sub.mutability == Mutability::ReadOnly {
        return Ok(false);
    }
    let obj = ensure_object(elem);
    let current = map_get_ci(obj, sub.name);
    let was_unset = current.is_none_or(is_unassigned);
    let unchanged = match current {
        None => v.is_null(),
        Some(c) => c == v || (is_unassigned(c) && v.is_null()),
    };
    if unchanged {
        return Ok(false);
    }
    if sub.mutability == Mutability::Immutable && !was_unset {
        return Err(ScimError::Mutability(format!("sub-attribute `{}.{}` is immutable", attr.name, sub.name)));
    }
    if v.is_null() && sub.required {
        return Err(required_error(attr, Some(sub)));
    }
    obj.retain(|k, _| !k.eq_ignore_ascii_case(sub.name));
    if !v.is_null() {
        obj.insert(sub.name.to_string(), v.clone());
    }
    Ok(true)
}

/// Drop readOnly sub-attributes from a new value (they are server-managed).
fn strip_read_only(attr: &AttributeDef, v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|k, _| attr.sub_attribute(k).is_none_or(|s| s.mutability != Mutability::ReadOnly));
    }
}

/// Merge the sub-attributes of `new` (a coerced object) into `elem`.
fn merge_object(attr: &AttributeDef, elem: &mut Value, new: &Value) -> Result<bool, ScimError> {
    let mut changed = false;
    if let Value::Object(m) = new {
        for (k, v) in m {
            if let Some(sub) = attr.sub_attribute(k) {
                changed |= set_sub(attr, sub, elem, v)?;
            }
        }
    }
    Ok(changed)
}

fn required_error(attr: &AttributeDef, sub: Option<&AttributeDef>) -> ScimError {
    match sub {
        Some(s) => ScimError::Mutability(format!("`{}.{}` is required and cannot be unassigned", attr.name, s.name)),
        None => ScimError::Mutability(format!("`{}` is required and cannot be unassigned", attr.name)),
    }
}

fn is_primary(v: &Value) -> bool {
    matches!(get_str(v, "primary"), Some(Value::Bool(true)))
}

/// RFC 7643 §2.4: at most one value has `primary: true`; the one set by this operation wins.
fn fix_primary(attr: &AttributeDef, items: &mut [Value], touched: &[usize]) -> Result<(), ScimError> {
    if attr.sub_attribute("primary").is_none() {
        return Ok(());
    }
    let mut winners = touched.iter().copied().filter(|&i| items.get(i).is_some_and(is_primary));
    let Some(winner) = winners.next() else {
        return Ok(());
    };
    if winners.any(|i| i != winner) {
        return Err(ScimError::InvalidValue(format!("only one value of `{}` may have primary set to true", attr.name)));
    }
    for (i, e) in items.iter_mut().enumerate() {
        if i != winner && is_primary(e) {
            if let Value::Object(m) = e {
                m.insert("primary".into(), Value::Bool(false));
            }
        }
    }
    Ok(())
}

/// Append `new` values to `items`, merging into values already present.
fn merge_elements(attr: &AttributeDef, items: &mut Vec<Value>, new: Vec<Value>) -> Result<(), ScimError> {
    let mut index = ElementIndex::new(attr, items);
    let mut touched = Vec::new();
    for mut v in new {
        prune(&mut v);
        if is_unassigned(&v) {
            continue;
        }
        match index.find(attr, items, &v) {
            Some(i) => {
                let mut changed = false;
                if let (Some(existing), Value::Object(m)) = (items.get_mut(i), &v) {
                    for (k, x) in m {
                        let writable = attr
                            .sub_attribute(k)
                            .filter(|s| matches!(s.mutability, Mutability::ReadWrite | Mutability::WriteOnly));
                        let Some(sub) = writable else { continue };
                        // The identity sub-attributes matched under their case rules:
                        // keep the stored spelling.
                        let identity = sub.name == "value" || sub.name == "type";
                        if identity && get_str(existing, sub.name).is_some_and(|cur| str_eq(sub, cur, x)) {
                            continue;
                        }
                        changed |= set_sub(attr, sub, existing, x)?;
                    }
                }
                if changed {
                    touched.push(i);
                }
            }
            None => {
                strip_read_only(attr, &mut v);
                if is_unassigned(&v) {
                    continue;
                }
                index.insert(attr, &v, items.len());
                items.push(v);
                touched.push(items.len() - 1);
            }
        }
    }
    fix_primary(attr, items, &touched)
}

// ---------------------------------------------------------------------------------------
// The applier
// ---------------------------------------------------------------------------------------

struct Applier<'s> {
    schema: &'s ResourceSchema,
    doc: Map<String, Value>,
    /// (extension URN or None, attribute name) of every attribute an operation touched.
    touched: BTreeSet<(Option<&'static str>, &'static str)>,
}

impl Applier<'_> {
    fn apply_operation(&mut self, op: &PatchOperation) -> Result<(), ScimError> {
        let Some(path) = &op.path else {
            return match op.op {
                PatchOpKind::Remove => Err(ScimError::NoTarget("`remove` requires a path".into())),
                kind => match &op.value {
                    Some(Value::Object(m)) => self.apply_object(kind, m),
                    Some(v) => Err(ScimError::InvalidValue(format!(
                        "`{kind}` without a path needs an object value, got {}",
                        json_kind(v)
                    ))),
                    None => Err(ScimError::InvalidValue(format!("`{kind}` requires a value"))),
                },
            };
        };
        match resolve_path(path, self.schema)? {
            Resolved::ExtensionRoot(ext) => self.apply_extension(op.op, ext, op.value.as_ref()),
            Resolved::Attr(t) => self.apply_attr(op.op, &t, op.value.as_ref(), false),
        }
    }

    /// Path-less add/replace: every key of the value object is an attribute path or an
    /// extension URN.
    fn apply_object(&mut self, kind: PatchOpKind, obj: &Map<String, Value>) -> Result<(), ScimError> {
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if let Some(ext) = self.schema.extension_by_urn(key) {
                self.apply_extension(kind, ext, Some(v))?;
                continue;
            }
            let path = AttrPath::parse(key).map_err(|e| {
                ScimError::InvalidPath(format!("invalid attribute name {:?} in value: {}", truncated(key), e.kind))
            })?;
            let r = self.schema.resolve(&path).map_err(ResolveError::into_invalid_path)?;
            let t = AttrTarget { container: r.container, attr: r.attribute, sub: r.sub_attribute, filter: None };
            self.apply_attr(kind, &t, Some(v), true)?;
        }
        Ok(())
    }

    /// An operation whose path (or value key) is a whole extension schema.
    fn apply_extension(
        &mut self,
        kind: PatchOpKind,
        ext: &'static SchemaDef,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        match (kind, value) {
            (PatchOpKind::Remove, _) | (PatchOpKind::Replace, Some(Value::Null)) => {
                let container = ext.id;
                for attr in ext.attributes {
                    let present = map_get_ci(&self.doc, container)
                        .and_then(|c| get_str(c, attr.name))
                        .is_some_and(|v| !is_unassigned(v));
                    if !present || attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    let t = AttrTarget { container: Some(container), attr, sub: None, filter: None };
                    self.apply_attr(PatchOpKind::Remove, &t, None, false)?;
                }
                Ok(())
            }
            (_, Some(Value::Object(m))) => {
                // An extension object serialised on its own may carry `schemas`; as in
                // path-less values, it is not an attribute of the extension.
                for (k, v) in m.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("schemas")) {
                    let path = AttrPath::parse(k).map_err(|e| {
                        ScimError::InvalidPath(format!(
                            "invalid attribute name {:?} in value: {}",
                            truncated(k),
                            e.kind
                        ))
                    })?;
                    let attr = match (&path.urn, ext.attribute(&path.name)) {
                        (None, Some(a)) => a,
                        _ => {
                            return Err(ScimError::InvalidPath(format!(
                                "schema `{}` has no attribute `{}`",
                                ext.id,
                                truncated(k)
                            )))
                        }
                    };
                    let sub = match path.sub.as_deref() {
                        None => None,
                        Some(s) => Some(attr.sub_attribute(s).ok_or_else(|| {
                            ScimError::InvalidPath(format!("attribute `{}` has no sub-attribute `{s}`", attr.name))
                        })?),
                    };
                    let t = AttrTarget { container: Some(ext.id), attr, sub, filter: None };
                    self.apply_attr(kind, &t, Some(v), true)?;
                }
                Ok(())
            }
            (_, Some(v)) => Err(ScimError::InvalidValue(format!(
                "the value for extension `{}` must be an object, got {}",
                ext.id,
                json_kind(v)
            ))),
            (_, None) => Err(ScimError::InvalidValue(format!("`{kind}` requires a value"))),
        }
    }

    fn current(&self, t: &AttrTarget) -> Option<&Value> {
        let scope = match t.container {
            Some(urn) => map_get_ci(&self.doc, urn)?,
            None => return self.attr_value(&self.doc, t),
        };
        self.attr_value(scope.as_object()?, t)
    }

    fn attr_value<'v>(&self, scope: &'v Map<String, Value>, t: &AttrTarget) -> Option<&'v Value> {
        let v = map_get_ci(scope, t.attr.name)?;
        match t.sub {
            None => Some(v),
            Some(sub) => get_str(v, sub.name),
        }
    }

    fn apply_attr(
        &mut self,
        kind: PatchOpKind,
        t: &AttrTarget,
        value: Option<&Value>,
        implicit: bool,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let read_only =
            attr.mutability == Mutability::ReadOnly || t.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly);
        if read_only {
            if implicit && kind != PatchOpKind::Remove {
                if let Some(v) = value {
                    let leaf = t.sub.unwrap_or(attr);
                    let coerced = if t.sub.is_some() { coerce_scalar(leaf, v)? } else { coerce_whole(attr, v)? };
                    match self.current(t) {
                        None => return Ok(()),
                        Some(c) if *c == coerced || (is_unassigned(c) && is_unassigned(&coerced)) => return Ok(()),
                        Some(_) => {}
                    }
                }
            }
            let name = match t.sub {
                Some(s) => format!("{}.{}", attr.name, s.name),
                None => attr.name.to_string(),
            };
            return Err(ScimError::Mutability(format!("attribute `{name}` is readOnly")));
        }
        if kind != PatchOpKind::Remove && value.is_none() {
            return Err(ScimError::InvalidValue(format!("`{kind}` requires a value")));
        }

        self.touched.insert((t.container, attr.name));
        let scope = match t.container {
            None => &mut self.doc,
            Some(urn) => ensure_object(slot(&mut self.doc, urn)),
        };
        let slot = slot(scope, attr.name);
        match (&t.filter, t.sub) {
            (None, None) => whole_attr(kind, attr, slot, value)?,
            (None, Some(sub)) if attr.multi_valued => every_element_sub(kind, attr, sub, slot, value)?,
            (None, Some(sub)) => singular_sub(kind, attr, sub, slot, value)?,
            (Some(sel), sub) => filtered(kind, attr, sub, sel, slot, value)?,
        }
        prune(slot);
        if attr.required {
            if is_unassigned(slot) {
                return Err(required_error(attr, None));
            }
            if matches!(slot, Value::String(s) if s.is_empty()) {
                return Err(ScimError::InvalidValue(format!("`{}` must not be empty", attr.name)));
            }
        }
        Ok(())
    }

    /// Remove unassigned touched attributes and empty extension objects, then keep the
    /// extension URNs in `schemas` in step with the extension data.
    fn finish(&mut self) {
        let touched: Vec<_> = self.touched.iter().copied().collect();
        for (container, name) in touched {
            let scope = match container {
                None => Some(&mut self.doc),
                Some(urn) => self.doc.get_mut(urn).and_then(Value::as_object_mut),
            };
            if let Some(scope) = scope {
                if scope.get(name).is_some_and(is_unassigned) {
                    scope.remove(name);
                }
            }
            if let Some(urn) = container {
                if self.doc.get(urn).is_some_and(|c| c.as_object().is_some_and(Map::is_empty)) {
                    self.doc.remove(urn);
                }
            }
        }
        let extensions: Vec<&'static str> =
            self.touched.iter().filter_map(|(c, _)| *c).collect::<BTreeSet<_>>().into_iter().collect();
        for urn in extensions {
            let present = self.doc.get(urn).is_some_and(|c| is_present(c, 0));
            let Some(Value::Array(schemas)) = self.doc.get_mut("schemas") else {
                continue;
            };
            let listed = schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
            if present && !listed {
                schemas.push(Value::String(urn.to_string()));
                self.touched.insert((None, "schemas"));
            } else if !present && listed {
                schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)));
                self.touched.insert((None, "schemas"));
            }
        }
    }

    /// Changes to touched attributes between `original` and the patched document.
    fn diff(&self, original: &Map<String, Value>) -> Vec<Change> {
        let mut changes = Vec::new();
        for &(container, name) in &self.touched {
            let before = lookup(original, container, name);
            let after = lookup(&self.doc, container, name);
            if before == after {
                continue;
            }
            let def = match container {
                Some(urn) => self.schema.extension_by_urn(urn).and_then(|s| s.attribute(name)),
                None => self.schema.resolve(&AttrPath::new(name)).ok().map(|r| r.attribute),
            };
            let kind = if def.is_some_and(|d| d.multi_valued) {
                let (added, removed) = multiset_diff(before, after);
                if added.is_empty() && removed.is_empty() {
                    continue;
                }
                ChangeKind::Elements { added, removed }
            } else {
                ChangeKind::Set { old: before.cloned(), new: after.cloned() }
            };
            let mut attribute = match container {
                Some(urn) => format!("{urn}:{name}"),
                None => name.to_string(),
            };
            attribute.make_ascii_lowercase();
            changes.push(Change { attribute, kind });
        }
        changes
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The assigned value of an attribute (case-insensitive keys), `None` if unassigned.
fn lookup<'v>(doc: &'v Map<String, Value>, container: Option<&str>, name: &str) -> Option<&'v Value> {
    let scope = match container {
        Some(urn) => map_get_ci(doc, urn)?.as_object()?,
        None => doc,
    };
    map_get_ci(scope, name).filter(|v| !is_unassigned(v))
}

fn multiset_diff(before: Option<&Value>, after: Option<&Value>) -> (Vec<Value>, Vec<Value>) {
    fn items(v: Option<&Value>) -> &[Value] {
        match v {
            Some(Value::Array(a)) => a,
            Some(one) => std::slice::from_ref(one),
            None => &[],
        }
    }
    let (before, after) = (items(before), items(after));
    let mut pool: HashMap<String, usize> = HashMap::new();
    for e in before.iter().filter(|e| !is_unassigned(e)) {
        *pool.entry(canonical_key(e)).or_default() += 1;
    }
    let mut added = Vec::new();
    for e in after.iter().filter(|e| !is_unassigned(e)) {
        match pool.get_mut(&canonical_key(e)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => added.push(e.clone()),
        }
    }
    let mut removed = Vec::new();
    for e in before.iter().filter(|e| !is_unassigned(e)) {
        if let Some(n) = pool.get_mut(&canonical_key(e)) {
            if *n > 0 {
                *n -= 1;
                removed.push(e.clone());
            }
        }
    }
    (added, removed)
}

/// A string that is equal for equal JSON values (object keys sorted).
fn canonical_key(v: &Value) -> String {
    fn write(v: &Value, out: &mut String, depth: usize) {
        if depth > 32 {
            out.push('…');
            return;
        }
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&format!("{k:?}:"));
                    if let Some(x) = m.get(k) {
                        write(x, out, depth + 1);
                    }
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for x in a {
                    write(x, out, depth + 1);
                    out.push(',');
                }
                out.push(']');
            }
            Value::String(s) => out.push_str(&format!("{s:?}")),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out, 0);
    out
}

// ---------------------------------------------------------------------------------------
// Operation shapes
// ---------------------------------------------------------------------------------------

/// `attr` with no filter and no sub-attribute.
fn whole_attr(
    kind: PatchOpKind,
    attr: &'static AttributeDef,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if attr.mutability == Mutability::Immutable {
        let new = match value {
            Some(v) if kind != PatchOpKind::Remove => coerce_whole(attr, v)?,
            _ => Value::Null,
        };
        if !is_unassigned(slot) && *slot != new {
            return Err(ScimError::Mutability(format!("attribute `{}` is immutable", attr.name)));
        }
    }
    match kind {
        PatchOpKind::Remove => match value {
            Some(v) if attr.multi_valued && !v.is_null() => {
                let targets = match coerce_whole(attr, v)? {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                let index = ElementIndex::new(attr, &targets);
                ensure_array(slot).retain(|e| index.find(attr, &targets, e).is_none());
            }
            _ => *slot = Value::Null,
        },
        PatchOpKind::Add | PatchOpKind::Replace => {
            let new = coerce_whole(attr, value.unwrap_or(&Value::Null))?;
            if new.is_null() {
                if kind == PatchOpKind::Add {
                    return Err(ScimError::InvalidValue(format!("`add` to `{}` requires a non-null value", attr.name)));
                }
                *slot = Value::Null;
            } else if attr.multi_valued {
                let Value::Array(new) = new else {
                    return Err(invalid(attr, "an array", &new));
                };
                if kind == PatchOpKind::Replace {
                    *slot = Value::Array(Vec::new());
                }
                merge_elements(attr, ensure_array(slot), new)?;
            } else if attr.is_complex() {
                // RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes not given are left unchanged.
                merge_object(attr, slot, &new)?;
            } else {
                *slot = new;
            }
        }
    }
    Ok(())
}

/// `complex.sub` on a single-valued complex attribute.
fn singular_sub(
    kind: PatchOpKind,
    attr: &'static AttributeDef,
    sub: &'static AttributeDef,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let new = match (kind, value) {
        (PatchOpKind::Remove, _) | (_, None) => Value::Null,
        (_, Some(v)) if v.is_null() => Value::Null,
        (_, Some(v)) => coerce_scalar(sub, v)?,
    };
    if new.is_null() && !slot.is_object() {
        return Ok(());
    }
    set_sub(attr, sub, slot, &new)?;
    Ok(())
}

/// `multi.sub` without a filter: applies to every value (creating one on add/replace when
/// there are none).
fn every_element_sub(
    kind: PatchOpKind,
    attr: &'static AttributeDef,
    sub: &'static AttributeDef,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let new = match (kind, value) {
        (PatchOpKind::Remove, _) | (_, None) => Value::Null,
        (_, Some(v)) if v.is_null() => Value::Null,
        (_, Some(v)) => coerce_scalar(sub, v)?,
    };
    let items = ensure_array(slot);
    if items.is_empty() {
        if !new.is_null() {
            let mut m = Map::new();
            m.insert(sub.name.to_string(), new);
            items.push(Value::Object(m));
        }
        return Ok(());
    }
    let mut touched = Vec::new();
    for (i, e) in items.iter_mut().enumerate() {
        if set_sub(attr, sub, e, &new)? {
            touched.push(i);
        }
    }
    if sub.name == "primary" && new == Value::Bool(true) && items.len() > 1 {
        return Err(ScimError::InvalidValue(format!("only one value of `{}` may have primary set to true", attr.name)));
    }
    fix_primary(attr, items, &touched)
}

/// `multi[filter]` or `multi[filter].sub`.
fn filtered(
    kind: PatchOpKind,
    attr: &'static AttributeDef,
    sub: Option<&'static AttributeDef>,
    sel: &Selector,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let items = ensure_array(slot);
    let matched: Vec<usize> =
        items.iter().enumerate().filter(|(_, e)| sel.compiled.matches(e)).map(|(i, _)| i).collect();
    let no_match = || ScimError::NoTarget(format!("no value of `{}` matches `{}`", attr.name, sel.text));
    let value = value.unwrap_or(&Value::Null);
    match kind {
        PatchOpKind::Remove => match sub {
            None => {
                // `matched` is ascending, so a binary search keeps this linear-ish.
                let mut i = 0;
                items.retain(|_| {
                    let keep = matched.binary_search(&i).is_err();
                    i += 1;
                    keep
                });
            }
            Some(sub) => {
                for &i in &matched {
                    if let Some(e) = items.get_mut(i) {
                        set_sub(attr, sub, e, &Value::Null)?;
                    }
                }
            }
        },
        // `replace` of `emails[type eq "work"].value` on a user without a work address is
        // what Entra ID sends to set one: like `add`, it creates the value the filter
        // describes (RFC 7644 §3.5.2.3 would answer noTarget; we follow the IdPs, and only
        // for filters that describe a value — equality on sub-attributes).
        PatchOpKind::Add | PatchOpKind::Replace if matched.is_empty() && sel.template.is_some() => {
            let mut elem = Value::Object(sel.template.clone().ok_or_else(no_match)?);
            match sub {
                Some(sub) => {
                    let v = if value.is_null() { Value::Null } else { coerce_scalar(sub, value)? };
                    if v.is_null() {
                        return Ok(());
                    }
                    set_sub(attr, sub, &mut elem, &v)?;
                }
                None => {
                    let v = coerce_element(attr, single(value))?;
                    merge_object(attr, &mut elem, &v)?;
                }
            }
            prune(&mut elem);
            items.push(elem);
            let last = items.len() - 1;
            fix_primary(attr, items, &[last])?;
        }
        PatchOpKind::Add | PatchOpKind::Replace if matched.is_empty() => return Err(no_match()),
        PatchOpKind::Add | PatchOpKind::Replace => {
            let mut touched = Vec::new();
            match sub {
                Some(sub) => {
                    let v = if value.is_null() { Value::Null } else { coerce_scalar(sub, value)? };
                    for &i in &matched {
                        if let Some(e) = items.get_mut(i) {
                            if set_sub(attr, sub, e, &v)? {
                                touched.push(i);
                            }
                        }
                    }
                    if sub.name == "primary" && v == Value::Bool(true) && matched.len() > 1 {
                        return Err(ScimError::InvalidValue(format!(
                            "only one value of `{}` may have primary set to true",
                            attr.name
                        )));
                    }
                }
                None => {
                    let v = coerce_element(attr, single(value))?;
                    for &i in &matched {
                        if let Some(e) = items.get_mut(i) {
                            let changed = if kind == PatchOpKind::Replace {
                                let mut fresh = v.clone();
                                prune(&mut fresh);
                                strip_read_only(attr, &mut fresh);
                                let changed = *e != fresh;
                                *e = fresh;
                                changed
                            } else {
                                merge_object(attr, e, &v)?
                            };
                            if changed {
                                touched.push(i);
                            }
                        }
                    }
                }
            }
            fix_primary(attr, items, &touched)?;
        }
    }
    Ok(())
}

/// A one-element array stands for its element (some clients wrap single values).
fn single(v: &Value) -> &Value {
    match v {
        Value::Array(a) if a.len() == 1 => a.first().unwrap_or(v),
        other => other,
    }
}

#[cfg(test)]
mod tests;
