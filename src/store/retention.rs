//! Retention queries: what each purge kind counts and deletes, older than a cutoff, in
//! batches of at most `limit` rows (each batch is its own short write transaction, so a
//! purge of a large backlog never holds the write lock long). The cutoffs and the kinds'
//! meaning live in `service::retention`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{
    api_tokens, audit_log, delegate_codes, mail_outbox, membership_events, relationships, saml_replay, saml_requests,
    sessions,
};
use super::DbConn;

/// The relationship states that have ended for good.
pub const ENDED: [&str; 3] = ["terminated", "declined", "expired"];

/// Counts the rows of `$old` (a filtered table), or deletes at most `$limit` of them: their
/// keys `$key` are read first (a table cannot be the subselect of its own DELETE in Diesel),
/// then deleted by key, in the caller's transaction.
macro_rules! count_or_delete {
    ($conn:expr, $table:path, $key:expr, $ty:ty, $old:expr, $limit:expr) => {
        crate::with_backend!($conn, |c| match $limit {
            None => $old.count().get_result::<i64>(c).map(|n| usize::try_from(n).unwrap_or(0)),
            Some(n) => {
                let keys: Vec<$ty> = $old.select($key).limit(n).load(c)?;
                if keys.is_empty() {
                    Ok(0)
                } else {
                    diesel::delete($table.filter($key.eq_any(&keys))).execute(c)
                }
            }
        })
    };
}

/// Audit entries written before `cutoff`.
pub fn audit(conn: &mut DbConn, cutoff: NaiveDateTime, limit: Option<i64>) -> QueryResult<usize> {
    count_or_delete!(
        conn,
        audit_log::table,
        audit_log::id,
        i64,
        audit_log::table.filter(audit_log::created_at.lt(cutoff)),
        limit
    )
}

/// Outbox mail sent, or failed for good, before `cutoff` (mail still to deliver stays).
pub fn mail(conn: &mut DbConn, cutoff: NaiveDateTime, limit: Option<i64>) -> QueryResult<usize> {
    let old = mail_outbox::table.filter(mail_outbox::sent_at.lt(cutoff).or(mail_outbox::failed_at.lt(cutoff)));
    count_or_delete!(conn, mail_outbox::table, mail_outbox::id, i64, old, limit)
}

/// Membership events applied before `cutoff` (pending events are never purged).
pub fn membership_events(conn: &mut DbConn, cutoff: NaiveDateTime, limit: Option<i64>) -> QueryResult<usize> {
    use membership_events as me;
    let old = me::table.filter(me::processed_at.is_not_null()).filter(me::processed_at.lt(cutoff));
    count_or_delete!(conn, me::table, me::id, i64, old, limit)
}

/// Relationships that ended (terminated, declined, expired) before `cutoff`, with their
/// delegates, codes, warnings, bindings and holds (`ON DELETE CASCADE`) and the delegated
/// tokens they issued.
pub fn ended_relationships(conn: &mut DbConn, cutoff: NaiveDateTime, limit: Option<i64>) -> QueryResult<usize> {
    let old = relationships::table
        .filter(relationships::status.eq_any(ENDED))
        .filter(relationships::ended_at.is_not_null())
        .filter(relationships::ended_at.lt(cutoff));
    crate::with_backend!(conn, |c| match limit {
        None => old.count().get_result::<i64>(c).map(|n| usize::try_from(n).unwrap_or(0)),
        Some(n) => {
            let ids: Vec<String> = old.select(relationships::id).order(relationships::id).limit(n).load(c)?;
            if ids.is_empty() {
                return Ok(0);
            }
            diesel::delete(api_tokens::table.filter(api_tokens::relationship_id.eq_any(&ids))).execute(c)?;
            diesel::delete(relationships::table.filter(relationships::id.eq_any(&ids))).execute(c)
        }
    })
}

/// Expired credentials: API tokens expired or revoked before `cutoff`, sessions, delegate
/// codes (expired or used), SAML replay entries and AuthnRequests that expired before it.
/// Counted together; deleted table by table, each at most `limit` rows per call.
pub fn credentials(conn: &mut DbConn, cutoff: NaiveDateTime, limit: Option<i64>) -> QueryResult<usize> {
    let tokens = api_tokens::table.filter(api_tokens::expires_at.lt(cutoff).or(api_tokens::revoked_at.lt(cutoff)));
    let codes =
        delegate_codes::table.filter(delegate_codes::expires_at.lt(cutoff).or(delegate_codes::used_at.lt(cutoff)));
    let mut done = count_or_delete!(conn, api_tokens::table, api_tokens::id, String, tokens, limit)?;
    done += count_or_delete!(conn, delegate_codes::table, delegate_codes::id, String, codes, limit)?;
    done += count_or_delete!(
        conn,
        sessions::table,
        sessions::id_hash,
        String,
        sessions::table.filter(sessions::expires_at.lt(cutoff)),
        limit
    )?;
    done += count_or_delete!(
        conn,
        saml_requests::table,
        saml_requests::id,
        String,
        saml_requests::table.filter(saml_requests::expires_at.lt(cutoff)),
        limit
    )?;
    // Composite key: an assertion id names at most one row per account; deleting by id
    // and cutoff together removes only expired rows.
    let replay = saml_replay::table.filter(saml_replay::expires_at.lt(cutoff));
    done += crate::with_backend!(conn, |c| match limit {
        None => replay.count().get_result::<i64>(c).map(|n| usize::try_from(n).unwrap_or(0)),
        Some(n) => {
            let ids: Vec<String> = replay.select(saml_replay::assertion_id).limit(n).load(c)?;
            if ids.is_empty() {
                Ok(0)
            } else {
                diesel::delete(
                    saml_replay::table
                        .filter(saml_replay::expires_at.lt(cutoff))
                        .filter(saml_replay::assertion_id.eq_any(&ids)),
                )
                .execute(c)
            }
        }
    })?;
    Ok(done)
}
