//! Users, their e-mail index, phone profiles and invitations.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{InvitationRow, UserPhoneRow, UserRow};
use super::schema::{invitations, user_emails, user_phones, users};
use super::DbConn;

pub fn insert(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(users::table).values(row).execute(c).map(|_| ()) })
}

/// Writes the whole row. With `expected_version`, only if the stored version still matches
/// (optimistic concurrency for ETag/If-Match): `false` means another write came first.
pub fn update(conn: &mut DbConn, row: &UserRow, expected_version: Option<i64>) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        let n = match expected_version {
            Some(v) => diesel::update(users::table.filter(users::id.eq(&row.id)).filter(users::version.eq(v)))
                .set(row)
                .execute(c)?,
            None => diesel::update(users::table.filter(users::id.eq(&row.id))).set(row).execute(c)?,
        };
        Ok(n == 1)
    })
}

/// A sign-in that changed nothing else: only the last login and source are written (the
/// full-row [`update`] would rewrite every indexed column of the row).
pub fn record_login(conn: &mut DbConn, id: &str, at: NaiveDateTime, source: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(users::table.filter(users::id.eq(id)))
            .set((users::last_login_at.eq(Some(at)), users::last_source.eq(source)))
            .execute(c)
            .map(|n| n == 1)
    })
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| { diesel::delete(users::table.filter(users::id.eq(id))).execute(c).map(|n| n == 1) })
}

pub fn find(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::id.eq(id))
            .filter(users::account_id.eq(account))
            .select(UserRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn find_any(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table.filter(users::id.eq(id)).select(UserRow::as_select()).first(c).optional()
    })
}

pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table.filter(users::email.eq(email)).select(UserRow::as_select()).first(c).optional()
    })
}

/// [`find_by_email`] with the row locked until the transaction ends (`FOR UPDATE` on
/// PostgreSQL; SQLite's writers are serialised already): the read and the pipeline's user
/// lock in one statement.
pub fn find_by_email_locked(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    match conn {
        DbConn::Pg(c) => {
            users::table.filter(users::email.eq(email)).select(UserRow::as_select()).for_update().first(c).optional()
        }
        DbConn::Sqlite(_) => find_by_email(conn, email),
    }
}

/// The users of these addresses (at most one each), in one query.
pub fn find_by_emails(conn: &mut DbConn, emails: &[String]) -> QueryResult<Vec<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table.filter(users::email.eq_any(emails)).select(UserRow::as_select()).load(c)
    })
}

pub fn find_by_user_name(conn: &mut DbConn, account: &str, user_name_lower: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .filter(users::user_name_lower.eq(user_name_lower))
            .select(UserRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn find_by_external_id(conn: &mut DbConn, account: &str, external_id: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .filter(users::external_id.eq(external_id))
            .select(UserRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn owner(conn: &mut DbConn, account: &str) -> QueryResult<Option<UserRow>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .filter(users::role.eq(crate::domain::users::BaseRole::Owner))
            .select(UserRow::as_select())
            .first(c)
            .optional()
    })
}

/// Filters for the admin user list.
#[derive(Debug, Clone, Default)]
pub struct UserListFilter {
    pub status: Option<String>,
    pub user_type: Option<String>,
    pub email_prefix: Option<String>,
}

pub fn list(
    conn: &mut DbConn,
    account: &str,
    f: &UserListFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<UserRow>, i64)> {
    crate::with_backend!(conn, |c| {
        let build = || {
            let mut q = users::table.filter(users::account_id.eq(account)).into_boxed();
            if let Some(s) = &f.status {
                q = q.filter(users::status.eq(s.clone()));
            }
            if let Some(t) = &f.user_type {
                q = q.filter(users::user_type.eq(t.clone()));
            }
            if let Some(p) = &f.email_prefix {
                let escaped = p.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                q = q.filter(users::email.like(format!("{escaped}%")).escape('\\'));
            }
            q
        };
        let total: i64 = build().count().get_result(c)?;
        let rows = build()
            .order((users::created_at.asc(), users::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(UserRow::as_select())
            .load(c)?;
        Ok((rows, total))
    })
}

/// Ids of the users of one type (bulk operations), oldest first.
pub fn ids_of_type(conn: &mut DbConn, account: &str, user_type: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .filter(users::user_type.eq(user_type))
            .order(users::created_at.asc())
            .select(users::id)
            .load(c)
    })
}

pub fn count_by_type(conn: &mut DbConn, account: &str) -> QueryResult<Vec<(String, i64)>> {
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .group_by(users::user_type)
            .select((users::user_type, diesel::dsl::count_star()))
            .load(c)
    })
}

