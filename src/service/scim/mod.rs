//! The SCIM operations on Users and Groups, independent of how the request arrived (a
//! single HTTP request or one operation of a `/Bulk`). The HTTP edge (`http::scim`) reads
//! bodies and headers and renders what these return; statuses and `scimType`s are chosen
//! there, from the typed [`ScimFailure`].
//!
//! Every write runs as one job of the group-commit writer (`Db::write`): the current row
//! is read, `If-Match` checked, the change applied and the response rendered inside the
//! same transaction, so two updates carrying the same ETag cannot both win. User writes
//! go through the provisioning pipeline; groups through `service::groups`, the same
//! operations the admin API uses.

pub mod adapter;
pub mod bulk;
#[cfg(test)]
mod proptests;
pub mod resource;

use std::collections::HashMap;

use serde_json::{json, Value};

use self::adapter::get;
use self::resource::{Projection, UserExtras};
use super::groups::{self, By, GroupFields, MemberEdit, MemberStep, NewMember};
use super::Services;
use crate::error::AppError;
use crate::provisioning::{self, Actor, Env, Operation, Source};
use crate::scim::error::ScimError;
use crate::scim::patch::{apply, PatchRequest};
use crate::scim::query::{ListParams, MAX_SCAN};
use crate::scim::schema::{ResourceSchema, GROUP, LIST_RESPONSE_URN, USER};
use crate::store::models::{GroupRow, UserRow};
use crate::store::scim::{MemberRow, Table};
use crate::store::scim_query::{plan, Plan};
use crate::store::{self, DbConn, StoreError};

/// Why a SCIM operation failed. The HTTP edge picks the status and `scimType` by variant.
#[derive(Debug, thiserror::Error)]
pub enum ScimFailure {
    /// A protocol error: its `scimType` is the variant.
    #[error("{0}")]
    Scim(#[from] ScimError),
    /// An error of the layers below (pipeline rules, storage), mapped like the admin API's.
    #[error("{}", .0.public_message())]
    App(#[from] AppError),
    /// No such resource in the caller's account (another tenant's looks the same).
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// `If-Match` named another version, or a concurrent write came first.
    #[error("{0}")]
    VersionMismatch(String),
    /// A Bulk request carries more operations than the server accepts.
    #[error("{0}")]
    TooManyOperations(String),
    /// A Bulk `bulkId` reference that names nothing created in the request, or a cycle.
    #[error("{0}")]
    UnresolvedReference(String),
    /// A Bulk operation names a path that is no resource type of ours.
    #[error("{0}")]
    NoResourceType(String),
}

impl From<StoreError> for ScimFailure {
    fn from(e: StoreError) -> ScimFailure {
        AppError::from(e).into()
    }
}

impl From<diesel::result::Error> for ScimFailure {
    fn from(e: diesel::result::Error) -> ScimFailure {
        AppError::from(e).into()
    }
}

fn not_found(what: &'static str, id: &str) -> ScimFailure {
    ScimFailure::NotFound { what, id: id.to_owned() }
}

/// Who calls and where their resources live.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub account: String,
    pub actor: Actor,
    /// The SCIM service root, e.g. `https://host/scim/v2`.
    pub base: String,
}

/// What a successful operation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Created,
    NoContent,
}

/// A successful operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub status: Status,
    pub body: Option<Value>,
    /// The resource's version, for the ETag header.
    pub version: Option<i64>,
    /// For 201: where the new resource lives.
    pub location: Option<String>,
}

impl Done {
    fn resource(status: Status, body: Value, version: i64) -> Done {
        let location = (status == Status::Created)
            .then(|| body.pointer("/meta/location").and_then(Value::as_str).unwrap_or_default().to_owned());
        Done { status, body: Some(body), version: Some(version), location }
    }

    /// The body reduced per `attributes`/`excludedAttributes` (headers keep the full data).
    fn projected(mut self, projection: &Projection, schema: &ResourceSchema) -> Done {
        self.body = self.body.map(|b| projection.apply(b, schema));
        self
    }

    fn no_content() -> Done {
        Done { status: Status::NoContent, body: None, version: None, location: None }
    }
}

/// `If-Match`: `*`, or a list of entity tags (weak or strong) one of which must be the
/// current version (RFC 7232 §3.1, RFC 7644 §3.14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfMatch(pub Option<String>);

