//! Purchased counts, delegation to sub accounts and the license summary.

use serde::Serialize;

use super::accounts::direct_sub;
use crate::domain::catalog::Product;
use crate::domain::licenses::{check_purchase, plan_delegation, summarize, LicenseError, SummaryLine};
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
use crate::store::{self, DbConn};

/// Sets the purchased count of an account that buys its own licenses.
pub fn purchase(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    product: Product,
    quantity: i64,
) -> AppResult<()> {
    if !product.is_counted() {
        return Err(AppError::bad_request(
            "not_purchasable",
            format!("{} is free and unlimited: there is nothing to buy", product.as_str()),
        ));
    }
    let row = store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
    if let Some(parent) = &row.parent_id {
        let parent = store::accounts::find(conn, parent)?.ok_or(AppError::not_found("account"))?;
        if parent.bulk_licensing {
            return Err(LicenseError::Delegated(account.to_owned()).into());
        }
    }
    let pool = store::licenses::pool(conn, account, product)?;
    check_purchase(&pool, quantity)?;
    if !store::licenses::set_available(conn, account, product, quantity)? {
        // Seats were taken between the read and the write.
        let pool = store::licenses::pool(conn, account, product)?;
        check_purchase(&pool, quantity)?;
        return Err(AppError::conflict("concurrent_update", "licenses changed meanwhile; retry"));
    }
    audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "licenses.purchased",
        Some(product.as_str()),
        serde_json::json!({ "quantity": quantity, "previous": pool.available }),
    )
}

/// Sets how many licenses of `product` a master delegates to one of its direct subs.
pub fn delegate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    master: &str,
    sub: &str,
    product: Product,
    quantity: i64,
) -> AppResult<i64> {
    if !product.is_counted() {
        return Err(AppError::bad_request(
            "not_purchasable",
            format!("{} is free and unlimited: there is nothing to delegate", product.as_str()),
        ));
    }
    let master_row = store::accounts::find(conn, master)?.ok_or(AppError::not_found("account"))?;
    if !master_row.bulk_licensing {
        return Err(LicenseError::NoBulkLicensing(master.to_owned()).into());
    }
    direct_sub(conn, master, sub)?;
    let m = store::licenses::pool(conn, master, product)?;
    let s = store::licenses::pool(conn, sub, product)?;
    let delta = plan_delegation(&m, &s, quantity)?;
    if !store::licenses::move_delegation(conn, master, sub, product, delta)? {
        // A concurrent change used the seats between the read and the write: re-plan to
        // report the precise reason.
        let m = store::licenses::pool(conn, master, product)?;
        let s = store::licenses::pool(conn, sub, product)?;
        plan_delegation(&m, &s, quantity)?;
        return Err(AppError::conflict("concurrent_update", "licenses changed meanwhile; retry"));
    }
    let detail = serde_json::json!({ "sub_account": sub, "quantity": quantity, "change": delta });
    audit::record(conn, env, master, actor, actor.via, "licenses.delegated", Some(product.as_str()), detail.clone())?;
    audit::record(conn, env, sub, actor, actor.via, "licenses.received", Some(product.as_str()), detail)?;
    Ok(delta)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenseSummary {
    pub account_id: String,
    pub bulk_licensing: bool,
    pub products: Vec<SummaryLine>,
}

pub fn summary(conn: &mut DbConn, account: &str) -> AppResult<LicenseSummary> {
    let row = store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
    let own = store::licenses::pools(conn, account)?;
    let mut subs = Vec::new();
    for s in store::accounts::list_subs(conn, account)? {
        subs.push((s.id.clone(), store::licenses::pools(conn, &s.id)?));
    }
    Ok(LicenseSummary {
        account_id: account.to_owned(),
        bulk_licensing: row.bulk_licensing,
        products: summarize(&own, &subs),
    })
}
