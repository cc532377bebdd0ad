//! The SCIM operations on Users and Groups, independent of how the request arrived (a
//! single HTTP request or one operation of a `/Bulk`).
//!
//! Every write runs as one job of the group-commit writer (`Db::write`): the current row
//! is read, `If-Match` checked, the change applied and the response rendered inside the
//! same transaction, so two updates carrying the same ETag cannot both win. User writes
//! go through the provisioning pipeline; group membership changes through
//! `provisioning::groups` (which writes the membership-event outbox).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use super::adapter::{self, get};
use super::error::{ScimError, ERROR_URN};
use super::patch::{apply, PatchRequest};
use super::query::{plan, ListParams, Plan, MAX_SCAN};
use super::resource::{self, Projection, UserExtras};
use super::schema::{ResourceSchema, GROUP, LIST_RESPONSE_URN, USER};
use crate::error::AppError;
use crate::http::AppState;
use crate::provisioning::{self, Actor, Env, Operation, Source};
use crate::store::models::{GroupRow, NewAudit, UserRow};
use crate::store::scim::{MemberRow, Table};
use crate::store::{self, DbConn, StoreError};

/// A failed SCIM request: an HTTP status and, where RFC 7644 §3.12 has one, a `scimType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl Failure {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Failure {
        Failure { status, scim_type, detail: detail.into() }
    }

    pub fn not_found(what: &str, id: &str) -> Failure {
        Failure::new(404, None, format!("{what} {id} not found"))
    }

    /// The SCIM error body (RFC 7644 §3.12).
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "schemas": [ERROR_URN], "status": self.status.to_string(), "detail": self.detail });
        if let (Some(t), Some(m)) = (self.scim_type, v.as_object_mut()) {
            m.insert("scimType".into(), json!(t));
        }
        v
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Failure {
        Failure::new(e.http_status(), Some(e.scim_type()), e.detail())
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        let detail = e.public_message();
        match &e {
            AppError::BadRequest { .. } => Failure::new(400, Some("invalidValue"), detail),
            AppError::Unauthorized(_) => Failure::new(401, None, detail),
            AppError::Forbidden(_) => Failure::new(403, None, detail),
            AppError::NotFound { .. } | AppError::Gone { .. } => Failure::new(404, None, detail),
            AppError::Conflict { code, .. } if code.ends_with("_taken") || *code == "already_exists" => {
                Failure::new(409, Some("uniqueness"), detail)
            }
            AppError::Conflict { .. } => Failure::new(409, None, detail),
            AppError::PreconditionFailed(_) => Failure::new(412, None, detail),
            AppError::PayloadTooLarge { .. } => Failure::new(413, None, detail),
            AppError::Unavailable(_) => Failure::new(503, None, detail),
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error in SCIM request");
                Failure::new(500, None, detail)
            }
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        AppError::from(e).into()
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Failure {
        AppError::from(e).into()
    }
}

/// Who calls and where their resources live.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account: String,
    pub actor: Actor,
    /// The SCIM service root, e.g. `https://host/scim/v2`.
    pub base: String,
}

/// A successful operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub status: u16,
    pub body: Option<Value>,
    /// The resource's version, for the ETag header.
    pub version: Option<i64>,
    /// For 201: where the new resource lives.
    pub location: Option<String>,
}

impl Done {
    fn resource(status: u16, body: Value, version: i64) -> Done {
        let location = (status == 201).then(|| body["meta"]["location"].as_str().unwrap_or_default().to_owned());
        Done { status, body: Some(body), version: Some(version), location }
    }

    /// The body reduced per `attributes`/`excludedAttributes` (headers keep the full data).
    fn projected(mut self, projection: &Projection, schema: &ResourceSchema) -> Done {
        self.body = self.body.map(|b| projection.apply(b, schema));
        self
    }

    fn no_content() -> Done {
        Done { status: 204, body: None, version: None, location: None }
    }
}

/// `If-Match`: `*`, or a list of entity tags (weak or strong) one of which must be the
/// current version (RFC 7232 §3.1, RFC 7644 §3.14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfMatch(pub Option<String>);

impl IfMatch {
    pub fn check(&self, version: i64) -> Result<(), Failure> {
        let Some(header) = &self.0 else { return Ok(()) };
        if etag_list_matches(header, version) {
            Ok(())
        } else {
            Err(Failure::new(
                412,
                None,
                format!("If-Match {header} does not match the current version {}", resource::etag(version)),
            ))
        }
    }
}

/// Whether a comma-separated entity-tag list (`*`, `W/"3"`, `"3"`) names `version`.
pub fn etag_list_matches(header: &str, version: i64) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"').parse::<i64>().is_ok_and(|v| v == version))
}

