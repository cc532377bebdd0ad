//! Seats: turns the desired user type, add-ons and calling plan into seat movements in the
//! account's pools, taking new seats before giving old ones back so that a user never
//! holds an entitlement without its seat.

use std::collections::BTreeSet;

use super::change::{ExplicitFields, Field, FieldChange, IssueCode, ProvisioningIssue, Shortage};
use crate::domain::catalog::{AddOn, CallingPlan, Product, UserTier};
use crate::domain::licenses::{format_seats, parse_seats, seats_for, SeatHolder};
use crate::domain::phone::{phone_entitlements, GrantSource, PhoneEntitlementRequest, PhoneLicensing};
use crate::error::{AppError, AppResult};
use crate::store::models::{AccountRow, UserPhoneRow, UserRow};
use crate::store::{self, DbConn};

/// Entitlements that take seats.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeatPlan {
    pub tier: Option<UserTier>,
    pub addons: BTreeSet<AddOn>,
    pub bundled_addons: BTreeSet<AddOn>,
    pub calling_plan: Option<CallingPlan>,
    pub calling_plan_bundled: bool,
}

impl SeatPlan {
    fn holder(&self) -> SeatHolder {
        SeatHolder {
            tier: self.tier,
            calling_plan: self.calling_plan,
            calling_plan_bundled: self.calling_plan_bundled,
            addons: self.addons.iter().copied().collect(),
            bundled_addons: self.bundled_addons.iter().copied().collect(),
        }
    }
}

pub fn parse_addons(s: &str) -> BTreeSet<AddOn> {
    s.split(',').filter(|t| !t.is_empty()).filter_map(|t| t.parse().ok()).collect()
}

pub fn format_addons(a: &BTreeSet<AddOn>) -> String {
    a.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(",")
}

/// The seat plan a user holds now (calling plan from its phone profile).
pub fn current_plan(user: &UserRow, calling_plan: Option<CallingPlan>, calling_plan_bundled: bool) -> SeatPlan {
    let seats = parse_seats(&user.seats);
    let addons = parse_addons(&user.addons);
    let bundled_addons = addons.iter().copied().filter(|a| !seats.contains(&a.product())).collect();
    SeatPlan { tier: user.user_type.parse().ok(), addons, bundled_addons, calling_plan, calling_plan_bundled }
}

/// Moves seats from `current` to `desired` in the user's account. Components that cannot
/// get a seat are refused (Shortage::Refuse → 409) or kept as they were with an issue.
/// Updates `user.user_type`, `user.addons` and `user.seats`; returns the plan applied.
pub fn reconcile(
    conn: &mut DbConn,
    account: &AccountRow,
    user: &mut UserRow,
    current: &SeatPlan,
    mut desired: SeatPlan,
    shortage: Shortage,
    changes: &mut Vec<FieldChange>,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<SeatPlan> {
    let old_seats = parse_seats(&user.seats);
    let wanted = seats_for(&desired.holder());
    for product in wanted.iter().filter(|p| !old_seats.contains(p)) {
        if store::licenses::try_acquire(conn, &account.id, *product)? {
            continue;
        }
        let message = format!("no {product} license left in this account");
        if shortage == Shortage::Refuse {
            return Err(AppError::conflict("no_seat_left", message));
        }
        let attribute = revert_component(&mut desired, current, *product);
        issues.push(ProvisioningIssue::on(IssueCode::NoSeatLeft, attribute, message));
    }
    let final_seats = seats_for(&desired.holder());
    for product in old_seats.iter().filter(|p| !final_seats.contains(p)) {
        store::licenses::release(conn, &account.id, *product)?;
    }

    let tier = desired.tier.unwrap_or(UserTier::Basic).as_str().to_owned();
    if tier != user.user_type {
        changes.push(FieldChange::new("user_type", Some(user.user_type.clone()), Some(tier.clone())));
        user.user_type = tier;
    }
    let addons = format_addons(&desired.addons);
    if addons != user.addons {
        changes.push(FieldChange::new("addons", Some(user.addons.clone()), Some(addons.clone())));
        user.addons = addons;
    }
    user.seats = format_seats(&final_seats);
    Ok(desired)
}

/// Puts back the component that needed `product`; returns the attribute name for the issue.
fn revert_component(desired: &mut SeatPlan, current: &SeatPlan, product: Product) -> &'static str {
    if desired.tier.and_then(UserTier::product) == Some(product) {
        desired.tier = current.tier;
        return "user_type";
    }
    if desired.calling_plan.map(CallingPlan::product) == Some(product) {
        desired.calling_plan = current.calling_plan;
        desired.calling_plan_bundled = current.calling_plan_bundled;
        return "calling_plan";
    }
    if let Some(a) = desired.addons.iter().copied().find(|a| a.product() == product) {
        desired.addons.remove(&a);
        if current.addons.contains(&a) {
            desired.addons.insert(a);
        }
    }
    "addons"
}

