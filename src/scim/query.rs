//! List and search requests (RFC 7644 §3.4.2–3): their parameters. How a filter is served
//! (SQL over indexed columns, in-memory evaluation of the rest) is `store::scim_query`.
//!
//! The filter is first compiled against the schema (so every error is the same
//! `invalidFilter` whatever the storage), then translated. A subtree whose leaves all name
//! indexed columns (`id`, `userName`, `externalId`, `displayName`, `emails.value`,
//! `meta.created`, `meta.lastModified`, `active`; for groups `members.value`) becomes one
//! SQL condition with `and`/`or`/`not` preserved, so `userName eq "x"` is an index probe
//! and never a scan. A filter that also names other attributes is split: its translatable
//! top-level `and` terms narrow the candidates in SQL, and the whole filter is then
//! evaluated in memory on the rendered candidates — bounded by [`MAX_SCAN`], beyond which
//! the request is refused with `tooMany` rather than walking a whole large account.
//!
//! Leaves never yield SQL NULL (a NULL column compares as false), so `not (…)` has SCIM's
//! meaning: `not (externalId eq "x")` matches users without an external id, as the
//! in-memory evaluator (`ne` = "no value equals") does.

use serde_json::Value;

use super::error::ScimError;
use super::filter::{AttrPath, Filter};
use super::projection::Projection;

/// Default and largest page (advertised as `filter.maxResults`).
pub const DEFAULT_COUNT: i64 = 100;
pub const MAX_COUNT: i64 = 1000;
/// Most candidates a filter that SQL cannot fully express may be evaluated on.
pub const MAX_SCAN: i64 = 10_000;

/// URN of a search request body (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The parameters of a list (GET) or search (POST `.search`) request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListParams {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    /// 1-based.
    pub start_index: i64,
    pub count: i64,
    pub projection: Projection,
}

impl Default for ListParams {
    fn default() -> Self {
        ListParams {
            filter: None,
            sort_by: None,
            descending: false,
            start_index: 1,
            count: DEFAULT_COUNT,
            projection: Projection::default(),
        }
    }
}

fn int(name: &str, raw: &str) -> Result<i64, ScimError> {
    raw.trim().parse::<i64>().map_err(|_| ScimError::InvalidValue(format!("{name} must be an integer, not {raw:?}")))
}

impl ListParams {
    /// From a query string (`filter`, `sortBy`, `sortOrder`, `startIndex`, `count`,
    /// `attributes`, `excludedAttributes`; names case-insensitive).
    pub fn from_query(query: &str) -> Result<ListParams, ScimError> {
        let mut p = ListParams::default();
        let (mut attributes, mut excluded) = (None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if v.contains('\0') {
                return Err(ScimError::InvalidValue(format!("{k} must not contain the NUL character")));
            }
            match k.to_ascii_lowercase().as_str() {
                "filter" => p.filter = Some(Filter::parse(&v)?),
                "sortby" => p.sort_by = Some(sort_path(&v)?),
                "sortorder" => p.descending = descending(&v)?,
                "startindex" => p.start_index = int("startIndex", &v)?.max(1),
                "count" => p.count = int("count", &v)?.clamp(0, MAX_COUNT),
                "attributes" => attributes = Some(v.into_owned()),
                "excludedattributes" => excluded = Some(v.into_owned()),
                _ => {}
            }
        }
        p.projection = Projection::parse(attributes.as_deref(), excluded.as_deref())?;
        Ok(p)
    }

    /// From a SearchRequest body.
    pub fn from_search(body: &Value) -> Result<ListParams, ScimError> {
        let obj = body.as_object().ok_or_else(|| ScimError::InvalidSyntax("the body must be a JSON object".into()))?;
        let get = |key: &str| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
        if let Some(schemas) = get("schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_URN)))
            });
            if !ok {
                return Err(ScimError::InvalidSyntax(format!("`schemas` must contain \"{SEARCH_REQUEST_URN}\"")));
            }
        }
        let text = |key: &str| -> Result<Option<String>, ScimError> {
            match get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => {
                    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    names
                        .map(|n| Some(n.join(",")))
                        .ok_or_else(|| ScimError::InvalidSyntax(format!("`{key}` must be a list of attribute names")))
                }
                Some(_) => Err(ScimError::InvalidSyntax(format!("`{key}` has the wrong type"))),
            }
        };
        let number = |key: &str| -> Result<Option<i64>, ScimError> {
            match get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => {
                    n.as_i64().map(Some).ok_or_else(|| ScimError::InvalidValue(format!("`{key}` must be an integer")))
                }
                Some(Value::String(s)) => int(key, s).map(Some),
                Some(_) => Err(ScimError::InvalidValue(format!("`{key}` must be an integer"))),
            }
        };
        let mut p = ListParams::default();
        if let Some(f) = text("filter")? {
            p.filter = Some(Filter::parse(&f)?);
        }
        if let Some(s) = text("sortBy")? {
            p.sort_by = Some(sort_path(&s)?);
        }
        if let Some(o) = text("sortOrder")? {
            p.descending = descending(&o)?;
        }
        if let Some(i) = number("startIndex")? {
            p.start_index = i.max(1);
        }
        if let Some(c) = number("count")? {
            p.count = c.clamp(0, MAX_COUNT);
        }
        p.projection = Projection::parse(text("attributes")?.as_deref(), text("excludedAttributes")?.as_deref())?;
        Ok(p)
    }

    pub fn offset(&self) -> i64 {
        self.start_index - 1
    }
}

fn sort_path(raw: &str) -> Result<AttrPath, ScimError> {
    AttrPath::parse(raw.trim()).map_err(|e| ScimError::InvalidValue(format!("sortBy {raw:?}: {e}")))
}

fn descending(raw: &str) -> Result<bool, ScimError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(false),
        "descending" => Ok(true),
        _ => Err(ScimError::InvalidValue(format!("sortOrder must be ascending or descending, not {raw:?}"))),
    }
}
