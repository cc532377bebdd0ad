//! Accounts, their tree and their domains.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::AccountRow;
use super::schema::{accounts, domain_claims, users};
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

/// One account's claim on a domain.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = domain_claims)]
pub struct DomainClaimRow {
    pub account_id: String,
    pub domain: String,
    /// `pending` or `verified`.
    pub status: String,
    /// The value the DNS TXT record must hold.
    pub challenge: String,
    pub created_at: NaiveDateTime,
    pub verified_at: Option<NaiveDateTime>,
}

/// The account's verified domains (the ones that route users).
pub fn domains(conn: &mut DbConn, account: &str) -> QueryResult<Vec<String>> {
    crate::with_backend!(conn, |c| {
        domain_claims::table
            .filter(domain_claims::account_id.eq(account))
            .filter(domain_claims::status.eq("verified"))
            .order(domain_claims::domain.asc())
            .select(domain_claims::domain)
            .load(c)
    })
}

/// Every claim of the account, verified or not.
pub fn domain_claims(conn: &mut DbConn, account: &str) -> QueryResult<Vec<DomainClaimRow>> {
    crate::with_backend!(conn, |c| {
        domain_claims::table
            .filter(domain_claims::account_id.eq(account))
            .order(domain_claims::domain.asc())
            .select(DomainClaimRow::as_select())
            .load(c)
    })
}

pub fn domain_claim(conn: &mut DbConn, account: &str, domain: &str) -> QueryResult<Option<DomainClaimRow>> {
    crate::with_backend!(conn, |c| {
        domain_claims::table.find((account, domain)).select(DomainClaimRow::as_select()).first(c).optional()
    })
}

/// The account whose verified claim holds a domain, if any.
pub fn domain_owner(conn: &mut DbConn, domain: &str) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| {
        domain_claims::table
            .filter(domain_claims::domain.eq(domain))
            .filter(domain_claims::status.eq("verified"))
            .select(domain_claims::account_id)
            .first(c)
            .optional()
    })
}

pub fn add_domain_claim(
    conn: &mut DbConn,
    account: &str,
    domain: &str,
    challenge: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(domain_claims::table)
            .values((
                domain_claims::account_id.eq(account),
                domain_claims::domain.eq(domain),
                domain_claims::status.eq("pending"),
                domain_claims::challenge.eq(challenge),
                domain_claims::created_at.eq(now),
            ))
            .execute(c)
            .map(|_| ())
    })
}

/// Marks a pending claim verified; a unique violation means another account's claim was
/// verified first. False when there was no pending claim.
pub fn verify_domain_claim(conn: &mut DbConn, account: &str, domain: &str, now: NaiveDateTime) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(
            domain_claims::table
                .filter(domain_claims::account_id.eq(account))
                .filter(domain_claims::domain.eq(domain))
                .filter(domain_claims::status.eq("pending")),
        )
        .set((domain_claims::status.eq("verified"), domain_claims::verified_at.eq(Some(now))))
        .execute(c)
        .map(|n| n > 0)
    })
}

pub fn remove_domain(conn: &mut DbConn, account: &str, domain: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(
            domain_claims::table.filter(domain_claims::account_id.eq(account)).filter(domain_claims::domain.eq(domain)),
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
