//! `provisor account …` and `provisor settings set`: accounts, sub accounts, settings.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use crate::error::{AppError, AppResult};
use crate::provisioning::{Actor, Source};
use crate::service;

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

/// Runs one `provisor account` verb.
pub(super) fn run(database_url: &str, cmd: AccountCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    match cmd {
        AccountCmd::Create { name, owner_email, kind, bulk_licensing, parent, billing, vanity_name } => {
            let is_master = service::accounts::parse_kind(Some(&kind))?;
            let billing = service::accounts::parse_billing(billing.as_deref())?;
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
            let (row, owner) = db.write_blocking(|c| service::accounts::create(c, &env, &actor, Source::Cli, new))?;
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

/// Runs `provisor settings set`.
pub(super) fn run_settings(database_url: &str, cmd: SettingsCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let SettingsCmd::Set { account, phone_enabled, bundled_licensing, auto_phone_provisioning } = cmd;
    let db = open(database_url, true)?;
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
