//! `provisor users …`, `provisor invitations purge` and `provisor mail list`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use super::{progress_bar, ProgressReader};
use crate::error::{AppError, AppResult};
use crate::provisioning::Actor;
use crate::service;

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
    /// Move users (a CSV of e-mails: the first column, header optional) from wherever they
    /// are in the tree of --account into --to; each row one transaction (a dry run: all rows
    /// in one, rolled back).
    Move {
        /// The account whose tree the users and the target are in.
        #[arg(long)]
        account: String,
        /// The target account.
        #[arg(long)]
        to: String,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Erase a user's personal data on request: the user is removed (seats, phone and
    /// memberships released), mail to them deleted, and the audit log keeps only the
    /// pseudonym `erased:<user id>`. One transaction; the owner cannot be erased.
    Erase {
        #[arg(long)]
        account: String,
        /// The user's e-mail address or id.
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InvitationsCmd {
    /// Remove pending users whose invitation expired (the server does this hourly).
    Purge,
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

/// Runs one `provisor users` verb.
pub(super) fn run(database_url: &str, cmd: UsersCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
    match cmd {
        UsersCmd::List { account, limit, offset } => {
            let (users, total) = db.read_blocking(|c| {
                crate::store::accounts::find(c, &account)?.ok_or(AppError::not_found("account"))?;
                service::users::list(c, &account, &Default::default(), limit.clamp(1, 100_000), offset.max(0))
            })?;
            Ok(Some(json!({ "users": users, "total": total })))
        }
        UsersCmd::Import { account, file } => {
            db.read_blocking(|c| crate::store::accounts::find(c, &account)?.ok_or(AppError::not_found("account")))?;
            let f = std::fs::File::open(&file).map_err(|e| {
                AppError::bad_request("cannot_read_file", format!("cannot open {}: {e}", file.display()))
            })?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress_bar(size);
            let reader = ProgressReader { inner: std::io::BufReader::with_capacity(1 << 16, f), bar: bar.clone() };
            let report = service::users::import_csv(&db, || cli_env(&clock), &actor, &account, reader, |_| {})?;
            bar.finish_and_clear();
            Ok(Some(serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        UsersCmd::Move { account, to, file, dry_run } => {
            use crate::service::moves;
            let text = std::fs::read_to_string(&file).map_err(|e| {
                AppError::bad_request("cannot_read_file", format!("cannot read {}: {e}", file.display()))
            })?;
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
            let mut emails = Vec::new();
            for (i, row) in reader.records().enumerate() {
                let row = row.map_err(|e| AppError::bad_request("invalid_csv", format!("line {}: {e}", i + 1)))?;
                let first = row.get(0).unwrap_or_default().trim().to_owned();
                if first.is_empty() || (i == 0 && first.eq_ignore_ascii_case("email")) {
                    continue;
                }
                emails.push(first);
            }
            let tree = db.read_blocking(|c| moves::tree(c, &account))?;
            moves::check_target(&tree, &to)?;
            let env = cli_env(&clock);
            let results = if dry_run {
                db.write_blocking(|c| {
                    crate::store::in_rolled_back_savepoint(c, |c| {
                        moves::dry_run_all(c, &env, &actor, &tree, &to, &emails)
                    })
                })?
            } else {
                let bar = super::count_bar(emails.len() as u64, "users");
                let mut out = Vec::with_capacity(emails.len());
                for e in &emails {
                    let env = cli_env(&clock);
                    out.push(db.write_blocking(|c| moves::move_one(c, &env, &actor, &tree, &to, e, false))?.0);
                    bar.inc(1);
                }
                bar.finish_and_clear();
                out
            };
            Ok(Some(json!({ "results": results })))
        }
        UsersCmd::Erase { account, user } => {
            let env = cli_env(&clock);
            let report = db.write_blocking(|c| service::erasure::erase_user(c, &env, &actor, &account, &user))?;
            Ok(Some(serde_json::to_value(report).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        UsersCmd::Export { account, file } => {
            let bytes = db.read_blocking(|c| service::users::export_csv(c, &account))?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &bytes).map_err(|e| {
                        AppError::bad_request("cannot_write_file", format!("cannot write {}: {e}", path.display()))
                    })?;
                    Ok(Some(json!({ "file": path.display().to_string(), "bytes": bytes.len() })))
                }
                None => Ok(Some(json!({ "csv": String::from_utf8_lossy(&bytes) }))),
            }
        }
    }
}

/// Runs `provisor invitations …`.
pub(super) fn run_invitations(database_url: &str, cmd: InvitationsCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let InvitationsCmd::Purge = cmd;
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let n = db.write_blocking(|c| service::users::purge_expired_invitations(c, &env))?;
    Ok(Some(json!({ "purged": n })))
}

/// Runs `provisor mail …`.
pub(super) fn run_mail(database_url: &str, cmd: MailCmd) -> AppResult<Option<Value>> {
    let MailCmd::List { to, limit } = cmd;
    let db = open(database_url, true)?;
    let mails = db.read_blocking(|c| {
        crate::store::audit::list_mail(c, to.as_deref(), limit.clamp(1, 1000)).map_err(AppError::from)
    })?;
    let list: Vec<_> = mails
        .into_iter()
        .map(|m| {
            let status = if m.sent_at.is_some() {
                "sent"
            } else if m.failed_at.is_some() {
                "failed"
            } else {
                "pending"
            };
            json!({
                "id": m.id, "to": m.recipient, "subject": m.subject, "body": m.body,
                "created_at": m.created_at, "status": status, "sent_at": m.sent_at,
                "attempts": m.attempts, "last_error": m.last_error, "next_attempt_at": m.next_attempt_at,
                "failed_at": m.failed_at, "message_id": m.message_id,
            })
        })
        .collect();
    Ok(Some(json!({ "mails": list })))
}
