//! Account administration shared by the admin API and the CLI: creating accounts and sub
//! accounts, settings, domains and disassociation.

use serde::Serialize;

use crate::domain::accounts::{
    check_new_sub, normalize_email, plan_disassociation, validate_account_name, validate_domain, validate_vanity,
    AccountKind, Billing, DisassociationPlan,
};
use crate::domain::catalog::UserTier;
use crate::domain::users::{BaseRole, UserStatus};
use crate::error::{AppError, AppResult};
use crate::provisioning::{
    self, audit, Actor, Env, ExplicitFields, Field, IdentityChange, Operation, Shortage, Source,
};
use crate::store::models::{AccountRow, UserRow};
use crate::store::{self, DbConn};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub owner_email: String,
    pub owner_first_name: Option<String>,
    pub owner_last_name: Option<String>,
    pub is_master: bool,
    pub bulk_licensing: bool,
    pub parent_id: Option<String>,
    pub billing: Option<Billing>,
    pub vanity_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    /// `standard`, `master` or `sub`.
    #[schema(value_type = String)]
    pub kind: AccountKind,
    pub parent_id: Option<String>,
    /// Manages sub accounts (a sub with this set is a pseudo-master: three-tier).
    pub is_master: bool,
    pub bulk_licensing: bool,
    pub billing: Option<String>,
    pub vanity_name: Option<String>,
    pub domains: Vec<String>,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub phone_enabled: bool,
    /// Bundled licensing: an Enterprise license carries phone, a calling plan and Power Pack.
    pub bundled_licensing: bool,
    pub auto_phone_provisioning: bool,
    pub owner_id: Option<String>,
    pub owner_email: Option<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::NaiveDateTime,
}

pub fn view(conn: &mut DbConn, row: &AccountRow) -> AppResult<AccountView> {
    let domains = store::accounts::domains(conn, &row.id)?;
    let owner = store::users::owner(conn, &row.id)?;
    let kind = match (&row.parent_id, row.is_master) {
        (Some(_), _) => AccountKind::Sub,
        (None, true) => AccountKind::Master,
        (None, false) => AccountKind::Standard,
    };
    Ok(AccountView {
        id: row.id.clone(),
        name: row.name.clone(),
        kind,
        parent_id: row.parent_id.clone(),
        is_master: row.is_master,
        bulk_licensing: row.bulk_licensing,
        billing: row.billing.clone(),
        vanity_name: row.vanity_name.clone(),
        domains,
        settings: serde_json::from_str(&row.settings).unwrap_or_else(|_| serde_json::json!({})),
        phone_enabled: row.phone_enabled,
        bundled_licensing: row.bundled_licensing,
        auto_phone_provisioning: row.auto_phone_provisioning,
        owner_id: owner.as_ref().map(|o| o.id.clone()),
        owner_email: owner.and_then(|o| o.email),
        created_at: row.created_at,
    })
}

/// Creates an account (top-level, or a sub account when `parent_id` is set) with its
/// owner. The owner's e-mail must be valid and never registered anywhere.
pub fn create(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    new: NewAccount,
) -> AppResult<(AccountRow, UserRow)> {
    let name = validate_account_name(&new.name)?;
    let owner_email = normalize_email(&new.owner_email)?;
    if store::accounts::email_registered(conn, &owner_email)? {
        return Err(AppError::taken(
            "email_taken",
            format!("{owner_email} is already registered; a new account needs a new owner"),
        ));
    }
    let vanity = new.vanity_name.as_deref().map(validate_vanity).transpose()?;
    let billing = match &new.parent_id {
        Some(parent_id) => {
            let parent = store::accounts::find(conn, parent_id)?.ok_or(AppError::not_found("parent account"))?;
            let facts = store::accounts::facts(conn, &parent)?;
            check_new_sub(&facts, new.is_master)?;
            Some(new.billing.unwrap_or(Billing::PayByMaster).as_str().to_owned())
        }
        None => {
            if new.billing.is_some() {
                return Err(AppError::bad_request("invalid_billing", "billing applies to sub accounts only"));
            }
            None
        }
    };
    let row = AccountRow {
        id: crate::secrets::new_id(),
        name,
        parent_id: new.parent_id.clone(),
        is_master: new.is_master,
        bulk_licensing: new.bulk_licensing && new.is_master,
        billing,
        vanity_name: vanity,
        settings: "{}".into(),
        phone_enabled: false,
        bundled_licensing: true,
        auto_phone_provisioning: true,
        created_at: env.now,
        updated_at: env.now,
    };
    store::accounts::insert(conn, &row)
        .map_err(AppError::on_unique("vanity_taken", "that vanity name belongs to another account"))?;
    store::licenses::create_pools(conn, &row.id)?;
    // The owner is the account's first user, created through the pipeline like any other.
    let mut change = IdentityChange::new(row.id.clone(), source, actor.clone(), Operation::Create);
    change.shortage = Shortage::Refuse;
    change.explicit = ExplicitFields {
        email: Field::Set(owner_email.clone()),
        given_name: Field::from_option(new.owner_first_name.clone()),
        family_name: Field::from_option(new.owner_last_name.clone()),
        role: Some(BaseRole::Owner),
        status: Some(UserStatus::Active),
        ..ExplicitFields::default()
    };
    let owner = provisioning::run(conn, env, change)?.user.ok_or(AppError::not_found("account owner"))?;
    let detail = serde_json::json!({ "name": row.name, "owner": owner_email, "parent": row.parent_id, "is_master": row.is_master });
    audit::record(conn, env, &row.id, actor, source, "account.created", Some(&row.id), detail.clone())?;
    if let Some(p) = &row.parent_id {
        audit::record(conn, env, p, actor, source, "sub_account.created", Some(&row.id), detail)?;
    }
    Ok((row, owner))
}