fn resource_json(body: &[u8]) -> Result<Value, Failure> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ScimError::InvalidSyntax(format!("the body is not valid JSON: {e}")))?;
    if has_nul(&v) {
        return Err(ScimError::InvalidValue("strings must not contain the NUL character".into()).into());
    }
    Ok(v)
}

/// NUL cannot be stored in PostgreSQL text (and is never meaningful in SCIM): refusing it
/// up front keeps such input a 400 rather than a database error.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
        _ => false,
    }
}

fn patch_request(body: &[u8]) -> Result<PatchRequest, Failure> {
    Ok(PatchRequest::from_json(&resource_json(body)?)?)
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Renders users with their groups and phone lines, loaded in a few batch queries.
fn render_users(c: &mut DbConn, account: &str, rows: &[UserRow], base: &str) -> Result<Vec<Value>, Failure> {
    if let [row] = rows {
        // One user (a lookup or a write): the per-user statements are prepared once.
        let groups = store::groups::groups_of_user(c, &row.id)?;
        let phone = store::users::phone(c, &row.id)?;
        let sites = match phone.as_ref().and_then(|p| p.site_id.as_ref()) {
            Some(_) => store::phone::sites(c, account)?,
            None => Vec::new(),
        };
        let extras = UserExtras {
            groups: groups.iter().map(|(id, name)| (id.as_str(), name.as_str())).collect(),
            phone: phone.as_ref(),
            sites: &sites,
        };
        return Ok(vec![resource::user(row, &extras, base)]);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let memberships = store::scim::memberships_of(c, &ids)?;
    let (phones, sites) = store::scim::phones_and_sites(c, account, &ids)?;
    let mut groups: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (user, gid, name) in &memberships {
        groups.entry(user.as_str()).or_default().push((gid.as_str(), name.as_str()));
    }
    Ok(rows
        .iter()
        .map(|row| {
            let extras = UserExtras {
                groups: groups.remove(row.id.as_str()).unwrap_or_default(),
                phone: phones.iter().find(|p| p.user_id == row.id),
                sites: &sites,
            };
            resource::user(row, &extras, base)
        })
        .collect())
}

fn render_user(c: &mut DbConn, account: &str, row: &UserRow, base: &str) -> Result<Value, Failure> {
    let mut v = render_users(c, account, std::slice::from_ref(row), base)?;
    v.pop().ok_or_else(|| Failure::new(500, None, "rendering produced nothing"))
}

fn render_groups(c: &mut DbConn, rows: &[GroupRow], with_members: bool, base: &str) -> Result<Vec<Value>, Failure> {
    if !with_members {
        return Ok(rows.iter().map(|g| resource::group(g, None, base)).collect());
    }
    let ids: Vec<String> = rows.iter().map(|g| g.id.clone()).collect();
    let members = store::scim::members_of(c, &ids)?;
    let mut by_group: HashMap<&str, Vec<&MemberRow>> = HashMap::new();
    for m in &members {
        by_group.entry(m.group_id.as_str()).or_default().push(m);
    }
    Ok(rows
        .iter()
        .map(|g| {
            let list = by_group.remove(g.id.as_str()).unwrap_or_default();
            resource::group(g, Some(&list), base)
        })
        .collect())
}

fn render_group(c: &mut DbConn, row: &GroupRow, with_members: bool, base: &str) -> Result<Value, Failure> {
    let mut v = render_groups(c, std::slice::from_ref(row), with_members, base)?;
    v.pop().ok_or_else(|| Failure::new(500, None, "rendering produced nothing"))
}

fn find_user(c: &mut DbConn, account: &str, id: &str) -> Result<UserRow, Failure> {
    store::users::find(c, account, id)?.ok_or_else(|| Failure::not_found("User", id))
}

fn find_group(c: &mut DbConn, account: &str, id: &str) -> Result<GroupRow, Failure> {
    store::groups::find(c, account, id)?.ok_or_else(|| Failure::not_found("Group", id))
}

/// GET /Users/{id}.
pub async fn get_user(state: &AppState, ctx: &Ctx, id: String, projection: Projection) -> Result<Done, Failure> {
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let (body, version) = state
        .db
        .read(move |c| {
            let row = find_user(c, &account, &id)?;
            Ok::<_, Failure>((render_user(c, &account, &row, &base)?, row.version))
        })
        .await?;
    Ok(Done::resource(200, body, version).projected(&projection, &USER))
}

/// GET /Groups/{id}.
pub async fn get_group(state: &AppState, ctx: &Ctx, id: String, projection: Projection) -> Result<Done, Failure> {
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let with_members = projection.wants("members");
    let (body, version) = state
        .db
        .read(move |c| {
            let row = find_group(c, &account, &id)?;
            Ok::<_, Failure>((render_group(c, &row, with_members, &base)?, row.version))
        })
        .await?;
    Ok(Done::resource(200, body, version).projected(&projection, &GROUP))
}

/// The resource types a list or search covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn schema(self) -> &'static ResourceSchema {
        match self {
            Kind::Users => &USER,
            Kind::Groups => &GROUP,
        }
    }

    fn table(self) -> Table {
        match self {
            Kind::Users => Table::Users,
            Kind::Groups => Table::Groups,
        }
    }
}

