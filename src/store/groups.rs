//! Groups, memberships and the membership-event outbox.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::GroupRow;
use super::schema::{group_members as gm, groups, membership_events as me, users};
use super::DbConn;

pub fn insert(conn: &mut DbConn, row: &GroupRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(groups::table).values(row).execute(c).map(|_| ()) })
}

pub fn find(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    crate::with_backend!(conn, |c| {
        groups::table
            .filter(groups::id.eq(id))
            .filter(groups::account_id.eq(account))
            .select(GroupRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn find_by_name(conn: &mut DbConn, account: &str, name: &str) -> QueryResult<Option<GroupRow>> {
    crate::with_backend!(conn, |c| {
        groups::table
            .filter(groups::account_id.eq(account))
            .filter(groups::display_name_lower.eq(name.trim().to_lowercase()))
            .select(GroupRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn list(conn: &mut DbConn, account: &str, limit: i64, offset: i64) -> QueryResult<Vec<GroupRow>> {
    crate::with_backend!(conn, |c| {
        groups::table
            .filter(groups::account_id.eq(account))
            .order((groups::created_at.asc(), groups::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(GroupRow::as_select())
            .load(c)
    })
}

/// Writes name, external id, SCIM document, version and time; with `expected_version`
/// only if unchanged meanwhile.
pub fn update(conn: &mut DbConn, row: &GroupRow, expected_version: Option<i64>) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        let set = (
            groups::display_name.eq(&row.display_name),
            groups::display_name_lower.eq(&row.display_name_lower),
            groups::external_id.eq(&row.external_id),
            groups::scim.eq(&row.scim),
            groups::version.eq(row.version),
            groups::updated_at.eq(row.updated_at),
        );
        let n = match expected_version {
            Some(v) => diesel::update(groups::table.filter(groups::id.eq(&row.id)).filter(groups::version.eq(v)))
                .set(set)
                .execute(c)?,
            None => diesel::update(groups::table.filter(groups::id.eq(&row.id))).set(set).execute(c)?,
        };
        Ok(n == 1)
    })
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(groups::table.filter(groups::id.eq(id))).execute(c).map(|n| n == 1)
    })
}

/// Member ids with their display values, ordered by join time.
pub fn members(conn: &mut DbConn, group: &str) -> QueryResult<Vec<(String, String)>> {
    crate::with_backend!(conn, |c| {
        gm::table
            .inner_join(users::table.on(users::id.eq(gm::user_id)))
            .filter(gm::group_id.eq(group))
            .order((gm::created_at.asc(), gm::user_id.asc()))
            .select((gm::user_id, users::user_name))
            .load(c)
    })
}

pub fn member_ids(conn: &mut DbConn, group: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| { gm::table.filter(gm::group_id.eq(group)).select(gm::user_id).load(c) })
}

pub fn groups_of_user(conn: &mut DbConn, user: &str) -> QueryResult<Vec<(String, String)>> {
    crate::with_backend!(conn, |c| {
        gm::table
            .inner_join(groups::table.on(groups::id.eq(gm::group_id)))
            .filter(gm::user_id.eq(user))
            .order(groups::display_name_lower.asc())
            .select((groups::id, groups::display_name))
            .load(c)
    })
}

pub fn is_member(conn: &mut DbConn, group: &str, user: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(gm::table.filter(gm::group_id.eq(group)).filter(gm::user_id.eq(user))))
            .get_result(c)
    })
}

pub fn add_member(conn: &mut DbConn, group: &str, user: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(gm::table)
            .values((gm::group_id.eq(group), gm::user_id.eq(user), gm::created_at.eq(now)))
            .execute(c)
            .map(|_| ())
    })
}

pub fn remove_member(conn: &mut DbConn, group: &str, user: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(gm::table.filter(gm::group_id.eq(group)).filter(gm::user_id.eq(user))).execute(c).map(|n| n == 1)
    })
}

#[allow(clippy::too_many_arguments)]
pub fn record_event(
    conn: &mut DbConn,
    account: &str,
    group: &str,
    user: &str,
    change: &str,
    source: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(me::table)
            .values((
                me::account_id.eq(account),
                me::group_id.eq(group),
                me::user_id.eq(user),
                me::change.eq(change),
                me::source.eq(source),
                me::created_at.eq(now),
            ))
            .execute(c)
            .map(|_| ())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = me)]
pub struct MembershipEvent {
    pub id: i64,
    pub account_id: String,
    pub group_id: String,
    pub user_id: String,
    pub change: String,
    pub source: String,
    pub created_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
}

pub fn events(conn: &mut DbConn, account: &str, after: i64, limit: i64) -> QueryResult<Vec<MembershipEvent>> {
    crate::with_backend!(conn, |c| {
        me::table
            .filter(me::account_id.eq(account))
            .filter(me::id.gt(after))
            .order(me::id.asc())
            .limit(limit)
            .select(MembershipEvent::as_select())
            .load(c)
    })
}

/// A group by id, whatever its account.
pub fn find_any(conn: &mut DbConn, id: &str) -> QueryResult<Option<GroupRow>> {
    crate::with_backend!(conn, |c| {
        groups::table.filter(groups::id.eq(id)).select(GroupRow::as_select()).first(c).optional()
    })
}