impl IfMatch {
    pub fn check(&self, version: i64) -> Result<(), ScimFailure> {
        let Some(header) = &self.0 else { return Ok(()) };
        if etag_list_matches(header, version) {
            Ok(())
        } else {
            Err(ScimFailure::VersionMismatch(format!(
                "If-Match {header} does not match the current version {}",
                resource::etag(version)
            )))
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

fn resource_json(body: &[u8]) -> Result<Value, ScimFailure> {
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

fn patch_request(body: &[u8]) -> Result<PatchRequest, ScimFailure> {
    Ok(PatchRequest::from_json(&resource_json(body)?)?)
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// Renders users with their groups and phone lines, loaded in a few batch queries.
fn render_users(c: &mut DbConn, account: &str, rows: &[UserRow], base: &str) -> Result<Vec<Value>, ScimFailure> {
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

fn render_user(c: &mut DbConn, account: &str, row: &UserRow, base: &str) -> Result<Value, ScimFailure> {
    let mut v = render_users(c, account, std::slice::from_ref(row), base)?;
    Ok(v.pop().ok_or_else(|| AppError::Internal("rendering produced nothing".into()))?)
}

fn render_groups(c: &mut DbConn, rows: &[GroupRow], with_members: bool, base: &str) -> Result<Vec<Value>, ScimFailure> {
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

fn render_group(c: &mut DbConn, row: &GroupRow, with_members: bool, base: &str) -> Result<Value, ScimFailure> {
    let mut v = render_groups(c, std::slice::from_ref(row), with_members, base)?;
    Ok(v.pop().ok_or_else(|| AppError::Internal("rendering produced nothing".into()))?)
}

/// A user the token's IdP owns: of its account, or placed by it into a sub account.
fn find_user(c: &mut DbConn, account: &str, id: &str) -> Result<UserRow, ScimFailure> {
    store::users::find_for_idp(c, account, id)?.ok_or_else(|| not_found("User", id))
}

fn find_group(c: &mut DbConn, account: &str, id: &str) -> Result<GroupRow, ScimFailure> {
    store::groups::find(c, account, id)?.ok_or_else(|| not_found("Group", id))
}

/// The user for a write: locked (so concurrent writes of one user serialise), and at the
/// version `If-Match` names.
fn user_for_write(c: &mut DbConn, ctx: &Ctx, id: &str, if_match: &IfMatch) -> Result<UserRow, ScimFailure> {
    store::scim::lock_user(c, &ctx.account, id)?;
    let row = find_user(c, &ctx.account, id)?;
    if_match.check(row.version)?;
    Ok(row)
}

/// GET /Users/{id}.
pub async fn get_user(svc: &Services, ctx: &Ctx, id: String, projection: Projection) -> Result<Done, ScimFailure> {
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let (body, version) = svc
        .db
        .read(move |c| {
            let row = find_user(c, &account, &id)?;
            Ok::<_, ScimFailure>((render_user(c, &account, &row, &base)?, row.version))
        })
        .await?;
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &USER))
}

/// GET /Groups/{id}.
pub async fn get_group(svc: &Services, ctx: &Ctx, id: String, projection: Projection) -> Result<Done, ScimFailure> {
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let with_members = projection.wants("members");
    let (body, version) = svc
        .db
        .read(move |c| {
            let row = find_group(c, &account, &id)?;
            Ok::<_, ScimFailure>((render_group(c, &row, with_members, &base)?, row.version))
        })
        .await?;
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &GROUP))
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
) -> Result<(i64, Vec<Value>), ScimFailure> {
    let table = kind.table();
    let with_members = kind == Kind::Groups && params.projection.wants("members");
    let render = |c: &mut DbConn, ids: &[String]| -> Result<Vec<Value>, ScimFailure> {
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
    if let Some((key, value)) = crate::store::scim_query::key_lookup(params, kind.schema(), table) {
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
    let order = crate::store::scim_query::default_order(table);
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
fn sort_in_memory(resources: &mut [Value], path: &crate::scim::AttrPath, schema: &ResourceSchema, descending: bool) {
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
pub async fn list(svc: &Services, ctx: &Ctx, kind: Kind, params: ListParams) -> Result<Done, ScimFailure> {
    let plan = plan(&params, kind.schema(), kind.table(), &ctx.account)?;
    let (account, base) = (ctx.account.clone(), ctx.base.clone());
    let p = params.clone();
    let (total, page) =
        svc.db.read(move |c| query_kind(c, kind, &account, &base, &p, &plan, p.offset(), p.count)).await?;
    let page = page.into_iter().map(|r| params.projection.apply(r, kind.schema())).collect();
    Ok(Done {
        status: Status::Ok,
        body: Some(list_response(total, params.start_index, page)),
        version: None,
        location: None,
    })
}

/// POST /.search: Users, then Groups, paged as one list. A filter naming an attribute one
/// resource type lacks simply matches none of that type.
pub async fn search_all(svc: &Services, ctx: &Ctx, params: ListParams) -> Result<Done, ScimFailure> {
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
    let results = svc
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
            Ok::<_, ScimFailure>((total, out))
        })
        .await?;
    let (total, page) = results;
    let page = page.into_iter().map(|(kind, r)| params.projection.apply(r, kind.schema())).collect();
    Ok(Done {
        status: Status::Ok,
        body: Some(list_response(total, params.start_index, page)),
        version: None,
        location: None,
    })
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
) -> Result<Written, ScimFailure> {
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
    let row = applied.user.ok_or_else(|| AppError::Internal("the pipeline returned no user".into()))?;
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
pub async fn create_user(svc: &Services, ctx: &Ctx, body: &[u8], projection: Projection) -> Result<Done, ScimFailure> {
    let doc = adapter::normalize(&resource_json(body)?, &USER)?;
    let change = adapter::user_change(&ctx.account, &ctx.actor, Operation::Create, &doc, None)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let written = svc.db.write(move |c| run_user_change(c, &env, &ctx2, change, None)).await?;
    let (body, version) = written.into_resource(&ctx.base);
    Ok(Done::resource(Status::Created, body, version).projected(&projection, &USER))
}

/// PUT /Users/{id}: the body replaces the resource (see `adapter` for absent attributes).
pub async fn replace_user(
    svc: &Services,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, ScimFailure> {
    let mut doc = adapter::normalize(&resource_json(body)?, &USER)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let (body, version) = svc
        .db
        .write(move |c| {
            let row = user_for_write(c, &ctx2, &id, &if_match)?;
            // A PUT that does not mention `active` leaves the status as it is: IdPs that
            // omit it (RFC 7643 gives it no default) never mean to reactivate anyone.
            if let Some(obj) = doc.as_object_mut() {
                if !obj.contains_key("active") {
                    obj.insert("active".into(), Value::Bool(row.status != crate::domain::users::UserStatus::Inactive));
                }
            }
            let op = Operation::Update { user_id: row.id.clone(), expected_version: Some(row.version) };
            let change = adapter::user_change(&ctx2.account, &ctx2.actor, op, &doc, Some(&stored_doc(&row)))?;
            run_user_change(c, &env, &ctx2, change, Some(&row.id))
        })
        .await?
        .into_resource(&ctx.base);
    // The IdP may have deactivated an admin: this process forgets resolved rights.
    svc.authorization_changed();
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &USER))
}

/// PATCH /Users/{id}: the operations apply to the resource as served; the result is
/// then treated as a replacement.
pub async fn patch_user(
    svc: &Services,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, ScimFailure> {
    let request = patch_request(body)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let (body, version) = svc
        .db
        .write(move |c| {
            let row = user_for_write(c, &ctx2, &id, &if_match)?;
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
    // The IdP may have deactivated an admin: this process forgets resolved rights.
    svc.authorization_changed();
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &USER))
}

/// DELETE /Users/{id}: removed through the pipeline (seats, number, extension and
/// memberships are released).
pub async fn delete_user(svc: &Services, ctx: &Ctx, id: String, if_match: IfMatch) -> Result<Done, ScimFailure> {
    let (env, ctx2) = (svc.env(), ctx.clone());
    svc.db
        .write(move |c| {
            let row = user_for_write(c, &ctx2, &id, &if_match)?;
            let change = provisioning::IdentityChange::new(
                ctx2.account.clone(),
                Source::Scim,
                ctx2.actor.clone(),
                Operation::Delete { user_id: row.id },
            );
            provisioning::run(c, &env, change)?;
            Ok::<_, ScimFailure>(())
        })
        .await?;
    svc.authorization_changed();
    Ok(Done::no_content())
}

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

/// The stored part of a Group document: everything but the members (kept in
/// `group_members`).
fn group_doc_text(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(m) = d.as_object_mut() {
        m.remove("members");
    }
    d.to_string()
}

fn group_fields(doc: &Value) -> Result<GroupFields, ScimFailure> {
    let (name, external_id) = adapter::group_fields(doc)?;
    Ok(GroupFields { name, external_id, scim: Some(group_doc_text(doc)) })
}

fn new_members(doc: &Value) -> Result<Vec<NewMember>, ScimFailure> {
    Ok(adapter::group_members(doc)?.into_iter().map(|(user_id, display)| NewMember { user_id, display }).collect())
}

fn by(ctx: &Ctx) -> By<'_> {
    By { actor: &ctx.actor, source: Source::Scim }
}

/// The group for a write: locked, and at the version `If-Match` names.
fn group_for_write(c: &mut DbConn, ctx: &Ctx, id: &str, if_match: &IfMatch) -> Result<GroupRow, ScimFailure> {
    let row = groups::find_locked(c, &ctx.account, id)?.ok_or_else(|| not_found("Group", id))?;
    if_match.check(row.version)?;
    Ok(row)
}

/// POST /Groups.
pub async fn create_group(svc: &Services, ctx: &Ctx, body: &[u8], projection: Projection) -> Result<Done, ScimFailure> {
    let doc = adapter::normalize(&resource_json(body)?, &GROUP)?;
    let members = new_members(&doc)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let with_members = projection.wants("members");
    let (body, version) = svc
        .db
        .write(move |c| {
            let row = groups::create(c, &env, by(&ctx2), &ctx2.account, group_fields(&doc)?, &members)?;
            Ok::<_, ScimFailure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(Status::Created, body, version).projected(&projection, &GROUP))
}

/// PUT /Groups/{id}.
pub async fn replace_group(
    svc: &Services,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, ScimFailure> {
    let doc = adapter::normalize(&resource_json(body)?, &GROUP)?;
    let members = new_members(&doc)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let with_members = projection.wants("members");
    let (body, version) = svc
        .db
        .write(move |c| {
            let row = group_for_write(c, &ctx2, &id, &if_match)?;
            let expected = Some(row.version);
            let fields = group_fields(&doc)?;
            let (row, _) = groups::update(c, &env, by(&ctx2), row, Some(fields), MemberEdit::Set(&members), expected)?;
            Ok::<_, ScimFailure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &GROUP))
}

/// PATCH /Groups/{id} (Entra ID's member add/remove, Okta's renames, …).
pub async fn patch_group(
    svc: &Services,
    ctx: &Ctx,
    id: String,
    body: &[u8],
    if_match: IfMatch,
    projection: Projection,
) -> Result<Done, ScimFailure> {
    let request = patch_request(body)?;
    let (env, ctx2) = (svc.env(), ctx.clone());
    let with_members = projection.wants("members");
    if let Some(ops) = member_ops(&request)? {
        // Entra ID's member add/remove: applied member by member, so a large group costs
        // the writer only the members named; the response is rendered after the commit.
        let account = ctx.account.clone();
        let row = svc
            .db
            .write(move |c| {
                let row = group_for_write(c, &ctx2, &id, &if_match)?;
                let expected = Some(row.version);
                let (row, _) = groups::update(c, &env, by(&ctx2), row, None, MemberEdit::Steps(&ops), expected)?;
                Ok::<_, ScimFailure>(row)
            })
            .await?;
        let base = ctx.base.clone();
        let (body, version) = svc
            .db
            .read(move |c| {
                let row = find_group(c, &account, &row.id)?;
                Ok::<_, ScimFailure>((render_group(c, &row, with_members, &base)?, row.version))
            })
            .await?;
        return Ok(Done::resource(Status::Ok, body, version).projected(&projection, &GROUP));
    }
    let (body, version) = svc
        .db
        .write(move |c| {
            let row = group_for_write(c, &ctx2, &id, &if_match)?;
            let current = render_group(c, &row, true, &ctx2.base)?;
            let outcome = apply(&current, &request, &GROUP)?;
            let row = if outcome.is_noop() {
                row
            } else {
                let touches_members = outcome.change("members").is_some();
                let doc = adapter::normalize(&outcome.resource, &GROUP)?;
                let members = if touches_members { Some(new_members(&doc)?) } else { None };
                let edit = match &members {
                    Some(m) => MemberEdit::Set(m),
                    None => MemberEdit::Keep,
                };
                let expected = Some(row.version);
                groups::update(c, &env, by(&ctx2), row, Some(group_fields(&doc)?), edit, expected)?.0
            };
            Ok::<_, ScimFailure>((render_group(c, &row, with_members, &ctx2.base)?, row.version))
        })
        .await?;
    Ok(Done::resource(Status::Ok, body, version).projected(&projection, &GROUP))
}

/// The operations, when every one adds members (`add`, path `members`, a value list),
/// removes listed members (`remove`, path `members`, a value list) or removes one by filter
/// (`members[value eq "…"]`). Anything else: `None`, for the general path.
fn member_ops(request: &PatchRequest) -> Result<Option<Vec<MemberStep>>, ScimFailure> {
    use crate::scim::patch::PatchOpKind;
    use crate::scim::path::PatchPath;
    let is_members = |p: &crate::scim::AttrPath| {
        p.sub.is_none() && GROUP.resolve(p).is_ok_and(|r| r.attribute.name == "members" && r.sub_attribute.is_none())
    };
    let mut out = Vec::with_capacity(request.operations.len());
    for op in &request.operations {
        let parsed = match (&op.op, &op.path, &op.value) {
            (PatchOpKind::Add, Some(PatchPath::Attr(p)), Some(v @ Value::Array(_))) if is_members(p) => {
                let members = new_members(&json!({ "members": v }))?;
                if members.is_empty() {
                    return Ok(None);
                }
                MemberStep::Add(members)
            }
            (PatchOpKind::Remove, Some(PatchPath::Attr(p)), Some(v @ Value::Array(_))) if is_members(p) => {
                let members = new_members(&json!({ "members": v }))?;
                MemberStep::Remove(members.into_iter().map(|m| m.user_id).collect())
            }
            (PatchOpKind::Remove, Some(PatchPath::Filtered { attr, filter, sub: None }), None) if is_members(attr) => {
                match filter {
                    crate::scim::Filter::Compare {
                        path,
                        op: crate::scim::CompareOp::Eq,
                        value: crate::scim::CompValue::Str(v),
                    } if path.urn.is_none() && path.sub.is_none() && path.name.eq_ignore_ascii_case("value") => {
                        MemberStep::Remove(vec![v.clone()])
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

/// DELETE /Groups/{id}: every membership ends with an outbox event, then the group goes.
pub async fn delete_group(svc: &Services, ctx: &Ctx, id: String, if_match: IfMatch) -> Result<Done, ScimFailure> {
    let (env, ctx2) = (svc.env(), ctx.clone());
    svc.db
        .write(move |c| {
            let row = group_for_write(c, &ctx2, &id, &if_match)?;
            groups::delete(c, &env, by(&ctx2), &row)?;
            Ok::<_, ScimFailure>(())
        })
        .await?;
    Ok(Done::no_content())
}

/// Reads a JSON body for the handlers that need the value (Bulk, .search).
pub fn parse_json(body: &[u8]) -> Result<Value, ScimFailure> {
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
        assert!(matches!(IfMatch(Some("W/\"1\"".into())).check(2), Err(ScimFailure::VersionMismatch(_))));
    }

    #[test]
    fn member_only_patches_take_the_direct_path() {
        let req = |ops: Value| {
            PatchRequest::from_json(&json!({"schemas": [crate::scim::patch::PATCH_OP_URN], "Operations": ops})).unwrap()
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
                MemberStep::Add(vec![
                    NewMember { user_id: "u1".into(), display: Some("One".into()) },
                    NewMember { user_id: "u2".into(), display: None }
                ]),
                MemberStep::Remove(vec!["u3".into()]),
                MemberStep::Remove(vec!["u4".into()]),
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
        assert!(matches!(member_ops(&nested), Err(ScimFailure::Scim(ScimError::InvalidValue(_)))));
    }
}
