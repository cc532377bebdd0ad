//! The HTTP edge: the actix-web application, every route (admin API, SCIM, SAML, the HTML
//! pages mails link to), the bearer-token extractors and the one error → response mapping.
//! Nothing below this module knows about HTTP; the routes translate requests into `service`
//! calls.

pub mod auth;
pub mod error;
pub mod limit;
pub mod metrics;
pub mod openapi;
#[macro_use]
pub mod routes;
pub mod scim;
pub mod telemetry;
pub mod text_guard;

// After `routes`: its `route_table!` macro is in scope from there on.
pub mod pages;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};

use crate::clock::SharedClock;
use crate::config::ServerConfig;
use crate::service::Services;
use crate::store::Db;

/// Shared by every request: the services and the server's configuration.
pub struct AppState {
    pub services: Services,
    pub config: ServerConfig,
    pub limiter: limit::PublicLimiter,
    /// The background tasks this server spawned (each reports heartbeats under its name).
    tasks: parking_lot::Mutex<Vec<(String, tokio::task::JoinHandle<()>)>>,
}

impl AppState {
    pub fn new(db: Db, clock: SharedClock, config: ServerConfig) -> AppState {
        let limiter = limit::PublicLimiter::new(
            config.public_rate_per_second,
            config.public_rate_burst,
            config.trusted_proxies.clone(),
        );
        AppState {
            services: Services::new(db, clock, config.public_url.clone()),
            config,
            limiter,
            tasks: parking_lot::Mutex::default(),
        }
    }

    /// Ends the background task `name` (its heartbeat then reports it stopped); false when
    /// no such task runs. For operators' tests of readiness and for shutdown.
    pub fn stop_task(&self, name: &str) -> bool {
        let mut tasks = self.tasks.lock();
        let mut found = false;
        tasks.retain(|(n, handle)| {
            if n == name {
                handle.abort();
                found = true;
                false
            } else {
                true
            }
        });
        found
    }
}

/// Spawns a background task on the current actix system with a heartbeat named `name`.
fn spawn_task<F, Fut>(state: &Arc<AppState>, name: &str, task: F)
where
    F: FnOnce(crate::health::Beat) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let beat = state.db.health.register(name);
    let handle = actix_web::rt::spawn(task(beat));
    state.tasks.lock().push((name.to_owned(), handle));
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Largest JSON body of the admin API.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// Registers every route on an app.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    cfg.app_data(state)
        .app_data(web::JsonConfig::default().limit(JSON_LIMIT).error_handler(error::json_error_handler))
        // Raw bodies (the mapping document, SSO metadata) share the JSON limit.
        .app_data(web::PayloadConfig::default().limit(JSON_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
        .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
        .configure(routes::system::configure)
        .configure(routes::platform::configure)
        // The master mirror: every account-scoped route again under /accounts/{id}.
        .service(web::scope("/api/v1/accounts/{account_id}").configure(routes::account_scoped))
        .service(web::scope("/api/v1").configure(routes::account_scoped))
        .service(web::scope("/scim/v2").configure(scim::configure))
        .configure(routes::saml::configure)
        .configure(pages::configure)
        .default_service(web::to(routes::system::not_found));
}

/// Builds the server on a bound listener (the caller binds, so tests can use port 0).
pub fn server(state: Arc<AppState>, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = state.config.workers.max(1);
    let state_shutdown_secs = state.config.shutdown_timeout.as_secs().max(1);
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(text_guard::refuse_nul))
            .wrap(actix_web::middleware::from_fn(limit::body_idle_timeout))
            .wrap(actix_web::middleware::from_fn(metrics::count_requests))
            .wrap(tracing_actix_web::TracingLogger::<telemetry::ProvisorRootSpan>::new())
            .configure(|cfg| configure(cfg, data.clone()))
    })
    .workers(workers)
    .backlog(2048)
    // `serve` handles SIGTERM and SIGINT itself (both drain; actix would stop at once on
    // SIGINT), and the drain is bounded by the configured timeout.
    .disable_signals()
    .shutdown_timeout(state_shutdown_secs)
    .listen(listener)?
    .run();
    Ok(server)
}

