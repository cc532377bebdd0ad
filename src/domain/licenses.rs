//! Bulk licensing: pools, delegation, the seats a user holds, and the dashboard summary.
//!
//! Invariant, per product and account, at every instant: `used + delegated <= available`,
//! where `available` is the purchased count of an account that buys its own licenses, or
//! the count its master delegated to it. The database holds it (conditional UPDATEs plus a
//! CHECK constraint); these functions decide what to ask of it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::catalog::{AddOn, CallingPlan, Product, UserTier};

/// One pool row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub product: Product,
    pub available: i64,
    pub used: i64,
    pub delegated: i64,
}

impl Pool {
    pub fn empty(product: Product) -> Pool {
        Pool { product, available: 0, used: 0, delegated: 0 }
    }

    pub fn remaining(&self) -> i64 {
        self.available - self.used - self.delegated
    }
}

/// What a user is entitled to, as far as seats are concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatHolder {
    pub tier: Option<UserTier>,
    pub calling_plan: Option<CallingPlan>,
    /// The calling plan came with a bundled licence (Enterprise): no separate seat.
    pub calling_plan_bundled: bool,
    pub addons: Vec<AddOn>,
    /// Add-ons granted by the bundle (Power Pack with Enterprise): no separate seat.
    pub bundled_addons: Vec<AddOn>,
}

/// The seats a user with these entitlements takes. Bundled entitlements ride on the
/// bundle's own seat (an Enterprise seat includes its phone licence, calling plan and
/// Power Pack), so they are not counted again.
pub fn seats_for(holder: &SeatHolder) -> Vec<Product> {
    let mut seats = Vec::new();
    if let Some(p) = holder.tier.and_then(UserTier::product) {
        seats.push(p);
    }
    if let (Some(plan), false) = (holder.calling_plan, holder.calling_plan_bundled) {
        seats.push(plan.product());
    }
    for a in &holder.addons {
        if !holder.bundled_addons.contains(a) {
            seats.push(a.product());
        }
    }
    seats.sort();
    seats.dedup();
    seats
}

/// Seats to release and to acquire to go from `old` to `new`.
pub fn seat_delta(old: &[Product], new: &[Product]) -> (Vec<Product>, Vec<Product>) {
    let release = old.iter().filter(|p| !new.contains(p)).copied().collect();
    let acquire = new.iter().filter(|p| !old.contains(p)).copied().collect();
    (release, acquire)
}

/// Stored form of a seat list (the `users.seats` column).
pub fn format_seats(seats: &[Product]) -> String {
    seats.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

pub fn parse_seats(s: &str) -> Vec<Product> {
    s.split(',').filter(|t| !t.is_empty()).filter_map(|t| t.parse().ok()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    #[error("bulk licensing is not enabled on account {0}")]
    NoBulkLicensing(String),
    #[error("account {0} is not a sub account of this master")]
    NotASub(String),
    #[error("not enough {product} licenses: {remaining} remaining, {requested} more requested")]
    NotEnough { product: Product, remaining: i64, requested: i64 },
    #[error("cannot take back {requested} {product} license(s): {in_use} of the {delegated} delegated are in use or delegated further")]
    InUse { product: Product, delegated: i64, in_use: i64, requested: i64 },
    #[error("quantity must be between 0 and 10000000")]
    BadQuantity,
    #[error("cannot set the purchased count to {requested}: {committed} {product} license(s) are used or delegated")]
    BelowCommitted { product: Product, requested: i64, committed: i64 },
    #[error("account {0} receives its licenses from its master; change the delegation instead")]
    Delegated(String),
}

pub const MAX_QUANTITY: i64 = 10_000_000;

/// Checks a new purchased count against what is already committed.
pub fn check_purchase(pool: &Pool, quantity: i64) -> Result<(), LicenseError> {
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(LicenseError::BadQuantity);
    }
    let committed = pool.used + pool.delegated;
    if quantity < committed {
        return Err(LicenseError::BelowCommitted { product: pool.product, requested: quantity, committed });
    }
    Ok(())
}

/// Plans setting the delegation of `product` to a sub from `current` to `quantity`.
/// Returns the signed change to apply to the master's `delegated` and the sub's `available`.
pub fn plan_delegation(master: &Pool, sub: &Pool, quantity: i64) -> Result<i64, LicenseError> {
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(LicenseError::BadQuantity);
    }
    let delta = quantity - sub.available;
    if delta > 0 && delta > master.remaining() {
        return Err(LicenseError::NotEnough {
            product: master.product,
            remaining: master.remaining(),
            requested: delta,
        });
    }
    if delta < 0 && -delta > sub.remaining() {
        return Err(LicenseError::InUse {
            product: sub.product,
            delegated: sub.available,
            in_use: sub.used + sub.delegated,
            requested: -delta,
        });
    }
    Ok(delta)
}

/// One product line of the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SummaryLine {
    pub product: String,
    /// Purchased by this account, or delegated to it by its master.
    pub purchased: i64,
    pub used: i64,
    /// Delegated to each direct sub account, by sub-account id.
    pub delegated: BTreeMap<String, i64>,
    pub delegated_total: i64,
    pub remaining: i64,
}

