//! `provisor relationship …` and `provisor delegate …`: partner relationships and their
//! delegates for the operator and scripts (the CLI has the database, so it acts as the
//! system: every grant rule passes, every change is audited on both sides).

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use crate::domain::accounts::normalize_email;
use crate::domain::delegation::Side;
use crate::error::{AppError, AppResult};
use crate::provisioning::Actor;
use crate::service::delegation::{self, RequestInput};
use crate::store;

#[derive(Debug, Subcommand)]
pub enum RelationshipCmd {
    /// A partner account requests access to a customer account (pending until approved).
    Request {
        /// The partner account's id.
        #[arg(long)]
        partner: String,
        /// The customer account, by id or vanity name.
        #[arg(long)]
        customer: String,
        #[arg(long)]
        name: String,
        /// Comma-separated catalogue permissions (`users:view,phone_users:edit`).
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        /// RFC 3339 instant, at most 2 years ahead (default: no end).
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        auto_extend: bool,
        #[arg(long)]
        allow_delegates: bool,
        #[arg(long)]
        undisclosed: bool,
        /// The partner's point of contact, by e-mail (default: the partner's owner).
        #[arg(long)]
        contact: Option<String>,
    },
    /// The customer approves a request or a pending wider permission set.
    Approve {
        /// The customer account's id.
        #[arg(long)]
        account: String,
        #[arg(long)]
        id: String,
    },
    /// The customer declines a request or a pending wider permission set.
    Decline {
        #[arg(long)]
        account: String,
        #[arg(long)]
        id: String,
    },
    /// Either side ends a relationship (its delegated sessions end with it).
    Terminate {
        /// The partner's or the customer's account id.
        #[arg(long)]
        account: String,
        #[arg(long)]
        id: String,
    },
    /// The account's relationships.
    List {
        #[arg(long)]
        account: String,
        /// partner or customer (default: both).
        #[arg(long)]
        side: Option<String>,
    },
    /// Write down expiries, automatic extensions and expiry warnings now due (`serve` does
    /// this every minute; access is refused at the instant either way).
    Sweep,
}

#[derive(Debug, Subcommand)]
pub enum DelegateCmd {
    /// Add a partner user as a delegate of a relationship (they get an invitation).
    Add {
        /// The partner account's id.
        #[arg(long)]
        account: String,
        #[arg(long)]
        relationship: String,
        #[arg(long)]
        email: String,
    },
    /// A relationship's delegates (as the given side sees them).
    List {
        #[arg(long)]
        account: String,
        #[arg(long)]
        relationship: String,
    },
    /// Remove a delegate (by user id; the customer may give the pseudonym).
    Remove {
        #[arg(long)]
        account: String,
        #[arg(long)]
        relationship: String,
        #[arg(long)]
        user: String,
    },
}

fn instant(s: Option<&str>) -> AppResult<Option<chrono::NaiveDateTime>> {
    s.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.naive_utc())
            .map_err(|_| AppError::bad_request("invalid_expiry", format!("{s:?} is not an RFC 3339 instant")))
    })
    .transpose()
}

pub(super) fn run_relationship(database_url: &str, cmd: RelationshipCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let mut actor = Actor::cli();
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let out = match cmd {
        RelationshipCmd::Request {
            partner,
            customer,
            name,
            permissions,
            expires_at,
            auto_extend,
            allow_delegates,
            undisclosed,
            contact,
        } => {
            let expires_at = instant(expires_at.as_deref())?;
            let v = db.write_blocking(|c| {
                if let Some(e) = &contact {
                    let e = normalize_email(e)?;
                    let u = store::users::find_by_email(c, &e)?
                        .filter(|u| u.account_id == partner)
                        .ok_or(AppError::not_found("contact user"))?;
                    actor.user_id = Some(u.id);
                }
                let input = RequestInput {
                    customer: customer.clone(),
                    name: name.clone(),
                    expires_at,
                    auto_extend,
                    allow_delegates,
                    undisclosed,
                    permissions: permissions.clone(),
                };
                delegation::request(c, &env, &actor, &partner, input)
            })?;
            serde_json::to_value(v)?
        }
        RelationshipCmd::Approve { account, id } => {
            serde_json::to_value(db.write_blocking(|c| delegation::approve(c, &env, &actor, &account, &id))?)?
        }
        RelationshipCmd::Decline { account, id } => {
            serde_json::to_value(db.write_blocking(|c| delegation::decline(c, &env, &actor, &account, &id))?)?
        }
        RelationshipCmd::Terminate { account, id } => {
            let (v, _) = db.write_blocking(|c| delegation::terminate(c, &env, &actor, &account, &id))?;
            serde_json::to_value(v)?
        }
        RelationshipCmd::List { account, side } => {
            let side = match side.as_deref() {
                None => None,
                Some(s) => Some(
                    Side::parse(s)
                        .ok_or_else(|| AppError::bad_request("invalid_side", "side is partner or customer"))?,
                ),
            };
            let v = db.read_blocking(|c| delegation::list(c, &env, &account, side))?;
            json!({ "relationships": v })
        }
        RelationshipCmd::Sweep => {
            let (report, _) = db.write_blocking(|c| delegation::sweep(c, &env))?;
            serde_json::to_value(report)?
        }
    };
    Ok(Some(out))
}

pub(super) fn run_delegate(database_url: &str, cmd: DelegateCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let out = match cmd {
        DelegateCmd::Add { account, relationship, email } => {
            let (v, created) =
                db.write_blocking(|c| delegation::add_delegate(c, &env, &actor, &account, &relationship, &email))?;
            json!({ "delegate": v, "created": created })
        }
        DelegateCmd::List { account, relationship } => {
            let v = db.read_blocking(|c| delegation::list_delegates(c, &env, &account, &relationship))?;
            json!({ "delegates": v })
        }
        DelegateCmd::Remove { account, relationship, user } => {
            let ended =
                db.write_blocking(|c| delegation::remove_delegate(c, &env, &actor, &account, &relationship, &user))?;
            json!({ "removed": user, "sessions_ended": ended.len() })
        }
    };
    Ok(Some(out))
}
