//! Phone sites, extensions, the number pool and desk phones.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::models::{DeskPhoneRow, PhoneSiteRow};
use super::schema::{desk_phones as dp, phone_numbers as pn, phone_sites as ps, user_phones as up};
use super::DbConn;

pub fn insert_site(conn: &mut DbConn, row: &PhoneSiteRow) -> QueryResult<()> {
    crate::with_backend!(conn, |c| { diesel::insert_into(ps::table).values(row).execute(c).map(|_| ()) })
}

pub fn main_site(conn: &mut DbConn, account: &str) -> QueryResult<Option<PhoneSiteRow>> {
    crate::with_backend!(conn, |c| {
        ps::table
            .filter(ps::account_id.eq(account))
            .filter(ps::is_main.eq(true))
            .select(PhoneSiteRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn site(conn: &mut DbConn, account: &str, id: &str) -> QueryResult<Option<PhoneSiteRow>> {
    crate::with_backend!(conn, |c| {
        ps::table
            .filter(ps::id.eq(id))
            .filter(ps::account_id.eq(account))
            .select(PhoneSiteRow::as_select())
            .first(c)
            .optional()
    })
}

/// A site by id, code or name (case-insensitive), in that order.
pub fn find_site(conn: &mut DbConn, account: &str, key: &str) -> QueryResult<Option<PhoneSiteRow>> {
    let key = key.trim();
    // Site codes are 1–3 digits and ids are UUIDs: only probe what the key can be.
    if key.len() == 36 {
        if let Some(s) = site(conn, account, key)? {
            return Ok(Some(s));
        }
    }
    crate::with_backend!(conn, |c| {
        if key.len() <= 3 && key.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(s) = ps::table
                .filter(ps::account_id.eq(account))
                .filter(ps::site_code.eq(key))
                .select(PhoneSiteRow::as_select())
                .first(c)
                .optional()?
            {
                return Ok(Some(s));
            }
        }
        ps::table
            .filter(ps::account_id.eq(account))
            .filter(ps::name_lower.eq(key.to_lowercase()))
            .select(PhoneSiteRow::as_select())
            .first(c)
            .optional()
    })
}

pub fn sites(conn: &mut DbConn, account: &str) -> QueryResult<Vec<PhoneSiteRow>> {
    crate::with_backend!(conn, |c| {
        ps::table
            .filter(ps::account_id.eq(account))
            .order(ps::site_code.asc())
            .select(PhoneSiteRow::as_select())
            .load(c)
    })
}

/// Takes the site's row lock for the rest of the transaction on PostgreSQL, so that two
/// concurrent "next free extension" allocations in one site cannot pick the same number,
/// and returns the allocation hint (the last extension handed out). SQLite needs no lock:
/// its write transactions (`BEGIN IMMEDIATE`) are serialised already, so the hint read with
/// the site row in this transaction is current.
pub fn lock_site(conn: &mut DbConn, site: &PhoneSiteRow) -> QueryResult<i64> {
    match conn {
        DbConn::Sqlite(_) => Ok(site.allocation_seq),
        DbConn::Pg(c) => ps::table.filter(ps::id.eq(&site.id)).select(ps::allocation_seq).for_update().first(c),
    }
}

pub fn set_allocation_hint(conn: &mut DbConn, site: &str, last: i64) -> QueryResult<()> {
    let stmt = super::hot::SetAllocationHint { site, last };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|_| ()))
}

/// Whether a long-form extension is taken anywhere in the account (another site's code
/// plus extension may spell the same digits).
pub fn long_extension_used(conn: &mut DbConn, account: &str, long: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::select(diesel::dsl::exists(
            up::table.filter(up::account_id.eq(account)).filter(up::long_extension.eq(long)),
        ))
        .get_result(c)
    })
}

pub fn site_user_count(conn: &mut DbConn, site: &str) -> QueryResult<i64> {
    crate::with_backend!(conn, |c| { up::table.filter(up::site_id.eq(site)).count().get_result(c) })
}

/// Where a number stands for an account: not in its pool, free, or held (by whom).
pub fn number_holder(conn: &mut DbConn, account: &str, number: &str) -> QueryResult<Option<Option<String>>> {
    crate::with_backend!(conn, |c| {
        pn::table
            .filter(pn::number.eq(number))
            .filter(pn::account_id.eq(account))
            .select(pn::assigned_user_id)
            .first(c)
            .optional()
    })
}

/// Assigns a free number of the pool to a user: a conditional UPDATE, so that of many
/// concurrent requests for one number exactly one wins. `false`: taken meanwhile.
pub fn assign_number(conn: &mut DbConn, account: &str, number: &str, user: &str) -> QueryResult<bool> {
    let stmt = super::hot::AssignNumber { user, number, account };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|n| n == 1))
}

