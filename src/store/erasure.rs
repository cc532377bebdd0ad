//! The rows an erasure rewrites after the user's own rows are deleted: audit entries and
//! outbox mail that still name the user, and relationships that name the user as their
//! contact. Which strings count as personal, and what replaces them, is decided in
//! `service::erasure`; these queries only find candidates (broadly: `LIKE` may match more
//! than the service then changes) and write the rewritten rows back.

use diesel::prelude::*;
use diesel::QueryResult;

use super::schema::{audit_log, mail_outbox, relationships};
use super::DbConn;

diesel::define_sql_function! {
    /// SQL `lower()`, the same on both backends for the ASCII a needle is matched in.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// An audit entry as the erasure reads and rewrites it.
#[derive(Debug, Clone, Queryable)]
pub struct AuditText {
    pub id: i64,
    pub actor: String,
    pub target: Option<String>,
    pub detail: String,
}

/// An outbox mail as the erasure reads and rewrites it.
#[derive(Debug, Clone, Queryable)]
pub struct MailText {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Audit entries whose actor, target or detail contains one of `needles` (matched
/// case-insensitively; the needles are given in lower case).
pub fn audit_mentioning(conn: &mut DbConn, needles: &[String]) -> QueryResult<Vec<AuditText>> {
    crate::with_backend!(conn, |c| {
        let mut query = audit_log::table
            .select((audit_log::id, audit_log::actor, audit_log::target, audit_log::detail))
            .filter(audit_log::id.lt(0))
            .into_boxed();
        for needle in needles {
            let pattern = format!("%{needle}%");
            query = query
                .or_filter(lower(audit_log::actor).like(pattern.clone()))
                .or_filter(lower(audit_log::target.assume_not_null()).like(pattern.clone()))
                .or_filter(lower(audit_log::detail).like(pattern));
        }
        query.order(audit_log::id).load(c)
    })
}

pub fn rewrite_audit(conn: &mut DbConn, row: &AuditText) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(audit_log::table.filter(audit_log::id.eq(row.id)))
            .set((
                audit_log::actor.eq(&row.actor),
                audit_log::target.eq(&row.target),
                audit_log::detail.eq(&row.detail),
            ))
            .execute(c)
            .map(|_| ())
    })
}

/// Outbox mail whose recipient, subject or body contains one of `needles` (lower case).
pub fn mail_mentioning(conn: &mut DbConn, needles: &[String]) -> QueryResult<Vec<MailText>> {
    crate::with_backend!(conn, |c| {
        let mut query = mail_outbox::table
            .select((mail_outbox::id, mail_outbox::recipient, mail_outbox::subject, mail_outbox::body))
            .filter(mail_outbox::id.lt(0))
            .into_boxed();
        for needle in needles {
            let pattern = format!("%{needle}%");
            query = query
                .or_filter(lower(mail_outbox::recipient).like(pattern.clone()))
                .or_filter(lower(mail_outbox::subject).like(pattern.clone()))
                .or_filter(lower(mail_outbox::body).like(pattern));
        }
        query.order(mail_outbox::id).load(c)
    })
}

pub fn delete_mail(conn: &mut DbConn, ids: &[i64]) -> QueryResult<usize> {
    crate::with_backend!(conn, |c| diesel::delete(mail_outbox::table.filter(mail_outbox::id.eq_any(ids))).execute(c))
}

pub fn rewrite_mail(conn: &mut DbConn, row: &MailText) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(row.id)))
            .set((mail_outbox::subject.eq(&row.subject), mail_outbox::body.eq(&row.body)))
            .execute(c)
            .map(|_| ())
    })
}

/// Relationships that name the user as their contact forget it.
pub fn forget_contact(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    crate::with_backend!(conn, |c| {
        diesel::update(relationships::table.filter(relationships::contact_user_id.eq(user_id)))
            .set(relationships::contact_user_id.eq(None::<String>))
            .execute(c)
    })
}
