//! `/Bulk` (RFC 7644 §3.7): many operations in one request.
//!
//! Each operation runs through the same service function as its single-request twin (so
//! the same pipeline, checks and errors), as its own atomic write; Bulk itself is not
//! atomic, as the RFC specifies. `bulkId:<id>` references in a path or anywhere in `data`
//! are replaced by the id the POST that declared `<id>` created. An operation whose
//! reference is declared later waits for it (the RFC allows any order); references that
//! cannot be resolved — unknown, failed, or circular — fail that operation. `failOnErrors`
//! stops processing after that many errors.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::resource::Projection;
use super::{Ctx, Done, IfMatch, ScimFailure, Status};
use crate::error::AppError;
use crate::scim::discovery::MAX_BULK_OPERATIONS;
use crate::scim::error::ScimError;
use crate::service::Services;

pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Op {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

fn field<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn syntax(detail: impl Into<String>) -> ScimFailure {
    ScimError::InvalidSyntax(detail.into()).into()
}

pub(crate) fn parse(request: &Value) -> Result<(Vec<Op>, Option<usize>), ScimFailure> {
    let obj = request.as_object().ok_or_else(|| syntax("the body must be a JSON object"))?;
    let urn_ok = field(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_URN))));
    if !urn_ok {
        return Err(syntax(format!("`schemas` must contain \"{BULK_REQUEST_URN}\"")));
    }
    let fail_on_errors = match field(obj, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
            Some(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return Err(ScimError::InvalidValue("failOnErrors must be a positive integer".into()).into()),
        },
    };
    let items =
        field(obj, "Operations").and_then(Value::as_array).ok_or_else(|| syntax("`Operations` must be an array"))?;
    if items.len() > MAX_BULK_OPERATIONS {
        return Err(ScimFailure::TooManyOperations(format!(
            "{} operations; a Bulk request may carry at most {MAX_BULK_OPERATIONS}",
            items.len()
        )));
    }
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let m = item.as_object().ok_or_else(|| syntax(format!("Operations[{i}] must be an object")))?;
        let text = |key: &str| -> Result<Option<String>, ScimFailure> {
            match field(m, key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(syntax(format!("Operations[{i}].{key} must be a string"))),
            }
        };
        let method = text("method")?.ok_or_else(|| syntax(format!("Operations[{i}].method is required")))?;
        let path = text("path")?.ok_or_else(|| syntax(format!("Operations[{i}].path is required")))?;
        ops.push(Op {
            method: method.to_ascii_uppercase(),
            path,
            bulk_id: text("bulkId")?,
            version: text("version")?,
            data: field(m, "data").cloned(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for op in &ops {
        if let Some(id) = &op.bulk_id {
            if !seen.insert(id.as_str()) {
                return Err(ScimError::InvalidValue(format!("bulkId {id:?} is declared twice")).into());
            }
        }
    }
    Ok((ops, fail_on_errors))
}

/// `bulkId:<x>` references in a string.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.push(id.to_owned());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(m) => m.values().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn op_references(op: &Op) -> Vec<String> {
    let mut out = Vec::new();
    for segment in op.path.split('/') {
        if let Some(id) = segment.strip_prefix("bulkId:") {
            out.push(id.to_owned());
        }
    }
    if let Some(d) = &op.data {
        references(d, &mut out);
    }
    out
}

fn substitute(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|k| ids.get(k)) {
                *s = id.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, ids)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, ids)),
        _ => {}
    }
}