pub fn release_numbers_of(conn: &mut DbConn, user: &str) -> QueryResult<()> {
    let stmt = super::hot::ReleaseNumbers { user };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|_| ()))
}

pub fn add_number(conn: &mut DbConn, account: &str, number: &str, now: NaiveDateTime) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(pn::table)
            .values((pn::number.eq(number), pn::account_id.eq(account), pn::created_at.eq(now)))
            .execute(c)
            .map(|_| ())
    })
}

pub fn number_owner(conn: &mut DbConn, number: &str) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| {
        pn::table.filter(pn::number.eq(number)).select(pn::account_id).first(c).optional()
    })
}

pub fn remove_number(conn: &mut DbConn, account: &str, number: &str) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::delete(pn::table.filter(pn::number.eq(number)).filter(pn::account_id.eq(account)))
            .execute(c)
            .map(|n| n == 1)
    })
}

pub fn count_numbers(conn: &mut DbConn, account: &str) -> QueryResult<i64> {
    crate::with_backend!(conn, |c| { pn::table.filter(pn::account_id.eq(account)).count().get_result(c) })
}

#[derive(Debug, Clone, Queryable, serde::Serialize, utoipa::ToSchema)]
pub struct NumberRow {
    pub number: String,
    pub assigned_user_id: Option<String>,
}

pub fn numbers(conn: &mut DbConn, account: &str, limit: i64, offset: i64) -> QueryResult<Vec<NumberRow>> {
    crate::with_backend!(conn, |c| {
        pn::table
            .filter(pn::account_id.eq(account))
            .order(pn::number.asc())
            .limit(limit)
            .offset(offset)
            .select((pn::number, pn::assigned_user_id))
            .load(c)
    })
}

pub fn desk_phones_of(conn: &mut DbConn, user: &str) -> QueryResult<Vec<DeskPhoneRow>> {
    crate::with_backend!(conn, |c| {
        dp::table.filter(dp::user_id.eq(user)).order(dp::slot.asc()).select(DeskPhoneRow::as_select()).load(c)
    })
}

/// The user holding a desk phone with this MAC address, if any.
pub fn desk_phone_holder(conn: &mut DbConn, mac: &str) -> QueryResult<Option<String>> {
    crate::with_backend!(conn, |c| {
        dp::table.filter(dp::mac_address.eq(mac)).select(dp::user_id).first(c).optional()
    })
}

pub fn delete_desk_phones(conn: &mut DbConn, user: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| diesel::delete(dp::table.filter(dp::user_id.eq(user))).execute(c).map(|_| ()))
}

pub fn insert_desk_phones(conn: &mut DbConn, phones: &[DeskPhoneRow]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        for p in phones {
            diesel::insert_into(dp::table).values(p).execute(c)?;
        }
        Ok(())
    })
}

/// Numbers in an account's pool and how many are assigned.
pub fn number_counts(conn: &mut DbConn, account: &str) -> QueryResult<(i64, i64)> {
    use super::schema::phone_numbers as pn;
    crate::with_backend!(conn, |c| {
        let total: i64 = pn::table.filter(pn::account_id.eq(account)).count().get_result(c)?;
        let assigned: i64 = pn::table
            .filter(pn::account_id.eq(account))
            .filter(pn::assigned_user_id.is_not_null())
            .count()
            .get_result(c)?;
        Ok((total, assigned))
    })
}

/// Users with a phone per site (`""`: none) and per calling plan.
pub fn phone_user_counts(
    conn: &mut DbConn,
    account: &str,
) -> QueryResult<(std::collections::BTreeMap<String, i64>, std::collections::BTreeMap<String, i64>)> {
    use super::schema::user_phones as up;
    crate::with_backend!(conn, |c| {
        let sites: Vec<(Option<String>, i64)> = up::table
            .filter(up::account_id.eq(account))
            .group_by(up::site_id)
            .select((up::site_id, diesel::dsl::count_star()))
            .load(c)?;
        let plans: Vec<(Option<String>, i64)> = up::table
            .filter(up::account_id.eq(account))
            .filter(up::calling_plan.is_not_null())
            .group_by(up::calling_plan)
            .select((up::calling_plan, diesel::dsl::count_star()))
            .load(c)?;
        Ok((
            sites.into_iter().map(|(s, n)| (s.unwrap_or_default(), n)).collect(),
            plans.into_iter().map(|(p, n)| (p.unwrap_or_default(), n)).collect(),
        ))
    })
}
