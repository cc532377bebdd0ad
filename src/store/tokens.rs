//! API tokens: only their SHA-256 is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::TokenRow;
use super::schema::api_tokens as t;
use super::DbConn;

pub fn insert(conn: &mut DbConn, row: &TokenRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(t::table).values(row).execute(c).map(|_| ()) })
}

/// A token neither revoked nor expired at `now`.
pub fn find_active_by_hash(conn: &mut DbConn, hash: &str, now: NaiveDateTime) -> QueryResult<Option<TokenRow>> {
    crate::with_backend!(conn, |c| {
        t::table
            .filter(t::token_hash.eq(hash))
            .filter(t::revoked_at.is_null())
            .filter(t::expires_at.is_null().or(t::expires_at.gt(now)))
            .select(TokenRow::as_select())
            .first(c)
            .optional()
    })
}

/// A token by its hash, whatever its state.
pub fn find_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<TokenRow>> {
    crate::with_backend!(conn, |c| {
        t::table.filter(t::token_hash.eq(hash)).select(TokenRow::as_select()).first(c).optional()
    })
}

pub fn list(conn: &mut DbConn, account: &str) -> QueryResult<Vec<TokenRow>> {
    crate::with_backend!(conn, |c| {
        // Delegated tokens belong to the partner's delegates: the relationship's delegate
        // view lists them, not the customer's own token list.
        t::table
            .filter(t::account_id.eq(account))
            .filter(t::scope.ne("delegated"))
            .order(t::created_at.asc())
            .select(TokenRow::as_select())
            .load(c)
    })
}

pub fn any_operator(conn: &mut DbConn) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(t::table.filter(t::scope.eq("operator")).filter(t::revoked_at.is_null())))
            .get_result(c)
    })
}

pub fn revoke(conn: &mut DbConn, account: &str, id: &str, now: NaiveDateTime) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| {
        let hash: Option<String> = t::table
            .filter(t::id.eq(id))
            .filter(t::account_id.eq(account))
            .filter(t::revoked_at.is_null())
            .select(t::token_hash)
            .first(c)
            .optional()?;
        if hash.is_some() {
            diesel::update(t::table.filter(t::id.eq(id))).set(t::revoked_at.eq(Some(now))).execute(c)?;
        }
        Ok(hash)
    })
}

/// Revokes every live token of `account` that an outside account minted; their hashes.
pub fn revoke_granted_from(
    conn: &mut DbConn,
    account: &str,
    from: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        let live =
            t::table.filter(t::account_id.eq(account)).filter(t::granted_from.eq(from)).filter(t::revoked_at.is_null());
        let hashes: Vec<String> = live.select(t::token_hash).load(c)?;
        diesel::update(live).set(t::revoked_at.eq(Some(now))).execute(c)?;
        Ok(hashes)
    })
}

/// Records a use of the token, at most once a minute (so a busy token costs one write a
/// minute, not one per request).
pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    let stale = now - chrono::Duration::seconds(60);
    crate::with_backend!(conn, |c| {
        diesel::update(t::table.filter(t::id.eq(id)).filter(t::last_used_at.is_null().or(t::last_used_at.lt(stale))))
            .set(t::last_used_at.eq(Some(now)))
            .execute(c)
    })?;
    Ok(())
}

/// The live tokens acting as one user.
pub fn list_of_user(conn: &mut DbConn, account: &str, user_id: &str) -> QueryResult<Vec<TokenRow>> {
    crate::with_backend!(conn, |c| {
        t::table
            .filter(t::account_id.eq(account))
            .filter(t::user_id.eq(user_id))
            .order(t::created_at.asc())
            .select(TokenRow::as_select())
            .load(c)
    })
}
