//! The `provisor` command line. Each verb prints one JSON object on stdout; on error it
//! prints a message on stderr and exits non-zero. Operators' scripts depend on the verbs
//! and flags below: add to them, never rename.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::config::ServerConfig;
use crate::domain::accounts::Billing;
use crate::domain::catalog::Product;
use crate::error::{AppError, AppResult};
use crate::http::telemetry::{init_logging, LogFormat};
use crate::provisioning::{Actor, Env, Source};
use crate::service;
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
    /// Sign a SAML response with the TEST-ONLY keys in idp-fixtures/ (to try SSO locally
    /// with curl; those keys are public, never trust them in production).
    TestIdp(crate::saml::test_idp::TestIdpArgs),
}

#[derive(Debug, Subcommand)]
pub enum SsoCmd {
    /// Create or change the account's SAML configuration. The IdP comes from its metadata
    /// (`--idp-metadata`) or from `--idp-entity-id` + `--idp-certificate`; options not
    /// given keep their current value.
    Set {
        #[arg(long)]
        account: String,
        /// IdP metadata XML (entity ID, SSO URL and signing certificates are read from it).
        #[arg(long)]
        idp_metadata: Option<std::path::PathBuf>,
        #[arg(long)]
        idp_entity_id: Option<String>,
        /// IdP SSO URL (HTTP-Redirect binding) for SP-initiated login.
        #[arg(long)]
        sso_url: Option<String>,
        /// PEM signing certificate; repeat for rollover. Replaces the trusted set.
        #[arg(long)]
        idp_certificate: Vec<std::path::PathBuf>,
        /// Our entity ID (default: the public URL + /saml/ACCOUNT_ID/metadata).
        #[arg(long)]
        sp_entity_id: Option<String>,
        /// Accept unsolicited (IdP-initiated) responses.
        #[arg(long, conflicts_with = "no_idp_initiated")]
        allow_idp_initiated: bool,
        #[arg(long)]
        no_idp_initiated: bool,
        /// Tolerated clock difference, 0–600 (default 180).
        #[arg(long)]
        clock_skew_seconds: Option<i32>,
        /// Turn just-in-time provisioning off (only existing users may sign in).
        #[arg(long, conflicts_with = "jit")]
        no_jit: bool,
        #[arg(long)]
        jit: bool,
        /// Accept RSA-SHA1 signatures and SHA-1 digests (legacy IdPs only).
        #[arg(long)]
        allow_sha1: bool,
        /// An absolute URL prefix a login may redirect to (repeatable; replaces the list).
        #[arg(long)]
        allowed_redirect: Vec<String>,
    },
    /// Print the configuration, with the SP entity ID, ACS URL and metadata URL.
    Show {
        #[arg(long)]
        account: String,
    },
    /// Remove the configuration.
    Delete {
        #[arg(long)]
        account: String,
    },
    /// Trust one more signing certificate (rollover).
    AddCertificate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Stop trusting a certificate (by id or SHA-256 fingerprint).
    RemoveCertificate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        certificate: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingCmd {
    /// Replace the account's rules with the JSON document in FILE (format: README).
    Set {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Print the account's rules.
    Show {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PhoneCmd {
    /// Phone sites.
    #[command(subcommand)]
    Site(SiteCmd),
    /// The direct-number pool.
    #[command(subcommand)]
    Numbers(NumbersCmd),
    /// Bulk phone CSV (Zoom's columns). Bad rows are reported, good rows apply.
    Import {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// merge: absent columns keep their value; replace: a row is the whole profile.
        #[arg(long, default_value = "merge")]
        mode: String,
        /// Print every change (removals first) and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    Create {
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
        /// 1 to 3 digits.
        #[arg(long)]
        code: String,
        /// Digits of a short extension (2–6, default 4).
        #[arg(long)]
        extension_length: Option<i32>,
    },
    List {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumbersCmd {
    /// Add numbers (any common notation; stored E.164).
    Add {
        #[arg(long)]
        account: String,
        #[arg(required = true)]
        numbers: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCmd {
    /// Change phone and licensing settings of an account.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long)]
        phone_enabled: Option<bool>,
        #[arg(long)]
        bundled_licensing: Option<bool>,
        #[arg(long)]
        auto_phone_provisioning: Option<bool>,
    },
}

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
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Create an account; with --parent, a sub account of that master.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        /// standard or master.
        #[arg(long, default_value = "standard")]
        kind: String,
        /// The master delegates licenses to its sub accounts.
        #[arg(long)]
        bulk_licensing: bool,
        /// Create a sub account of this master account.
        #[arg(long)]
        parent: Option<String>,
        /// pay_by_master (default for subs) or separate.
        #[arg(long)]
        billing: Option<String>,
        #[arg(long)]
        vanity_name: Option<String>,
    },
    /// Show one account.
    Show {
        #[arg(long)]
        id: String,
    },
    /// List top-level accounts, or the sub accounts of --parent.
    List {
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicensesCmd {
    /// Set the purchased count of a product.
    Set {
        #[arg(long)]
        account: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        quantity: i64,
    },
    /// Set how many licenses a master delegates to one of its sub accounts.
    Delegate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        sub: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        quantity: i64,
    },
    /// The license summary of an account.
    Summary {
        #[arg(long)]
        account: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token for an account (printed once).
    Create {
        #[arg(long)]
        account: String,
        /// admin or scim.
        #[arg(long)]
        scope: String,
        /// Admin tokens act as this user (default: the owner).
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        label: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// List the users of an account.
    List {
        #[arg(long)]
        account: String,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// Import users from CSV (email,first name,last name,department,user group).
    Import {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Export users as CSV to --file (or stdout's JSON as {"csv": …} when omitted).
    Export {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailCmd {
    /// Newest mails first.
    List {
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum InvitationsCmd {
    /// Remove pending users whose invitation expired (the server does this hourly).
    Purge,
}

fn open(url: &str, migrate: bool) -> AppResult<Db> {
    Ok(Db::open(url, &DbOptions { pool_size: 4, migrate })?)
}

/// `--x` → Some(true), `--no-x` → Some(false), neither → None (keep).
fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn cli_env(clock: &dyn Clock) -> Env {
    Env::standalone(
        clock.now_naive(),
        std::env::var("PROVISOR_PUBLIC_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
    )
}

fn product(s: &str) -> AppResult<Product> {
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
    match run(cli) {
        Ok(Some(v)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
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
    let clock = SystemClock;
    let actor = Actor::system("cli");
    match cli.command {
        Command::Serve(args) => serve(&cli.database_url, args).map(|_| None),
        Command::Migrate => {
            let url = crate::store::DbUrl::parse(&cli.database_url)?;
            let mut conn = url.connect()?;
            let applied = crate::store::pool::run_migrations(&mut conn)?;
            Ok(Some(json!({ "migrated": true, "applied": applied, "database": url.display() })))
        }
        Command::Account(cmd) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            match cmd {
                AccountCmd::Create { name, owner_email, kind, bulk_licensing, parent, billing, vanity_name } => {
                    let is_master = crate::http::routes::platform::parse_kind(Some(&kind))?;
                    let billing = match billing.as_deref() {
                        None => None,
                        Some(b) => Some(Billing::parse(b).ok_or_else(|| {
                            AppError::bad_request(
                                "invalid_billing",
                                format!("unknown billing {b:?}: use pay_by_master or separate"),
                            )
                        })?),
                    };
                    let new = service::accounts::NewAccount {
                        name,
                        owner_email,
                        owner_first_name: None,
                        owner_last_name: None,
                        is_master,
                        bulk_licensing,
                        parent_id: parent,
                        billing,
                        vanity_name,
                    };
                    let (row, owner) =
                        db.write_blocking(|c| service::accounts::create(c, &env, &actor, Source::Cli, new))?;
                    Ok(Some(
                        json!({ "id": row.id, "owner_id": owner.id, "parent_id": row.parent_id, "is_master": row.is_master }),
                    ))
                }
                AccountCmd::Show { id } => {
                    let v = db.read_blocking(|c| {
                        let row = crate::store::accounts::find(c, &id)?.ok_or(AppError::not_found("account"))?;
                        service::accounts::view(c, &row)
                    })?;
                    Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                AccountCmd::List { parent } => {
                    let v = db.read_blocking(|c| {
                        let rows = match &parent {
                            Some(p) => crate::store::accounts::list_subs(c, p)?,
                            None => crate::store::accounts::list_top_level(c, 10_000, 0)?,
                        };
                        rows.iter().map(|r| service::accounts::view(c, r)).collect::<AppResult<Vec<_>>>()
                    })?;
                    Ok(Some(json!({ "accounts": v })))
                }
            }
        }
        Command::Licenses(cmd) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            let (account, summary) = match cmd {
                LicensesCmd::Set { account, product: p, quantity } => {
                    let p = product(&p)?;
                    let s = db.write_blocking(|c| {
                        service::licenses::purchase(c, &env, &actor, Source::Cli, &account, p, quantity)?;
                        service::licenses::summary(c, &account)
                    })?;
                    (account, s)
                }
                LicensesCmd::Delegate { account, sub, product: p, quantity } => {
                    let p = product(&p)?;
                    let s = db.write_blocking(|c| {
                        service::licenses::delegate(c, &env, &actor, &account, &sub, p, quantity)?;
                        service::licenses::summary(c, &account)
                    })?;
                    (account, s)
                }
                LicensesCmd::Summary { account } => {
                    let s = db.read_blocking(|c| service::licenses::summary(c, &account))?;
                    (account, s)
                }
            };
            let _ = account;
            Ok(Some(serde_json::to_value(summary).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        Command::Token(TokenCmd::Create { account, scope, user, label }) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            let t = db.write_blocking(|c| {
                service::tokens::create(c, &env, &actor, Source::Cli, &account, &scope, user.as_deref(), label.clone())
            })?;
            Ok(Some(
                json!({ "token": t.token, "id": t.id, "scope": t.scope, "account_id": t.account_id, "user_id": t.user_id }),
            ))
        }
        Command::Users(cmd) => {
            let db = open(&cli.database_url, true)?;
            match cmd {
                UsersCmd::List { account, limit, offset } => {
                    let (users, total) = db.read_blocking(|c| {
                        crate::store::accounts::find(c, &account)?.ok_or(AppError::not_found("account"))?;
                        service::users::list(c, &account, &Default::default(), limit.clamp(1, 100_000), offset.max(0))
                    })?;
                    Ok(Some(json!({ "users": users, "total": total })))
                }
                UsersCmd::Import { account, file } => {
                    db.read_blocking(|c| {
                        crate::store::accounts::find(c, &account)?.ok_or(AppError::not_found("account"))
                    })?;
                    let f = std::fs::File::open(&file).map_err(|e| {
                        AppError::bad_request("cannot_read_file", format!("cannot open {}: {e}", file.display()))
                    })?;
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = progress_bar(size);
                    let reader =
                        ProgressReader { inner: std::io::BufReader::with_capacity(1 << 16, f), bar: bar.clone() };
                    let report = service::users::import_csv(&db, || cli_env(&clock), &actor, &account, reader, |_| {})?;
                    bar.finish_and_clear();
                    Ok(Some(serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                UsersCmd::Export { account, file } => {
                    let bytes = db.read_blocking(|c| service::users::export_csv(c, &account))?;
                    match file {
                        Some(path) => {
                            std::fs::write(&path, &bytes).map_err(|e| {
                                AppError::bad_request(
                                    "cannot_write_file",
                                    format!("cannot write {}: {e}", path.display()),
                                )
                            })?;
                            Ok(Some(json!({ "file": path.display().to_string(), "bytes": bytes.len() })))
                        }
                        None => Ok(Some(json!({ "csv": String::from_utf8_lossy(&bytes) }))),
                    }
                }
            }
        }
        Command::Mail(MailCmd::List { to, limit }) => {
            let db = open(&cli.database_url, true)?;
            let mails = db.read_blocking(|c| {
                crate::store::audit::list_mail(c, to.as_deref(), limit.clamp(1, 1000)).map_err(AppError::from)
            })?;
            let list: Vec<_> = mails
                .into_iter()
                .map(|m| json!({ "id": m.id, "to": m.recipient, "subject": m.subject, "body": m.body, "created_at": m.created_at, "sent_at": m.sent_at }))
                .collect();
            Ok(Some(json!({ "mails": list })))
        }
        Command::TestIdp(args) => {
            let out = crate::saml::test_idp::run_cli(&args)
                .map_err(|e| AppError::bad_request("test_idp_failed", e.to_string()))?;
            let key = if args.xml { "xml" } else { "saml_response" };
            Ok(Some(json!({ key: out })))
        }
        Command::Sso(cmd) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path).map_err(|e| {
                    AppError::bad_request("cannot_read_file", format!("cannot read {}: {e}", path.display()))
                })
            };
            match cmd {
                SsoCmd::Set {
                    account,
                    idp_metadata,
                    idp_entity_id,
                    sso_url,
                    idp_certificate,
                    sp_entity_id,
                    allow_idp_initiated,
                    no_idp_initiated,
                    clock_skew_seconds,
                    no_jit,
                    jit,
                    allow_sha1,
                    allowed_redirect,
                } => {
                    let certificates = if idp_certificate.is_empty() {
                        None
                    } else {
                        Some(idp_certificate.iter().map(|p| read(p)).collect::<AppResult<Vec<_>>>()?)
                    };
                    let input = service::sso::SsoInput {
                        idp_metadata: idp_metadata.as_deref().map(read).transpose()?,
                        idp_entity_id,
                        sso_url,
                        idp_certificates: certificates,
                        sp_entity_id,
                        clock_skew_seconds,
                        allow_idp_initiated: flag(allow_idp_initiated, no_idp_initiated),
                        jit_enabled: flag(jit, no_jit),
                        allow_sha1: allow_sha1.then_some(true),
                        allowed_redirects: (!allowed_redirect.is_empty()).then_some(allowed_redirect),
                    };
                    let v = db.write_blocking(|c| service::sso::set(c, &env, &actor, Source::Cli, &account, &input))?;
                    Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                SsoCmd::Show { account } => {
                    let v = db.read_blocking(|c| service::sso::get(c, &env.public_url, &account))?;
                    Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                SsoCmd::Delete { account } => {
                    db.write_blocking(|c| service::sso::delete(c, &env, &actor, Source::Cli, &account))?;
                    Ok(Some(json!({ "account_id": account, "deleted": true })))
                }
                SsoCmd::AddCertificate { account, file } => {
                    let pem = read(&file)?;
                    let v = db.write_blocking(|c| {
                        service::sso::add_certificate(c, &env, &actor, Source::Cli, &account, &pem)
                    })?;
                    Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                SsoCmd::RemoveCertificate { account, certificate } => {
                    db.write_blocking(|c| {
                        service::sso::remove_certificate(c, &env, &actor, Source::Cli, &account, &certificate)
                    })?;
                    Ok(Some(json!({ "account_id": account, "removed": certificate })))
                }
            }
        }
        Command::Mapping(cmd) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            match cmd {
                MappingCmd::Set { account, file } => {
                    let text = std::fs::read_to_string(&file).map_err(|e| {
                        AppError::bad_request("cannot_read_file", format!("cannot read {}: {e}", file.display()))
                    })?;
                    let version = db.write_blocking(|c| {
                        crate::store::accounts::find(c, &account)?.ok_or(AppError::not_found("account"))?;
                        service::mapping::set(c, &env, &actor, Source::Cli, &account, &text)
                    })?;
                    Ok(Some(json!({ "account_id": account, "version": version })))
                }
                MappingCmd::Show { account } => {
                    let (rules, version) = db.read_blocking(|c| service::mapping::get(c, &account))?;
                    Ok(Some(json!({ "account_id": account, "version": version, "rules": rules })))
                }
            }
        }
        Command::Phone(cmd) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            match cmd {
                PhoneCmd::Site(SiteCmd::Create { account, name, code, extension_length }) => {
                    let new = service::phone::NewSite { name, code, extension_length };
                    let v = db.write_blocking(|c| service::phone::create_site(c, &env, &actor, &account, &new))?;
                    Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                PhoneCmd::Site(SiteCmd::List { account }) => {
                    let v = db.read_blocking(|c| {
                        let rows = crate::store::phone::sites(c, &account)?;
                        rows.into_iter().map(|r| service::phone::site_view(c, r)).collect::<AppResult<Vec<_>>>()
                    })?;
                    Ok(Some(json!({ "sites": v })))
                }
                PhoneCmd::Numbers(NumbersCmd::Add { account, numbers }) => {
                    let r = db.write_blocking(|c| {
                        service::phone::add_numbers(c, &env, &actor, Source::Cli, &account, &numbers)
                    })?;
                    Ok(Some(serde_json::to_value(r).map_err(|e| AppError::Internal(e.to_string()))?))
                }
                PhoneCmd::Import { account, file, mode, dry_run } => {
                    let mode = crate::http::routes::phone::parse_mode(Some(&mode))?;
                    let f = std::fs::File::open(&file).map_err(|e| {
                        AppError::bad_request("cannot_read_file", format!("cannot open {}: {e}", file.display()))
                    })?;
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let bar = progress_bar(size);
                    let reader =
                        ProgressReader { inner: std::io::BufReader::with_capacity(1 << 16, f), bar: bar.clone() };
                    let report = service::phone::import_csv(
                        &db,
                        || cli_env(&clock),
                        &actor,
                        &account,
                        reader,
                        mode,
                        dry_run,
                        |_| {},
                    )?;
                    bar.finish_and_clear();
                    Ok(Some(serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?))
                }
            }
        }
        Command::Settings(SettingsCmd::Set { account, phone_enabled, bundled_licensing, auto_phone_provisioning }) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            let upd = service::accounts::AccountUpdate {
                phone_enabled,
                bundled_licensing,
                auto_phone_provisioning,
                ..Default::default()
            };
            let v = db.write_blocking(|c| {
                let row = service::accounts::update(c, &env, &actor, &account, upd)?;
                service::accounts::view(c, &row)
            })?;
            Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        Command::Invitations(InvitationsCmd::Purge) => {
            let db = open(&cli.database_url, true)?;
            let env = cli_env(&clock);
            let n = db.write_blocking(|c| service::users::purge_expired_invitations(c, &env))?;
            Ok(Some(json!({ "purged": n })))
        }
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

fn serve(database_url: &str, args: ServeArgs) -> AppResult<()> {
    let mut config = ServerConfig::new(args.bind, args.public_url, database_url.to_owned());
    config.pool_size = args.pool_size;
    if let Some(w) = args.workers {
        config.workers = w;
    }
    let db = Db::open(database_url, &DbOptions { pool_size: config.pool_size, migrate: true })?;
    let clock: SharedClock = Arc::new(SystemClock);
    let env = Env::standalone(clock.now_naive(), config.public_url.clone());
    let bootstrap = std::env::var("PROVISOR_BOOTSTRAP_TOKEN").ok().filter(|t| !t.is_empty());
    let created = db.write_blocking(|c| service::tokens::ensure_operator(c, &env, bootstrap.as_deref()))?;
    if let Some(token) = created {
        let shown = if bootstrap.is_some() { json!("(from PROVISOR_BOOTSTRAP_TOKEN)") } else { json!(token) };
        println!(
            "{}",
            json!({ "event": "operator_token_created", "operator_token": shown, "note": "shown once; keep it safe" })
        );
    }
    let listener = TcpListener::bind(config.bind)
        .map_err(|e| AppError::Unavailable(format!("cannot listen on {}: {e}", config.bind)))?;
    tracing::info!(bind = %config.bind, public_url = %config.public_url, database = %db.url.display(), "provisor listening");
    let state = Arc::new(crate::http::AppState::new(db, clock, config));
    actix_web::rt::System::new().block_on(async move {
        crate::http::spawn_maintenance(state.clone());
        let server = crate::http::server(state, listener).map_err(|e| AppError::Unavailable(e.to_string()))?;
        server.await.map_err(|e| AppError::Internal(e.to_string()))
    })
}
