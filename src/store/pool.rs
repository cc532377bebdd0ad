//! Connection URLs, the r2d2 manager that picks the backend from the URL scheme, migrations,
//! and [`Db`]: the handle the rest of the program holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::writer::{WriteGate, Writer};
use super::{DbConn, StoreError};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Arbitrary but fixed key of the PostgreSQL advisory lock that serialises migrations when
/// several server processes start at once.
const MIGRATION_LOCK_KEY: i64 = 0x7072_6f76_6973;

/// The default database: an SQLite file next to where the server is started.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/provisor.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// Path of the SQLite file.
    Sqlite(PathBuf),
    /// A libpq connection URL.
    Postgres(String),
}

impl DbUrl {
    /// Accepts `sqlite://PATH`, `sqlite:PATH`, `postgres://…` and `postgresql://…`.
    pub fn parse(url: &str) -> Result<DbUrl, StoreError> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if rest.is_empty() || rest == ":memory:" {
                return Err(StoreError::Connect(
                    "an SQLite URL needs a file path (WAL mode does not work in memory), e.g. sqlite://./data/provisor.db".into(),
                ));
            }
            return Ok(DbUrl::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        Err(StoreError::Connect(format!(
            "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DbUrl::Sqlite(_) => Backend::Sqlite,
            DbUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL without its password, for logs and messages.
    pub fn display(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbUrl::Postgres(u) => redact(u),
        }
    }

    /// Opens one connection, set up for this program (SQLite pragmas).
    pub fn connect(&self) -> Result<DbConn, StoreError> {
        match self {
            DbUrl::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() && !dir.exists() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| StoreError::Connect(format!("cannot create {}: {e}", dir.display())))?;
                    }
                }
                let path_str = path
                    .to_str()
                    .ok_or_else(|| StoreError::Connect(format!("database path is not UTF-8: {}", path.display())))?;
                let mut conn = SqliteConnection::establish(path_str)
                    .map_err(|e| StoreError::Connect(format!("cannot open SQLite database {}: {e}", path.display())))?;
                // busy_timeout first: switching to WAL itself needs the lock.
                conn.batch_execute(super::SQLITE_BUSY_TIMEOUT)
                    .map_err(|e| StoreError::Connect(format!("cannot configure SQLite: {e}")))?;
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -32000; PRAGMA temp_store = MEMORY; \
                     PRAGMA wal_autocheckpoint = 0;",
                )
                .map_err(|e| StoreError::Connect(format!("cannot configure SQLite: {e}")))?;
                conn.set_instrumentation(super::stats::CountStatements);
                Ok(DbConn::Sqlite(conn))
            }
            DbUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url).map_err(|e| {
                    StoreError::Connect(format!("cannot connect to PostgreSQL at {}: {e}", redact(url)))
                })?;
                conn.set_instrumentation(super::stats::CountStatements);
                Ok(DbConn::Pg(conn))
            }
        }
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// r2d2 manager that reports the real connection error (Diesel's own manager cannot pick
/// a backend from the URL for a multi-connection).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
    conn_health: Arc<ConnHealth>,
}

/// How long after a failed connection attempt the database counts as away: while it does,
/// a request waits at most [`AWAY_ACQUIRE_TIMEOUT`] for a connection (and is answered 503)
/// instead of the full acquire timeout, since r2d2 would only keep retrying a refused
/// connection until that time is up.
pub const AWAY_FOR: Duration = Duration::from_secs(5);
pub const AWAY_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// The default of [`DbOptions::acquire_timeout`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// When a connection attempt last failed (milliseconds since `started`; 0: never).
#[derive(Debug)]
struct ConnHealth {
    started: std::time::Instant,
    failed_at_ms: std::sync::atomic::AtomicU64,
}

impl ConnHealth {
    fn new() -> ConnHealth {
        ConnHealth { started: std::time::Instant::now(), failed_at_ms: std::sync::atomic::AtomicU64::new(0) }
    }

    fn now_ms(&self) -> u64 {
        // +1: a failure in the very first millisecond is not "never".
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
    }

    fn record(&self, ok: bool) {
        let value = if ok { 0 } else { self.now_ms() };
        self.failed_at_ms.store(value, std::sync::atomic::Ordering::Relaxed);
    }

    fn away(&self) -> bool {
        let at = self.failed_at_ms.load(std::sync::atomic::Ordering::Relaxed);
        at != 0 && self.now_ms().saturating_sub(at) < u64::try_from(AWAY_FOR.as_millis()).unwrap_or(u64::MAX)
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConn, StoreError> {
        let result = self.url.connect();
        self.conn_health.record(result.is_ok());
        result
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

pub type DbPool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// A pooled connection within `timeout` (the short one while the database is away), its
/// wait recorded in `store::stats`.
fn pooled(pool: &DbPool, health: &ConnHealth, timeout: Duration) -> Result<PooledConn, StoreError> {
    let timeout = if health.away() { AWAY_ACQUIRE_TIMEOUT } else { timeout };
    let started = std::time::Instant::now();
    let got = pool.get_timeout(timeout);
    if let Some(s) = super::stats::stats() {
        s.pool_wait.observe(started.elapsed().as_secs_f64());
        if got.is_err() {
            s.pool_timeouts.inc();
        }
    }
    got.map_err(|e| StoreError::Pool(format!("no database connection: {e}")))
}

/// Applies the embedded migrations, holding a lock so that concurrent starts do not race.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, StoreError> {
    let mig = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
    match conn {
        DbConn::Sqlite(c) => {
            // Inside BEGIN IMMEDIATE Diesel runs each migration as a savepoint, and a second
            // process waits on the write lock instead of applying the same migration twice.
            super::begin_write_sqlite(c)?;
            let applied = c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len());
            match applied {
                Ok(n) => {
                    super::commit_sqlite(c)?;
                    Ok(n)
                }
                Err(e) => {
                    let _ = super::rollback_sqlite(c);
                    Err(mig(e))
                }
            }
        }
        DbConn::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(c)?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()).map_err(mig);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(c)?;
            result
        }
    }
}

