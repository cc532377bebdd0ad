//! SAML state shared by every server process: per-account SSO configuration and IdP
//! certificates, outstanding AuthnRequests, the assertion replay cache and login sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{saml_replay, saml_requests, sessions, sso_certificates, sso_configs};
use super::DbConn;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = sso_configs, treat_none_as_default_value = false)]
pub struct SsoConfigRow {
    pub account_id: String,
    pub idp_entity_id: String,
    pub sso_url: Option<String>,
    pub sp_entity_id: Option<String>,
    pub clock_skew_seconds: i32,
    pub allow_idp_initiated: bool,
    pub jit_enabled: bool,
    pub allow_sha1: bool,
    /// JSON array of absolute URL prefixes a RelayState may redirect to.
    pub allowed_redirects: String,
    pub updated_at: NaiveDateTime,
    /// The outside account (a master on the mirror) that configured this trust.
    #[diesel(treat_none_as_null = true)]
    pub granted_from: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sso_certificates, treat_none_as_default_value = false)]
pub struct SsoCertificateRow {
    pub id: String,
    pub account_id: String,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint: String,
    pub pem: String,
    pub not_after: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub account_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn config(conn: &mut DbConn, account: &str) -> QueryResult<Option<SsoConfigRow>> {
    crate::with_backend!(conn, |c| {
        sso_configs::table.find(account).select(SsoConfigRow::as_select()).first(c).optional()
    })
}

/// Inserts or replaces the account's configuration.
pub fn save_config(conn: &mut DbConn, row: &SsoConfigRow) -> QueryResult<()> {
    let updated = crate::with_backend!(conn, |c| {
        diesel::update(sso_configs::table.find(&row.account_id)).set(row).execute(c)
    })?;
    if updated == 0 {
        crate::with_backend!(conn, |c| { diesel::insert_into(sso_configs::table).values(row).execute(c) })?;
    }
    Ok(())
}

/// Removes the configuration and its certificates; false when there was none.
pub fn delete_config(conn: &mut DbConn, account: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(sso_certificates::table.filter(sso_certificates::account_id.eq(account))).execute(c)
    })?;
    let n = crate::with_backend!(conn, |c| { diesel::delete(sso_configs::table.find(account)).execute(c) })?;
    Ok(n > 0)
}

/// Bumps `updated_at` (certificate changes invalidate cached validation settings).
pub fn touch_config(conn: &mut DbConn, account: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(sso_configs::table.find(account)).set(sso_configs::updated_at.eq(now)).execute(c)
    })?;
    Ok(())
}

pub fn certificates(conn: &mut DbConn, account: &str) -> QueryResult<Vec<SsoCertificateRow>> {
    crate::with_backend!(conn, |c| {
        sso_certificates::table
            .filter(sso_certificates::account_id.eq(account))
            .order((sso_certificates::created_at, sso_certificates::id))
            .select(SsoCertificateRow::as_select())
            .load(c)
    })
}

pub fn insert_certificate(conn: &mut DbConn, row: &SsoCertificateRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(sso_certificates::table).values(row).execute(c) })?;
    Ok(())
}

pub fn delete_certificates(conn: &mut DbConn, account: &str) -> QueryResult<usize> {
    crate::with_backend!(conn, |c| {
        diesel::delete(sso_certificates::table.filter(sso_certificates::account_id.eq(account))).execute(c)
    })
}

/// Removes one certificate by id or fingerprint; false when the account has no such one.
pub fn delete_certificate(conn: &mut DbConn, account: &str, id_or_fingerprint: &str) -> QueryResult<bool> {
    let n =
        crate::with_backend!(conn, |c| {
            diesel::delete(sso_certificates::table.filter(sso_certificates::account_id.eq(account)).filter(
                sso_certificates::id.eq(id_or_fingerprint).or(sso_certificates::fingerprint.eq(id_or_fingerprint)),
            ))
            .execute(c)
        })?;
    Ok(n > 0)
}

/// Records an AuthnRequest we sent; `target` is where to go after the login.
pub fn insert_request(
    conn: &mut DbConn,
    id: &str,
    account: &str,
    target: Option<&str>,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(saml_requests::table)
            .values((
                saml_requests::id.eq(id),
                saml_requests::account_id.eq(account),
                saml_requests::relay_state.eq(target),
                saml_requests::created_at.eq(now),
                saml_requests::expires_at.eq(expires_at),
            ))
            .execute(c)
    })?;
    Ok(())
}

