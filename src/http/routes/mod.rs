//! Admin API routes. Account-scoped routes are registered twice by `http::configure`:
//! under `/api/v1` (the token's own account) and under `/api/v1/accounts/{account_id}`
//! (the master mirror), with identical bodies.
//!
//! Every route is declared once, in its module's `route_table!`: method, path, handler and
//! the one thing it needs (a catalogue permission, the operator, or nothing). The table
//! registers the route and is what the `AccountCtx` extractor checks, so no handler checks
//! permissions by hand and no route exists without a requirement; a test compares the
//! tables with the OpenAPI document.

use crate::domain::authz::Permission;

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// One catalogue permission, checked by the `AccountCtx` extractor.
    Perm(Permission),
    /// The platform operator token.
    Operator,
    /// Nothing (health, the SAML endpoints, invitation acceptance, the catalogue, the HTML
    /// pages of `http::pages`, which check the SSO session and CSRF themselves); the
    /// route's own credential, if any, is checked by its handler.
    Public,
    /// Any person of the account acting on their own credentials (`/me/…`): the handler
    /// only ever touches the caller's own user.
    OwnSelf,
    /// A person acting for themselves, or whoever holds the permission: the handler asks
    /// for the permission unless the request is self-service (`POST /tokens` of a `user`
    /// token for oneself).
    SelfServiceOr(Permission),
}

/// One declared route.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// Relative to its scope (`/api/v1` and the mirror for account-scoped routes).
    pub path: &'static str,
    pub need: Need,
}

/// Declares a module's routes: `METHOD "path" => handler, need;` where need is `view Area`,
/// `edit Area`, `operator`, `own_self` or `public`. Expands to `ROUTES` and `configure`.
macro_rules! route_table {
    ($( $method:ident $path:literal => $handler:path, $($need:ident)+; )*) => {
        pub const ROUTES: &[$crate::http::routes::RouteSpec] = &[
            $( $crate::http::routes::RouteSpec {
                method: stringify!($method),
                path: $path,
                need: route_table!(@need $($need)+),
            }, )*
        ];

        pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.route($path, route_table!(@method $method).to($handler)); )*
        }
    };
    (@need view $area:ident) => {
        $crate::http::routes::Need::Perm($crate::domain::authz::Permission::view($crate::domain::authz::Area::$area))
    };
    (@need edit $area:ident) => {
        $crate::http::routes::Need::Perm($crate::domain::authz::Permission::edit($crate::domain::authz::Area::$area))
    };
    (@need operator) => { $crate::http::routes::Need::Operator };
    (@need public) => { $crate::http::routes::Need::Public };
    (@need own_self) => { $crate::http::routes::Need::OwnSelf };
    (@need self_or edit $area:ident) => {
        $crate::http::routes::Need::SelfServiceOr($crate::domain::authz::Permission::edit($crate::domain::authz::Area::$area))
    };
    (@method GET) => { actix_web::web::get() };
    (@method POST) => { actix_web::web::post() };
    (@method PUT) => { actix_web::web::put() };
    (@method PATCH) => { actix_web::web::patch() };
    (@method DELETE) => { actix_web::web::delete() };
}

/// Declares a list body `{"<field>": [item, …]}` as one type, so a handler's answer and its
/// schema in the document cannot drift apart.
macro_rules! list_body {
    ($(#[$meta:meta])* $name:ident { $field:ident: $item:ty }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub $field: Vec<$item>,
        }
    };
}

pub mod account;
pub mod groups;
pub mod licenses;
pub mod mapping;
pub mod me;
pub mod phone;
pub mod platform;
pub mod relationships;
pub mod reports;
pub mod roles;
pub mod saml;
pub mod sso;
pub mod sync;
pub mod system;
pub mod tokens;
pub mod users;

use actix_web::web;
use serde::Deserialize;

pub fn account_scoped(cfg: &mut web::ServiceConfig) {
    cfg.configure(account::configure)
        .configure(licenses::configure)
        .configure(users::configure)
        .configure(roles::configure)
        .configure(groups::configure)
        .configure(mapping::configure)
        .configure(phone::configure)
        .configure(sso::configure)
        .configure(tokens::configure)
        .configure(me::configure)
        .configure(relationships::configure)
        .configure(sync::configure)
        .configure(reports::configure);
}

