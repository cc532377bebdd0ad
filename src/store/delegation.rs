//! Partner relationships, their delegates, one-time codes and expiry warnings.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{DelegateCodeRow, DelegateRow, RelationshipRow, WarningRow};
use super::schema::{
    api_tokens as t, delegate_codes as dc, delegates as d, relationship_warnings as w, relationships as r,
};
use super::DbConn;

pub fn insert(conn: &mut DbConn, row: &RelationshipRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(r::table).values(row).execute(c).map(|_| ()) })
}

/// Stores a changed relationship whose stored version is `row.version - 1`; false when a
/// concurrent change got there first.
pub fn update(conn: &mut DbConn, row: &RelationshipRow) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(r::table.filter(r::id.eq(&row.id)).filter(r::version.eq(row.version - 1)))
            .set(row)
            .execute(c)
            .map(|n| n == 1)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<RelationshipRow>> {
    crate::with_backend!(conn, |c| {
        r::table.filter(r::id.eq(id)).select(RelationshipRow::as_select()).first(c).optional()
    })
}

/// The relationships an account stands in, as partner and/or customer, oldest first.
pub fn list_for_account(
    conn: &mut DbConn,
    account: &str,
    partner: bool,
    customer: bool,
) -> QueryResult<Vec<RelationshipRow>> {
    crate::with_backend!(conn, |c| {
        let mut q = r::table.into_boxed();
        q = match (partner, customer) {
            (true, true) => q.filter(r::partner_account_id.eq(account).or(r::customer_account_id.eq(account))),
            (true, false) => q.filter(r::partner_account_id.eq(account)),
            (false, true) => q.filter(r::customer_account_id.eq(account)),
            (false, false) => return Ok(Vec::new()),
        };
        q.order((r::created_at.asc(), r::id.asc())).select(RelationshipRow::as_select()).load(c)
    })
}

/// Customer-initiated invitations addressed to a partner user, not yet answered.
pub fn invitations_of_contact(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<RelationshipRow>> {
    crate::with_backend!(conn, |c| {
        r::table
            .filter(r::contact_user_id.eq(user_id))
            .filter(r::status.eq("invited"))
            .order(r::created_at.asc())
            .select(RelationshipRow::as_select())
            .load(c)
    })
}

/// Relationships the sweep may have work on at `now`: requests past their life, active
/// ones past their end, and active ones within the first warning window.
pub fn sweep_candidates(
    conn: &mut DbConn,
    request_cutoff: NaiveDateTime,
    warn_horizon: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<RelationshipRow>> {
    crate::with_backend!(conn, |c| {
        r::table
            .filter(
                r::status
                    .eq_any(["pending", "invited"])
                    .and(r::created_at.le(request_cutoff))
                    .or(r::status.eq("active").and(r::expires_at.le(warn_horizon))),
            )
            .order(r::id.asc())
            .limit(limit)
            .select(RelationshipRow::as_select())
            .load(c)
    })
}

pub fn warnings_recorded(conn: &mut DbConn, id: &str, expires_at: NaiveDateTime) -> QueryResult<Vec<i32>> {
    crate::with_backend!(conn, |c| {
        w::table.filter(w::relationship_id.eq(id)).filter(w::expires_at.eq(expires_at)).select(w::days_before).load(c)
    })
}

/// Records a warning; false when another process recorded it first.
pub fn record_warning(conn: &mut DbConn, row: &WarningRow) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(w::table).values(row).on_conflict_do_nothing().execute(c).map(|n| n == 1)
    })
}

pub fn delegate(conn: &mut DbConn, relationship: &str, user: &str) -> QueryResult<Option<DelegateRow>> {
    crate::with_backend!(conn, |c| {
        d::table
            .filter(d::relationship_id.eq(relationship))
            .filter(d::user_id.eq(user))
            .select(DelegateRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn insert_delegate(conn: &mut DbConn, row: &DelegateRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(d::table).values(row).execute(c).map(|_| ()) })
}

pub fn update_delegate(conn: &mut DbConn, row: &DelegateRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(d::table.filter(d::relationship_id.eq(&row.relationship_id)).filter(d::user_id.eq(&row.user_id)))
            .set((d::status.eq(&row.status), d::sources.eq(&row.sources), d::accepted_at.eq(row.accepted_at)))
            .execute(c)
            .map(|_| ())
    })
}

pub fn delete_delegate(conn: &mut DbConn, relationship: &str, user: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(d::table.filter(d::relationship_id.eq(relationship)).filter(d::user_id.eq(user)))
            .execute(c)
            .map(|n| n > 0)
    })
}

