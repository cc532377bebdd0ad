//! Platform-wide settings shared by every process and CLI verb (`platform_settings`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::platform_settings as ps;
use super::DbConn;

/// The public URL the last started `serve` runs under.
pub const PUBLIC_URL: &str = "public_url";

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| { ps::table.find(key).select(ps::value).first(c).optional() })
}

/// Sets `key` to `value` (insert or replace).
pub fn put(conn: &mut DbConn, key: &str, value: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(ps::table)
            .values((ps::key.eq(key), ps::value.eq(value), ps::updated_at.eq(now)))
            .on_conflict(ps::key)
            .do_update()
            .set((ps::value.eq(value), ps::updated_at.eq(now)))
            .execute(c)
            .map(|_| ())
    })
}