/// The route tables of the account-scoped modules (registered under `/api/v1` and the
/// mirror).
pub const ACCOUNT_SCOPED: &[&[RouteSpec]] = &[
    account::ROUTES,
    licenses::ROUTES,
    users::ROUTES,
    roles::ROUTES,
    groups::ROUTES,
    mapping::ROUTES,
    phone::ROUTES,
    sso::ROUTES,
    tokens::ROUTES,
    me::ROUTES,
    relationships::ROUTES,
    sync::ROUTES,
    reports::ROUTES,
];

/// The tables of the routes registered at the root (full paths).
pub const ROOT: &[&[RouteSpec]] = &[system::ROUTES, platform::ROUTES, saml::ROUTES, crate::http::pages::ROUTES];

/// The requirement of an account-scoped route, by method and its pattern relative to the
/// scope. `None` means the route is not declared (refused).
pub fn account_route_need(method: &str, pattern: &str) -> Option<Need> {
    ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()).find(|r| r.method == method && r.path == pattern).map(|r| r.need)
}

/// Does `path` fit `pattern` (`{x}` matches one non-empty segment)?
fn fits(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.starts_with('{') && a.ends_with('}') => {
                if b.is_empty() {
                    return false;
                }
            }
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The methods declared for a request path (root routes, account-scoped routes under
/// `/api/v1` and under the mirror): what a 405 lists in `Allow`.
pub fn methods_for(path: &str) -> Vec<&'static str> {
    let path = path.trim_end_matches('/');
    let mut relative: Vec<String> = Vec::new();
    if let Some(rest) = path.strip_prefix("/api/v1") {
        relative.push(rest.to_owned());
        if let Some((_, tail)) = rest.strip_prefix("/accounts/").and_then(|after| after.split_once('/')) {
            relative.push(format!("/{tail}"));
        }
    }
    let mut methods: Vec<&'static str> = ROOT
        .iter()
        .flat_map(|t| t.iter())
        .filter(|r| fits(r.path, path))
        .chain(ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()).filter(|r| relative.iter().any(|rel| fits(r.path, rel))))
        .map(|r| r.method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// `?limit=&offset=` paging (limit 1–1000, default 100).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Page {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    pub fn offset(&self) -> i64 {
        self.offset.unwrap_or(0).max(0)
    }
}

/// Path parameters by name (on the mirror, `account_id` comes first, so positional
/// extraction would read the wrong segment).
#[derive(Debug, Deserialize)]
pub struct Params {
    pub user_id: Option<String>,
    pub sub_id: Option<String>,
    pub product: Option<String>,
    pub token_id: Option<String>,
    pub role_id: Option<String>,
    pub domain: Option<String>,
    pub group_id: Option<String>,
    pub site_id: Option<String>,
    pub number: Option<String>,
    pub certificate_id: Option<String>,
    pub relationship_id: Option<String>,
    pub binding_id: Option<String>,
    pub hold_id: Option<String>,
}

impl Params {
    pub fn get(v: &Option<String>, name: &'static str) -> crate::error::AppResult<String> {
        v.clone().ok_or(crate::error::AppError::bad_request("invalid_path", format!("missing path parameter {name}")))
    }
}

/// A CSV import's body must hold at least one line: an empty (or blank) upload is a client
/// mistake — the wrong file or no file — and is refused with 400 `empty_body` instead of
/// being reported as an import of nothing.
pub(crate) fn require_csv(bytes: &[u8]) -> crate::error::AppResult<()> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(crate::error::AppError::bad_request(
            "empty_body",
            "the CSV body is empty; send the file's contents",
        ));
    }
    Ok(())
}

/// An import's answer: 200 with its report, or 503 with the same report when it stopped
/// part-way (the report counts what was applied; its `stopped` says from which line on
/// nothing was), so a client that only looks at the status does not take it for done.
pub(crate) fn import_response(stopped: bool, report: &impl serde::Serialize) -> actix_web::HttpResponse {
    if stopped {
        let mut resp = actix_web::HttpResponse::ServiceUnavailable();
        crate::http::error::retry_after_if_unavailable(&mut resp, actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
        resp.json(report)
    } else {
        actix_web::HttpResponse::Ok().json(report)
    }
}
