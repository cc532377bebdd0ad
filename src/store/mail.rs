//! Delivery of the mail outbox (`crate::mail` sends): claiming the rows that are due under
//! a lease, and recording each attempt's outcome. Rows are queued by `audit::queue_mail` in
//! the transaction of the change they describe.
//!
//! A claim is a short write transaction: the due rows (undelivered, not failed, past their
//! backoff, no live lease) get this process's `claim_token` and a `claimed_until` lease, and
//! their `message_id` if they have none yet. On PostgreSQL the rows are selected
//! `FOR UPDATE SKIP LOCKED`, so processes claiming at the same instant take different rows;
//! on SQLite the write lock serialises the claims. A process that dies holding a lease
//! leaves its rows to whoever claims after `claimed_until`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::MailRow;
use super::schema::mail_outbox;
use super::DbConn;

/// What happens to a row after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again, not before this instant.
    RetryAt(NaiveDateTime),
    /// Give up: the row is marked failed.
    GiveUp,
}

/// Claims up to `limit` due rows, oldest first, until `lease_until` under `token`; rows
/// without a Message-ID get `message_id(row)`. Run it inside a write transaction.
pub fn claim(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    token: &str,
    limit: i64,
    message_id: &dyn Fn(&MailRow) -> String,
) -> QueryResult<Vec<MailRow>> {
    // Written out per backend: the selection's type is specific to the backend it runs on.
    macro_rules! due {
        () => {
            mail_outbox::table
                .filter(mail_outbox::sent_at.is_null())
                .filter(mail_outbox::failed_at.is_null())
                .filter(mail_outbox::next_attempt_at.is_null().or(mail_outbox::next_attempt_at.le(now)))
                .filter(mail_outbox::claimed_until.is_null().or(mail_outbox::claimed_until.lt(now)))
                .order(mail_outbox::id.asc())
                .limit(limit)
                .select(MailRow::as_select())
        };
    }
    let mut rows: Vec<MailRow> = match conn {
        DbConn::Sqlite(c) => due!().load(c)?,
        DbConn::Pg(c) => due!().for_update().skip_locked().load(c)?,
    };
    if rows.is_empty() {
        return Ok(rows);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids)))
        .set((mail_outbox::claimed_until.eq(Some(lease_until)), mail_outbox::claim_token.eq(Some(token))))
        .execute(conn)?;
    for row in &mut rows {
        row.claimed_until = Some(lease_until);
        row.claim_token = Some(token.to_owned());
        if row.message_id.is_none() {
            let id = message_id(row);
            diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(row.id)))
                .set(mail_outbox::message_id.eq(Some(&id)))
                .execute(conn)?;
            row.message_id = Some(id);
        }
    }
    Ok(rows)
}

/// The SMTP server accepted the row's message. Recorded whoever holds the lease now: the
/// mail went out.
pub fn mark_sent(conn: &mut DbConn, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(id)))
        .set((
            mail_outbox::sent_at.eq(Some(now)),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::next_attempt_at.eq(None::<NaiveDateTime>),
            mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
            mail_outbox::claim_token.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A failed attempt of the claim `token` (a row whose lease passed to another process is
/// left to that process).
pub fn record_failure(
    conn: &mut DbConn,
    id: i64,
    token: &str,
    now: NaiveDateTime,
    error: &str,
    then: AfterFailure,
) -> QueryResult<()> {
    let (next, failed) = match then {
        AfterFailure::RetryAt(at) => (Some(at), None),
        AfterFailure::GiveUp => (None, Some(now)),
    };
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(id)).filter(mail_outbox::claim_token.eq(token)))
        .set((
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::last_error.eq(Some(error)),
            mail_outbox::next_attempt_at.eq(next),
            mail_outbox::failed_at.eq(failed),
            mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
            mail_outbox::claim_token.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Gives claimed rows back unattempted (the process stops, or its lease runs short).
pub fn release(conn: &mut DbConn, ids: &[i64], token: &str) -> QueryResult<usize> {
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(ids)).filter(mail_outbox::claim_token.eq(token)))
        .set((mail_outbox::claimed_until.eq(None::<NaiveDateTime>), mail_outbox::claim_token.eq(None::<String>)))
        .execute(conn)
}