fn substitute_path(path: &str, ids: &HashMap<String, String>) -> String {
    path.split('/')
        .map(|seg| match seg.strip_prefix("bulkId:").and_then(|k| ids.get(k)) {
            Some(id) => id.clone(),
            None => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One operation of a Bulk request as the runner would execute it, for checks that need no
/// database (the fuzz target): its method, whether it addresses Users (else Groups), and its
/// data with every `bulkId:` reference already replaced by a stand-in id.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOp {
    pub method: String,
    pub path: String,
    pub is_users: bool,
    pub data: Option<Value>,
}

/// Parses `request` and resolves each operation's references and resource type as
/// [`run`] does; operations whose path names no resource type, or that reference an
/// undeclared bulkId, are left out (the runner fails them without reading their data).
pub fn plan(request: &Value) -> Result<Vec<PlannedOp>, ScimFailure> {
    let (ops, _) = parse(request)?;
    let ids: HashMap<String, String> = ops
        .iter()
        .filter_map(|o| o.bulk_id.clone())
        .enumerate()
        .map(|(i, b)| (b, format!("00000000-0000-7000-8000-{i:012}")))
        .collect();
    let mut out = Vec::with_capacity(ops.len());
    for op in &ops {
        // The runner fails an operation naming a bulkId nobody declares.
        if op_references(op).iter().any(|r| !ids.contains_key(r)) {
            continue;
        }
        let path = substitute_path(&op.path, &ids);
        let kind = path.trim_matches('/').split('/').next().unwrap_or_default();
        let is_users = if kind.eq_ignore_ascii_case("Users") {
            true
        } else if kind.eq_ignore_ascii_case("Groups") {
            false
        } else {
            continue;
        };
        let mut data = op.data.clone();
        if let Some(d) = data.as_mut() {
            substitute(d, &ids);
        }
        out.push(PlannedOp { method: op.method.clone(), path, is_users, data });
    }
    Ok(out)
}

/// Runs one resolved operation.
async fn execute(svc: &Services, ctx: &Ctx, op: &Op, data: Option<Value>) -> Result<Done, ScimFailure> {
    let segments: Vec<&str> = op.path.trim_matches('/').split('/').collect();
    let (kind, id) = match segments.as_slice() {
        [k] => (*k, None),
        [k, id] if !id.is_empty() => (*k, Some((*id).to_owned())),
        _ => return Err(ScimError::InvalidPath(format!("unsupported Bulk path {:?}", op.path)).into()),
    };
    let users = if kind.eq_ignore_ascii_case("Users") {
        true
    } else if kind.eq_ignore_ascii_case("Groups") {
        false
    } else {
        return Err(ScimFailure::NoResourceType(format!("no resource type at {:?}", op.path)));
    };
    let body = || -> Result<Vec<u8>, ScimFailure> {
        let d = data.as_ref().ok_or_else(|| syntax("`data` is required"))?;
        serde_json::to_vec(d).map_err(|e| AppError::Internal(e.to_string()).into())
    };
    let if_match = IfMatch(op.version.clone());
    let none = Projection::default();
    match (op.method.as_str(), id, users) {
        ("POST", None, true) => super::create_user(svc, ctx, &body()?, none).await,
        ("POST", None, false) => super::create_group(svc, ctx, &body()?, none).await,
        ("PUT", Some(id), true) => super::replace_user(svc, ctx, id, &body()?, if_match, none).await,
        ("PUT", Some(id), false) => super::replace_group(svc, ctx, id, &body()?, if_match, none).await,
        ("PATCH", Some(id), true) => super::patch_user(svc, ctx, id, &body()?, if_match, none).await,
        ("PATCH", Some(id), false) => super::patch_group(svc, ctx, id, &body()?, if_match, none).await,
        ("DELETE", Some(id), true) => super::delete_user(svc, ctx, id, if_match).await,
        ("DELETE", Some(id), false) => super::delete_group(svc, ctx, id, if_match).await,
        (m, _, _) => Err(syntax(format!("method {m} is not allowed on {:?} in a Bulk request", op.path))),
    }
}

/// The result of one operation of a Bulk request; the HTTP edge renders it (status,
/// `response` error body) into the BulkResponse.
#[derive(Debug)]
pub struct BulkResult {
    pub method: String,
    pub bulk_id: Option<String>,
    /// Where the resource is (successful operations).
    pub location: Option<String>,
    /// Its version after the operation, for the `version` ETag.
    pub version: Option<i64>,
    pub outcome: Result<Status, ScimFailure>,
}

/// Processes a BulkRequest: one result per operation attempted, in request order.
pub async fn run(svc: &Services, ctx: &Ctx, request: &Value) -> Result<Vec<BulkResult>, ScimFailure> {
    let (ops, fail_on_errors) = parse(request)?;
    let declared: HashMap<&str, usize> =
        ops.iter().enumerate().filter_map(|(i, o)| o.bulk_id.as_deref().map(|b| (b, i))).collect();
    let mut created: HashMap<String, String> = HashMap::new();
    let mut failed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut results: Vec<Option<BulkResult>> = std::iter::repeat_with(|| None).take(ops.len()).collect();
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut errors = 0usize;

    'passes: loop {
        let mut progressed = false;
        let mut still = Vec::new();
        for &i in &pending {
            let Some(op) = ops.get(i) else { continue };
            let refs = op_references(op);
            let waiting = refs
                .iter()
                .any(|r| !created.contains_key(r) && !failed.contains(r) && declared.contains_key(r.as_str()));
            if waiting {
                still.push(i);
                continue;
            }
            progressed = true;
            let outcome = match refs.iter().find(|r| !created.contains_key(*r)) {
                Some(r) => Err(ScimFailure::UnresolvedReference(format!(
                    "bulkId:{r} does not name a resource created earlier in this request"
                ))),
                None => {
                    let mut resolved = op.clone();
                    resolved.path = substitute_path(&op.path, &created);
                    let mut data = op.data.clone();
                    if let Some(d) = data.as_mut() {
                        substitute(d, &created);
                    }
                    execute(svc, ctx, &resolved, data).await
                }
            };
            let entry = match outcome {
                Ok(done) => {
                    let id = done.body.as_ref().and_then(|b| b["id"].as_str()).map(str::to_owned);
                    if let (Some(b), Some(id)) = (&op.bulk_id, &id) {
                        created.insert(b.clone(), id.clone());
                    }
                    let location = done
                        .body
                        .as_ref()
                        .and_then(|b| b.pointer("/meta/location").and_then(Value::as_str))
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("{}{}", ctx.base, substitute_path(&op.path, &created)));
                    BulkResult {
                        method: op.method.clone(),
                        bulk_id: op.bulk_id.clone(),
                        location: Some(location),
                        version: done.version,
                        outcome: Ok(done.status),
                    }
                }
                Err(f) => {
                    errors += 1;
                    if let Some(b) = &op.bulk_id {
                        failed.insert(b.clone());
                    }
                    BulkResult {
                        method: op.method.clone(),
                        bulk_id: op.bulk_id.clone(),
                        location: None,
                        version: None,
                        outcome: Err(f),
                    }
                }
            };
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(entry);
            }
            if fail_on_errors.is_some_and(|n| errors >= n) {
                break 'passes;
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if !progressed {
            // Every remaining operation waits on another remaining one: a cycle.
            for i in pending.drain(..) {
                let Some(op) = ops.get(i) else { continue };
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(BulkResult {
                        method: op.method.clone(),
                        bulk_id: op.bulk_id.clone(),
                        location: None,
                        version: None,
                        outcome: Err(ScimFailure::UnresolvedReference("circular bulkId references".into())),
                    });
                }
            }
            break;
        }
    }
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_validates_requests() {
        let (ops, fail) = parse(&json!({"schemas": [BULK_REQUEST_URN], "failOnErrors": 2, "Operations": [
            {"method": "post", "path": "/Users", "bulkId": "a", "data": {}},
            {"method": "PATCH", "path": "/Groups/bulkId:g", "version": "W/\"1\""}]}))
        .unwrap();
        assert_eq!(fail, Some(2));
        assert_eq!(ops[0].method, "POST");
        assert_eq!(op_references(&ops[1]), vec!["g".to_owned()]);
        assert!(matches!(parse(&json!({"Operations": []})), Err(ScimFailure::Scim(ScimError::InvalidSyntax(_)))));
        let dup = json!({"schemas": [BULK_REQUEST_URN], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a"}, {"method": "POST", "path": "/Users", "bulkId": "a"}]});
        assert!(matches!(parse(&dup), Err(ScimFailure::Scim(ScimError::InvalidValue(_)))));
        let many: Vec<Value> =
            (0..=MAX_BULK_OPERATIONS).map(|_| json!({"method": "DELETE", "path": "/Users/x"})).collect();
        assert!(matches!(
            parse(&json!({"schemas": [BULK_REQUEST_URN], "Operations": many})),
            Err(ScimFailure::TooManyOperations(_))
        ));
    }

    #[test]
    fn substitutes_references_everywhere() {
        let ids = HashMap::from([("u".to_owned(), "123".to_owned())]);
        let mut data = json!({"members": [{"value": "bulkId:u"}, {"value": "bulkId:other"}], "x": "bulkId:u"});
        substitute(&mut data, &ids);
        assert_eq!(data, json!({"members": [{"value": "123"}, {"value": "bulkId:other"}], "x": "123"}));
        assert_eq!(substitute_path("/Users/bulkId:u", &ids), "/Users/123");
    }
}
