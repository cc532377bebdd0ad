//! The audit log and the mail outbox: both written in the same transaction as the change
//! they describe.

use diesel::prelude::*;

use super::models::{AuditRow, MailRow, NewAudit, NewMail};
use super::schema::{audit_log, mail_outbox};
use super::DbConn;

pub fn record(conn: &mut DbConn, entry: &NewAudit) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(audit_log::table).values(entry).execute(c).map(|_| ()) })
}

/// Several entries in one statement, in order.
pub fn record_many(conn: &mut DbConn, entries: &[NewAudit]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(audit_log::table).values(entries).execute(c).map(|_| ()) })
}

/// Newest first; `before` pages backwards by id.
pub fn list(conn: &mut DbConn, account: &str, before: Option<i64>, limit: i64) -> QueryResult<Vec<AuditRow>> {
    crate::with_backend!(conn, |c| {
        let mut q = audit_log::table.filter(audit_log::account_id.eq(account)).into_boxed();
        if let Some(b) = before {
            q = q.filter(audit_log::id.lt(b));
        }
        q.order(audit_log::id.desc()).limit(limit).select(AuditRow::as_select()).load(c)
    })
}

pub fn list_for_target(conn: &mut DbConn, account: &str, target: &str, limit: i64) -> QueryResult<Vec<AuditRow>> {
    crate::with_backend!(conn, |c| {
        audit_log::table
            .filter(audit_log::account_id.eq(account))
            .filter(audit_log::target.eq(target))
            .order(audit_log::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(c)
    })
}

pub fn queue_mail(conn: &mut DbConn, mail: &NewMail) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(mail_outbox::table).values(mail).execute(c).map(|_| ()) })
}

/// Several mails in one statement, in order.
pub fn queue_mails(conn: &mut DbConn, mails: &[NewMail]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(mail_outbox::table).values(mails).execute(c).map(|_| ()) })
}

pub fn list_mail(conn: &mut DbConn, recipient: Option<&str>, limit: i64) -> QueryResult<Vec<MailRow>> {
    crate::with_backend!(conn, |c| {
        let mut q = mail_outbox::table.into_boxed();
        if let Some(r) = recipient {
            q = q.filter(mail_outbox::recipient.eq(r));
        }
        q.order(mail_outbox::id.desc()).limit(limit).select(MailRow::as_select()).load(c)
    })
}

/// The users of `account` with an SSO login or a SCIM/API change in `[from, to)`, with the
/// instant of their last one (read from the audit log; users since deleted are left out).
pub fn active_users(
    conn: &mut DbConn,
    account: &str,
    from: chrono::NaiveDateTime,
    to: chrono::NaiveDateTime,
) -> QueryResult<Vec<(String, Option<String>, chrono::NaiveDateTime)>> {
    use super::schema::users;
    crate::with_backend!(conn, |c| {
        audit_log::table
            .inner_join(users::table.on(audit_log::target.eq(users::id.nullable())))
            .filter(audit_log::account_id.eq(account))
            .filter(audit_log::created_at.ge(from))
            .filter(audit_log::created_at.lt(to))
            .filter(
                audit_log::action
                    .eq("saml.login")
                    .or(audit_log::action.like("user.%").and(audit_log::source.eq_any(["scim", "api"]))),
            )
            .group_by((users::id, users::email))
            .select((users::id, users::email, diesel::dsl::max(audit_log::created_at).assume_not_null()))
            .order(users::id.asc())
            .load(c)
    })
}
