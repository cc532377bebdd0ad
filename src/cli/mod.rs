//! The `provisor` command line. Each verb prints one JSON object on stdout; on error it
//! prints a message on stderr and exits non-zero. Operators' scripts depend on the verbs
//! and flags below: add to them, never rename. One module per verb group; each calls the
//! services layer, never HTTP.

mod account;
mod data;
mod delegation;
mod licenses;
mod mapping;
mod phone;
mod report;
mod retention;
mod serve;
mod sso;
pub mod test_idp;
mod token;
mod users;

use std::io::Write;

use clap::{Parser, Subcommand};
use serde_json::json;

pub use self::account::{AccountCmd, SettingsCmd};
pub use self::delegation::{DelegateCmd, HeldCmd, RelationshipCmd, SyncCmd};
pub use self::licenses::LicensesCmd;
pub use self::mapping::MappingCmd;
pub use self::phone::{NumbersCmd, PhoneCmd, SiteCmd};
pub use self::report::ReportCmd;
pub use self::retention::{RetentionArgs, RetentionCmd};
pub use self::serve::ServeArgs;
pub use self::sso::SsoCmd;
pub use self::token::TokenCmd;
pub use self::users::{InvitationsCmd, MailCmd, UsersCmd};
use crate::clock::{Clock, SystemClock};
use crate::domain::catalog::Product;
use crate::error::{AppError, AppResult};
use crate::http::telemetry::{init_logging, LogFormat};
use crate::provisioning::Env;
use crate::store::pool::{DbOptions, DEFAULT_DATABASE_URL};
use crate::store::Db;

