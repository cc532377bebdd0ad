//! Group sync: bindings of partner groups to relationships, the membership-event outbox as
//! the worker drains it, and held removals.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{GroupBindingRow, MembershipEventRow, RelationshipRow, SyncHoldRow};
use super::schema::{
    group_bindings as gb, group_members as gm, membership_events as me, relationships as r, sync_holds as h, users,
};
use super::DbConn;

pub fn insert_binding(conn: &mut DbConn, row: &GroupBindingRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(gb::table).values(row).execute(c).map(|_| ()) })
}

pub fn binding(conn: &mut DbConn, relationship: &str, id: &str) -> QueryResult<Option<GroupBindingRow>> {
    crate::with_backend!(conn, |c| {
        gb::table
            .filter(gb::id.eq(id))
            .filter(gb::relationship_id.eq(relationship))
            .select(GroupBindingRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn bindings_of(conn: &mut DbConn, relationship: &str) -> QueryResult<Vec<GroupBindingRow>> {
    crate::with_backend!(conn, |c| {
        gb::table
            .filter(gb::relationship_id.eq(relationship))
            .order((gb::created_at.asc(), gb::id.asc()))
            .select(GroupBindingRow::as_select())
            .load(c)
    })
}

/// The bindings of these groups, with their relationships.
pub fn bindings_of_groups(
    conn: &mut DbConn,
    groups: &[String],
) -> QueryResult<Vec<(GroupBindingRow, RelationshipRow)>> {
    crate::with_backend!(conn, |c| {
        gb::table
            .inner_join(r::table.on(r::id.eq(gb::relationship_id)))
            .filter(gb::group_id.eq_any(groups))
            .order(gb::id.asc())
            .select((GroupBindingRow::as_select(), RelationshipRow::as_select()))
            .load(c)
    })
}

/// Every binding whose relationship has `account` on either side (all when `None`).
pub fn all_bindings(conn: &mut DbConn, account: Option<&str>) -> QueryResult<Vec<(GroupBindingRow, RelationshipRow)>> {
    crate::with_backend!(conn, |c| {
        let mut q = gb::table.inner_join(r::table.on(r::id.eq(gb::relationship_id))).into_boxed();
        if let Some(a) = account {
            q = q.filter(r::partner_account_id.eq(a).or(r::customer_account_id.eq(a)));
        }
        q.order(gb::id.asc()).select((GroupBindingRow::as_select(), RelationshipRow::as_select())).load(c)
    })
}

pub fn delete_binding(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| { diesel::delete(gb::table.filter(gb::id.eq(id))).execute(c).map(|n| n == 1) })
}

pub fn touch_binding(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(gb::table.filter(gb::id.eq(id))).set(gb::last_synced_at.eq(Some(now))).execute(c).map(|_| ())
    })
}

/// Records a sync on a relationship (not a change of it: its version stays).
pub fn touch_relationship(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(r::table.filter(r::id.eq(id))).set(r::last_synced_at.eq(Some(now))).execute(c).map(|_| ())
    })
}

/// The active users in a group (its members who may be delegates).
pub fn active_member_ids(conn: &mut DbConn, group: &str) -> QueryResult<Vec<String>> {
    use crate::domain::users::UserStatus;
    crate::with_backend!(conn, |c| {
        gm::table
            .inner_join(users::table.on(users::id.eq(gm::user_id)))
            .filter(gm::group_id.eq(group))
            .filter(users::status.eq(UserStatus::Active))
            .select(gm::user_id)
            .load(c)
    })
}

/// The oldest unprocessed events, claimed for this transaction: on PostgreSQL the rows are
/// locked and other processes skip them (`FOR UPDATE SKIP LOCKED`); on SQLite the writer's
/// `BEGIN IMMEDIATE` already excludes every other writer.
pub fn claim_events(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<MembershipEventRow>> {
    let q = me::table.filter(me::processed_at.is_null()).order(me::id.asc()).limit(limit);
    match conn {
        DbConn::Sqlite(c) => q.select(MembershipEventRow::as_select()).load(c),
        DbConn::Pg(c) => q.for_update().skip_locked().select(MembershipEventRow::as_select()).load(c),
    }
}

pub fn mark_processed(conn: &mut DbConn, ids: &[i64], now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(me::table.filter(me::id.eq_any(ids))).set(me::processed_at.eq(Some(now))).execute(c).map(|_| ())
    })
}

