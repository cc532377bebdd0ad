//! Test support (the `test-support` feature; never in the shipped binary): a real server on
//! a random loopback port over a fresh database, the process harness that runs the real
//! binary and kills it, the SAML fixtures, and the verification bench harness. Kept in the
//! library so the unit tests, the integration tests and the benchmarks share it.

pub mod pg_cluster;
pub mod process;
pub mod saml_bench;
pub mod smtp_sink;

use std::path::PathBuf;

use crate::saml::test_idp::TestIdp;

/// `idp-fixtures/` of this source tree (test keys and IdP metadata).
pub fn fixtures_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("idp-fixtures")
}

/// The test IdP over [`fixtures_dir`].
pub fn fixture_idp() -> Result<TestIdp, crate::saml::test_idp::TestIdpError> {
    TestIdp::load(&fixtures_dir())
}

use std::net::TcpListener;
use std::sync::Arc;

use crate::clock::{SharedClock, ShiftedClock};
use crate::config::ServerConfig;
use crate::error::{AppError, AppResult};
use crate::http::AppState;
use crate::store::pool::DbOptions;
use crate::store::Db;

/// A database that exists for one test or benchmark run and is removed afterwards.
pub enum ScratchDb {
    Sqlite { url: String, _dir: tempfile::TempDir },
    Postgres { url: String, admin_url: String, schema: String },
}

impl ScratchDb {
    /// `spec` is `sqlite` (a file in a temporary directory) or a `postgres://` URL (a fresh
    /// schema in that database, selected through the connection's `search_path`).
    pub fn create(spec: &str) -> AppResult<ScratchDb> {
        if spec.starts_with("postgres") {
            use diesel::{Connection, RunQueryDsl};
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut c = diesel::PgConnection::establish(spec)
                .map_err(|e| AppError::Unavailable(format!("PostgreSQL at {spec}: {e}")))?;
            diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(&mut c)?;
            let sep = if spec.contains('?') { '&' } else { '?' };
            let url = format!("{spec}{sep}options=-c%20search_path%3D{schema}");
            Ok(ScratchDb::Postgres { url, admin_url: spec.to_owned(), schema })
        } else {
            let dir = tempfile::tempdir().map_err(|e| AppError::Internal(e.to_string()))?;
            let url = format!("sqlite://{}", dir.path().join("provisor.db").display());
            Ok(ScratchDb::Sqlite { url, _dir: dir })
        }
    }

    pub fn url(&self) -> &str {
        match self {
            ScratchDb::Sqlite { url, .. } | ScratchDb::Postgres { url, .. } => url,
        }
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        if let ScratchDb::Postgres { admin_url, schema, .. } = self {
            use diesel::{Connection, RunQueryDsl};
            if let Ok(mut c) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut c);
            }
        }
    }
}

/// A server running in a background thread. Stopped when dropped.
pub struct RunningServer {
    pub base: String,
    pub operator: String,
    pub clock: ShiftedClock,
    pub state: Arc<AppState>,
    /// The DNS TXT records domain verification sees.
    pub dns: Arc<crate::service::dns::StaticResolver>,
    handle: actix_web::dev::ServerHandle,
    /// The outbox sender, when the configuration has SMTP (stopped before the server).
    mail: Option<crate::mail::sender::MailSender>,
}

impl RunningServer {
    /// A server on a fresh database; creates the operator token.
    pub fn start(database_url: &str, workers: usize) -> AppResult<RunningServer> {
        Self::start_inner(database_url, workers, None, true, &|_| {})
    }

    /// A server on a fresh database whose configuration `tweak` changes first (a short body
    /// timeout, say).
    pub fn start_configured(
        database_url: &str,
        workers: usize,
        tweak: &dyn Fn(&mut ServerConfig),
    ) -> AppResult<RunningServer> {
        Self::start_inner(database_url, workers, None, true, tweak)
    }

    /// A server without the public endpoints' rate limit (benchmarks drive the ACS from
    /// one client far beyond what any person does).
    pub fn start_unthrottled(database_url: &str, workers: usize) -> AppResult<RunningServer> {
        Self::start_inner(database_url, workers, None, false, &|_| {})
    }

    /// A second server process on the same database, answering for the same public URL
    /// (as behind a load balancer). Its `operator` is empty: the first one has the token.
    pub fn start_replica(database_url: &str, workers: usize, public_url: &str) -> AppResult<RunningServer> {
        Self::start_inner(database_url, workers, Some(public_url.to_owned()), true, &|_| {})
    }

    fn start_inner(
        database_url: &str,
        workers: usize,
        replica_of: Option<String>,
        rate_limited: bool,
        tweak: &dyn Fn(&mut ServerConfig),
    ) -> AppResult<RunningServer> {
        let db = Db::open(database_url, &DbOptions::default())?;
        let clock = ShiftedClock::default();
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| AppError::Internal(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| AppError::Internal(e.to_string()))?;
        let replica = replica_of.is_some();
        let mut config = ServerConfig::new(addr, replica_of, database_url.to_owned());
        config.workers = workers;
        if !rate_limited {
            config.public_rate_per_second = 0;
        }
        tweak(&mut config);
        let shared: SharedClock = Arc::new(clock.clone());
        let mut state = AppState::new(db, shared, config);
        // Domain verification never asks real DNS in tests: records go in this table.
        let dns = Arc::new(crate::service::dns::StaticResolver::default());
        state.services.dns = dns.clone();
        let state = Arc::new(state);
        let env = state.env();
        let operator = if replica {
            String::new()
        } else {
            state
                .db
                .write_blocking(|c| crate::service::tokens::ensure_operator(c, &env, None))?
                .ok_or_else(|| AppError::Internal("the scratch database already has an operator".into()))?
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                crate::http::spawn_sync_worker(st.clone());
                match crate::http::server(st, listener) {
                    Ok(server) => {
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
        });
        let handle = rx.recv().map_err(|e| AppError::Internal(e.to_string()))?.map_err(AppError::Internal)?;
        let mail = match state.config.mail.clone() {
            Some(m) => Some(crate::mail::sender::MailSender::start(state.db.clone(), state.clock.clone(), m)?),
            None => None,
        };
        Ok(RunningServer { base: format!("http://{addr}"), operator, clock, state, dns, handle, mail })
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.mail.take();
        let h = self.handle.clone();
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false))).join();
    }
}
