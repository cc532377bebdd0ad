//! `GET /metrics` in the Prometheus text format (names prefixed `provisor_`): the group-sync
//! outbox (depth and oldest age read at scrape time, events applied and failed, propagation
//! latency, drift, held removals), every request's count and latency by route pattern (and
//! status class), the group-commit writer's queue (depth, batch sizes, wait before a batch)
//! and the connection pool (open, idle, in use, waits and timed-out waits).
//! Open on loopback; when `PROVISOR_METRICS_TOKEN` is set, only with that bearer token.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use super::AppState;
use crate::error::{AppError, AppResult};

struct Metrics {
    registry: Registry,
    outbox_depth: IntGauge,
    oldest_event_age: prometheus::Gauge,
    held_removals: IntGauge,
    events_applied: IntCounter,
    events_failed: IntCounter,
    propagation: Histogram,
    drift_found: IntCounter,
    drift_repaired: IntCounter,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_in_use: IntGauge,
    pool_max: IntGauge,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("provisor".into()), None)?;
    let m = Metrics {
        outbox_depth: IntGauge::new("sync_outbox_depth", "membership events not yet applied")?,
        oldest_event_age: prometheus::Gauge::new(
            "sync_oldest_event_age_seconds",
            "age of the oldest membership event not yet applied",
        )?,
        held_removals: IntGauge::new("sync_held_removals", "delegate removals held for confirmation")?,
        events_applied: IntCounter::new("sync_events_applied_total", "membership events applied by this process")?,
        events_failed: IntCounter::new("sync_events_failed_total", "event batches that failed and were retried")?,
        propagation: Histogram::with_opts(
            HistogramOpts::new("sync_propagation_seconds", "from a membership change's commit to its application")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 30.0]),
        )?,
        drift_found: IntCounter::new("sync_drift_found_total", "missing or extra delegates found by reconciles")?,
        drift_repaired: IntCounter::new("sync_drift_repaired_total", "bindings repaired by reconciles")?,
        requests: IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route pattern and status"),
            &["method", "route", "status"],
        )?,
        latency: HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method, route pattern and status class (2xx, 4xx, …)",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
            &["method", "route", "class"],
        )?,
        pool_connections: IntGauge::new("db_pool_connections", "pooled database connections open")?,
        pool_idle: IntGauge::new("db_pool_idle_connections", "pooled database connections idle")?,
        pool_in_use: IntGauge::new("db_pool_in_use_connections", "pooled database connections handed out")?,
        pool_max: IntGauge::new("db_pool_max_connections", "the pool's size")?,
        registry,
    };
    m.registry.register(Box::new(m.outbox_depth.clone()))?;
    m.registry.register(Box::new(m.oldest_event_age.clone()))?;
    m.registry.register(Box::new(m.held_removals.clone()))?;
    m.registry.register(Box::new(m.events_applied.clone()))?;
    m.registry.register(Box::new(m.events_failed.clone()))?;
    m.registry.register(Box::new(m.propagation.clone()))?;
    m.registry.register(Box::new(m.drift_found.clone()))?;
    m.registry.register(Box::new(m.drift_repaired.clone()))?;
    m.registry.register(Box::new(m.requests.clone()))?;
    m.registry.register(Box::new(m.latency.clone()))?;
    m.registry.register(Box::new(m.pool_connections.clone()))?;
    m.registry.register(Box::new(m.pool_idle.clone()))?;
    m.registry.register(Box::new(m.pool_in_use.clone()))?;
    m.registry.register(Box::new(m.pool_max.clone()))?;
    // The writer queue and pool waits are counted in the store layer.
    if let Some(s) = crate::store::stats::stats() {
        m.registry.register(Box::new(s.queue_depth.clone()))?;
        m.registry.register(Box::new(s.batch_size.clone()))?;
        m.registry.register(Box::new(s.queue_wait.clone()))?;
        m.registry.register(Box::new(s.pool_wait.clone()))?;
        m.registry.register(Box::new(s.pool_timeouts.clone()))?;
        m.registry.register(Box::new(s.statements.clone()))?;
    }
    Ok(m)
}

fn metrics() -> Option<&'static Metrics> {
    static M: OnceLock<Option<Metrics>> = OnceLock::new();
    M.get_or_init(|| build().map_err(|e| tracing::error!(error = %e, "metrics registry")).ok()).as_ref()
}

/// A drained batch: events applied, each applied event's latency.
pub fn drained(events: usize, latencies_ms: &[f64]) {
    if let Some(m) = metrics() {
        m.events_applied.inc_by(events as u64);
        for l in latencies_ms {
            m.propagation.observe(l / 1000.0);
        }
    }
}

pub fn drain_failed() {
    if let Some(m) = metrics() {
        m.events_failed.inc();
    }
}

pub fn drift(found: usize, repaired: usize) {
    if let Some(m) = metrics() {
        m.drift_found.inc_by(found as u64);
        m.drift_repaired.inc_by(repaired as u64);
    }
}

/// Middleware: counts every request and its latency by route pattern (never the raw path,
/// so ids do not explode the label space).
pub async fn count_requests<B: actix_web::body::MessageBody + 'static>(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    if let Some(m) = metrics() {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        let code = res.status().as_u16();
        let status = code.to_string();
        let class = format!("{}xx", code / 100);
        m.requests.with_label_values(&[&method, &route, &status]).inc();
        m.latency.with_label_values(&[&method, &route, &class]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

fn allowed(req: &HttpRequest, state: &AppState) -> AppResult<()> {
    match &state.config.metrics_token {
        Some(expected) => {
            let given = super::auth::bearer(req)?;
            if crate::secrets::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                Ok(())
            } else {
                Err(AppError::Unauthorized("wrong metrics token".into()))
            }
        }
        None => match req.peer_addr() {
            Some(a) if a.ip().is_loopback() => Ok(()),
            _ => Err(AppError::forbidden("metrics answer on loopback only; set PROVISOR_METRICS_TOKEN to open them")),
        },
    }
}

/// The Prometheus scrape (open on loopback; with `PROVISOR_METRICS_TOKEN` set, behind that
/// bearer token).
#[utoipa::path(get, path = "/metrics", tag = "system", responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    (status = 401, body = crate::http::error::ErrorBody), (status = 403, body = crate::http::error::ErrorBody)))]
pub async fn scrape(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    allowed(&req, &state)?;
    let env = state.env();
    let status = state.db.read(move |c| crate::service::sync::status(c, &env, None)).await?;
    let m = metrics().ok_or_else(|| AppError::Internal("metrics registry unavailable".into()))?;
    m.outbox_depth.set(status.outbox_depth);
    m.oldest_event_age.set(status.oldest_event_age_ms as f64 / 1000.0);
    m.held_removals.set(i64::try_from(status.held_removals).unwrap_or(i64::MAX));
    let pool = state.db.pool.state();
    m.pool_connections.set(i64::from(pool.connections));
    m.pool_idle.set(i64::from(pool.idle_connections));
    m.pool_in_use.set(i64::from(pool.connections.saturating_sub(pool.idle_connections)));
    m.pool_max.set(i64::from(state.db.pool.max_size()));
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .map_err(|e| AppError::Internal(format!("metrics encoding: {e}")))?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out))
}
