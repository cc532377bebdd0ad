//! `provisor serve`: the HTTP server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use crate::clock::{SharedClock, SystemClock};
use crate::config::ServerConfig;
use crate::error::{AppError, AppResult};
use crate::provisioning::Env;
use crate::service;
use crate::store::pool::DbOptions;
use crate::store::Db;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PROVISOR_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Externally visible base URL (default: http:// + the bind address). SAML URLs and
    /// links in mails derive from it.
    #[arg(long, env = "PROVISOR_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PROVISOR_WORKERS")]
    pub workers: Option<usize>,
    /// Database connections for reads.
    #[arg(long, env = "PROVISOR_POOL_SIZE", default_value_t = 8)]
    pub pool_size: u32,
    /// Seconds a request waits for a database connection before it is answered 503 (half
    /// a second while the database is refusing connections).
    #[arg(long, env = "PROVISOR_DB_ACQUIRE_TIMEOUT_SECONDS", default_value_t = 5)]
    pub db_acquire_timeout_seconds: u64,
    /// Requests a second per (endpoint, account, client address) to the unauthenticated
    /// endpoints (SAML login and ACS, invitation acceptance); 0 turns the limit off.
    #[arg(long, env = "PROVISOR_PUBLIC_RATE_LIMIT", default_value_t = crate::config::DEFAULT_PUBLIC_RATE)]
    pub public_rate_limit: u32,
    /// Burst allowed above that rate.
    #[arg(long, env = "PROVISOR_PUBLIC_RATE_BURST", default_value_t = crate::config::DEFAULT_PUBLIC_BURST)]
    pub public_rate_burst: u32,
    /// A reverse proxy (CIDR or address, repeatable or comma-separated) whose
    /// X-Forwarded-For names the client; without one the TCP peer is the client.
    #[arg(long = "trusted-proxy", env = "PROVISOR_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Seconds a request body may pause between chunks before the request is answered 408.
    #[arg(long, env = "PROVISOR_BODY_TIMEOUT_SECONDS", default_value_t = crate::config::DEFAULT_BODY_IDLE_SECONDS)]
    pub body_timeout_seconds: u64,
    /// SMTP server that delivers the mail outbox: smtp://[user:pass@]host[:port] (STARTTLS
    /// when the server offers it) or smtps://… (implicit TLS); needs --mail-from too.
    #[arg(long, env = "PROVISOR_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of delivered mail (`noreply@example.com` or `Name <addr>`).
    #[arg(long, env = "PROVISOR_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Seconds a process keeps the outbox rows it claimed before another may retry them.
    #[arg(long, env = "PROVISOR_MAIL_LEASE_SECONDS", default_value_t = crate::mail::DEFAULT_LEASE_SECONDS)]
    pub mail_lease_seconds: u64,
    /// Group sync: a full reconcile at start and then every N minutes (0: only at start).
    #[arg(long, env = "PROVISOR_SYNC_RECONCILE_MINUTES", default_value_t = 60)]
    pub sync_reconcile_minutes: u64,
    /// Group sync: hold removals that would take away more than this percentage of one
    /// relationship's delegates…
    #[arg(long, env = "PROVISOR_SYNC_HOLD_PERCENT", default_value_t = 50)]
    pub sync_hold_percent: u32,
    /// …and more than this many.
    #[arg(long, env = "PROVISOR_SYNC_HOLD_MIN", default_value_t = 10)]
    pub sync_hold_min: usize,
    /// `GET /metrics` needs this bearer token (default: open on loopback only).
    #[arg(long, env = "PROVISOR_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// `/readyz` answers 503 when a background worker (writer, sync, mail sender, …) has been
    /// busy with one piece of work longer than this many seconds, or has stopped.
    #[arg(long, env = "PROVISOR_READY_STALL_SECONDS", default_value_t = crate::config::DEFAULT_READY_STALL_SECONDS)]
    pub ready_stall_seconds: u64,
    /// On SIGTERM or SIGINT: seconds in-flight requests get to finish after the listener
    /// closes, and then at most as long again for the queued writes; the process then exits.
    #[arg(long, env = "PROVISOR_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = crate::config::DEFAULT_SHUTDOWN_SECONDS)]
    pub shutdown_timeout_seconds: u64,
    #[command(flatten)]
    pub retention: super::RetentionArgs,
}

