//! The OpenAPI 3 document, generated from the handlers' annotations. The master mirror
//! (`/api/v1/accounts/{account_id}/…`) is derived from the account-scoped paths rather than
//! written twice, so the two can never drift apart.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Doc, Required};
use utoipa::OpenApi;

use super::{pages, routes};

#[derive(OpenApi)]
#[openapi(
    info(title = "provisor admin API", description = "Accounts, sub accounts, licenses and users. Every account-scoped route also answers under /api/v1/accounts/{account_id}/… (the master mirror)."),
    paths(
        routes::system::healthz,
        routes::system::readyz,
        routes::system::permissions,
        routes::system::openapi,
        crate::http::metrics::scrape,
        routes::me::me,
        routes::me::my_tokens,
        routes::me::revoke_my_token,
        routes::users::sessions,
        routes::users::end_sessions,
        routes::saml::metadata,
        routes::saml::login,
        routes::saml::acs,
        routes::saml::session,
        routes::saml::logout,
        routes::platform::create_account,
        routes::platform::list_accounts,
        routes::platform::get_account,
        routes::platform::accept_invitation,
        routes::account::get_account,
        routes::account::update_account,
        routes::account::transfer_owner,
        routes::account::list_domains,
        routes::account::verify_domain,
        routes::account::add_domain,
        routes::account::remove_domain,
        routes::account::list_subs,
        routes::account::create_sub,
        routes::account::disassociate,
        routes::account::audit_log,
        routes::licenses::summary,
        routes::licenses::purchase,
        routes::licenses::delegate,
        routes::relationships::create,
        routes::relationships::list,
        routes::relationships::invite,
        routes::relationships::get,
        routes::relationships::update,
        routes::relationships::delete,
        routes::relationships::approve,
        routes::relationships::decline,
        routes::relationships::terminate,
        routes::relationships::accept,
        routes::relationships::add_delegate,
        routes::relationships::list_delegates,
        routes::relationships::remove_delegate,
        routes::relationships::delegations,
        routes::relationships::accept_all,
        routes::relationships::accept_delegation,
        routes::relationships::send_code,
        routes::relationships::open_session,
        routes::sync::bind,
        routes::sync::bindings,
        routes::sync::unbind,
        routes::sync::status,
        routes::sync::held,
        routes::sync::confirm,
        routes::sync::discard,
        routes::sync::reconcile,
        routes::reports::licenses,
        routes::reports::active_users,
        routes::reports::phone,
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
        routes::users::move_users,
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
        pages::invitation_page,
        pages::invitation_accept,
        pages::delegation_page,
        pages::delegation_accept,
        pages::delegation_accept_all,
        pages::verify_page,
        pages::verify_send_code,
        pages::verify_open_session,
    ),
    tags(
        (name = "platform", description = "Operator routes"),
        (name = "account", description = "The account a token belongs to (or, on the mirror, a sub account)"),
        (name = "pages", description = "HTML pages the links in mails open (text/html; POSTs are forms with a CSRF token, for browsers, not API clients)"),
    )
)]
struct ApiDoc;

/// Account-scoped paths (mirrored): those of the account-scoped route tables.
fn is_account_scoped(path: &str) -> bool {
    path.strip_prefix("/api/v1")
        .is_some_and(|rel| routes::ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()).any(|r| r.path == rel))
}

/// The route table's requirement of a documented operation (full path, upper-case method).
fn need_of(path: &str, method: &str) -> Option<routes::Need> {
    let scoped = path.strip_prefix("/api/v1").and_then(|rel| routes::account_route_need(method, rel));
    scoped.or_else(|| {
        routes::ROOT.iter().flat_map(|t| t.iter()).find(|r| r.path == path && r.method == method).map(|r| r.need)
    })
}

/// States each operation's requirement, from the route tables (never written by hand).
fn annotate_requirements(doc: &mut Doc) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let text = match need_of(path, method) {
                Some(routes::Need::Perm(p)) => format!("Requires the `{p}` permission."),
                Some(routes::Need::Operator) => "Requires the platform operator token.".to_owned(),
                Some(routes::Need::OwnSelf) => "Self: any token that names a user; acts on that user only.".to_owned(),
                Some(routes::Need::SelfServiceOr(p)) => {
                    format!("Requires the `{p}` permission, except for a `user` token made for oneself.")
                }
                Some(routes::Need::Public) => {
                    op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::default()]);
                    "Public: no bearer token.".to_owned()
                }
                None => continue,
            };
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{text}"),
                _ => text,
            });
        }
    }
}

fn account_param() -> Parameter {
    ParameterBuilder::new()
        .name("account_id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("A sub account of the caller's master account (or any account, for the operator)"))
        .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)))
        .build()
}

pub fn document() -> Doc {
    let mut doc = ApiDoc::openapi();
    annotate_requirements(&mut doc);
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

#[cfg(test)]
mod route_tests {
    use super::*;

    fn documented(doc: &Doc) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for (path, item) in &doc.paths.paths {
            for (m, op) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if op.is_some() {
                    out.push((path.clone(), m));
                }
            }
        }
        out
    }

    /// Every declared route is documented and every documented route is declared (with
    /// its requirement): a route cannot exist undocumented or without a requirement.
    #[test]
    fn route_tables_and_the_document_agree() {
        let doc = document();
        let documented = documented(&doc);
        let mut declared: Vec<(String, &'static str)> = Vec::new();
        for r in routes::ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()) {
            declared.push((format!("/api/v1{}", r.path), r.method));
            declared.push((format!("/api/v1/accounts/{{account_id}}{}", r.path), r.method));
        }
        for r in routes::ROOT.iter().flat_map(|t| t.iter()) {
            declared.push((r.path.to_owned(), r.method));
        }
        for d in &declared {
            assert!(documented.contains(d), "declared but undocumented: {} {}", d.1, d.0);
        }
        for d in &documented {
            assert!(declared.contains(d), "documented but not declared: {} {}", d.1, d.0);
        }
        // Every account-scoped route needs exactly one catalogue permission or the operator.
        for r in routes::ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()) {
            assert_ne!(r.need, routes::Need::Public, "{} {} is account-scoped but public", r.method, r.path);
        }
    }

    #[test]
    fn every_operation_states_its_requirement() {
        let doc = serde_json::to_value(document()).unwrap();
        let op = &doc["paths"]["/api/v1/users"]["post"];
        assert!(op["description"].as_str().unwrap().contains("users:edit"), "{op}");
        let op = &doc["paths"]["/api/v1/accounts/{account_id}/groups"]["get"];
        assert!(op["description"].as_str().unwrap().contains("groups:view"), "{op}");
        assert_eq!(
            doc["paths"]["/api/v1/accounts/{account_id}/users"]["get"]["parameters"][0]["schema"]["type"],
            "string"
        );
    }
}