#[derive(Debug, Parser)]
#[command(
    name = "provisor",
    version,
    about = "Identity provisioning server: SCIM 2.0, SAML 2.0 SSO, licenses, phone, delegation"
)]
pub struct Cli {
    /// Database URL: sqlite://PATH (default, created on first use) or postgres://USER@HOST/DB.
    #[arg(long, global = true, env = "PROVISOR_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Log format (logs go to stderr).
    #[arg(long, global = true, env = "PROVISOR_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy a whole installation from SQLite to PostgreSQL (verified, resumable).
    MigrateData(data::MigrateDataArgs),
    /// Write an online, integrity-checked copy of the SQLite database to a file.
    Backup(data::BackupArgs),
    /// Replace the SQLite database with a backup file.
    Restore(data::RestoreArgs),
    /// Accounts and sub accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// License pools.
    #[command(subcommand)]
    Licenses(LicensesCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// The mail outbox (invitations and notices; in development this is how you read them).
    #[command(subcommand)]
    Mail(MailCmd),
    /// Pending invitations.
    #[command(subcommand)]
    Invitations(InvitationsCmd),
    /// Attribute mapping rules.
    #[command(subcommand)]
    Mapping(MappingCmd),
    /// Phone sites, numbers and the bulk phone CSV.
    #[command(subcommand)]
    Phone(PhoneCmd),
    /// Account settings (phone, licensing model).
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// SAML single sign-on configuration.
    #[command(subcommand)]
    Sso(SsoCmd),
    /// Partner relationships (delegated administration).
    #[command(subcommand)]
    Relationship(RelationshipCmd),
    /// Delegates of a partner relationship.
    #[command(subcommand)]
    Delegate(DelegateCmd),
    /// Group sync: reconcile, status, held removals.
    #[command(subcommand)]
    Sync(SyncCmd),
    /// Reports across a master account's tree (licenses, active users, phone).
    #[command(subcommand)]
    Report(ReportCmd),
    /// Retention: purge the audit log, sent mail, applied events, ended relationships and
    /// expired credentials older than their periods.
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Sign a SAML response with the TEST-ONLY keys in idp-fixtures/ (to try SSO locally
    /// with curl; those keys are public, never trust them in production).
    TestIdp(test_idp::TestIdpArgs),
}

pub(crate) fn open(url: &str, migrate: bool) -> AppResult<Db> {
    let db = Db::open(url, &DbOptions { pool_size: 4, migrate, ..DbOptions::default() })?;
    if migrate {
        let stored = db.read_blocking(|c| {
            crate::store::platform::get(c, crate::store::platform::PUBLIC_URL).map_err(AppError::from)
        })?;
        if let Some(url) = stored {
            let _ = STORED_PUBLIC_URL.set(url);
        }
    }
    Ok(db)
}

/// The public URL `serve` last ran under, read from the database by [`open`].
static STORED_PUBLIC_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The public URL CLI output and mails link to: `PROVISOR_PUBLIC_URL` when set, else the one
/// the server last started with (stored in the database by `serve`), else the default bind
/// address.
pub(crate) fn public_url() -> String {
    std::env::var("PROVISOR_PUBLIC_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .or_else(|| STORED_PUBLIC_URL.get().cloned())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into())
}

/// `--x` → Some(true), `--no-x` → Some(false), neither → None (keep).
pub(crate) fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

pub(crate) fn cli_env(clock: &dyn Clock) -> Env {
    Env::standalone(clock.now_naive(), public_url())
}

pub(crate) fn product(s: &str) -> AppResult<Product> {
    s.parse().map_err(|e: crate::domain::catalog::UnknownName| AppError::bad_request("invalid_product", e.to_string()))
}

/// Ends the process with `code` once stdout and stderr are flushed, without running the C
/// library's exit handlers. Every verb has finished its work by then (writes are committed
/// before a verb returns), but connection-pool threads may still be opening PostgreSQL
/// connections in the background; `exit()` would run OpenSSL's cleanup under them and
/// crash the process after it printed its answer.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    // These verbs choose their own exit codes (see `data`).
    match &cli.command {
        Command::MigrateData(args) => return data::migrate_data(args),
        Command::Backup(args) => return data::backup(&cli.database_url, args),
        Command::Restore(args) => return data::restore(&cli.database_url, args),
        _ => {}
    }
    match run(cli) {
        Ok(Some(v)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            // An import that stopped part-way printed its report (what was applied) and
            // fails, so scripts notice; its `stopped` member says where and why.
            if let Some(stopped) = v.get("stopped") {
                eprintln!(
                    "error: {}",
                    stopped["message"].as_str().unwrap_or("the import stopped before the end of the file")
                );
                return 3;
            }
            0
        }
        Ok(None) => 0,
        Err(e) => {
            eprintln!("error: {} ({})", e.public_message(), e.code());
            if let AppError::Internal(d) | AppError::Unavailable(d) = &e {
                eprintln!("detail: {d}");
            }
            1
        }
    }
}

fn run(cli: Cli) -> AppResult<Option<serde_json::Value>> {
    let url = cli.database_url.as_str();
    match cli.command {
        Command::Serve(args) => serve::serve(url, args).map(|_| None),
        Command::Migrate => {
            let url = crate::store::DbUrl::parse(url)?;
            let mut conn = url.connect()?;
            let applied = crate::store::pool::run_migrations(&mut conn)?;
            Ok(Some(json!({ "migrated": true, "applied": applied, "database": url.display() })))
        }
        Command::Account(cmd) => account::run(url, cmd),
        Command::Settings(cmd) => account::run_settings(url, cmd),
        Command::Licenses(cmd) => licenses::run(url, cmd),
        Command::Token(cmd) => token::run(url, cmd),
        Command::Users(cmd) => users::run(url, cmd),
        Command::Invitations(cmd) => users::run_invitations(url, cmd),
        Command::Mail(cmd) => users::run_mail(url, cmd),
        Command::Mapping(cmd) => mapping::run(url, cmd),
        Command::Phone(cmd) => phone::run(url, cmd),
        Command::Sso(cmd) => sso::run(url, cmd),
        Command::Relationship(cmd) => delegation::run_relationship(url, cmd),
        Command::Delegate(cmd) => delegation::run_delegate(url, cmd),
        Command::Sync(cmd) => delegation::run_sync(url, cmd),
        Command::Report(cmd) => report::run_report(url, cmd),
        Command::Retention(cmd) => retention::run(url, cmd),
        Command::TestIdp(args) => test_idp::run(&args),
        Command::MigrateData(_) | Command::Backup(_) | Command::Restore(_) => Ok(None),
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(total_bytes: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total_bytes), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A progress bar counting `what` on stderr, hidden when stderr is not a terminal.
pub fn count_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {what} (eta {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

/// Counts bytes read into a progress bar (streamed imports show progress without
/// knowing the row count in advance).
pub struct ProgressReader<R> {
    pub inner: R,
    pub bar: indicatif::ProgressBar,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