pub fn count_delegates(conn: &mut DbConn, relationship: &str) -> QueryResult<i64> {
    crate::with_backend!(conn, |c| { d::table.filter(d::relationship_id.eq(relationship)).count().get_result(c) })
}

pub fn delegates_of(conn: &mut DbConn, relationship: &str) -> QueryResult<Vec<DelegateRow>> {
    crate::with_backend!(conn, |c| {
        d::table
            .filter(d::relationship_id.eq(relationship))
            .order((d::added_at.asc(), d::user_id.asc()))
            .select(DelegateRow::as_select())
            .load(c)
    })
}

/// A user's delegations with their relationships.
pub fn delegations_of_user(conn: &mut DbConn, user: &str) -> QueryResult<Vec<(DelegateRow, RelationshipRow)>> {
    crate::with_backend!(conn, |c| {
        d::table
            .inner_join(r::table.on(r::id.eq(d::relationship_id)))
            .filter(d::user_id.eq(user))
            .order((d::added_at.asc(), d::relationship_id.asc()))
            .select((DelegateRow::as_select(), RelationshipRow::as_select()))
            .load(c)
    })
}

pub fn insert_code(conn: &mut DbConn, row: &DelegateCodeRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(dc::table).values(row).execute(c).map(|_| ()) })
}

/// The newest code of a delegate for a relationship.
pub fn latest_code(conn: &mut DbConn, relationship: &str, user: &str) -> QueryResult<Option<DelegateCodeRow>> {
    crate::with_backend!(conn, |c| {
        dc::table
            .filter(dc::relationship_id.eq(relationship))
            .filter(dc::user_id.eq(user))
            .order((dc::created_at.desc(), dc::id.desc()))
            .select(DelegateCodeRow::as_select())
            .first(c)
            .optional()
    })
}

/// Codes a delegate asked for since `since` (the re-send throttle's window).
pub fn codes_since(conn: &mut DbConn, relationship: &str, user: &str, since: NaiveDateTime) -> QueryResult<i64> {
    crate::with_backend!(conn, |c| {
        dc::table
            .filter(dc::relationship_id.eq(relationship))
            .filter(dc::user_id.eq(user))
            .filter(dc::created_at.ge(since))
            .count()
            .get_result(c)
    })
}

pub fn count_wrong_try(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(dc::table.filter(dc::id.eq(id)))
            .set(dc::failed_attempts.eq(dc::failed_attempts + 1))
            .execute(c)
            .map(|_| ())
    })
}

/// Marks a code used; false when it was used already (by a concurrent request).
pub fn use_code(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(dc::table.filter(dc::id.eq(id)).filter(dc::used_at.is_null()))
            .set(dc::used_at.eq(Some(now)))
            .execute(c)
            .map(|n| n == 1)
    })
}

/// Revokes the live delegated tokens of a relationship (of one delegate when given); their
/// hashes, to clear caches.
pub fn revoke_sessions(
    conn: &mut DbConn,
    relationship: &str,
    user: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        let mut live = t::table
            .filter(t::relationship_id.eq(relationship))
            .filter(t::scope.eq("delegated"))
            .filter(t::revoked_at.is_null())
            .into_boxed();
        if let Some(u) = user {
            live = live.filter(t::user_id.eq(u));
        }
        let found: Vec<(String, String)> = live.select((t::id, t::token_hash)).load(c)?;
        let ids: Vec<&String> = found.iter().map(|(id, _)| id).collect();
        diesel::update(t::table.filter(t::id.eq_any(ids))).set(t::revoked_at.eq(Some(now))).execute(c)?;
        Ok(found.into_iter().map(|(_, h)| h).collect())
    })
}

/// A live delegated token: (user, token id, expires_at).
pub type LiveSession = (Option<String>, String, Option<NaiveDateTime>);

/// The live delegated tokens of a relationship.
pub fn live_sessions(conn: &mut DbConn, relationship: &str, now: NaiveDateTime) -> QueryResult<Vec<LiveSession>> {
    crate::with_backend!(conn, |c| {
        t::table
            .filter(t::relationship_id.eq(relationship))
            .filter(t::scope.eq("delegated"))
            .filter(t::revoked_at.is_null())
            .filter(t::expires_at.gt(now))
            .order(t::created_at.asc())
            .select((t::user_id, t::id, t::expires_at))
            .load(c)
    })
}
