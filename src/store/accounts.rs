//! Accounts, their tree and their domains.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::AccountRow;
use super::schema::{account_domains, accounts, users};
use super::DbConn;
use crate::domain::accounts::AccountFacts;

pub fn insert(conn: &mut DbConn, row: &AccountRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(accounts::table).values(row).execute(c).map(|_| ()) })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<AccountRow>> {
    crate::with_backend!(conn, |c| { accounts::table.find(id).select(AccountRow::as_select()).first(c).optional() })
}

/// By id or by vanity name (SAML routes accept either).
pub fn find_by_id_or_vanity(conn: &mut DbConn, key: &str) -> QueryResult<Option<AccountRow>> {
    if let Some(a) = find(conn, key)? {
        return Ok(Some(a));
    }
    accounts::table
        .filter(accounts::vanity_name.eq(key.to_ascii_lowercase()))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_top_level(conn: &mut DbConn, limit: i64, offset: i64) -> QueryResult<Vec<AccountRow>> {
    crate::with_backend!(conn, |c| {
        accounts::table
            .filter(accounts::parent_id.is_null())
            .order(accounts::created_at.asc())
            .limit(limit)
            .offset(offset)
            .select(AccountRow::as_select())
            .load(c)
    })
}

pub fn list_subs(conn: &mut DbConn, parent: &str) -> QueryResult<Vec<AccountRow>> {
    crate::with_backend!(conn, |c| {
        accounts::table
            .filter(accounts::parent_id.eq(parent))
            .order(accounts::created_at.asc())
            .select(AccountRow::as_select())
            .load(c)
    })
}

pub fn has_subs(conn: &mut DbConn, parent: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(accounts::table.filter(accounts::parent_id.eq(parent)))).get_result(c)
    })
}

/// The chain of ancestors, nearest first (at most two: the tree has three tiers).
pub fn ancestors(conn: &mut DbConn, id: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        let mut out = Vec::new();
        let mut cur = id.to_owned();
        while out.len() < 8 {
            let parent: Option<Option<String>> =
                accounts::table.find(&cur).select(accounts::parent_id).first(c).optional()?;
            match parent.flatten() {
                Some(p) => {
                    out.push(p.clone());
                    cur = p;
                }
                None => break,
            }
        }
        Ok(out)
    })
}

pub fn facts(conn: &mut DbConn, row: &AccountRow) -> QueryResult<AccountFacts> {
    let depth = 1 + ancestors(conn, &row.id)?.len() as u8;
    Ok(AccountFacts {
        id: row.id.clone(),
        parent_id: row.parent_id.clone(),
        is_master: row.is_master,
        bulk_licensing: row.bulk_licensing,
        depth,
    })
}

pub fn update(conn: &mut DbConn, row: &AccountRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::update(accounts::table.find(&row.id)).set(row).execute(c).map(|_| ()) })
}

pub fn detach_from_parent(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::parent_id.eq(None::<String>),
                accounts::billing.eq(None::<String>),
                accounts::updated_at.eq(now),
            ))
            .execute(c)
            .map(|_| ())
    })
}

pub fn domains(conn: &mut DbConn, account: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        account_domains::table
            .filter(account_domains::account_id.eq(account))
            .order(account_domains::domain.asc())
            .select(account_domains::domain)
            .load(c)
    })
}

/// The account a domain is associated with, if any.
pub fn domain_owner(conn: &mut DbConn, domain: &str) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| {
        account_domains::table.find(domain).select(account_domains::account_id).first(c).optional()
    })
}

pub fn add_domain(conn: &mut DbConn, account: &str, domain: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(account_domains::table)
            .values((
                account_domains::domain.eq(domain),
                account_domains::account_id.eq(account),
                account_domains::created_at.eq(now),
            ))
            .execute(c)
            .map(|_| ())
    })
}

pub fn remove_domain(conn: &mut DbConn, account: &str, domain: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(
            account_domains::table
                .filter(account_domains::account_id.eq(account))
                .filter(account_domains::domain.eq(domain)),
        )
        .execute(c)
        .map(|n| n > 0)
    })
}

/// Whether an e-mail address is registered anywhere in the system.
pub fn email_registered(conn: &mut DbConn, email: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(users::table.filter(users::email.eq(email)))).get_result(c)
    })
}

/// Takes the account row's lock until the transaction ends (PostgreSQL; SQLite writes are
/// serialised already): for read-then-write checks on account-wide capacities.
pub fn lock(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        accounts::table.filter(accounts::id.eq(id)).select(accounts::id).for_update().first::<String>(c).optional()?;
    }
    Ok(())
}
