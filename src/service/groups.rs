//! Groups: the one implementation of creating, changing and deleting a group and of
//! changing its members, used by the admin API and by SCIM alike. Memberships are written
//! by `provisioning::groups` (each change with its membership event, in the caller's
//! transaction); this module owns the group row, its version (the SCIM ETag) and the audit
//! entries.

use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::provisioning::{self, audit, Actor, Env, Source};
use crate::store::models::GroupRow;
use crate::store::{self, DbConn};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub members: Vec<MemberView>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub user_name: String,
}

pub fn view(conn: &mut DbConn, g: GroupRow) -> AppResult<GroupView> {
    let members = store::groups::members(conn, &g.id)?
        .into_iter()
        .map(|(user_id, user_name)| MemberView { user_id, user_name })
        .collect();
    Ok(GroupView { id: g.id, name: g.display_name, external_id: g.external_id, members, version: g.version })
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: String,
}

/// What a group is, apart from its members.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupFields {
    pub name: String,
    pub external_id: Option<String>,
    /// The SCIM representation to keep (attributes without a column), members excluded.
    pub scim: Option<String>,
}

impl GroupFields {
    pub fn named(name: impl Into<String>) -> GroupFields {
        GroupFields { name: name.into(), ..GroupFields::default() }
    }
}

/// A group name: 1 to 256 characters once trimmed.
pub fn check_name(name: &str) -> AppResult<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 256 {
        return Err(AppError::bad_request("invalid_name", "a group name is 1 to 256 characters"));
    }
    Ok(n.to_owned())
}

fn name_taken(name: &str) -> impl FnOnce(diesel::result::Error) -> AppError + '_ {
    move |e| AppError::on_unique("group_exists", format!("a group named {name:?} already exists"))(e)
}

/// One member to add, with the `display` an identity provider sent (kept and served back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub user_id: String,
    pub display: Option<String>,
}

impl NewMember {
    pub fn id(user_id: impl Into<String>) -> NewMember {
        NewMember { user_id: user_id.into(), display: None }
    }
}

/// Which memberships a change made or ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MembersChanged {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// A member's stored `display` changed (the resource changed, no membership did).
    #[serde(skip)]
    pub display_changed: bool,
}

impl MembersChanged {
    pub fn any(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty() || self.display_changed
    }
}

/// Who acts, for the audit entries.
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    pub actor: &'a Actor,
    pub source: Source,
}

fn record(
    conn: &mut DbConn,
    env: &Env,
    by: By<'_>,
    row: &GroupRow,
    action: &str,
    detail: serde_json::Value,
) -> AppResult<()> {
    audit::record(conn, env, &row.account_id, by.actor, by.source, action, Some(&row.id), detail)
}

/// Creates a group with its first members.
pub fn create(
    conn: &mut DbConn,
    env: &Env,
    by: By<'_>,
    account: &str,
    fields: GroupFields,
    members: &[NewMember],
) -> AppResult<GroupRow> {
    let name = check_name(&fields.name)?;
    let row = GroupRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        display_name_lower: name.to_lowercase(),
        display_name: name,
        external_id: fields.external_id,
        scim: fields.scim.unwrap_or_else(|| "{}".into()),
        version: 1,
        created_at: env.now,
        updated_at: env.now,
    };
    store::groups::insert(conn, &row).map_err(name_taken(&row.display_name))?;
    record(conn, env, by, &row, "group.created", serde_json::json!({ "name": row.display_name }))?;
    if !members.is_empty() {
        let changed = add_members(conn, env, by, &row, members)?;
        rerun_rules(conn, env, by, &row.account_id, &changed.added)?;
        if changed.any() {
            record_members(conn, env, by, &row, &changed)?;
        }
    }
    Ok(row)
}

/// The group, locked against concurrent writers until the transaction ends (PostgreSQL;
/// SQLite's writer is one at a time anyway). A foreign id is "not found".
pub fn find_locked(conn: &mut DbConn, account: &str, id: &str) -> AppResult<Option<GroupRow>> {
    store::scim::lock_group(conn, account, id)?;
    Ok(store::groups::find(conn, account, id)?)
}

