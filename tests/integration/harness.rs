//! Boots a real server on a random loopback port over a fresh database and hands the test
//! a small blocking HTTP client.
//!
//! The backend comes from `PROVISOR_TEST_DATABASE`: unset or `sqlite` → a fresh SQLite
//! file per test; a `postgres://` URL → a fresh schema per test in that database (dropped
//! afterwards). The README's test command runs the whole suite once per backend.

use provisor::clock::ShiftedClock;
use provisor::http::AppState;
use provisor::testing::{RunningServer, ScratchDb};
use serde_json::{json, Value};
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub operator: String,
    pub clock: ShiftedClock,
    pub state: Arc<AppState>,
    /// DNS TXT records the server's domain verification sees.
    pub dns: Arc<provisor::service::dns::StaticResolver>,
    pub database_url: String,
    pub client: reqwest::blocking::Client,
    // Field order matters: the server stops before its database is removed.
    _server: RunningServer,
    _db: ScratchDb,
}

impl TestApp {
    pub fn spawn() -> TestApp {
        Self::spawn_configured(&|_| {})
    }

    /// A server whose configuration `tweak` changes before it starts.
    pub fn spawn_configured(tweak: &dyn Fn(&mut provisor::config::ServerConfig)) -> TestApp {
        let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
        let db = ScratchDb::create(&spec).expect("scratch database");
        let server = RunningServer::start_configured(db.url(), 2, tweak).expect("server starts");
        let client = reqwest::blocking::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        TestApp {
            base: server.base.clone(),
            operator: server.operator.clone(),
            clock: server.clock.clone(),
            state: server.state.clone(),
            dns: server.dns.clone(),
            database_url: db.url().to_owned(),
            client,
            _server: server,
            _db: db,
        }
    }

    /// A server over a fresh database of the given kind (`sqlite` or a `postgres://` URL),
    /// whatever `PROVISOR_TEST_DATABASE` says (tests that move data between backends).
    pub fn spawn_on(spec: &str) -> TestApp {
        let db = ScratchDb::create(spec).expect("scratch database");
        let server = RunningServer::start(db.url(), 2).expect("server starts");
        Self::from_parts(server, db)
    }

    /// A server over a database that already holds an installation (copied or restored
    /// into it): no operator token is made, `operator` is the installation's own.
    pub fn serve_existing(db: ScratchDb, operator: &str, public_url: &str) -> TestApp {
        let server = RunningServer::start_replica(db.url(), 2, public_url).expect("server starts");
        let mut app = Self::from_parts(server, db);
        app.operator = operator.to_owned();
        app
    }

    fn from_parts(server: RunningServer, db: ScratchDb) -> TestApp {
        let client = reqwest::blocking::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        TestApp {
            base: server.base.clone(),
            operator: server.operator.clone(),
            clock: server.clock.clone(),
            state: server.state.clone(),
            dns: server.dns.clone(),
            database_url: db.url().to_owned(),
            client,
            _server: server,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(m, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(body))
    }

    pub fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(token), Some(body))
    }

    pub fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PATCH", path, Some(token), Some(body))
    }

    pub fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(token), None)
    }

    /// `SELECT COUNT(*) AS n FROM …` run on the app's database (both backends).
    pub fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = sql.to_owned();
        self.state
            .db
            .read_blocking(move |c| {
                provisor::with_backend!(c, |c| {
                    use diesel::RunQueryDsl;
                    diesel::sql_query(&sql).get_result::<N>(c)
                })
                .map_err(provisor::error::AppError::from)
            })
            .expect("count query")
            .n
    }

    /// Creates a top-level account through the API; returns its id.
    pub fn account(&self, name: &str, owner: &str, master: bool) -> String {
        let (s, v) = self.post(
            "/api/v1/accounts",
            &self.operator.clone(),
            json!({ "name": name, "owner_email": owner, "kind": if master { "master" } else { "standard" }, "bulk_licensing": master }),
        );
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// An admin token acting as the account owner (made through the CLI's code path).
    pub fn admin_token(&self, account: &str) -> String {
        self.token(account, "admin", None)
    }

    pub fn token(&self, account: &str, scope: &str, user: Option<&str>) -> String {
        let env = self.state.env();
        self.state
            .db
            .write_blocking(|c| {
                provisor::service::tokens::create(
                    c,
                    &env,
                    &provisor::provisioning::Actor::system("test"),
                    provisor::provisioning::Source::Cli,
                    account,
                    scope,
                    user,
                    None,
                    None,
                )
            })
            .expect("token")
            .token
    }

    /// Sets the purchased count through the operator mirror.
    pub fn purchase(&self, account: &str, product: &str, quantity: i64) {
        let (s, v) = self.put(
            &format!("/api/v1/accounts/{account}/licenses/{product}"),
            &self.operator.clone(),
            json!({ "quantity": quantity }),
        );
        assert_eq!(s, 200, "{v}");
    }
}

/// Finds the summary line of a product.
pub fn line<'a>(summary: &'a Value, product: &str) -> &'a Value {
    summary["products"].as_array().and_then(|a| a.iter().find(|l| l["product"] == product)).unwrap_or(&Value::Null)
}

/// Runs the `provisor` binary against the test's database; returns (exit code, stdout JSON, stderr).
pub fn cli(app: &TestApp, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
        .args(args)
        .env("PROVISOR_DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("provisor runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A concrete path for a declared route pattern, every `{parameter}` filled with an id that
/// names nothing (route-matrix tests call every route this way).
pub fn fill_route(path: &str) -> String {
    path.replace("{user_id}", "u-none")
        .replace("{sub_id}", "s-none")
        .replace("{product}", "pro")
        .replace("{token_id}", "t-none")
        .replace("{role_id}", "r-none")
        .replace("{domain}", "none.example")
        .replace("{group_id}", "g-none")
        .replace("{site_id}", "x-none")
        .replace("{number}", "+15550000000")
        .replace("{certificate_id}", "c-none")
        .replace("{relationship_id}", "rel-none")
        .replace("{binding_id}", "b-none")
        .replace("{hold_id}", "h-none")
}
