//! Phone: sites, the number pool, the bulk phone CSV.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{Page, Params};
use crate::error::{AppError, AppResult};
use crate::http::auth::AccountCtx;
use crate::http::AppState;
use crate::provisioning::Source;
use crate::service::phone::{self, NewSite, NumbersAdded, PhoneImportReport, SiteView};
use crate::store;

route_table! {
    GET "/phone/sites" => list_sites, view PhoneSites;
    POST "/phone/sites" => create_site, edit PhoneSites;
    GET "/phone/numbers" => list_numbers, view PhoneNumbers;
    POST "/phone/numbers" => add_numbers, edit PhoneNumbers;
    DELETE "/phone/numbers/{number}" => remove_number, edit PhoneNumbers;
    POST "/phone/import" => import, edit PhoneUsers;
}

list_body! {
    /// `{"sites": […]}`
    SiteList { sites: SiteView }
}

/// Phone sites of the account.
#[utoipa::path(get, path = "/api/v1/phone/sites", tag = "phone", responses((status = 200, body = SiteList)))]
pub async fn list_sites(state: web::Data<AppState>, ctx: AccountCtx) -> AppResult<HttpResponse> {
    let sites = state
        .db
        .read(move |c| {
            let rows = store::phone::sites(c, &ctx.account_id)?;
            rows.into_iter().map(|r| phone::site_view(c, r)).collect::<AppResult<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(SiteList { sites }))
}

/// Create a site (name, 1–3 digit code, short-extension length).
#[utoipa::path(post, path = "/api/v1/phone/sites", tag = "phone", request_body = NewSite,
    responses((status = 201, body = SiteView), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn create_site(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<NewSite>,
) -> AppResult<HttpResponse> {
    let env = state.env();
    let new = body.into_inner();
    let v = state.db.write(move |c| phone::create_site(c, &env, &ctx.actor, &ctx.account_id, &new)).await?;
    Ok(HttpResponse::Created().json(v))
}

/// A page of the number pool and how many numbers the account may hold.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NumberList {
    pub numbers: Vec<store::phone::NumberRow>,
    /// Numbers the account's calling-plan seats allow.
    pub capacity: u32,
}

/// The number pool.
#[utoipa::path(get, path = "/api/v1/phone/numbers", tag = "phone", params(Page), responses((status = 200, body = NumberList)))]
pub async fn list_numbers(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    page: web::Query<Page>,
) -> AppResult<HttpResponse> {
    let page = page.into_inner();
    let (numbers, capacity) = state
        .db
        .read(move |c| {
            let account = store::accounts::find(c, &ctx.account_id)?.ok_or(AppError::not_found("account"))?;
            let numbers = store::phone::numbers(c, &ctx.account_id, page.limit(), page.offset())?;
            Ok::<_, AppError>((numbers, phone::number_capacity(c, &account)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(NumberList { numbers, capacity }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNumbers {
    /// Complete numbers in any common notation; stored as E.164.
    pub numbers: Vec<String>,
}

/// Add numbers to the pool (each succeeds or fails alone; bounded by the licenses).
#[utoipa::path(post, path = "/api/v1/phone/numbers", tag = "phone", request_body = AddNumbers, responses((status = 200, body = NumbersAdded)))]
pub async fn add_numbers(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    body: web::Json<AddNumbers>,
) -> AppResult<HttpResponse> {
    let numbers = body.into_inner().numbers;
    if numbers.len() > 10_000 {
        return Err(AppError::bad_request("too_many", "at most 10000 numbers per request"));
    }
    let env = state.env();
    let r = state
        .db
        .write(move |c| phone::add_numbers(c, &env, &ctx.actor, Source::Api, &ctx.account_id, &numbers))
        .await?;
    Ok(HttpResponse::Ok().json(r))
}

/// Remove an unassigned number from the pool.
#[utoipa::path(delete, path = "/api/v1/phone/numbers/{number}", tag = "phone", responses((status = 204, description = "removed"), (status = 409, body = crate::http::error::ErrorBody)))]
pub async fn remove_number(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    path: web::Path<Params>,
) -> AppResult<HttpResponse> {
    let number = Params::get(&path.number, "number")?;
    let env = state.env();
    state.db.write(move |c| phone::remove_number(c, &env, &ctx.actor, &ctx.account_id, &number)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `merge` (default: absent columns keep their value) or `replace` (a row is the whole profile).
    pub mode: Option<String>,
    /// Plan and report every change (removals first) without writing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// Bulk phone CSV (Zoom's columns, headers case-insensitive). Bad rows are reported with
/// their line numbers; good rows apply. An empty body (400 `empty_body`) or a header that
/// cannot be used (400 `invalid_csv_header`: no `Email` column, an unknown or doubled one)
/// is refused whole.
#[utoipa::path(post, path = "/api/v1/phone/import", tag = "phone", params(ImportQuery), request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = PhoneImportReport), (status = 503, body = PhoneImportReport, description = "the import stopped part-way (the database went away): the report counts what was applied and `stopped` says from which line to run it again")))]
pub async fn import(
    state: web::Data<AppState>,
    ctx: AccountCtx,
    q: web::Query<ImportQuery>,
    body: web::Payload,
) -> AppResult<HttpResponse> {
    let mode = crate::service::phone::parse_mode(q.mode.as_deref())?;
    let dry_run = q.dry_run;
    let limit = super::users::CSV_LIMIT;
    let bytes = body
        .to_bytes_limited(limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge { limit })?
        .map_err(|e| AppError::bad_request("invalid_body", format!("cannot read the body: {e}")))?;
    super::require_csv(&bytes)?;
    // A header that cannot be used fails every row: the file is refused whole.
    if let Err(errors) = crate::domain::phone_csv::PhoneCsvReader::new(&bytes[..]) {
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Err(AppError::bad_request("invalid_csv_header", text));
    }
    let st = state.clone();
    let report = actix_web::rt::task::spawn_blocking(move || {
        phone::import_csv(&st.db, || st.env(), &ctx.actor, &ctx.account_id, &bytes[..], mode, dry_run, |_| {})
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    Ok(super::import_response(report.stopped.is_some(), &report))
}
