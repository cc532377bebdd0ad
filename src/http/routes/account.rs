//! The account itself: profile, settings, domains, sub accounts, audit log.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::accounts::{self, AccountUpdate, AccountView, DisassociationReport, DomainClaimView, NewAccount};
use crate::service::accounts::{parse_billing, parse_kind};
use crate::store;

route_table! {
    GET "/account" => get_account, view Account;
    PATCH "/account" => update_account, edit Account;
    POST "/account/owner" => transfer_owner, edit Account;
    GET "/account/domains" => list_domains, view Domains;
    POST "/account/domains" => add_domain, edit Domains;
    POST "/account/domains/{domain}/verify" => verify_domain, edit Domains;
    DELETE "/account/domains/{domain}" => remove_domain, edit Domains;
    GET "/sub_accounts" => list_subs, view SubAccounts;
    POST "/sub_accounts" => create_sub, edit SubAccounts;
    POST "/sub_accounts/{sub_id}/disassociate" => disassociate, edit SubAccounts;
    GET "/audit" => audit_log, view Audit;
}

/// This account.
#[utoipa::path(get, path = "/api/v1/account", tag = "account", responses((status = 200, body = AccountView)))]
pub async fn get_account(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let view = state
        .db
        .read(move |c| {
            let row = store::accounts::find(c, &ctx.account_id)?.ok_or(AppError::not_found("account"))?;
            accounts::view(c, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    pub name: Option<String>,
    /// A vanity name, or `null` to remove it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub vanity_name: Option<Option<String>>,
    /// Merged into the account's settings; a `null` value removes a key. Settings belong to
    /// this account only: nothing is inherited from or passed to other accounts.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// Bundled Enterprise licenses grant phone, calling plan and Power Pack automatically.
    pub auto_phone_provisioning: Option<bool>,
    /// Enabling phone creates the main site.
    pub phone_enabled: Option<bool>,
    /// Bundled (Enterprise carries phone) or unbundled (each entitlement on its own).
    pub bundled_licensing: Option<bool>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Update this account.
#[utoipa::path(patch, path = "/api/v1/account", tag = "account", request_body = UpdateAccount, responses((status = 200, body = AccountView)))]
pub async fn update_account(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<UpdateAccount>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let upd = AccountUpdate {
        name: b.name,
        vanity_name: b.vanity_name,
        settings: b.settings,
        auto_phone_provisioning: b.auto_phone_provisioning,
        phone_enabled: b.phone_enabled,
        bundled_licensing: b.bundled_licensing,
    };
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let row = accounts::update(c, &env, &ctx.actor, &ctx.account_id, upd)?;
            accounts::view(c, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddDomain {
    pub domain: String,
}

/// Associate a domain (unique across the whole system).
#[utoipa::path(post, path = "/api/v1/account/domains", tag = "account", request_body = AddDomain,
    responses((status = 201, description = "associated", body = DomainClaimView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn add_domain(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<AddDomain>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let domain = body.into_inner().domain;
    let claim = state.db.write(move |c| accounts::add_domain(c, &env, &ctx.actor, &ctx.account_id, &domain)).await?;
    Ok(HttpResponse::Created().json(claim))
}

list_body! {
    /// `{"domains": […]}`
    DomainList { domains: DomainClaimView }
}

/// The account's domain claims, verified or pending (with what to publish).
#[utoipa::path(get, path = "/api/v1/account/domains", tag = "account", responses((status = 200, body = DomainList)))]
pub async fn list_domains(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let rows =
        state.db.read(move |c| store::accounts::domain_claims(c, &ctx.account_id).map_err(AppError::from)).await?;
    let views: Vec<DomainClaimView> = rows.into_iter().map(DomainClaimView::from).collect();
    Ok(HttpResponse::Ok().json(DomainList { domains: views }))
}

/// Verify a pending claim: the server looks up the TXT record at
/// `_provisor-challenge.<domain>`; the platform operator (on the mirror) approves without it.
#[utoipa::path(post, path = "/api/v1/account/domains/{domain}/verify", tag = "account",
    responses((status = 200, body = DomainClaimView), (status = 409, body = crate::http::error::ErrorBody), (status = 404, body = crate::http::error::ErrorBody)))]
pub async fn verify_domain(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let domain = super::Params::get(&path.domain, "domain")?.trim().to_ascii_lowercase();
    let (account, d) = (ctx.account_id.clone(), domain.clone());
    let claim = state.db.read(move |c| store::accounts::domain_claim(c, &account, &d).map_err(AppError::from)).await?;
    let claim = claim.ok_or(AppError::not_found("domain"))?;
    // The lookup happens outside any transaction; the write re-checks the claim.
    let proof = if ctx.is_operator() || claim.status == "verified" {
        None
    } else {
        let name = accounts::challenge_name(&domain);
        Some(state.dns.txt(&name).await.map_err(|e| {
            AppError::conflict("verification_failed", format!("cannot look up the TXT record at {name}: {e}"))
        })?)
    };
    let env = state.env();
    let view = state
        .db
        .write(move |c| accounts::verify_domain(c, &env, &ctx.actor, &ctx.account_id, &domain, proof.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Remove an associated domain.
#[utoipa::path(delete, path = "/api/v1/account/domains/{domain}", tag = "account", responses((status = 204, description = "removed")))]
pub async fn remove_domain(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let domain = super::Params::get(&path.domain, "domain")?;
    state.db.write(move |c| accounts::remove_domain(c, &env, &ctx.actor, &ctx.account_id, &domain)).await?;
    Ok(HttpResponse::NoContent().finish())
}

list_body! {
    /// `{"sub_accounts": […]}`
    SubAccountList { sub_accounts: AccountView }
}

/// The direct sub accounts of this (master) account.
#[utoipa::path(get, path = "/api/v1/sub_accounts", tag = "sub accounts", responses((status = 200, body = SubAccountList)))]
pub async fn list_subs(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let views = state
        .db
        .read(move |c| {
            let rows = store::accounts::list_subs(c, &ctx.account_id)?;
            rows.iter().map(|r| accounts::view(c, r)).collect::<AppResult<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(SubAccountList { sub_accounts: views }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSub {
    pub name: String,
    /// Must be valid and never registered anywhere in the system.
    pub owner_email: String,
    pub owner_first_name: Option<String>,
    pub owner_last_name: Option<String>,
    /// `pay_by_master` (default) or `separate`.
    pub billing: Option<String>,
    /// `master` makes it a second-level master (three-tier).
    pub kind: Option<String>,
    #[serde(default)]
    pub bulk_licensing: bool,
    pub vanity_name: Option<String>,
    /// Licenses to delegate at once, by product (needs bulk licensing on this account).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub licenses: std::collections::BTreeMap<String, i64>,
}

/// Create a sub account (this account must be a master).
#[utoipa::path(post, path = "/api/v1/sub_accounts", tag = "sub accounts", request_body = CreateSub,
    responses((status = 201, body = AccountView), (status = 400, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create_sub(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<CreateSub>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let mut licenses = Vec::new();
    for (p, q) in &b.licenses {
        let product = p.parse().map_err(|e: crate::domain::catalog::UnknownName| {
            AppError::bad_request("invalid_product", e.to_string())
        })?;
        licenses.push((product, *q));
    }
    let new = NewAccount {
        name: b.name,
        owner_email: b.owner_email,
        owner_first_name: b.owner_first_name,
        owner_last_name: b.owner_last_name,
        is_master: parse_kind(b.kind.as_deref())?,
        bulk_licensing: b.bulk_licensing,
        parent_id: Some(ctx.account_id.clone()),
        billing: parse_billing(b.billing.as_deref())?,
        vanity_name: b.vanity_name,
    };
    let env = state.env();
    let view = state
        .db
        .write(move |c| {
            let (row, _) = accounts::create(c, &env, &ctx.actor, Source::Api, new)?;
            for (product, q) in licenses {
                crate::service::licenses::delegate(c, &env, &ctx.actor, &ctx.account_id, &row.id, product, q)?;
            }
            accounts::view(c, &row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disassociate {
    /// Downgrade the users holding delegated licenses to Basic first. Without it, the
    /// request is refused (409) while delegated licenses are in use.
    #[serde(default)]
    pub downgrade_users: bool,
}

/// Disassociate a sub account: it keeps its users and settings and becomes standard.
#[utoipa::path(post, path = "/api/v1/sub_accounts/{sub_id}/disassociate", tag = "sub accounts", request_body = Disassociate,
    responses((status = 200, body = DisassociationReport), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn disassociate(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<super::Params>,
    body: Option<web::Json<Disassociate>>,
) -> AppResult<HttpResponse> {
    let sub = super::Params::get(&path.sub_id, "sub_id")?;
    let downgrade = body.map(|b| b.downgrade_users).unwrap_or(false);
    let env = state.env();
    let report =
        state.db.write(move |c| accounts::disassociate(c, &env, &ctx.actor, &ctx.account_id, &sub, downgrade)).await?;
    for hash in &report.revoked_hashes {
        state.tokens.forget_hash(hash);
    }
    state.sso.clear();
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwner {
    /// An active user of the account.
    pub user_id: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OwnerTransferred {
    pub owner_id: String,
    /// Now an Admin.
    pub former_owner_id: String,
}

/// Transfer ownership to another active user (the owner's own act, or the operator's on
/// the mirror); the former owner becomes an Admin.
#[utoipa::path(post, path = "/api/v1/account/owner", tag = "account", request_body = TransferOwner,
    responses((status = 200, body = OwnerTransferred), (status = 403, body = crate::http::error::ErrorBody), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn transfer_owner(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<TransferOwner>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let to = body.into_inner().user_id;
    let (former, owner) = state
        .db
        .write(move |c| {
            crate::provisioning::pipeline::transfer_ownership(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &to)
        })
        .await?;
    state.authorization_changed();
    Ok(HttpResponse::Ok().json(OwnerTransferred { owner_id: owner.id, former_owner_id: former.id }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries with an id below this one (paging backwards).
    pub before: Option<i64>,
    pub limit: Option<i64>,
    /// Only entries about this target (a user id, a product…).
    pub target: Option<String>,
}

list_body! {
    /// `{"entries": […]}`, newest first.
    AuditList { entries: AuditEntry }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::NaiveDateTime,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "account", params(AuditQuery), responses((status = 200, body = AuditList)))]
pub async fn audit_log(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    q: web::Query<AuditQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .db
        .read(move |c| {
            let rows = match &q.target {
                Some(t) => store::audit::list_for_target(c, &ctx.account_id, t, limit)?,
                None => store::audit::list(c, &ctx.account_id, q.before, limit)?,
            };
            Ok::<_, AppError>(
                rows.into_iter()
                    .map(|r| AuditEntry {
                        id: r.id,
                        actor: r.actor,
                        source: r.source,
                        action: r.action,
                        target: r.target,
                        detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
                        created_at: r.created_at,
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(AuditList { entries }))
}