/// Replaces the e-mail index of a user.
pub fn replace_emails(conn: &mut DbConn, user: &str, account: &str, emails: &[String]) -> QueryResult<()> {
    delete_emails(conn, user)?;
    insert_emails(conn, user, account, emails)
}

pub fn delete_emails(conn: &mut DbConn, user: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::delete(user_emails::table.filter(user_emails::user_id.eq(user))).execute(c).map(|_| ())
    })
}

/// Adds addresses to the e-mail index (duplicates in `emails` are skipped).
pub fn insert_emails(conn: &mut DbConn, user: &str, account: &str, emails: &[String]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        let mut seen: Vec<&str> = Vec::with_capacity(emails.len());
        for e in emails {
            if seen.contains(&e.as_str()) {
                continue;
            }
            seen.push(e);
            diesel::insert_into(user_emails::table)
                .values((
                    user_emails::user_id.eq(user),
                    user_emails::account_id.eq(account),
                    user_emails::value_lower.eq(e),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

pub fn emails_of(conn: &mut DbConn, user: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        user_emails::table.filter(user_emails::user_id.eq(user)).select(user_emails::value_lower).load(c)
    })
}

pub fn phone(conn: &mut DbConn, user: &str) -> QueryResult<Option<UserPhoneRow>> {
    crate::with_backend!(conn, |c| {
        user_phones::table.find(user).select(UserPhoneRow::as_select()).first(c).optional()
    })
}

pub fn save_phone(conn: &mut DbConn, row: &UserPhoneRow, exists: bool) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        if exists {
            diesel::update(user_phones::table.find(&row.user_id)).set(row).execute(c)?;
        } else {
            diesel::insert_into(user_phones::table).values(row).execute(c)?;
        }
        Ok(())
    })
}

pub fn delete_phone(conn: &mut DbConn, user: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::delete(user_phones::table.find(user)).execute(c).map(|_| ()) })
}

pub fn insert_invitation(conn: &mut DbConn, row: &InvitationRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(invitations::table).values(row).execute(c).map(|_| ()) })
}

/// Several invitations in one statement.
pub fn insert_invitations(conn: &mut DbConn, rows: &[InvitationRow]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(invitations::table).values(rows).execute(c).map(|_| ()) })
}

pub fn invitation_for_user(conn: &mut DbConn, user: &str) -> QueryResult<Option<InvitationRow>> {
    crate::with_backend!(conn, |c| {
        invitations::table.filter(invitations::user_id.eq(user)).select(InvitationRow::as_select()).first(c).optional()
    })
}

pub fn invitation_by_hash(conn: &mut DbConn, hash: &str) -> QueryResult<Option<InvitationRow>> {
    crate::with_backend!(conn, |c| {
        invitations::table
            .filter(invitations::token_hash.eq(hash))
            .select(InvitationRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn renew_invitation(
    conn: &mut DbConn,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
    expires: NaiveDateTime,
) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(invitations::table.find(id))
            .set((
                invitations::token_hash.eq(hash),
                invitations::created_at.eq(now),
                invitations::expires_at.eq(expires),
                invitations::sent_count.eq(invitations::sent_count + 1),
            ))
            .execute(c)
            .map(|_| ())
    })
}

pub fn delete_invitation(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::delete(invitations::table.find(id)).execute(c).map(|_| ()) })
}