/// One page of one resource type: (total matches, resources of the page).
fn query_kind(
    c: &mut DbConn,
    kind: Kind,
    account: &str,
    base: &str,
    params: &ListParams,
    plan: &Plan,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Value>), Failure> {
    let table = kind.table();
    let with_members = kind == Kind::Groups && params.projection.wants("members");
    let render = |c: &mut DbConn, ids: &[String]| -> Result<Vec<Value>, Failure> {
        match kind {
            Kind::Users => {
                let rows = store::scim::users_by_ids(c, account, ids)?;
                render_users(c, account, &rows, base)
            }
            Kind::Groups => {
                let rows = store::scim::groups_by_ids(c, account, ids)?;
                render_groups(c, &rows, with_members, base)
            }
        }
    };
    if let Some((key, value)) = super::query::key_lookup(params, kind.schema(), table) {
        return Ok(match kind {
            Kind::Users => {
                let (rows, total) = store::scim::users_where(c, account, key, &value, limit, offset)?;
                (total, render_users(c, account, &rows, base)?)
            }
            Kind::Groups => {
                let (rows, total) = store::scim::groups_where(c, account, key, &value, limit, offset)?;
                (total, render_groups(c, &rows, with_members, base)?)
            }
        });
    }
    if let (true, Some(order)) = (plan.exact(), &plan.order) {
        let ids = store::scim::page_ids(c, table, account, plan.sql.as_ref(), order, limit, offset)?;
        let fetched = ids.len() as i64;
        let total = if offset == 0 && fetched < limit {
            fetched
        } else {
            store::scim::count(c, table, account, plan.sql.as_ref())?
        };
        return Ok((total, render(c, &ids)?));
    }
    // Part of the filter or the order is not SQL: evaluate on the (bounded) candidates.
    let candidates = store::scim::count(c, table, account, plan.sql.as_ref())?;
    if candidates > MAX_SCAN {
        return Err(ScimError::TooMany(format!(
            "this filter or sort order needs {candidates} resources evaluated one by one (at most {MAX_SCAN}); \
             narrow it with an indexed attribute (id, userName, externalId, emails.value, displayName, meta.lastModified)"
        ))
        .into());
    }
    let order = super::query::default_order(table);
    let ids = store::scim::page_ids(c, table, account, plan.sql.as_ref(), &order, MAX_SCAN, 0)?;
    let mut resources = render(c, &ids)?;
    if let Some(f) = &plan.residual {
        resources.retain(|r| f.matches(r));
    }
    if let Some(path) = &params.sort_by {
        sort_in_memory(&mut resources, path, kind.schema(), params.descending);
    }
    let total = resources.len() as i64;
    let page = resources.into_iter().skip(offset.max(0) as usize).take(limit.max(0) as usize).collect();
    Ok((total, page))
}

