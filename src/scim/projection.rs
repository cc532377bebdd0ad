//! `attributes` / `excludedAttributes` (RFC 7644 §3.9): which attributes a response
//! carries. Pure JSON work over a rendered resource.

use serde_json::{json, Map, Value};

use super::filter::AttrPath;
use super::schema::{ResourceSchema, Returned};

/// `attributes` / `excludedAttributes` of a request (RFC 7644 §3.9), as paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Parses the comma-separated lists. Malformed names are `invalidValue`... names that
    /// are well-formed but unknown to a resource type are simply never present.
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Projection, super::ScimError> {
        let list = |s: Option<&str>| -> Result<Vec<AttrPath>, super::ScimError> {
            s.unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    AttrPath::parse(p).map_err(|e| super::ScimError::InvalidValue(format!("attribute name {p:?}: {e}")))
                })
                .collect()
        };
        Ok(Projection { attributes: list(attributes)?, excluded: list(excluded)? })
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether the response would contain the top-level attribute `name` (to skip loading
    /// Group members a client excluded).
    pub fn wants(&self, name: &str) -> bool {
        if self.excluded.iter().any(|p| p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case(name)) {
            return false;
        }
        self.attributes.is_empty() || self.attributes.iter().any(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The resource reduced to what was asked for. `id` and `schemas` always stay.
    pub fn apply(&self, resource: Value, schema: &ResourceSchema) -> Value {
        let Value::Object(mut doc) = resource else { return resource };
        if !self.attributes.is_empty() {
            let mut out = Map::new();
            for key in ["schemas", "id"] {
                if let Some(v) = doc.get(key) {
                    out.insert(key.to_owned(), v.clone());
                }
            }
            for path in &self.attributes {
                copy_path(&doc, &mut out, path, schema);
            }
            doc = out;
        }
        for path in &self.excluded {
            remove_path(&mut doc, path, schema);
        }
        self.drop_unrequested(&mut doc, schema);
        Value::Object(doc)
    }

    /// Attributes with `returned: request` leave unless named in `attributes`; extensions
    /// left empty go, and `schemas` lists only the extensions still present.
    fn drop_unrequested(&self, doc: &mut Map<String, Value>, schema: &ResourceSchema) {
        let requested = |container: Option<&str>, name: &str| {
            self.attributes
                .iter()
                .any(|p| schema.resolve(p).is_ok_and(|r| r.container == container && r.attribute.name == name))
        };
        for a in schema.core.attributes.iter().filter(|a| a.returned == Returned::Request) {
            if !requested(None, a.name) {
                doc.remove(a.name);
            }
        }
        for ext in schema.extensions {
            if let Some(Value::Object(m)) = doc.get_mut(ext.id) {
                for a in ext.attributes.iter().filter(|a| a.returned == Returned::Request) {
                    if !requested(Some(ext.id), a.name) {
                        m.remove(a.name);
                    }
                }
            }
            if doc.get(ext.id).is_some_and(|v| v.as_object().is_none_or(Map::is_empty)) {
                doc.remove(ext.id);
            }
            if !doc.contains_key(ext.id) {
                if let Some(Value::Array(schemas)) = doc.get_mut("schemas") {
                    schemas.retain(|s| s.as_str() != Some(ext.id));
                }
            }
        }
    }
}

/// Where `path` lives: (extension container, attribute name, sub-attribute name).
fn locate(
    path: &AttrPath,
    schema: &ResourceSchema,
) -> Option<(Option<&'static str>, &'static str, Option<&'static str>)> {
    if let Some(ext) = schema.extension_for_path(path) {
        return Some((Some(ext.id), "", None));
    }
    let r = schema.resolve(path).ok()?;
    Some((r.container, r.attribute.name, r.sub_attribute.map(|s| s.name)))
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &AttrPath, schema: &ResourceSchema) {
    let Some((container, name, sub)) = locate(path, schema) else { return };
    let (src, dst) = match container {
        Some(urn) => {
            let Some(Value::Object(src)) = from.get(urn) else { return };
            if name.is_empty() {
                to.insert(urn.to_owned(), Value::Object(src.clone()));
                return;
            }
            let dst = to.entry(urn.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(dst) = dst else { return };
            (src, dst)
        }
        None => (from, &mut *to),
    };
    let Some(value) = src.get(name) else { return };
    match sub {
        None => {
            dst.insert(name.to_owned(), value.clone());
        }
        Some(sub) => {
            let keep = |v: &Value| -> Option<Value> {
                let x = v.as_object()?.get(sub)?;
                Some(json!({ sub: x }))
            };
            let picked = match value {
                Value::Array(items) => {
                    let mut merged: Vec<Value> = match dst.get(name) {
                        Some(Value::Array(a)) => a.clone(),
                        _ => vec![Value::Object(Map::new()); items.len()],
                    };
                    for (i, item) in items.iter().enumerate() {
                        if let (Some(Value::Object(slot)), Some(Value::Object(x))) = (merged.get_mut(i), keep(item)) {
                            slot.extend(x);
                        }
                    }
                    Value::Array(merged)
                }
                one => {
                    let mut slot = match dst.get(name) {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Map::new(),
                    };
                    if let Some(Value::Object(x)) = keep(one) {
                        slot.extend(x);
                    }
                    Value::Object(slot)
                }
            };
            dst.insert(name.to_owned(), picked);
        }
    }
}

fn remove_path(doc: &mut Map<String, Value>, path: &AttrPath, schema: &ResourceSchema) {
    let Some((container, name, sub)) = locate(path, schema) else { return };
    if container.is_none() && (name == "id" || name == "schemas") {
        return;
    }
    let scope = match container {
        Some(urn) if name.is_empty() => {
            doc.remove(urn);
            return;
        }
        Some(urn) => match doc.get_mut(urn) {
            Some(Value::Object(m)) => m,
            _ => return,
        },
        None => doc,
    };
    match sub {
        None => {
            scope.remove(name);
        }
        Some(sub) => match scope.get_mut(name) {
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(m) = item {
                        m.remove(sub);
                    }
                }
            }
            Some(Value::Object(m)) => {
                m.remove(sub);
            }
            _ => {}
        },
    }
}
