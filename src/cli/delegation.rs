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
use crate::service::sync;
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
    /// Bind a partner group to a relationship: its members become delegates and stay in
    /// step with its membership (current members are imported now).
    BindGroup {
        #[arg(long)]
        relationship: String,
        /// The group's id (a group of the partner account).
        #[arg(long)]
        group: String,
        /// Comma-separated permissions within the relationship's (default: all of them).
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// Members become active delegates at once instead of being invited.
        #[arg(long)]
        auto_accept: bool,
    },
    /// Unbind a group: its source goes from every delegate of the relationship.
    UnbindGroup {
        #[arg(long)]
        relationship: String,
        #[arg(long)]
        group: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Recompute every group binding from the current memberships, report the drift and
    /// repair it (one transaction per relationship; a progress bar on a terminal).
    Reconcile {
        /// Only relationships this account stands in (default: all).
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Events waiting in the outbox, the oldest one's age, held removals.
    Status {
        #[arg(long)]
        account: Option<String>,
    },
    /// Removals held for confirmation.
    #[command(subcommand)]
    Held(HeldCmd),
}

#[derive(Debug, Subcommand)]
pub enum HeldCmd {
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Apply a held removal.
    Confirm {
        #[arg(long)]
        id: String,
    },
    /// Drop a held removal (the delegates keep their access).
    Discard {
        #[arg(long)]
        id: String,
    },
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
        RelationshipCmd::BindGroup { relationship, group, permissions, auto_accept } => {
            let v = db.write_blocking(|c| {
                let r = store::delegation::find(c, &relationship)?.ok_or(AppError::not_found("relationship"))?;
                sync::bind(c, &env, &actor, &r.partner_account_id, &r.id, &group, permissions.clone(), auto_accept)
            })?;
            serde_json::to_value(v)?
        }
        RelationshipCmd::UnbindGroup { relationship, group } => {
            let ended = db.write_blocking(|c| {
                let r = store::delegation::find(c, &relationship)?.ok_or(AppError::not_found("relationship"))?;
                let b = store::sync::bindings_of(c, &r.id)?
                    .into_iter()
                    .find(|b| b.group_id == group)
                    .ok_or(AppError::not_found("binding"))?;
                sync::unbind(c, &env, &actor, &r.partner_account_id, &r.id, &b.id)
            })?;
            json!({ "unbound": group, "sessions_ended": ended.len() })
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

pub(super) fn run_sync(database_url: &str, cmd: SyncCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor { via: crate::provisioning::Source::Cli, ..Actor::system("cli") };
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let threshold = crate::domain::sync::Threshold::default();
    let out = match cmd {
        SyncCmd::Reconcile { account, dry_run } => {
            let relationships = db.read_blocking(|c| sync::relationships_to_reconcile(c, account.as_deref()))?;
            let bar = super::count_bar(relationships.len() as u64, "relationships");
            let mut report = sync::ReconcileReport { dry_run, ..Default::default() };
            for r in &relationships {
                let part = db.write_blocking(|c| sync::reconcile_relationship(c, &env, threshold, r, dry_run))?;
                report.bindings += part.bindings;
                report.missing += part.missing;
                report.extra += part.extra;
                report.dangling_sources += part.dangling_sources;
                report.repaired += part.repaired;
                report.held += part.held;
                report.drift.extend(part.drift);
                bar.inc(1);
            }
            bar.finish_and_clear();
            serde_json::to_value(report)?
        }
        SyncCmd::Status { account } => {
            serde_json::to_value(db.read_blocking(|c| sync::status(c, &env, account.as_deref()))?)?
        }
        SyncCmd::Held(HeldCmd::List { account }) => {
            json!({ "held": db.read_blocking(|c| sync::holds(c, account.as_deref()))? })
        }
        SyncCmd::Held(HeldCmd::Confirm { id }) => {
            serde_json::to_value(db.write_blocking(|c| sync::decide(c, &env, &actor, None, &id, true))?.0)?
        }
        SyncCmd::Held(HeldCmd::Discard { id }) => {
            serde_json::to_value(db.write_blocking(|c| sync::decide(c, &env, &actor, None, &id, false))?.0)?
        }
    };
    Ok(Some(out))
}