/// Builds the summary from the account's own pools and each direct sub's pools.
/// Products with nothing purchased, used or delegated are left out.
pub fn summarize(own: &[Pool], subs: &[(String, Vec<Pool>)]) -> Vec<SummaryLine> {
    let mut lines: BTreeMap<Product, SummaryLine> = BTreeMap::new();
    for p in own {
        if p.available == 0 && p.used == 0 && p.delegated == 0 {
            continue;
        }
        lines.insert(
            p.product,
            SummaryLine {
                product: p.product.as_str().to_owned(),
                purchased: p.available,
                used: p.used,
                delegated: BTreeMap::new(),
                delegated_total: p.delegated,
                remaining: p.remaining(),
            },
        );
    }
    for (sub_id, pools) in subs {
        for p in pools.iter().filter(|p| p.available > 0) {
            if let Some(line) = lines.get_mut(&p.product) {
                line.delegated.insert(sub_id.clone(), p.available);
            }
        }
    }
    lines.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_example() {
        // 5,000 purchased, 10 used on the master, 1,000 to each of two subs → 2,990.
        let master = Pool { product: Product::Meeting(UserTier::Pro), available: 5000, used: 10, delegated: 2000 };
        let sub = |n| Pool { product: Product::Meeting(UserTier::Pro), available: n, used: 0, delegated: 0 };
        let lines = summarize(&[master], &[("s1".into(), vec![sub(1000)]), ("s2".into(), vec![sub(1000)])]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].purchased, 5000);
        assert_eq!(lines[0].used, 10);
        assert_eq!(lines[0].delegated.values().copied().collect::<Vec<_>>(), vec![1000, 1000]);
        assert_eq!(lines[0].remaining, 2990);
    }

    #[test]
    fn delegation_bounds() {
        let master = Pool { product: Product::Meeting(UserTier::Pro), available: 100, used: 90, delegated: 0 };
        let sub = Pool { product: Product::Meeting(UserTier::Pro), available: 0, used: 0, delegated: 0 };
        assert_eq!(plan_delegation(&master, &sub, 10), Ok(10));
        assert!(matches!(plan_delegation(&master, &sub, 11), Err(LicenseError::NotEnough { .. })));
        let busy = Pool { product: Product::Meeting(UserTier::Pro), available: 10, used: 8, delegated: 0 };
        assert_eq!(plan_delegation(&master, &busy, 8), Ok(-2));
        assert!(matches!(plan_delegation(&master, &busy, 7), Err(LicenseError::InUse { .. })));
    }

    #[test]
    fn bundled_entitlements_take_no_extra_seat() {
        let enterprise = SeatHolder {
            tier: Some(UserTier::Enterprise),
            calling_plan: Some(CallingPlan::RegionalUnlimited),
            calling_plan_bundled: true,
            addons: vec![AddOn::PowerPack, AddOn::Webinar],
            bundled_addons: vec![AddOn::PowerPack],
        };
        assert_eq!(
            seats_for(&enterprise),
            vec![Product::Meeting(UserTier::Enterprise), Product::AddOn(AddOn::Webinar)]
        );
        let unbundled = SeatHolder {
            tier: Some(UserTier::Pro),
            calling_plan: Some(CallingPlan::GlobalSelect),
            addons: vec![AddOn::PowerPack],
            ..SeatHolder::default()
        };
        assert_eq!(
            seats_for(&unbundled),
            vec![
                Product::Meeting(UserTier::Pro),
                Product::CallingPlan(CallingPlan::GlobalSelect),
                Product::AddOn(AddOn::PowerPack)
            ]
        );
        assert_eq!(seats_for(&SeatHolder { tier: Some(UserTier::Basic), ..Default::default() }), vec![]);
    }

    #[test]
    fn deltas_and_storage() {
        let (rel, acq) = seat_delta(
            &[Product::Meeting(UserTier::Pro), Product::AddOn(AddOn::Webinar)],
            &[Product::Meeting(UserTier::Business), Product::AddOn(AddOn::Webinar)],
        );
        assert_eq!(rel, vec![Product::Meeting(UserTier::Pro)]);
        assert_eq!(acq, vec![Product::Meeting(UserTier::Business)]);
        let s = format_seats(&[Product::Meeting(UserTier::Pro), Product::AddOn(AddOn::PowerPack)]);
        assert_eq!(parse_seats(&s), vec![Product::Meeting(UserTier::Pro), Product::AddOn(AddOn::PowerPack)]);
        assert_eq!(parse_seats(""), vec![]);
    }

    #[test]
    fn purchase_cannot_go_below_commitments() {
        let p = Pool { product: Product::Meeting(UserTier::Pro), available: 50, used: 30, delegated: 10 };
        assert!(check_purchase(&p, 40).is_ok());
        assert!(matches!(check_purchase(&p, 39), Err(LicenseError::BelowCommitted { .. })));
        assert!(check_purchase(&p, -1).is_err());
    }
}
