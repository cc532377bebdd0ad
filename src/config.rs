//! Server configuration, from flags and `PROVISOR_*` environment variables (see `cli`).

use std::net::SocketAddr;

/// Default limit of the unauthenticated endpoints per (endpoint, account, client): a
/// person signs in a few times a minute; a test IdP or a retry storm far more.
pub const DEFAULT_PUBLIC_RATE: u32 = 20;
pub const DEFAULT_PUBLIC_BURST: u32 = 100;

/// How long a request body may pause between two chunks before the request is answered
/// 408 and the connection closed (a client that stops sending must not hold a worker).
pub const DEFAULT_BODY_IDLE_SECONDS: u64 = 30;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// The externally visible base URL (no trailing slash). SAML ACS URL, SP entity ID,
    /// Destination and Recipient checks and links in mails derive from it — never from
    /// the request's Host header.
    pub public_url: String,
    pub database_url: String,
    pub pool_size: u32,
    /// HTTP worker threads (default: one per core).
    pub workers: usize,
    /// Set the `Secure` attribute on session cookies (on when the public URL is https).
    pub secure_cookies: bool,
    /// Unauthenticated endpoints: requests a second per (endpoint, account, client) and the
    /// burst allowed; 0 turns limiting off.
    pub public_rate_per_second: u32,
    pub public_rate_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// See [`DEFAULT_BODY_IDLE_SECONDS`].
    pub body_idle_timeout: std::time::Duration,
    /// SMTP delivery of the mail outbox; `None`: mail stays in the outbox.
    pub mail: Option<crate::mail::MailConfig>,
    /// Group sync: removals beyond this are held for confirmation.
    pub sync_threshold: crate::domain::sync::Threshold,
    /// How often the worker looks for membership events when idle.
    pub sync_poll: std::time::Duration,
    /// A full reconcile at start and then this often; `None`: never on its own.
    pub sync_reconcile_every: Option<std::time::Duration>,
    /// `GET /metrics` needs this bearer token when set (else it answers loopback only).
    pub metrics_token: Option<String>,
    /// `/readyz` fails a background worker busy with one piece of work longer than this.
    pub ready_stall: std::time::Duration,
    /// Graceful shutdown: in-flight requests get this long to finish, queued writes the
    /// same again (see [`DEFAULT_SHUTDOWN_SECONDS`]).
    pub shutdown_timeout: std::time::Duration,
    /// What the hourly maintenance purges, and after how long.
    pub retention: crate::service::retention::Policy,
}

/// Default of `--ready-stall-seconds`.
pub const DEFAULT_READY_STALL_SECONDS: u64 = 30;
/// Default of `--shutdown-timeout-seconds`.
pub const DEFAULT_SHUTDOWN_SECONDS: u64 = 30;

impl ServerConfig {
    pub fn new(bind: SocketAddr, public_url: Option<String>, database_url: String) -> ServerConfig {
        let public_url =
            public_url.map(|u| u.trim_end_matches('/').to_owned()).unwrap_or_else(|| format!("http://{bind}"));
        let secure_cookies = public_url.starts_with("https://");
        ServerConfig {
            bind,
            public_url,
            database_url,
            pool_size: 8,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            secure_cookies,
            public_rate_per_second: DEFAULT_PUBLIC_RATE,
            public_rate_burst: DEFAULT_PUBLIC_BURST,
            trusted_proxies: Vec::new(),
            body_idle_timeout: std::time::Duration::from_secs(DEFAULT_BODY_IDLE_SECONDS),
            mail: None,
            sync_threshold: Default::default(),
            sync_poll: std::time::Duration::from_millis(25),
            sync_reconcile_every: Some(std::time::Duration::from_secs(60 * 60)),
            metrics_token: None,
            ready_stall: std::time::Duration::from_secs(DEFAULT_READY_STALL_SECONDS),
            shutdown_timeout: std::time::Duration::from_secs(DEFAULT_SHUTDOWN_SECONDS),
            retention: crate::service::retention::Policy::default(),
        }
    }
}
