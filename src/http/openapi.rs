//! The OpenAPI 3 document, generated from the handlers' annotations. The master mirror
//! (`/api/v1/accounts/{account_id}/…`) is derived from the account-scoped paths rather than
//! written twice, so the two can never drift apart.

use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::OpenApi;

use crate::domain::accounts::Billing;
use crate::domain::catalog::{AddOn, Product, UserTier};

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
        routes::users::erase,
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
    let rel = path.strip_prefix("/api/v1/accounts/{account_id}").or_else(|| path.strip_prefix("/api/v1"));
    let scoped = rel.and_then(|rel| routes::account_route_need(method, rel));
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

/// The schema and description of a path parameter, by name. Every `{name}` of a documented
/// path must be here (a test checks it), so no path parameter is left untyped.
fn path_param_schema(name: &str) -> Option<(Schema, &'static str)> {
    let uuid = |what: &'static str| {
        Some((
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("uuid".into())))
                .build()
                .into(),
            what,
        ))
    };
    let text = |what: &'static str| {
        Some((ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).build().into(), what))
    };
    match name {
        "account_id" => uuid("An account id (on the mirror: a sub account of the caller's master account, or any account for the operator)"),
        "user_id" => uuid("A user id"),
        "sub_id" => uuid("A sub account id"),
        "token_id" => uuid("A token id"),
        "role_id" => uuid("A custom role id"),
        "group_id" => uuid("A group id"),
        "site_id" => uuid("A phone site id"),
        "relationship_id" => uuid("A relationship id"),
        "binding_id" => uuid("A group binding id"),
        "hold_id" => uuid("A held sync change id"),
        "certificate_id" => text("A certificate id or the SHA-256 fingerprint of the certificate (hex)"),
        "domain" => text("A domain name, e.g. `example.com`"),
        "number" => text("A phone number of the account's pool, any common notation (URL-encoded)"),
        "account" => text("An account id or vanity name"),
        "product" => Some((
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Product::ALL.iter().map(|p| p.as_str())))
                .build()
                .into(),
            "A product by its stable name",
        )),
        _ => None,
    }
}

/// The `{name}` parameters of a path template, in order.
fn template_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

/// Declares every path parameter of every operation with its schema (those an annotation
/// declared keep their description but get the schema of [`path_param_schema`]).
fn type_path_params(doc: &mut Doc) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let names = template_params(path);
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            let params = op.parameters.get_or_insert_with(Vec::new);
            for (i, name) in names.iter().enumerate() {
                let Some((schema, what)) = path_param_schema(name) else { continue };
                match params.iter_mut().find(|p| p.name == *name && p.parameter_in == ParameterIn::Path) {
                    Some(p) => p.schema = Some(schema.into()),
                    None => params.insert(
                        i.min(params.len()),
                        ParameterBuilder::new()
                            .name(*name)
                            .parameter_in(ParameterIn::Path)
                            .required(Required::True)
                            .description(Some(what))
                            .schema(Some(schema))
                            .build(),
                    ),
                }
            }
        }
    }
}

/// A response whose body is the API's JSON error (`{"error": {"code", "message"}}`).
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
        .into()
}

/// A refusal of an HTML page (a page that says why).
fn page_error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "text/html",
            ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::String))).build(),
        )
        .build()
        .into()
}

/// Sets the values a string property (or, for an array, its items) may take. An optional
/// property may also be `null` (absent and `null` mean "unchanged").
fn set_enum(doc: &mut Doc, schema: &str, property: &str, values: &[&str]) {
    let Some(RefOr::T(Schema::Object(object))) = doc.components.as_mut().and_then(|c| c.schemas.get_mut(schema)) else {
        return;
    };
    let required = object.required.iter().any(|r| r == property);
    let Some(RefOr::T(prop)) = object.properties.get_mut(property) else { return };
    let scalar = matches!(prop, Schema::Object(_));
    let target = match prop {
        Schema::Array(array) => match &mut array.items {
            ArrayItems::RefOrSchema(item) => match item.as_mut() {
                RefOr::T(Schema::Object(o)) => o,
                _ => return,
            },
            ArrayItems::False => return,
        },
        Schema::Object(o) => o,
        _ => return,
    };
    let mut list: Vec<serde_json::Value> = values.iter().map(|v| serde_json::Value::from(*v)).collect();
    if !required && scalar {
        list.push(serde_json::Value::Null);
    }
    target.enum_values = Some(list);
}