/// The group-sync worker: applies membership events as they commit (it looks every
/// `sync_poll` when idle, drains in batches of 500 while there are any) and reconciles every
/// binding at start and every `sync_reconcile_every`. Every process may run it: PostgreSQL
/// hands each event to one process (`FOR UPDATE SKIP LOCKED`), SQLite's writer lock does
/// the same.
pub fn spawn_sync_worker(state: Arc<AppState>) {
    const BATCH: i64 = 500;
    let reconciler = state.clone();
    let worker = state.clone();
    spawn_task(&worker, "sync", |beat| async move {
        let threshold = state.config.sync_threshold;
        let mut tick = actix_web::rt::time::interval(state.config.sync_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beat.idle();
            tick.tick().await;
            beat.busy();
            match state.db.read(|c| crate::store::sync::any_pending(c).map_err(crate::error::AppError::from)).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "group sync: cannot read the event outbox");
                    continue;
                }
            }
            loop {
                let env = state.env();
                match state.db.write(move |c| crate::service::sync::drain(c, &env, threshold, BATCH)).await {
                    Ok(report) => {
                        metrics::drained(report.events, &report.latencies_ms);
                        for h in &report.revoked {
                            state.tokens.forget_hash(h);
                        }
                        if report.applied > 0 {
                            state.authorization_changed();
                        }
                        if (report.events as i64) < BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        metrics::drain_failed();
                        tracing::warn!(error = %e, "group sync: a batch failed; it is retried");
                        break;
                    }
                }
            }
        }
    });
    if let Some(every) = reconciler.config.sync_reconcile_every {
        spawn_task(&worker, "sync_reconcile", |beat| async move {
            let mut tick = actix_web::rt::time::interval(every);
            loop {
                beat.idle();
                tick.tick().await;
                beat.busy();
                reconcile_all(&reconciler).await;
            }
        });
    }
}

/// One full reconcile, a transaction per relationship.
async fn reconcile_all(state: &AppState) {
    let threshold = state.config.sync_threshold;
    let relationships = match state.db.read(|c| crate::service::sync::relationships_to_reconcile(c, None)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "group sync: reconcile could not list bindings");
            return;
        }
    };
    let (mut found, mut repaired) = (0, 0);
    for r in relationships {
        let env = state.env();
        match state.db.write(move |c| crate::service::sync::reconcile_relationship(c, &env, threshold, &r, false)).await
        {
            Ok(report) => {
                found += report.missing + report.extra;
                repaired += report.repaired;
                for h in &report.revoked {
                    state.tokens.forget_hash(h);
                }
            }
            Err(e) => tracing::warn!(error = %e, "group sync: reconcile of a relationship failed"),
        }
    }
    metrics::drift(found, repaired);
    if found > 0 {
        state.authorization_changed();
        tracing::info!(found, repaired, "group sync: reconcile repaired drift");
    }
}

/// Periodic housekeeping while the server runs: expired invitations (and, with SAML, the
/// replay cache and stale requests). Every process may run it; the work is idempotent.
pub fn spawn_maintenance(state: Arc<AppState>) {
    let sweeper = state.clone();
    let spawner = state.clone();
    spawn_task(&spawner, "relationship_sweep", |beat| async move {
        // Relationship expiry, extension and warnings: access already ends at the instant
        // (computed per request); this writes it down and sends the mails.
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(60));
        loop {
            beat.idle();
            tick.tick().await;
            beat.busy();
            let env = sweeper.env();
            match sweeper.db.write(move |c| crate::service::delegation::sweep(c, &env)).await {
                Ok((report, revoked)) => {
                    for h in &revoked {
                        sweeper.tokens.forget_hash(h);
                    }
                    if report != Default::default() {
                        sweeper.authorization_changed();
                        tracing::info!(?report, "relationships swept");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "relationship sweep failed"),
            }
        }
    });
    spawn_task(&spawner, "maintenance", |beat| async move {
        let mut tick = actix_web::rt::time::interval(std::time::Duration::from_secs(3600));
        loop {
            beat.idle();
            tick.tick().await;
            beat.busy();
            let env = state.env();
            let result = state.db.write(move |c| crate::service::users::purge_expired_invitations(c, &env)).await;
            match result {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired invitations removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "invitation purge failed"),
            }
            state.limiter.prune();
            // Retention (applied membership events included), in batches of short writes.
            let (db, now, policy) = (state.db.clone(), state.clock.now_naive(), state.config.retention);
            match tokio::task::spawn_blocking(move || crate::service::retention::purge(&db, now, &policy, false)).await
            {
                Ok(Ok(p)) if p.total() > 0 => tracing::info!(?p, "retention: old rows purged"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "retention purge failed"),
                Err(e) => tracing::warn!(error = %e, "retention purge task failed"),
            }
            let now = state.clock.now_naive();
            match state
                .db
                .write(move |c| crate::store::saml::purge_expired(c, now).map_err(crate::error::AppError::from))
                .await
            {
                Ok(p) => tracing::debug!(?p, "expired SAML replay entries, requests and sessions removed"),
                Err(e) => tracing::warn!(error = %e, "SAML purge failed"),
            }
        }
    });
}