/// Writes the row with a new version (the ETag changes whenever the resource does).
fn bump(conn: &mut DbConn, env: &Env, mut row: GroupRow, expected_version: Option<i64>) -> AppResult<GroupRow> {
    let expected = expected_version.unwrap_or(row.version);
    row.version += 1;
    row.updated_at = env.now;
    if !store::groups::update(conn, &row, Some(expected)).map_err(name_taken(&row.display_name))? {
        return Err(AppError::PreconditionFailed(
            "the group was changed by another request; fetch it again and retry".into(),
        ));
    }
    Ok(row)
}

/// Deletes a group; every membership ends with a `removed` event first.
pub fn delete(conn: &mut DbConn, env: &Env, by: By<'_>, row: &GroupRow) -> AppResult<()> {
    let members = store::groups::member_ids(conn, &row.id)?;
    for uid in &members {
        provisioning::groups::remove_member(conn, env, &row.account_id, &row.id, uid, by.source)?;
    }
    // Its bindings go as an unbinding would (an admin's act on the group: never held).
    crate::service::sync::group_deleted(conn, env, &row.id)?;
    store::groups::delete(conn, &row.id)?;
    store::users::touch(conn, &members, env.now)?;
    record(conn, env, by, row, "group.deleted", serde_json::json!({ "name": row.display_name, "removed": members }))
}

/// Refuses ids that are not users of the group's account.
fn check_members(conn: &mut DbConn, account: &str, ids: &[&str]) -> AppResult<()> {
    let owned: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    let known = store::scim::existing_user_ids(conn, account, &owned)?;
    match owned.iter().find(|v| !known.contains(v)) {
        Some(missing) if store::groups::find(conn, account, missing)?.is_some() => Err(AppError::bad_request(
            "nested_group",
            format!("member {missing} is a group: groups cannot contain groups here; add its users instead"),
        )),
        Some(missing) => {
            Err(AppError::bad_request("unknown_member", format!("member {missing} is not a user of this account")))
        }
        None => Ok(()),
    }
}

fn add_members(
    conn: &mut DbConn,
    env: &Env,
    by: By<'_>,
    row: &GroupRow,
    members: &[NewMember],
) -> AppResult<MembersChanged> {
    let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    check_members(conn, &row.account_id, &ids)?;
    let mut changed = MembersChanged::default();
    for m in members {
        if provisioning::groups::add_member(conn, env, &row.account_id, &row.id, &m.user_id, by.source)? {
            changed.added.push(m.user_id.clone());
            if m.display.is_some() {
                provisioning::groups::set_member_display(conn, &row.id, &m.user_id, m.display.as_deref())?;
            }
        } else if m.display.is_some()
            && provisioning::groups::set_member_display(conn, &row.id, &m.user_id, m.display.as_deref())?
        {
            changed.display_changed = true;
        }
    }
    Ok(changed)
}

fn record_members(conn: &mut DbConn, env: &Env, by: By<'_>, row: &GroupRow, changed: &MembersChanged) -> AppResult<()> {
    let detail = serde_json::json!({ "name": row.display_name, "added": changed.added, "removed": changed.removed });
    record(conn, env, by, row, "group.members_changed", detail)
}

/// One step of a member change, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberStep {
    Add(Vec<NewMember>),
    Remove(Vec<String>),
}