/// Pending invitations of an account with their users, oldest first.
pub fn pending_invitations(
    conn: &mut DbConn,
    account: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(InvitationRow, UserRow)>> {
    crate::with_backend!(conn, |c| {
        invitations::table
            .inner_join(users::table.on(users::id.eq(invitations::user_id)))
            .filter(invitations::account_id.eq(account))
            .order(invitations::created_at.asc())
            .limit(limit)
            .offset(offset)
            .select((InvitationRow::as_select(), UserRow::as_select()))
            .load(c)
    })
}

/// Invitations that expired before `now` (for the purge), at most `limit`.
pub fn expired_invitations(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<InvitationRow>> {
    crate::with_backend!(conn, |c| {
        invitations::table
            .filter(invitations::expires_at.le(now))
            .order(invitations::expires_at.asc())
            .limit(limit)
            .select(InvitationRow::as_select())
            .load(c)
    })
}

/// Users holding any seat.
pub fn ids_with_seats(conn: &mut DbConn, account: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        users::table.filter(users::account_id.eq(account)).filter(users::seats.ne("")).select(users::id).load(c)
    })
}

pub fn phones_of(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<UserPhoneRow>> {
    crate::with_backend!(conn, |c| {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        user_phones::table.filter(user_phones::user_id.eq_any(ids)).select(UserPhoneRow::as_select()).load(c)
    })
}

pub fn set_issues(conn: &mut DbConn, user: &str, issues: &str) -> QueryResult<()> {
    let stmt = super::hot::SetIssues { user, issues };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|_| ()))
}

/// A user of `account`, or one its identity provider placed into a sub account.
pub fn find_for_idp(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::account_id.eq(account).or(users::placed_by.eq(account).assume_not_null()))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// New versions of these users (their representation changed without a write of their row,
/// e.g. a group they belong to was renamed): bumps `version` and `updated_at`.
pub fn touch(conn: &mut DbConn, ids: &[String], now: NaiveDateTime) -> QueryResult<()> {
    for chunk in ids.chunks(500) {
        diesel::update(users::table.filter(users::id.eq_any(chunk)))
            .set((users::version.eq(users::version + 1), users::updated_at.eq(now)))
            .execute(conn)?;
    }
    Ok(())
}

/// Stores the attributes (JSON) the rules last read for the user.
/// Stores the attributes the rules read, only where they differ from the stored ones: a
/// returning user's login usually brings the same, and rewriting them would dirty a page
/// (and its WAL frame) on every login. `updated_at` is when they last changed.
pub fn put_attributes(conn: &mut DbConn, user: &str, json: &str, now: chrono::NaiveDateTime) -> QueryResult<()> {
    use diesel::sql_types::{Text, Timestamp};
    let params = match conn.backend() {
        super::Backend::Sqlite => ["?", "?", "?"],
        super::Backend::Postgres => ["$1", "$2", "$3"],
    };
    let [user_id, attributes, at] = params;
    let sql = format!(
        "INSERT INTO user_attributes (user_id, attributes, updated_at) VALUES ({user_id}, {attributes}, {at}) \
         ON CONFLICT (user_id) DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at \
         WHERE user_attributes.attributes <> excluded.attributes"
    );
    crate::with_backend!(conn, |c| {
        diesel::sql_query(&sql)
            .bind::<Text, _>(user)
            .bind::<Text, _>(json)
            .bind::<Timestamp, _>(now)
            .execute(c)
            .map(|_| ())
    })
}

/// The attributes (JSON) the rules last read for the user, if any.
pub fn attributes(conn: &mut DbConn, user: &str) -> QueryResult<Option<String>> {
    use super::schema::user_attributes as ua;
    crate::with_backend!(conn, |c| { ua::table.find(user).select(ua::attributes).first(c).optional() })
}

/// The active users of an account who may hold admin rights: the owner, Admins and users
/// with a custom role (callers check the role's permissions).
pub fn admins_of(conn: &mut DbConn, account: &str) -> QueryResult<Vec<UserRow>> {
    use crate::domain::users::{BaseRole, UserStatus};
    crate::with_backend!(conn, |c| {
        users::table
            .filter(users::account_id.eq(account))
            .filter(users::status.eq(UserStatus::Active))
            .filter(users::role.eq_any([BaseRole::Owner, BaseRole::Admin]).or(users::custom_role_id.is_not_null()))
            .order(users::created_at.asc())
            .select(UserRow::as_select())
            .load(c)
    })
}