/// Options for [`Db::open`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub pool_size: u32,
    /// The longest a request waits for a pooled connection before it is answered 503
    /// (much less while the database is away, see [`AWAY_ACQUIRE_TIMEOUT`]).
    pub acquire_timeout: Duration,
    /// Run pending migrations on open (the server does; `provisor migrate` does it alone).
    pub migrate: bool,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { pool_size: 8, acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT, migrate: true }
    }
}

/// The database handle: a pool for reads and ad-hoc transactions, and the group-commit
/// writer for the write-heavy request paths. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub pool: DbPool,
    pub url: Arc<DbUrl>,
    conn_health: Arc<ConnHealth>,
    acquire_timeout: Duration,
    writer: Arc<Writer>,
    /// SQLite only: the one queue for this process's write transactions (see [`WriteGate`]).
    gate: Option<Arc<WriteGate>>,
    /// Heartbeats of the writer threads (and of the workers the server adds).
    pub health: crate::health::Health,
}

impl Db {
    pub fn open(url: &str, opts: &DbOptions) -> Result<Db, StoreError> {
        let url = DbUrl::parse(url)?;
        let mut first = url.connect()?;
        if opts.migrate {
            run_migrations(&mut first)?;
        }
        drop(first);
        let conn_health = Arc::new(ConnHealth::new());
        let acquire_timeout = opts.acquire_timeout.max(AWAY_ACQUIRE_TIMEOUT);
        let pool = r2d2::Pool::builder()
            .max_size(opts.pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(acquire_timeout)
            .build(Manager { url: url.clone(), conn_health: conn_health.clone() })
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let (writers, batch) = match url.backend() {
            // One SQLite writer: SQLite takes one writer at a time anyway, and a single
            // thread batching many jobs per commit is what makes it fast.
            Backend::Sqlite => (1, super::writer::SQLITE_MAX_BATCH),
            Backend::Postgres => (opts.pool_size.clamp(2, 8) as usize, 1),
        };
        let gate = (url.backend() == Backend::Sqlite).then(|| Arc::new(WriteGate::default()));
        let health = crate::health::Health::default();
        let mut writer = Writer::start(&url, writers, batch, gate.clone(), &health)?;
        if url.backend() == Backend::Sqlite {
            // Checkpoints move off the commit path: a committing writer no longer stalls
            // while the WAL is copied back into the database file.
            writer.start_checkpointer(&url, &health)?;
        }
        Ok(Db { pool, url: Arc::new(url), conn_health, acquire_timeout, writer: Arc::new(writer), gate, health })
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// A pooled connection (blocking), within the acquire timeout (the short one while the
    /// database is away).
    pub fn conn(&self) -> Result<PooledConn, StoreError> {
        pooled(&self.pool, &self.conn_health, self.acquire_timeout)
    }

    /// Graceful shutdown: the writer takes no more jobs and finishes those queued, within
    /// `within`; false when it did not finish in time.
    pub fn close_writes(&self, within: Duration) -> bool {
        self.writer.close(within)
    }

    /// Runs a read-only closure on a pooled connection, off the async executor.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (pool, health, timeout) = (self.pool.clone(), self.conn_health.clone(), self.acquire_timeout);
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = pooled(&pool, &health, timeout).map_err(E::from)?;
            f(&mut conn)
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(E::from(StoreError::Pool(format!("database task failed: {e}")))),
        }
    }

    /// Runs `f` as one atomic unit through the group-commit writer: it shares a
    /// transaction with other concurrent writes (each in its own savepoint, so a failing
    /// job rolls back alone) and its result is delivered once the transaction commits.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        self.writer.submit(f).await
    }

    /// Blocking write on a pooled connection in its own transaction (CLI, importers).
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StoreError> + From<diesel::result::Error>,
    {
        let mut conn = self.conn()?;
        let _turn = self.gate.as_ref().map(|g| g.enter());
        super::write_tx(&mut conn, f)
    }

    /// Blocking read on a pooled connection.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut conn = self.conn()?;
        f(&mut conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_counts_as_away_only_after_a_failed_attempt_and_until_one_succeeds() {
        let h = ConnHealth::new();
        assert!(!h.away(), "never failed");
        h.record(false);
        assert!(h.away(), "a refused connection: away");
        h.record(true);
        assert!(!h.away(), "a connection made: back");
        // A failure longer ago than AWAY_FOR no longer counts.
        let old = ConnHealth {
            started: std::time::Instant::now().checked_sub(AWAY_FOR * 2).unwrap(),
            failed_at_ms: std::sync::atomic::AtomicU64::new(1),
        };
        assert!(!old.away());
    }

    #[test]
    fn a_pool_on_a_refusing_server_answers_within_the_short_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = DbUrl::Postgres(format!("postgres://postgres@127.0.0.1:{port}/none"));
        let health = Arc::new(ConnHealth::new());
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(Manager { url, conn_health: health.clone() });
        // The first wait is the configured one (here 1 s): it learns the server refuses.
        let t = std::time::Instant::now();
        assert!(pooled(&pool, &health, Duration::from_secs(1)).is_err());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(health.away());
        // From then on a request waits only the short timeout.
        let t = std::time::Instant::now();
        assert!(pooled(&pool, &health, Duration::from_secs(30)).is_err());
        assert!(t.elapsed() < AWAY_ACQUIRE_TIMEOUT * 4, "{:?}", t.elapsed());
    }
}