/// Sorts by the first (primary, if marked) value of `path`; resources without one last.
fn sort_in_memory(resources: &mut [Value], path: &super::AttrPath, schema: &ResourceSchema, descending: bool) {
    let Ok(r) = schema.resolve(path) else { return };
    let key = |v: &Value| -> Option<String> {
        let scope = match r.container {
            Some(urn) => get(v, urn)?,
            None => v,
        };
        let mut x = get(scope, r.attribute.name)?;
        if let Value::Array(items) = x {
            x = items.iter().find(|e| get(e, "primary") == Some(&Value::Bool(true))).or(items.first())?;
        }
        let leaf = match (r.sub_attribute, x) {
            (Some(sub), _) => get(x, sub.name)?,
            (None, Value::Object(_)) => get(x, "value")?,
            (None, _) => x,
        };
        Some(match leaf {
            Value::String(s) if !r.leaf().case_exact => s.to_lowercase(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    resources.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) if descending => y.cmp(&x),
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index,
        "Resources": resources,
    })
}

/// GET /Users, GET /Groups, POST …/.search.
pub async fn list(state: &AppState, ctx: &Ctx, kind: Kind, params: ListParams) -> Result<Done, Failure> {
    let plan = plan(&params, kind.schema(), kind.table(), &ctx.account)?;
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let p = params.clone();
    let (total, page) =
        state.db.read(move |c| query_kind(c, kind, &account, &base, &p, &plan, p.offset(), p.count)).await?;
    let page = page.into_iter().map(|r| params.projection.apply(r, kind.schema())).collect();
    Ok(Done { status: 200, body: Some(list_response(total, params.start_index, page)), version: None, location: None })
}

/// POST /.search: Users, then Groups, paged as one list. A filter naming an attribute one
/// resource type lacks simply matches none of that type.
pub async fn search_all(state: &AppState, ctx: &Ctx, params: ListParams) -> Result<Done, Failure> {
    let mut plans = Vec::new();
    let mut first_error = None;
    for kind in [Kind::Users, Kind::Groups] {
        match plan(&params, kind.schema(), kind.table(), &ctx.account) {
            Ok(p) => plans.push((kind, p)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if plans.is_empty() {
        if let Some(e) = first_error {
            return Err(e.into());
        }
    }
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let p = params.clone();
    let results = state
        .db
        .read(move |c| {
            let mut offset = p.offset();
            let mut room = p.count;
            let mut total = 0;
            let mut out = Vec::new();
            for (kind, plan) in &plans {
                let (n, page) = query_kind(c, *kind, &account, &base, &p, plan, offset, room)?;
                total += n;
                offset = (offset - n).max(0);
                room -= page.len() as i64;
                out.extend(page.into_iter().map(|r| (*kind, r)));
            }
            Ok::<_, Failure>((total, out))
        })
        .await?;
    let (total, page) = results;
    let page = page.into_iter().map(|(kind, r)| params.projection.apply(r, kind.schema())).collect();
    Ok(Done { status: 200, body: Some(list_response(total, params.start_index, page)), version: None, location: None })
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

fn stored_doc(row: &UserRow) -> Value {
    serde_json::from_str(&row.scim).unwrap_or_else(|_| json!({}))
}

/// The user a write leaves: rendered in the job (it needed reads), or a new plain user
/// whose resource is built from its row after the commit, off the writer thread.
enum Written {
    Rendered(Value, i64),
    Bare(Box<UserRow>),
}

impl Written {
    fn into_resource(self, base: &str) -> (Value, i64) {
        match self {
            Written::Rendered(v, version) => (v, version),
            Written::Bare(row) => (resource::user(&row, &UserExtras::default(), base), row.version),
        }
    }
}

/// Runs a change through the pipeline and renders the user it leaves.
fn run_user_change(
    c: &mut DbConn,
    env: &Env,
    ctx: &Ctx,
    mut change: provisioning::IdentityChange,
    user_id: Option<&str>,
) -> Result<Written, Failure> {
    if let Some(id) = user_id {
        let groups: Vec<String> = store::groups::groups_of_user(c, id)?.into_iter().map(|(_, name)| name).collect();
        if !groups.is_empty() {
            change.attributes.insert("groups".into(), groups);
        }
        if store::users::phone(c, id)?.is_none() {
            // Clearing the phone line of a user without one is nothing to do (and must not
            // read as "phone fields sent" on an account without phone).
            forget_clears(&mut change.explicit.phone);
        }
    }
    let applied = provisioning::run(c, env, change)?;
    let row = applied.user.ok_or_else(|| Failure::new(500, None, "the pipeline returned no user"))?;
    // A new user without groups or a phone line needs no further reads (the hot path of
    // a bulk push); otherwise render from the store. A placement rule may have moved the
    // user into a sub account: render it there.
    let bare = applied.outcome.created
        && !applied.outcome.changes.iter().any(|c| c.field == "groups" || c.field.starts_with("phone"));
    if bare {
        return Ok(Written::Bare(Box::new(row)));
    }
    Ok(Written::Rendered(render_user(c, &row.account_id.clone(), &row, &ctx.base)?, row.version))
}

fn forget_clears(p: &mut provisioning::PhoneFields) {
    fn keep<T>(f: &mut provisioning::Field<T>) {
        if matches!(f, provisioning::Field::Clear) {
            *f = provisioning::Field::Keep;
        }
    }
    keep(&mut p.site);
    keep(&mut p.extension);
    keep(&mut p.number);
    keep(&mut p.calling_plan);
    if p.roles.as_ref().is_some_and(|r| r.is_empty()) {
        p.roles = None;
    }
}

/// POST /Users.
pub async fn create_user(state: &AppState, ctx: &Ctx, body: &[u8], projection: Projection) -> Result<Done, Failure> {
    let doc = adapter::normalize(&resource_json(body)?, &USER)?;
    let change = adapter::user_change(&ctx.account, &ctx.actor, Operation::Create, &doc, None)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let written = state.db.write(move |c| run_user_change(c, &env, &ctx2, change, None)).await?;
    let (body, version) = written.into_resource(&ctx.base);
    Ok(Done::resource(201, body, version).projected(&projection, &USER))
}

/// PUT /Users/{id}: the body replaces the resource (see `adapter` for absent attributes).
pub async fn replace_user(
    state: &AppState,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, Failure> {
    let doc = adapter::normalize(&resource_json(body)?, &USER)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let (body, version) = state
        .db
        .write(move |c| {
            store::scim::lock_user(c, &ctx2.account, &id)?;
            let row = find_user(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            let op = Operation::Update { user_id: row.id.clone(), expected_version: Some(row.version) };
            let change = adapter::user_change(&ctx2.account, &ctx2.actor, op, &doc, Some(&stored_doc(&row)))?;
            run_user_change(c, &env, &ctx2, change, Some(&row.id))
        })
        .await?
        .into_resource(&ctx.base);
    Ok(Done::resource(200, body, version).projected(&projection, &USER))
}

/// PATCH /Users/{id}: the operations apply to the resource as served; the result is
/// then treated as a replacement.
pub async fn patch_user(
    state: &AppState,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, Failure> {
    let request = patch_request(body)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let (body, version) = state
        .db
        .write(move |c| {
            store::scim::lock_user(c, &ctx2.account, &id)?;
            let row = find_user(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            let current = render_user(c, &ctx2.account, &row, &ctx2.base)?;
            let outcome = apply(&current, &request, &USER)?;
            if outcome.is_noop() {
                return Ok(Written::Rendered(current, row.version));
            }
            let previous = adapter::normalize(&current, &USER)?;
            let doc = adapter::normalize(&outcome.resource, &USER)?;
            let op = Operation::Update { user_id: row.id.clone(), expected_version: Some(row.version) };
            let change = adapter::user_change(&ctx2.account, &ctx2.actor, op, &doc, Some(&previous))?;
            run_user_change(c, &env, &ctx2, change, Some(&row.id))
        })
        .await?
        .into_resource(&ctx.base);
    Ok(Done::resource(200, body, version).projected(&projection, &USER))
}

/// DELETE /Users/{id}: removed through the pipeline (seats, number, extension and
/// memberships are released).
pub async fn delete_user(state: &AppState, ctx: &Ctx, id: String, if_match: IfMatch) -> Result<Done, Failure> {
    let (env, ctx2) = (state.env(), ctx.clone());
    state
        .db
        .write(move |c| {
            store::scim::lock_user(c, &ctx2.account, &id)?;
            let row = find_user(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            let change = provisioning::IdentityChange::new(
                ctx2.account.clone(),
                Source::Scim,
                ctx2.actor.clone(),
                Operation::Delete { user_id: row.id },
            );
            provisioning::run(c, &env, change)?;
            Ok::<_, Failure>(())
        })
        .await?;
    state.authorization_changed();
    Ok(Done::no_content())
}

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

fn audit_group(c: &mut DbConn, env: &Env, ctx: &Ctx, action: &str, group: &str, detail: Value) -> Result<(), Failure> {
    store::audit::record(
        c,
        &NewAudit {
            account_id: Some(ctx.account.clone()),
            actor: ctx.actor.label.clone(),
            source: Source::Scim.as_str().to_owned(),
            action: action.to_owned(),
            target: Some(group.to_owned()),
            detail: detail.to_string(),
            created_at: env.now,
        },
    )?;
    Ok(())
}

/// The stored part of a Group document: everything but the members (kept in
/// `group_members`).
fn group_doc_text(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(m) = d.as_object_mut() {
        m.remove("members");
    }
    d.to_string()
}

/// Makes the group's members exactly `wanted` (value → display sent). Returns whether
/// anything changed.
fn set_members(
    c: &mut DbConn,
    env: &Env,
    ctx: &Ctx,
    group: &str,
    wanted: &[(String, Option<String>)],
) -> Result<bool, Failure> {
    let ids: Vec<String> = wanted.iter().map(|(v, _)| v.clone()).collect();
    let known = store::scim::existing_user_ids(c, &ctx.account, &ids)?;
    if let Some((missing, _)) = wanted.iter().find(|(v, _)| !known.contains(v)) {
        return Err(ScimError::InvalidValue(format!("member {missing} is not a user of this account")).into());
    }
    let current: BTreeMap<String, (Option<String>, Option<String>)> = store::scim::members_of(c, &[group.to_owned()])?
        .into_iter()
        .map(|m| (m.user_id, (m.display, m.user_display_name)))
        .collect();
    let mut changed = false;
    for user in current.keys() {
        if !wanted.iter().any(|(v, _)| v == user) {
            changed |= provisioning::groups::remove_member(c, env, &ctx.account, group, user, Source::Scim)?;
        }
    }
    for (user, display) in wanted {
        match current.get(user) {
            None => {
                provisioning::groups::add_member(c, env, &ctx.account, group, user, Source::Scim)?;
                if display.is_some() {
                    store::scim::set_member_display(c, group, user, display.as_deref())?;
                }
                changed = true;
            }
            Some((stored, _)) if display.is_some() && stored != display => {
                store::scim::set_member_display(c, group, user, display.as_deref())?;
                changed = true;
            }
            Some(_) => {}
        }
    }
    Ok(changed)
}

fn new_group_row(ctx: &Ctx, now: NaiveDateTime, doc: &Value) -> Result<GroupRow, Failure> {
    let (name, external_id) = adapter::group_fields(doc)?;
    Ok(GroupRow {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: ctx.account.clone(),
        display_name_lower: name.to_lowercase(),
        display_name: name,
        external_id,
        scim: group_doc_text(doc),
        version: 1,
        created_at: now,
        updated_at: now,
    })
}

fn unique_name(e: diesel::result::Error, name: &str) -> Failure {
    if store::is_unique_violation(&e) {
        Failure::new(409, Some("uniqueness"), format!("a group named {name:?} already exists"))
    } else {
        e.into()
    }
}

/// POST /Groups.
pub async fn create_group(state: &AppState, ctx: &Ctx, body: &[u8], projection: Projection) -> Result<Done, Failure> {
    let doc = adapter::normalize(&resource_json(body)?, &GROUP)?;
    let members = adapter::group_members(&doc)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let with_members = projection.wants("members");
    let (body, version) = state
        .db
        .write(move |c| {
            let row = new_group_row(&ctx2, env.now, &doc)?;
            store::groups::insert(c, &row).map_err(|e| unique_name(e, &row.display_name))?;
            set_members(c, &env, &ctx2, &row.id, &members)?;
            audit_group(c, &env, &ctx2, "group.created", &row.id, json!({ "displayName": row.display_name }))?;
            Ok::<_, Failure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(201, body, version).projected(&projection, &GROUP))
}

/// Writes a new document (and member list) over a group.
fn update_group(
    c: &mut DbConn,
    env: &Env,
    ctx: &Ctx,
    mut row: GroupRow,
    doc: &Value,
    members: Option<&[(String, Option<String>)]>,
) -> Result<GroupRow, Failure> {
    let (name, external_id) = adapter::group_fields(doc)?;
    let members_changed = match members {
        Some(m) => set_members(c, env, ctx, &row.id, m)?,
        None => false,
    };
    let text = group_doc_text(doc);
    let fields_changed = name != row.display_name || external_id != row.external_id || text != row.scim;
    if !fields_changed && !members_changed {
        return Ok(row);
    }
    let expected = row.version;
    row.display_name_lower = name.to_lowercase();
    row.display_name = name;
    row.external_id = external_id;
    row.scim = text;
    row.version += 1;
    row.updated_at = env.now;
    if !store::groups::update(c, &row, Some(expected)).map_err(|e| unique_name(e, &row.display_name))? {
        return Err(Failure::new(412, None, "the group was changed by another request; fetch it again and retry"));
    }
    audit_group(c, env, ctx, "group.updated", &row.id, json!({ "displayName": row.display_name }))?;
    Ok(row)
}

/// PUT /Groups/{id}.
pub async fn replace_group(
    state: &AppState,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, Failure> {
    let doc = adapter::normalize(&resource_json(body)?, &GROUP)?;
    let members = adapter::group_members(&doc)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let with_members = projection.wants("members");
    let (body, version) = state
        .db
        .write(move |c| {
            store::scim::lock_group(c, &ctx2.account, &id)?;
            let row = find_group(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            let row = update_group(c, &env, &ctx2, row, &doc, Some(&members))?;
            Ok::<_, Failure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(200, body, version).projected(&projection, &GROUP))
}

/// PATCH /Groups/{id} (Entra ID's member add/remove, Okta's renames, …).
pub async fn patch_group(
    state: &AppState,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, Failure> {
    let request = patch_request(body)?;
    let (env, ctx2) = (state.env(), ctx.clone());
    let with_members = projection.wants("members");
    if let Some(ops) = member_ops(&request)? {
        // Entra ID's member add/remove: applied member by member, so a large group costs
        // the writer only the members named; the response is rendered after the commit.
        let account = ctx.account.clone();
        let row = state
            .db
            .write(move |c| {
                store::scim::lock_group(c, &ctx2.account, &id)?;
                let row = find_group(c, &ctx2.account, &id)?;
                if_match.check(row.version)?;
                apply_member_ops(c, &env, &ctx2, row, &ops)
            })
            .await?;
        let base = ctx.base.clone();
        let (body, version) = state
            .db
            .read(move |c| {
                let row = find_group(c, &account, &row.id)?;
                Ok::<_, Failure>((render_group(c, &row, with_members, &base)?, row.version))
            })
            .await?;
        return Ok(Done::resource(200, body, version).projected(&projection, &GROUP));
    }
    let (body, version) = state
        .db
        .write(move |c| {
            store::scim::lock_group(c, &ctx2.account, &id)?;
            let row = find_group(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            let current = render_group(c, &row, true, &ctx2.base)?;
            let outcome = apply(&current, &request, &GROUP)?;
            let row = if outcome.is_noop() {
                row
            } else {
                let touches_members = outcome.change("members").is_some();
                let doc = adapter::normalize(&outcome.resource, &GROUP)?;
                let members = if touches_members { Some(adapter::group_members(&doc)?) } else { None };
                update_group(c, &env, &ctx2, row, &doc, members.as_deref())?
            };
            Ok::<_, Failure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(200, body, version).projected(&projection, &GROUP))
}

/// One member-only PATCH operation.
#[derive(Debug, Clone, PartialEq)]
enum MemberOp {
    Add(Vec<(String, Option<String>)>),
    Remove(Vec<String>),
}

/// The operations, when every one adds members (`add`, path `members`, a value list),
/// removes listed members (`remove`, path `members`, a value list) or removes one by filter
/// (`members[value eq "…"]`). Anything else: `None`, for the general path.
fn member_ops(request: &PatchRequest) -> Result<Option<Vec<MemberOp>>, Failure> {
    use super::patch::PatchOpKind;
    use super::path::PatchPath;
    let is_members = |p: &super::AttrPath| {
        p.sub.is_none() && GROUP.resolve(p).is_ok_and(|r| r.attribute.name == "members" && r.sub_attribute.is_none())
    };
    let mut out = Vec::with_capacity(request.operations.len());
    for op in &request.operations {
        let parsed = match (&op.op, &op.path, &op.value) {
            (PatchOpKind::Add, Some(PatchPath::Attr(p)), Some(v @ Value::Array(_))) if is_members(p) => {
                let members = adapter::group_members(&json!({ "members": v }))?;
                if members.is_empty() {
                    return Ok(None);
                }
                MemberOp::Add(members)
            }
            (PatchOpKind::Remove, Some(PatchPath::Attr(p)), Some(v @ Value::Array(_))) if is_members(p) => {
                let members = adapter::group_members(&json!({ "members": v }))?;
                MemberOp::Remove(members.into_iter().map(|(value, _)| value).collect())
            }
            (PatchOpKind::Remove, Some(PatchPath::Filtered { attr, filter, sub: None }), None) if is_members(attr) => {
                match filter {
                    super::Filter::Compare { path, op: super::CompareOp::Eq, value: super::CompValue::Str(v) }
                        if path.urn.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case("value") =>
                    {
                        MemberOp::Remove(vec![v.clone()])
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        out.push(parsed);
    }
    Ok(Some(out))
}

/// Applies member-only operations to a locked group; bumps its version when anything
/// changed.
fn apply_member_ops(
    c: &mut DbConn,
    env: &Env,
    ctx: &Ctx,
    mut row: GroupRow,
    ops: &[MemberOp],
) -> Result<GroupRow, Failure> {
    let mut changed = false;
    for op in ops {
        match op {
            MemberOp::Add(members) => {
                let ids: Vec<String> = members.iter().map(|(v, _)| v.clone()).collect();
                let known = store::scim::existing_user_ids(c, &ctx.account, &ids)?;
                if let Some(missing) = ids.iter().find(|v| !known.contains(v)) {
                    return Err(
                        ScimError::InvalidValue(format!("member {missing} is not a user of this account")).into()
                    );
                }
                for (user, display) in members {
                    if provisioning::groups::add_member(c, env, &ctx.account, &row.id, user, Source::Scim)? {
                        changed = true;
                        if display.is_some() {
                            store::scim::set_member_display(c, &row.id, user, display.as_deref())?;
                        }
                    } else if display.is_some() {
                        let stored = store::scim::member_display(c, &row.id, user)?;
                        if &stored != display {
                            store::scim::set_member_display(c, &row.id, user, display.as_deref())?;
                            changed = true;
                        }
                    }
                }
            }
            MemberOp::Remove(users) => {
                for user in users {
                    changed |= provisioning::groups::remove_member(c, env, &ctx.account, &row.id, user, Source::Scim)?;
                }
            }
        }
    }
    if changed {
        let expected = row.version;
        row.version += 1;
        row.updated_at = env.now;
        if !store::groups::update(c, &row, Some(expected))? {
            return Err(Failure::new(412, None, "the group was changed by another request; fetch it again and retry"));
        }
        audit_group(c, env, ctx, "group.members", &row.id, json!({ "displayName": row.display_name }))?;
    }
    Ok(row)
}

/// DELETE /Groups/{id}: every membership ends with an outbox event, then the group goes.
pub async fn delete_group(state: &AppState, ctx: &Ctx, id: String, if_match: IfMatch) -> Result<Done, Failure> {
    let (env, ctx2) = (state.env(), ctx.clone());
    state
        .db
        .write(move |c| {
            store::scim::lock_group(c, &ctx2.account, &id)?;
            let row = find_group(c, &ctx2.account, &id)?;
            if_match.check(row.version)?;
            for user in store::groups::member_ids(c, &row.id)? {
                provisioning::groups::remove_member(c, &env, &ctx2.account, &row.id, &user, Source::Scim)?;
            }
            store::groups::delete(c, &row.id)?;
            audit_group(c, &env, &ctx2, "group.deleted", &row.id, json!({ "displayName": row.display_name }))?;
            Ok::<_, Failure>(())
        })
        .await?;
    Ok(Done::no_content())
}

/// Reads a JSON body for the handlers that need the value (Bulk, .search).
pub fn parse_json(body: &[u8]) -> Result<Value, Failure> {
    resource_json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists() {
        assert!(etag_list_matches("*", 3));
        assert!(etag_list_matches("W/\"3\"", 3));
        assert!(etag_list_matches("\"2\", W/\"3\"", 3));
        assert!(!etag_list_matches("W/\"2\"", 3));
        assert!(!etag_list_matches("garbage", 3));
        assert!(IfMatch(None).check(9).is_ok());
        assert_eq!(IfMatch(Some("W/\"1\"".into())).check(2).unwrap_err().status, 412);
    }

    #[test]
    fn member_only_patches_take_the_direct_path() {
        let req = |ops: Value| {
            PatchRequest::from_json(&json!({"schemas": [super::super::patch::PATCH_OP_URN], "Operations": ops}))
                .unwrap()
        };
        let ops = member_ops(&req(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u1", "display": "One"}, {"value": "u2"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": "members[value eq \"u4\"]"}
        ])))
        .unwrap()
        .unwrap();
        assert_eq!(
            ops,
            [
                MemberOp::Add(vec![("u1".into(), Some("One".into())), ("u2".into(), None)]),
                MemberOp::Remove(vec!["u3".into()]),
                MemberOp::Remove(vec!["u4".into()]),
            ]
        );
        for other in [
            json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}, {"op": "replace", "path": "displayName", "value": "x"}]),
            json!([{"op": "remove", "path": "members[display eq \"x\"]"}]),
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "add", "value": {"members": [{"value": "u1"}]}}]),
        ] {
            assert_eq!(member_ops(&req(other.clone())).unwrap(), None, "{other}");
        }
        let nested = req(json!([{"op": "add", "path": "members", "value": [{"value": "g", "type": "Group"}]}]));
        assert_eq!(member_ops(&nested).unwrap_err().status, 400);
    }

    #[test]
    fn app_errors_become_scim_errors() {
        let f: Failure = AppError::conflict("user_name_taken", "taken").into();
        assert_eq!((f.status, f.scim_type), (409, Some("uniqueness")));
        let f: Failure = AppError::conflict("owner_role", "no").into();
        assert_eq!((f.status, f.scim_type), (409, None));
        let f: Failure = AppError::bad_request("invalid_email", "bad").into();
        assert_eq!((f.status, f.scim_type), (400, Some("invalidValue")));
        let f: Failure = AppError::not_found("user").into();
        assert_eq!(f.to_json(), json!({"schemas": [ERROR_URN], "status": "404", "detail": "user not found"}));
        let f: Failure = AppError::Internal("secret".into()).into();
        assert!(!f.detail.contains("secret"));
    }
}
