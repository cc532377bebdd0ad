//! The OpenAPI 3 document, generated from the handlers' annotations. The master mirror
//! (`/api/v1/accounts/{account_id}/…`) is derived from the account-scoped paths rather than
//! written twice, so the two can never drift apart.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Doc, Required};
use utoipa::OpenApi;

use super::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "provisor admin API", description = "Accounts, sub accounts, licenses and users. Every account-scoped route also answers under /api/v1/accounts/{account_id}/… (the master mirror)."),
    paths(
        routes::system::healthz,
        routes::system::readyz,
        routes::platform::create_account,
        routes::platform::list_accounts,
        routes::platform::get_account,
        routes::platform::accept_invitation,
        routes::account::get_account,
        routes::account::update_account,
        routes::account::add_domain,
        routes::account::remove_domain,
        routes::account::list_subs,
        routes::account::create_sub,
        routes::account::disassociate,
        routes::account::audit_log,
        routes::licenses::summary,
        routes::licenses::purchase,
        routes::licenses::delegate,
        routes::tokens::create,
        routes::tokens::list,
        routes::tokens::revoke,
        routes::users::list,
        routes::users::create,
        routes::users::get,
        routes::users::update,
        routes::users::delete,
        routes::users::resend,
        routes::users::list_invitations,
        routes::users::bulk_change_type,
        routes::users::bulk_remove,
        routes::users::import_csv,
        routes::users::export_csv,
        routes::roles::list,
        routes::roles::create,
        routes::roles::update,
        routes::roles::delete,
        routes::groups::list,
        routes::groups::create,
        routes::groups::get,
        routes::groups::rename,
        routes::groups::delete,
        routes::groups::members,
        routes::mapping::get,
        routes::mapping::put,
        routes::phone::list_sites,
        routes::phone::create_site,
        routes::phone::list_numbers,
        routes::phone::add_numbers,
        routes::phone::remove_number,
        routes::phone::import,
        routes::sso::get,
        routes::sso::put,
        routes::sso::delete,
        routes::sso::add_certificate,
        routes::sso::remove_certificate,
    ),
    tags(
        (name = "platform", description = "Operator routes"),
        (name = "account", description = "The account a token belongs to (or, on the mirror, a sub account)"),
    )
)]
struct ApiDoc;

/// Paths that are not account-scoped (no mirror).
fn is_account_scoped(path: &str) -> bool {
    path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/accounts")
        && !path.starts_with("/api/v1/invitations/accept")
        && path != "/api/v1/openapi.json"
}

fn account_param() -> Parameter {
    ParameterBuilder::new()
        .name("account_id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("A sub account of the caller's master account (or any account, for the operator)"))
        .build()
}

pub fn document() -> Doc {
    let mut doc = ApiDoc::openapi();
    let mirrored: Vec<(String, utoipa::openapi::PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(p, _)| is_account_scoped(p))
        .map(|(p, item)| {
            let mut item = item.clone();
            for op in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                op.parameters.get_or_insert_with(Vec::new).insert(0, account_param());
                op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}_mirror"));
                op.tags = Some(vec!["master mirror".into()]);
            }
            (format!("/api/v1/accounts/{{account_id}}{}", p.strip_prefix("/api/v1").unwrap_or(p)), item)
        })
        .collect();
    for (p, item) in mirrored {
        doc.paths.paths.insert(p, item);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new())]);
    doc
}