/// Request-body rules the Rust types cannot state, taken from the constants the parsers use,
/// and the bodies that are not JSON (the IdP metadata, a PEM certificate, CSV).
fn describe_bodies(doc: &mut Doc) {
    let tiers: Vec<&str> = UserTier::ALL.iter().map(|t| t.as_str()).collect();
    let addons: Vec<&str> = AddOn::ALL.iter().map(|a| a.as_str()).collect();
    let billing = [Billing::PayByMaster.as_str(), Billing::Separate.as_str()];
    set_enum(doc, "UserInput", "type", &tiers);
    set_enum(doc, "UserInput", "role", &["admin", "member"]);
    set_enum(doc, "UserInput", "status", &["active", "inactive"]);
    set_enum(doc, "UserInput", "addons", &addons);
    set_enum(doc, "ChangeType", "from", &tiers);
    set_enum(doc, "ChangeType", "to", &tiers);
    set_enum(doc, "RemoveType", "type", &tiers);
    set_enum(doc, "CreateToken", "scope", &["admin", "scim", "user"]);
    set_enum(doc, "CreateSub", "billing", &billing);
    set_enum(doc, "CreateSub", "kind", &["standard", "master"]);
    set_enum(doc, "CreateAccount", "kind", &["standard", "master"]);

    // Adding a user needs an e-mail address (updating does not): `NewUser` is `UserInput`
    // with `email` required and not blank.
    if let Some(components) = doc.components.as_mut() {
        if let Some(RefOr::T(Schema::Object(input))) = components.schemas.get("UserInput").cloned() {
            let mut new_user = input;
            new_user.required.push("email".into());
            new_user.description = Some("Body of \"add a user\": `UserInput` with `email` required.".into());
            new_user.properties.insert(
                "email".into(),
                ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).pattern(Some("\\S")).into(),
            );
            components.schemas.insert("NewUser".into(), RefOr::T(Schema::Object(new_user)));
        }
    }
    let text = |content_type: &str| {
        (
            content_type.to_owned(),
            ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::String))).build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let rel = path.strip_prefix("/api/v1/accounts/{account_id}").or_else(|| path.strip_prefix("/api/v1"));
        match rel {
            Some("/users") => {
                if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
                    body.content.insert(
                        "application/json".into(),
                        ContentBuilder::new().schema(Some(Ref::from_schema_name("NewUser"))).build(),
                    );
                }
            }
            Some("/sso") => {
                if let Some(body) = item.put.as_mut().and_then(|op| op.request_body.as_mut()) {
                    let (k, v) = text("application/samlmetadata+xml");
                    body.content.insert(k, v);
                }
            }
            Some("/sso/certificates") => {
                if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
                    let (k, v) = text("application/x-pem-file");
                    body.content.insert(k, v);
                }
            }
            // A CSV body is text whatever its bytes: no JSON type to state (an empty body is
            // refused, a bad row is reported by line).
            Some("/users/import") | Some("/phone/import") => {
                if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
                    body.content.insert(
                        "text/csv".into(),
                        ContentBuilder::new()
                            .schema(Some(
                                ObjectBuilder::new().description(Some("CSV text, UTF-8, first line the header")),
                            ))
                            .build(),
                    );
                    body.required = Some(Required::True);
                }
            }
            _ => {}
        }
    }
}

/// The error statuses every operation can answer, from what it takes and what it needs (the
/// one mapping is `http::error::status_of`): 400 for a malformed parameter or body, 401/403
/// for a missing token or right, 404 for an unknown id (and, on the mirror, account), 409 for
/// a write that conflicts (a name held, a limit, a concurrent change), 412 for a stale
/// `If-Match`, 408/413 for a body that stalls or is too large, 415 for a page form that is
/// not a form, 429 for a rate-limited public route, 503 when the database is unreachable.
fn document_errors(doc: &mut Doc) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = path.starts_with("/api/v1") || path.starts_with("/saml");
        let ops = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let need = need_of(path, method);
            let is_page = op.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == "pages"));
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_path_params = !template_params(path).is_empty();
            let has_body = op.request_body.is_some();
            let write = method != "GET";
            let public = matches!(need, Some(routes::Need::Public) | None);
            let mut add = |status: u16, text: &str| {
                let make = if is_page { page_error } else { error_response };
                op.responses.responses.entry(status.to_string()).or_insert_with(|| make(text));
            };
            if is_page {
                add(400, "the link or form is not valid");
                add(403, "no SSO session of the right user, or a bad CSRF token");
                add(404, "no such invitation or delegation");
                add(409, "already answered");
                add(410, "the link has expired");
                if write {
                    add(413, "the form is too large");
                    add(415, "not a form");
                }
                add(429, "too many requests");
                add(503, "the database is unreachable");
                continue;
            }
            if !api {
                continue;
            }
            if has_params || has_body {
                add(400, "a malformed parameter or body, or a value the rules refuse");
            }
            if !public {
                add(401, "no token, or an unknown, expired or revoked one");
                add(403, "the token lacks the right for this route or action");
            }
            // Account-scoped routes answer 404 for an account that is gone (or, on the mirror,
            // not in the caller's tree) and for an unknown id or configuration.
            if has_path_params
                || routes::account_route_need(method, path.strip_prefix("/api/v1").unwrap_or(path)).is_some()
            {
                add(404, "no such resource in this account");
            }
            if write {
                add(409, "the change conflicts with the current state");
            }
            if has_body {
                add(408, "the body stopped arriving");
                add(413, "the body is too large");
            }
            if public && write {
                add(429, "too many requests from this client");
            }
            add(503, "the database is unreachable");
        }
    }
}

/// Gives every operation a unique `operationId`: the handler's name, prefixed with its tag
/// where several handlers share a name (`users_create`, `groups_create`).
fn unique_operation_ids(doc: &mut Doc) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in doc.paths.paths.values() {
        for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
            if let Some(id) = &op.operation_id {
                *seen.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            let tag = op.tags.as_ref().and_then(|t| t.first()).map(|t| t.replace(' ', "_"));
            if let (Some(id), Some(tag)) = (&op.operation_id, tag) {
                if seen.get(id).copied().unwrap_or(0) > 1 {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
            }
        }
    }
}

pub fn document() -> Doc {
    let mut doc = ApiDoc::openapi();
    annotate_requirements(&mut doc);
    unique_operation_ids(&mut doc);
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
                op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}_mirror"));
                op.tags = Some(vec!["master mirror".into()]);
            }
            (format!("/api/v1/accounts/{{account_id}}{}", p.strip_prefix("/api/v1").unwrap_or(p)), item)
        })
        .collect();
    for (p, item) in mirrored {
        doc.paths.paths.insert(p, item);
    }
    type_path_params(&mut doc);
    describe_bodies(&mut doc);
    document_errors(&mut doc);
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