#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    /// `Some(None)` removes the vanity name.
    pub vanity_name: Option<Option<String>>,
    /// Merged into the settings object (a `null` value removes a key).
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    pub auto_phone_provisioning: Option<bool>,
    pub phone_enabled: Option<bool>,
    pub bundled_licensing: Option<bool>,
}

pub fn update(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account_id: &str,
    upd: AccountUpdate,
) -> AppResult<AccountRow> {
    let mut row = store::accounts::find(conn, account_id)?.ok_or(AppError::not_found("account"))?;
    if let Some(n) = &upd.name {
        row.name = validate_account_name(n)?;
    }
    if let Some(v) = &upd.vanity_name {
        row.vanity_name = v.as_deref().map(validate_vanity).transpose()?;
    }
    if let Some(patch) = &upd.settings {
        let mut settings: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.settings).unwrap_or_default();
        for (k, v) in patch {
            if v.is_null() {
                settings.remove(k);
            } else {
                settings.insert(k.clone(), v.clone());
            }
        }
        let text = serde_json::Value::Object(settings).to_string();
        if text.len() > 64 * 1024 {
            return Err(AppError::bad_request("settings_too_large", "settings are limited to 64 KiB"));
        }
        row.settings = text;
    }
    if let Some(a) = upd.auto_phone_provisioning {
        row.auto_phone_provisioning = a;
    }
    if let Some(b) = upd.bundled_licensing {
        row.bundled_licensing = b;
    }
    let enabling_phone = upd.phone_enabled == Some(true) && !row.phone_enabled;
    if let Some(p) = upd.phone_enabled {
        row.phone_enabled = p;
    }
    row.updated_at = env.now;
    store::accounts::update(conn, &row)
        .map_err(AppError::on_unique("vanity_taken", "that vanity name belongs to another account"))?;
    if enabling_phone {
        crate::service::phone::ensure_main_site(conn, env.now, &row.id)?;
    }
    let detail = serde_json::json!({
        "name": upd.name, "vanity_name": upd.vanity_name, "settings": upd.settings,
        "auto_phone_provisioning": upd.auto_phone_provisioning, "phone_enabled": upd.phone_enabled,
        "bundled_licensing": upd.bundled_licensing,
    });
    audit::record(conn, env, &row.id, actor, actor.via, "account.updated", Some(&row.id), detail)?;
    Ok(row)
}

/// The DNS name whose TXT record proves control of `domain`.
pub fn challenge_name(domain: &str) -> String {
    format!("_provisor-challenge.{domain}")
}

/// A domain claim as the API shows it: verified, or pending with what to publish.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainClaimView {
    pub domain: String,
    /// `pending` or `verified`.
    pub status: String,
    /// What to publish to verify a pending claim: `{"type": "dns_txt", "name", "value"}`.
    #[schema(value_type = Object)]
    pub verification: serde_json::Value,
}

impl From<store::accounts::DomainClaimRow> for DomainClaimView {
    fn from(c: store::accounts::DomainClaimRow) -> DomainClaimView {
        DomainClaimView {
            verification: serde_json::json!({
                "type": "dns_txt",
                "name": challenge_name(&c.domain),
                "value": format!("provisor-verification={}", c.challenge),
            }),
            domain: c.domain,
            status: c.status,
        }
    }
}