/// Consumes an outstanding request of this account: `Some(target)` exactly once per id
/// while it has not expired; `None` when it is unknown, foreign, expired or already used.
/// The delete decides, so two concurrent answers to one request cannot both win.
pub fn consume_request(
    conn: &mut DbConn,
    id: &str,
    account: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<Option<String>>> {
    let found: Option<Option<String>> = crate::with_backend!(conn, |c| {
        saml_requests::table
            .filter(saml_requests::id.eq(id))
            .filter(saml_requests::account_id.eq(account))
            .filter(saml_requests::expires_at.gt(now))
            .select(saml_requests::relay_state)
            .first(c)
            .optional()
    })?;
    let Some(target) = found else { return Ok(None) };
    let deleted = crate::with_backend!(conn, |c| {
        diesel::delete(
            saml_requests::table.filter(saml_requests::id.eq(id)).filter(saml_requests::account_id.eq(account)),
        )
        .execute(c)
    })?;
    Ok((deleted == 1).then_some(target))
}

/// Records an assertion ID as used. A unique violation means it was used before (a
/// replay); on PostgreSQL a concurrent insert of the same ID waits for the first
/// transaction and then fails the same way.
pub fn record_assertion(
    conn: &mut DbConn,
    assertion_id: &str,
    account: &str,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(saml_replay::table)
            .values((
                saml_replay::assertion_id.eq(assertion_id),
                saml_replay::account_id.eq(account),
                saml_replay::expires_at.eq(expires_at),
            ))
            .execute(c)
    })?;
    Ok(())
}

pub fn insert_session(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(sessions::table).values(row).execute(c) })?;
    Ok(())
}

/// A live session by the hash of its cookie value.
pub fn session(conn: &mut DbConn, id_hash: &str, now: NaiveDateTime) -> QueryResult<Option<SessionRow>> {
    crate::with_backend!(conn, |c| {
        sessions::table
            .filter(sessions::id_hash.eq(id_hash))
            .filter(sessions::expires_at.gt(now))
            .select(SessionRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn delete_session(conn: &mut DbConn, id_hash: &str) -> QueryResult<bool> {
    let n = crate::with_backend!(conn, |c| { diesel::delete(sessions::table.find(id_hash)).execute(c) })?;
    Ok(n > 0)
}

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub replay_entries: usize,
    pub requests: usize,
    pub sessions: usize,
}

/// Drops replay entries, requests and sessions that have expired. Safe in every process
/// at once: an expired replay entry guards nothing (the assertion is refused as expired).
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<Purged> {
    let replay_entries = crate::with_backend!(conn, |c| {
        diesel::delete(saml_replay::table.filter(saml_replay::expires_at.le(now))).execute(c)
    })?;
    let requests = crate::with_backend!(conn, |c| {
        diesel::delete(saml_requests::table.filter(saml_requests::expires_at.le(now))).execute(c)
    })?;
    let sessions = crate::with_backend!(conn, |c| {
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(c)
    })?;
    Ok(Purged { replay_entries, requests, sessions })
}

/// Removes the SSO trust an outside account configured (disassociation); true when removed.
pub fn delete_config_granted_from(conn: &mut DbConn, account: &str, from: &str) -> QueryResult<bool> {
    let theirs: bool = crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(
            sso_configs::table.filter(sso_configs::account_id.eq(account)).filter(sso_configs::granted_from.eq(from)),
        ))
        .get_result(c)
    })?;
    if theirs {
        delete_config(conn, account)
    } else {
        Ok(false)
    }
}

/// A user's live sessions, newest first.
pub fn sessions_of(
    conn: &mut DbConn,
    account: &str,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<SessionRow>> {
    crate::with_backend!(conn, |c| {
        sessions::table
            .filter(sessions::account_id.eq(account))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now))
            .order(sessions::created_at.desc())
            .select(SessionRow::as_select())
            .load(c)
    })
}

/// Ends every session of a user; how many there were.
pub fn delete_sessions_of(conn: &mut DbConn, account: &str, user_id: &str) -> QueryResult<usize> {
    crate::with_backend!(conn, |c| {
        diesel::delete(sessions::table.filter(sessions::account_id.eq(account)).filter(sessions::user_id.eq(user_id)))
            .execute(c)
    })
}