/// What the seat step settled.
pub struct SeatOutcome {
    pub plan: SeatPlan,
    /// A phone user without an extension: the phone step gives them the next free one.
    pub needs_extension: bool,
}

/// The seat plan a request amounts to under the account's phone licensing (bundled
/// Enterprise brings a calling plan and Power Pack unless automatic phone provisioning is
/// off; unbundled assigns them one by one).
fn plan_for(
    home: &AccountRow,
    tier: UserTier,
    calling_plan: Option<CallingPlan>,
    addons: &BTreeSet<AddOn>,
    has_extension: bool,
) -> (SeatPlan, Vec<ProvisioningIssue>, bool) {
    let (calling_plan, has_extension) = if home.phone_enabled { (calling_plan, has_extension) } else { (None, false) };
    let licensing =
        PhoneLicensing { bundled: home.bundled_licensing, auto_phone_provisioning: home.auto_phone_provisioning };
    let ent = if home.phone_enabled {
        phone_entitlements(&PhoneEntitlementRequest { tier, calling_plan, addons, has_extension }, &licensing)
    } else {
        phone_entitlements(
            &PhoneEntitlementRequest { tier: UserTier::Basic, calling_plan: None, addons, has_extension: false },
            &licensing,
        )
    };
    let mut plan_addons: BTreeSet<AddOn> = addons.iter().copied().filter(|a| *a != AddOn::PowerPack).collect();
    let mut bundled_addons = BTreeSet::new();
    if let Some(source) = ent.power_pack {
        plan_addons.insert(AddOn::PowerPack);
        if source == GrantSource::Bundle {
            bundled_addons.insert(AddOn::PowerPack);
        }
    }
    let plan = SeatPlan {
        tier: Some(tier),
        addons: plan_addons,
        bundled_addons,
        calling_plan: ent.calling_plan.map(|(p, _)| p),
        calling_plan_bundled: matches!(ent.calling_plan, Some((_, GrantSource::Bundle))),
    };
    let issues = ent.issues.clone();
    (plan, issues, ent.needs_extension)
}

/// Settles the seats of a change: user type, add-ons and calling plan.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    conn: &mut DbConn,
    home: &AccountRow,
    user: &mut UserRow,
    phone: Option<&UserPhoneRow>,
    ex: &ExplicitFields,
    shortage: Shortage,
    changes: &mut Vec<FieldChange>,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<SeatOutcome> {
    let current_plan_of_phone = phone.and_then(|p| p.calling_plan.as_deref()).and_then(|c| c.parse().ok());
    let current = current_plan(user, current_plan_of_phone, phone.is_some_and(|p| p.calling_plan_bundled));
    let phone_asked = super::phone::touches_phone(&ex.phone);
    if ex.user_type.is_none() && ex.addons.is_none() && !phone_asked {
        // Nothing asked of seats: the common case of a profile update or a returning login.
        return Ok(SeatOutcome { plan: current, needs_extension: false });
    }
    let tier = ex.user_type.unwrap_or(current.tier.unwrap_or(UserTier::Basic));
    let addons = ex.addons.clone().unwrap_or_else(|| current.addons.clone());
    let calling_plan = match ex.phone.calling_plan {
        Field::Keep => current.calling_plan,
        Field::Set(p) => Some(p),
        Field::Clear => None,
    };
    let has_extension = match ex.phone.extension {
        Field::Set(_) => true,
        Field::Clear => false,
        Field::Keep => phone.is_some_and(|p| p.extension.is_some()),
    };
    if !home.phone_enabled && (calling_plan.is_some() && calling_plan != current.calling_plan) {
        issues.push(ProvisioningIssue::on(
            IssueCode::PhoneNotEnabled,
            "calling_plan",
            "phone is not enabled on this account; no calling plan was assigned",
        ));
    }
    let (desired, ent_issues, _) = plan_for(home, tier, calling_plan, &addons, has_extension);
    issues.extend(ent_issues);
    let mut applied = reconcile(conn, home, user, &current, desired.clone(), shortage, changes, issues)?;
    if applied.tier != desired.tier && home.phone_enabled {
        // The tier fell back (no seat): what the bundle brings changes with it.
        let fallback = applied.tier.unwrap_or(UserTier::Basic);
        let (again, _, _) = plan_for(home, fallback, applied.calling_plan, &applied.addons, has_extension);
        applied = reconcile(conn, home, user, &applied, again, shortage, changes, issues)?;
    }
    let needs_extension = home.phone_enabled && applied.calling_plan.is_some() && !has_extension;
    Ok(SeatOutcome { plan: applied, needs_extension })
}

/// Gives back every seat a user holds (deletion).
pub fn release_all(conn: &mut DbConn, user: &UserRow) -> AppResult<()> {
    for product in parse_seats(&user.seats) {
        store::licenses::release(conn, &user.account_id, product)?;
    }
    Ok(())
}