/// What a change does to the members.
#[derive(Debug, Clone, Copy)]
pub enum MemberEdit<'a> {
    Keep,
    /// Adds and removals in order (admin API; SCIM PATCH `add`/`remove` of members).
    Steps(&'a [MemberStep]),
    /// Exactly these (SCIM PUT, or a PATCH that replaces the list).
    Set(&'a [NewMember]),
}

/// Changes a group: its fields (name, external id, representation) when given, and its
/// members. One new version (the ETag changes whenever the resource does) and the audit
/// entries when anything changed; with `expected_version`, only if nobody changed the group
/// meanwhile (412 otherwise). Returns the row as stored.
pub fn update(
    conn: &mut DbConn,
    env: &Env,
    by: By<'_>,
    row: GroupRow,
    fields: Option<GroupFields>,
    members: MemberEdit<'_>,
    expected_version: Option<i64>,
) -> AppResult<(GroupRow, MembersChanged)> {
    let changed = match members {
        MemberEdit::Keep => MembersChanged::default(),
        MemberEdit::Steps(steps) => {
            let mut changed = MembersChanged::default();
            for step in steps {
                match step {
                    MemberStep::Add(members) => {
                        let added = add_members(conn, env, by, &row, members)?;
                        changed.added.extend(added.added);
                        changed.display_changed |= added.display_changed;
                    }
                    MemberStep::Remove(users) => {
                        for uid in users {
                            if provisioning::groups::remove_member(conn, env, &row.account_id, &row.id, uid, by.source)?
                            {
                                changed.removed.push(uid.clone());
                            }
                        }
                    }
                }
            }
            changed
        }
        MemberEdit::Set(wanted) => {
            let ids: Vec<&str> = wanted.iter().map(|m| m.user_id.as_str()).collect();
            check_members(conn, &row.account_id, &ids)?;
            let mut removed = Vec::new();
            for uid in store::groups::member_ids(conn, &row.id)? {
                if !ids.contains(&uid.as_str())
                    && provisioning::groups::remove_member(conn, env, &row.account_id, &row.id, &uid, by.source)?
                {
                    removed.push(uid);
                }
            }
            let mut changed = add_members(conn, env, by, &row, wanted)?;
            changed.removed = removed;
            changed
        }
    };
    let from = row.display_name.clone();
    let mut next = row;
    let mut fields_changed = false;
    if let Some(f) = fields {
        let name = check_name(&f.name)?;
        let scim = f.scim.unwrap_or_else(|| next.scim.clone());
        fields_changed = name != next.display_name || f.external_id != next.external_id || scim != next.scim;
        next.display_name_lower = name.to_lowercase();
        next.display_name = name;
        next.external_id = f.external_id;
        next.scim = scim;
    }
    if !fields_changed && !changed.any() {
        return Ok((next, changed));
    }
    let next = bump(conn, env, next, expected_version)?;
    // A user's representation lists their groups (by name): a membership change, or a
    // rename, is a new version of each user it touches (their ETag changes).
    let mut touched: Vec<String> = changed.added.iter().chain(&changed.removed).cloned().collect();
    if from != next.display_name {
        touched.extend(store::groups::member_ids(conn, &next.id)?);
    }
    store::users::touch(conn, &touched, env.now)?;
    rerun_rules(conn, env, by, &next.account_id, &touched)?;
    if fields_changed {
        let detail = if from == next.display_name {
            serde_json::json!({ "name": next.display_name })
        } else {
            serde_json::json!({ "name": next.display_name, "renamed_from": from })
        };
        record(conn, env, by, &next, "group.updated", detail)?;
    }
    if !changed.added.is_empty() || !changed.removed.is_empty() {
        record_members(conn, env, by, &next, &changed)?;
    }
    Ok((next, changed))
}

/// Runs the account's mapping rules again for users whose groups changed (an IdP that only
/// moves someone between groups sends no user push), over the attributes the rules read
/// last time with the user's current groups. Users the rules never saw (created by hand)
/// are left alone: rules over no attributes would apply their `when_no_match` defaults.
fn rerun_rules(conn: &mut DbConn, env: &Env, by: By<'_>, account: &str, users: &[String]) -> AppResult<()> {
    use crate::provisioning::{IdentityChange, Operation, Shortage};
    if users.is_empty() || env.mappings.get(conn, account)?.is_none() {
        return Ok(());
    }
    for uid in users {
        let Some(text) = store::users::attributes(conn, uid)? else { continue };
        let Ok(mut attributes) = serde_json::from_str::<crate::domain::mapping::Attributes>(&text) else { continue };
        attributes.retain(|k, _| !crate::domain::mapping::is_group_attribute(k));
        let groups: Vec<String> = store::groups::groups_of_user(conn, uid)?.into_iter().map(|(_, n)| n).collect();
        attributes.insert("groups".into(), groups);
        let op = Operation::Update { user_id: uid.clone(), expected_version: None };
        let mut change = IdentityChange::new(account, by.source, by.actor.clone(), op);
        change.attributes = attributes;
        change.apply_mapping = true;
        change.shortage = Shortage::Report;
        match provisioning::run(conn, env, change) {
            // A user placed in a sub account is not this account's to re-run.
            Err(AppError::NotFound { .. }) => continue,
            other => {
                other?;
            }
        }
    }
    Ok(())
}
