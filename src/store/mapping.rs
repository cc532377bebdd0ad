//! Mapping rule documents, one per account.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::mapping_configs as mc;
use super::DbConn;

/// The stored rules and their version.
pub fn get(conn: &mut DbConn, account: &str) -> QueryResult<Option<(String, i64)>> {
    crate::with_backend!(conn, |c| { mc::table.find(account).select((mc::config, mc::version)).first(c).optional() })
}

pub fn version(conn: &mut DbConn, account: &str) -> QueryResult<Option<i64>> {
    crate::with_backend!(conn, |c| { mc::table.find(account).select(mc::version).first(c).optional() })
}

/// Stores a new document; returns its version.
/// Stores the rules; `granted_from` is the outside account (a master on the mirror) that set
/// them, if any.
pub fn put(
    conn: &mut DbConn,
    account: &str,
    config: &str,
    now: NaiveDateTime,
    granted_from: Option<&str>,
) -> QueryResult<i64> {
    match version(conn, account)? {
        Some(v) => {
            diesel::update(mc::table.find(account))
                .set((
                    mc::config.eq(config),
                    mc::version.eq(v + 1),
                    mc::updated_at.eq(now),
                    mc::granted_from.eq(granted_from),
                ))
                .execute(conn)?;
            Ok(v + 1)
        }
        None => {
            diesel::insert_into(mc::table)
                .values((
                    mc::account_id.eq(account),
                    mc::config.eq(config),
                    mc::version.eq(1i64),
                    mc::updated_at.eq(now),
                    mc::granted_from.eq(granted_from),
                ))
                .execute(conn)?;
            Ok(1)
        }
    }
}

/// Empties the rules an outside account set (disassociation), as a new version so every
/// process's cached copy is replaced; true when there were some.
pub fn clear_granted_from(conn: &mut DbConn, account: &str, from: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(mc::table.filter(mc::account_id.eq(account)).filter(mc::granted_from.eq(from)))
        .set((
            mc::config.eq("{}"),
            mc::version.eq(mc::version + 1),
            mc::updated_at.eq(now),
            mc::granted_from.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n > 0)
}
