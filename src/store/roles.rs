//! Custom roles.

use diesel::prelude::*;

use super::models::RoleRow;
use super::schema::{roles, users};
use super::DbConn;

pub fn insert(conn: &mut DbConn, row: &RoleRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(roles::table).values(row).execute(c).map(|_| ()) })
}

pub fn find(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<Option<RoleRow>> {
    crate::with_backend!(conn, |c| {
        roles::table
            .filter(roles::id.eq(id))
            .filter(roles::account_id.eq(account))
            .select(RoleRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn find_by_name(conn: &mut DbConn, account: &str, name: &str) -> QueryResult<Option<RoleRow>> {
    crate::with_backend!(conn, |c| {
        roles::table
            .filter(roles::account_id.eq(account))
            .filter(roles::name_lower.eq(name.trim().to_lowercase()))
            .select(RoleRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn list(conn: &mut DbConn, account: &str) -> QueryResult<Vec<RoleRow>> {
    crate::with_backend!(conn, |c| {
        roles::table
            .filter(roles::account_id.eq(account))
            .order(roles::name_lower.asc())
            .select(RoleRow::as_select())
            .load(c)
    })
}

pub fn update(conn: &mut DbConn, row: &RoleRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(roles::table.filter(roles::id.eq(&row.id)))
            .set((
                roles::name.eq(&row.name),
                roles::name_lower.eq(&row.name_lower),
                roles::permissions.eq(&row.permissions),
                roles::updated_at.eq(row.updated_at),
            ))
            .execute(c)
            .map(|_| ())
    })
}

pub fn delete(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(roles::table.filter(roles::id.eq(id)).filter(roles::account_id.eq(account)))
            .execute(c)
            .map(|n| n == 1)
    })
}

pub fn holders(conn: &mut DbConn, role: &str) -> QueryResult<i64> {
    crate::with_backend!(conn, |c| { users::table.filter(users::custom_role_id.eq(role)).count().get_result(c) })
}