/// Claims a domain for the account: pending until verified. Several accounts may hold
/// pending claims; a domain another account has verified cannot be claimed.
pub fn add_domain(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    domain: &str,
) -> AppResult<DomainClaimView> {
    let d = validate_domain(domain)?;
    if let Some(owner) = store::accounts::domain_owner(conn, &d)? {
        return Err(if owner == account {
            AppError::taken("domain_taken", format!("{d} is already verified for this account"))
        } else {
            AppError::taken("domain_taken", format!("{d} is verified by another account"))
        });
    }
    let challenge = crate::secrets::new_secret("");
    store::accounts::add_domain_claim(conn, account, &d, &challenge, env.now)
        .map_err(AppError::on_unique("domain_claimed", format!("{d} is already claimed by this account")))?;
    audit::record(conn, env, account, actor, actor.via, "domain.claimed", Some(&d), serde_json::json!({}))?;
    let row = store::accounts::domain_claim(conn, account, &d)?.ok_or(AppError::not_found("domain"))?;
    Ok(row.into())
}

/// Verifies a pending claim: `proof` is the TXT values found at the challenge name, or
/// `None` for the operator's approval. The first verified claim wins.
pub fn verify_domain(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    account: &str,
    domain: &str,
    proof: Option<&[String]>,
) -> AppResult<DomainClaimView> {
    let d = domain.trim().to_ascii_lowercase();
    let claim = store::accounts::domain_claim(conn, account, &d)?.ok_or(AppError::not_found("domain"))?;
    if claim.status == "verified" {
        return Ok(claim.into());
    }
    match proof {
        Some(values) => {
            let expected = format!("provisor-verification={}", claim.challenge);
            if !values.iter().any(|v| v.trim() == expected) {
                return Err(AppError::conflict(
                    "verification_failed",
                    format!(
                        "no TXT record {expected:?} at {} (found {}); publish it and try again",
                        challenge_name(&d),
                        values.len()
                    ),
                ));
            }
        }
        None if actor.standing == crate::domain::authz::Standing::Operator => {}
        None => return Err(AppError::forbidden("only the platform operator approves a claim without DNS proof")),
    }
    store::accounts::verify_domain_claim(conn, account, &d, env.now)
        .map_err(AppError::on_unique("domain_taken", format!("{d} was verified by another account first")))?;
    let how = if proof.is_some() { "dns_txt" } else { "operator" };
    audit::record(conn, env, account, actor, actor.via, "domain.verified", Some(&d), serde_json::json!({ "by": how }))?;
    let row = store::accounts::domain_claim(conn, account, &d)?.ok_or(AppError::not_found("domain"))?;
    Ok(row.into())
}

pub fn remove_domain(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, domain: &str) -> AppResult<()> {
    let d = domain.trim().to_ascii_lowercase();
    if !store::accounts::remove_domain(conn, account, &d)? {
        return Err(AppError::not_found("domain"));
    }
    audit::record(conn, env, account, actor, actor.via, "domain.removed", Some(&d), serde_json::json!({}))
}