pub fn any_pending(conn: &mut DbConn) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(me::table.filter(me::processed_at.is_null()))).get_result(c)
    })
}

/// Unprocessed events (of one account's groups when given) and the oldest one's instant.
pub fn pending(conn: &mut DbConn, account: Option<&str>) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    crate::with_backend!(conn, |c| {
        let mut q = me::table.filter(me::processed_at.is_null()).into_boxed();
        if let Some(a) = account {
            q = q.filter(me::account_id.eq(a));
        }
        let (n, oldest): (i64, Option<NaiveDateTime>) =
            q.select((diesel::dsl::count_star(), diesel::dsl::min(me::created_at))).first(c)?;
        Ok((n, oldest))
    })
}

/// The oldest unprocessed event of these groups (a relationship's lag).
pub fn oldest_pending_of(conn: &mut DbConn, groups: &[String]) -> QueryResult<Option<NaiveDateTime>> {
    crate::with_backend!(conn, |c| {
        me::table
            .filter(me::processed_at.is_null())
            .filter(me::group_id.eq_any(groups))
            .select(diesel::dsl::min(me::created_at))
            .first(c)
    })
}

pub fn insert_hold(conn: &mut DbConn, row: &SyncHoldRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(h::table).values(row).execute(c).map(|_| ()) })
}

/// Holds of the relationships an account stands in (as partner or customer), newest first.
pub fn holds_of(conn: &mut DbConn, account: Option<&str>, status: Option<&str>) -> QueryResult<Vec<SyncHoldRow>> {
    crate::with_backend!(conn, |c| {
        let mut q = h::table.inner_join(r::table.on(r::id.eq(h::relationship_id))).into_boxed();
        if let Some(a) = account {
            q = q.filter(r::partner_account_id.eq(a).or(r::customer_account_id.eq(a)));
        }
        if let Some(s) = status {
            q = q.filter(h::status.eq(s));
        }
        q.order((h::created_at.desc(), h::id.desc())).select(SyncHoldRow::as_select()).load(c)
    })
}

pub fn hold(conn: &mut DbConn, id: &str) -> QueryResult<Option<SyncHoldRow>> {
    crate::with_backend!(conn, |c| {
        h::table.filter(h::id.eq(id)).select(SyncHoldRow::as_select()).first(c).optional()
    })
}

/// Decides a held removal; false when it was decided already.
pub fn decide_hold(conn: &mut DbConn, id: &str, status: &str, now: NaiveDateTime, by: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(h::table.filter(h::id.eq(id)).filter(h::status.eq("held")))
            .set((h::status.eq(status), h::decided_at.eq(Some(now)), h::decided_by.eq(Some(by))))
            .execute(c)
            .map(|n| n == 1)
    })
}

/// Deletes applied events older than `before` (the outbox keeps a week of history).
pub fn purge_processed(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    crate::with_backend!(conn, |c| {
        diesel::delete(me::table.filter(me::processed_at.is_not_null()).filter(me::processed_at.lt(before))).execute(c)
    })
}

/// Serializes sync work on these groups across processes: on PostgreSQL a transaction-scoped
/// advisory lock per group, taken in sorted order (so two drains never deadlock), makes the
/// membership read after it see every change a concurrent drain applied; SQLite's single
/// writer needs none.
pub fn lock_groups(conn: &mut DbConn, groups: &[String]) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        let mut sorted: Vec<&String> = groups.iter().collect();
        sorted.sort();
        sorted.dedup();
        for g in sorted {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(format!("provisor-sync:{g}"))
                .execute(c)?;
        }
    }
    Ok(())
}
