//! License pools. Every seat movement is a conditional UPDATE, so two concurrent requests
//! can never take the same last seat: on PostgreSQL the second waits for the row lock and
//! re-checks the condition; on SQLite writers are serialised by `BEGIN IMMEDIATE`.

use diesel::prelude::*;

use super::models::LicensePoolRow;
use super::schema::license_pools as lp;
use super::DbConn;
use crate::domain::catalog::Product;
use crate::domain::licenses::Pool;

/// Creates the (empty) pool rows of a new account, one per product, so that later updates
/// never need an upsert.
pub fn create_pools(conn: &mut DbConn, account: &str) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        for p in Product::ALL.into_iter().filter(|p| p.is_counted()) {
            diesel::insert_into(lp::table)
                .values(LicensePoolRow {
                    account_id: account.to_owned(),
                    product: p.as_str().to_owned(),
                    available: 0,
                    used: 0,
                    delegated: 0,
                })
                .execute(c)?;
        }
        Ok(())
    })
}

fn to_pool(row: LicensePoolRow) -> Option<Pool> {
    Some(Pool {
        product: row.product.parse().ok()?,
        available: row.available,
        used: row.used,
        delegated: row.delegated,
    })
}

pub fn pools(conn: &mut DbConn, account: &str) -> QueryResult<Vec<Pool>> {
    crate::with_backend!(conn, |c| {
        let rows: Vec<LicensePoolRow> =
            lp::table.filter(lp::account_id.eq(account)).select(LicensePoolRow::as_select()).load(c)?;
        let mut pools: Vec<Pool> = rows.into_iter().filter_map(to_pool).collect();
        pools.sort_by_key(|p| p.product);
        Ok(pools)
    })
}

pub fn pool(conn: &mut DbConn, account: &str, product: Product) -> QueryResult<Pool> {
    crate::with_backend!(conn, |c| {
        let row: Option<LicensePoolRow> =
            lp::table.find((account, product.as_str())).select(LicensePoolRow::as_select()).first(c).optional()?;
        Ok(row.and_then(to_pool).unwrap_or_else(|| Pool::empty(product)))
    })
}

/// Sets the available count, only if it stays above what is used and delegated.
pub fn set_available(conn: &mut DbConn, account: &str, product: Product, quantity: i64) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        diesel::update(lp::table.find((account, product.as_str())))
            .filter((lp::used + lp::delegated).le(quantity))
            .set(lp::available.eq(quantity))
            .execute(c)
            .map(|n| n == 1)
    })
}

/// Takes one seat if one is left. `false` means none was.
pub fn try_acquire(conn: &mut DbConn, account: &str, product: Product) -> QueryResult<bool> {
    let stmt = super::hot::AcquireSeat { account, product: product.as_str() };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|n| n == 1))
}

pub fn release(conn: &mut DbConn, account: &str, product: Product) -> QueryResult<()> {
    let stmt = super::hot::ReleaseSeat { account, product: product.as_str() };
    crate::with_backend!(conn, |c| stmt.execute(c).map(|_| ()))
}

/// Moves `delta` seats from a master's pool into a sub's (negative: back). Both updates are
/// conditional; `false` means the move would break the invariant and nothing was changed
/// by the failing statement (the caller's transaction rolls back the other).
pub fn move_delegation(conn: &mut DbConn, master: &str, sub: &str, product: Product, delta: i64) -> QueryResult<bool> {
    crate::with_backend!(conn, |c| {
        if delta == 0 {
            return Ok(true);
        }
        if delta > 0 {
            let took = diesel::update(lp::table.find((master, product.as_str())))
                .filter((lp::used + lp::delegated + delta).le(lp::available))
                .set(lp::delegated.eq(lp::delegated + delta))
                .execute(c)?;
            if took != 1 {
                return Ok(false);
            }
            diesel::update(lp::table.find((sub, product.as_str())))
                .set(lp::available.eq(lp::available + delta))
                .execute(c)
                .map(|n| n == 1)
        } else {
            let back = -delta;
            let gave = diesel::update(lp::table.find((sub, product.as_str())))
                .filter((lp::used + lp::delegated + back).le(lp::available))
                .set(lp::available.eq(lp::available - back))
                .execute(c)?;
            if gave != 1 {
                return Ok(false);
            }
            diesel::update(lp::table.find((master, product.as_str())))
                .filter(lp::delegated.ge(back))
                .set(lp::delegated.eq(lp::delegated - back))
                .execute(c)
                .map(|n| n == 1)
        }
    })
}