/// A direct sub account of `master`, or 404 (also for other tenants' accounts).
pub fn direct_sub(conn: &mut DbConn, master: &str, sub: &str) -> AppResult<AccountRow> {
    let row = store::accounts::find(conn, sub)?.ok_or(AppError::not_found("sub account"))?;
    if row.parent_id.as_deref() != Some(master) {
        return Err(AppError::not_found("sub account"));
    }
    Ok(row)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DisassociationReport {
    pub account_id: String,
    /// Tokens the master had minted in the sub (now revoked).
    pub revoked_tokens: usize,
    /// Whether SSO trust and mapping rules the master had configured were removed.
    pub removed_sso: bool,
    pub removed_mapping: bool,
    /// Hashes of the revoked tokens, for the caller's caches (never serialised).
    #[serde(skip)]
    pub revoked_hashes: Vec<String>,
    /// Users downgraded to Basic to free delegated seats.
    pub downgraded_users: Vec<String>,
    /// Seats given back to the master, by product.
    pub returned: std::collections::BTreeMap<String, i64>,
}

/// Frees a sub account from its master. It keeps its users, settings and configuration and
/// becomes a standard account (or a master, if it managed subs — which must go first).
pub fn disassociate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    master: &str,
    sub_id: &str,
    downgrade_users: bool,
) -> AppResult<DisassociationReport> {
    let sub = direct_sub(conn, master, sub_id)?;
    let facts = store::accounts::facts(conn, &sub)?;
    let has_subs = store::accounts::has_subs(conn, &sub.id)?;
    let master_row = store::accounts::find(conn, master)?.ok_or(AppError::not_found("account"))?;
    let pools = store::licenses::pools(conn, &sub.id)?;
    let delegated_in_use: i64 =
        if master_row.bulk_licensing { pools.iter().map(|p| p.used + p.delegated).sum() } else { 0 };
    let plan = plan_disassociation(&facts, delegated_in_use, has_subs, downgrade_users)?;
    let mut downgraded = Vec::new();
    if plan == DisassociationPlan::DowngradeThenReturn {
        for product in [UserTier::Pro, UserTier::Business, UserTier::BusinessPlus, UserTier::Enterprise] {
            for uid in store::users::ids_of_type(conn, &sub.id, product.as_str())? {
                downgrade_to_basic(conn, env, actor, &sub.id, &uid)?;
                downgraded.push(uid);
            }
        }
        // Users holding only add-on or calling-plan seats.
        for uid in store::users::ids_with_seats(conn, &sub.id)? {
            downgrade_to_basic(conn, env, actor, &sub.id, &uid)?;
            if !downgraded.contains(&uid) {
                downgraded.push(uid);
            }
        }
    }
    let mut returned = std::collections::BTreeMap::new();
    if master_row.bulk_licensing {
        for p in store::licenses::pools(conn, &sub.id)? {
            if p.available > 0 {
                if !store::licenses::move_delegation(conn, master, &sub.id, p.product, -p.available)? {
                    return Err(AppError::conflict(
                        "licenses_in_use",
                        format!("{} {} license(s) are still in use", p.used, p.product),
                    ));
                }
                returned.insert(p.product.as_str().to_owned(), p.available);
            }
        }
    }
    store::accounts::detach_from_parent(conn, &sub.id, env.now)?;
    // What the master granted itself inside the sub goes with the link, in this transaction:
    // its tokens, the SSO trust and the mapping rules it configured (the mirror itself is
    // closed by the ancestry check at the next request).
    let revoked_hashes = store::tokens::revoke_granted_from(conn, &sub.id, master, env.now)?;
    let removed_sso = store::saml::delete_config_granted_from(conn, &sub.id, master)?;
    let removed_mapping = store::mapping::clear_granted_from(conn, &sub.id, master, env.now)?;
    let detail = serde_json::json!({
        "downgraded_users": downgraded.len(),
        "returned": returned,
        "revoked_tokens": revoked_hashes.len(),
        "removed_sso": removed_sso,
        "removed_mapping": removed_mapping,
    });
    audit::record(conn, env, master, actor, actor.via, "sub_account.disassociated", Some(&sub.id), detail.clone())?;
    audit::record(conn, env, &sub.id, actor, actor.via, "account.disassociated", Some(&sub.id), detail)?;
    Ok(DisassociationReport {
        account_id: sub.id,
        revoked_tokens: revoked_hashes.len(),
        removed_sso,
        removed_mapping,
        revoked_hashes,
        downgraded_users: downgraded,
        returned,
    })
}

fn downgrade_to_basic(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, user_id: &str) -> AppResult<()> {
    let mut change = IdentityChange::new(
        account,
        actor.via,
        actor.clone(),
        Operation::Update { user_id: user_id.to_owned(), expected_version: None },
    );
    change.shortage = Shortage::Refuse;
    change.explicit = ExplicitFields {
        user_type: Some(UserTier::Basic),
        addons: Some(Default::default()),
        ..ExplicitFields::default()
    };
    change.explicit.phone.calling_plan = provisioning::Field::Clear;
    provisioning::run(conn, env, change)?;
    Ok(())
}

/// `standard` (default) or `master`: whether the account manages sub accounts.
pub fn parse_kind(kind: Option<&str>) -> AppResult<bool> {
    match kind.unwrap_or("standard") {
        "standard" => Ok(false),
        "master" => Ok(true),
        other => Err(AppError::bad_request(
            "invalid_kind",
            format!("unknown account kind {other:?}: use standard or master"),
        )),
    }
}

/// `pay_by_master` or `separate` (sub accounts).
pub fn parse_billing(b: Option<&str>) -> AppResult<Option<Billing>> {
    b.map(|s| {
        Billing::parse(s).ok_or_else(|| {
            AppError::bad_request("invalid_billing", format!("unknown billing {s:?}: use pay_by_master or separate"))
        })
    })
    .transpose()
}