pub(super) fn serve(database_url: &str, args: ServeArgs) -> AppResult<()> {
    let args_acquire_timeout = args.db_acquire_timeout_seconds;
    let mut config = ServerConfig::new(args.bind, args.public_url, database_url.to_owned());
    config.pool_size = args.pool_size;
    config.public_rate_per_second = args.public_rate_limit;
    config.public_rate_burst = args.public_rate_burst;
    config.trusted_proxies = crate::http::limit::parse_trusted(&args.trusted_proxies)?;
    config.body_idle_timeout = std::time::Duration::from_secs(args.body_timeout_seconds.max(1));
    if let Some(w) = args.workers {
        config.workers = w;
    }
    config.sync_threshold = crate::domain::sync::Threshold {
        fraction: f64::from(args.sync_hold_percent.min(100)) / 100.0,
        min_count: args.sync_hold_min,
    };
    config.sync_reconcile_every = match args.sync_reconcile_minutes {
        // Only at start: an interval so long it never comes round again.
        0 => Some(std::time::Duration::from_secs(100 * 365 * 24 * 3600)),
        m => Some(std::time::Duration::from_secs(m * 60)),
    };
    config.metrics_token = args.metrics_token.filter(|t| !t.is_empty());
    config.ready_stall = std::time::Duration::from_secs(args.ready_stall_seconds.max(1));
    config.shutdown_timeout = std::time::Duration::from_secs(args.shutdown_timeout_seconds.max(1));
    config.retention = args.retention.policy();
    config.mail = crate::mail::MailConfig::from_settings(
        args.smtp_url.as_deref(),
        args.mail_from.as_deref(),
        &config.public_url,
        std::time::Duration::from_secs(args.mail_lease_seconds),
    )?;
    let db = Db::open(
        database_url,
        &DbOptions {
            pool_size: config.pool_size,
            acquire_timeout: std::time::Duration::from_secs(args_acquire_timeout.max(1)),
            migrate: true,
        },
    )?;
    let clock: SharedClock = Arc::new(SystemClock);
    let env = Env::standalone(clock.now_naive(), config.public_url.clone());
    let bootstrap = std::env::var("PROVISOR_BOOTSTRAP_TOKEN").ok().filter(|t| !t.is_empty());
    // CLI verbs (and the mails they send) link to the address this server really has.
    db.write_blocking(|c| {
        crate::store::platform::put(c, crate::store::platform::PUBLIC_URL, &config.public_url, env.now)
            .map_err(AppError::from)
    })?;
    let created = db.write_blocking(|c| service::tokens::ensure_operator(c, &env, bootstrap.as_deref()))?;
    if let Some(token) = created {
        let shown = if bootstrap.is_some() { json!("(from PROVISOR_BOOTSTRAP_TOKEN)") } else { json!(token) };
        println!(
            "{}",
            json!({ "event": "operator_token_created", "operator_token": shown, "note": "shown once; keep it safe" })
        );
    } else if let Some(given) = bootstrap.as_deref() {
        // An operator exists already: a different bootstrap token does nothing, say so.
        let hash = crate::secrets::hash_secret(given);
        let known =
            db.read_blocking(|c| crate::store::tokens::find_active_by_hash(c, &hash, env.now).map_err(AppError::from))?;
        if known.is_none() {
            tracing::warn!(
                "PROVISOR_BOOTSTRAP_TOKEN is ignored: the database already has an operator token; \
                 to issue another one run `provisor token create --operator`"
            );
        }
    }
    let listener = TcpListener::bind(config.bind)
        .map_err(|e| AppError::Unavailable(format!("cannot listen on {}: {e}", config.bind)))?;
    tracing::info!(bind = %config.bind, public_url = %config.public_url, database = %db.url.display(), "provisor listening");
    // Dropped (stopped) when the server ends.
    let _mail = match config.mail.clone() {
        Some(mail) => Some(crate::mail::sender::MailSender::start(db.clone(), clock.clone(), mail)?),
        None => {
            tracing::info!("no SMTP server configured: mail stays in the outbox (`provisor mail list`)");
            None
        }
    };
    let writes = db.clone();
    let drain_for = config.shutdown_timeout;
    let state = Arc::new(crate::http::AppState::new(db, clock, config));
    actix_web::rt::System::new().block_on(async move {
        crate::http::spawn_maintenance(state.clone());
        crate::http::spawn_sync_worker(state.clone());
        let server = crate::http::server(state, listener).map_err(|e| AppError::Unavailable(e.to_string()))?;
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            let signal = stop_signal().await;
            tracing::info!(signal, "stopping: no new connections; draining in-flight requests and queued writes");
            handle.stop(true).await;
        });
        server.await.map_err(|e| AppError::Internal(e.to_string()))
    })?;
    // Requests are answered; the mail sender gives back what it claimed; then every write
    // already queued runs and commits before the process exits.
    drop(_mail);
    if writes.close_writes(drain_for) {
        tracing::info!("stopped: every queued write committed");
        Ok(())
    } else {
        Err(AppError::Unavailable(format!(
            "shutdown: the queued writes did not finish within {}s",
            drain_for.as_secs()
        )))
    }
}

/// Waits for SIGTERM or SIGINT (both stop the server gracefully); the signal's name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop the server with SIGKILL");
            std::future::pending::<&'static str>().await
        }
    }
}
