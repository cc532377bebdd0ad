//! `provisor licenses …`: purchased counts, delegation, the summary.

use clap::Subcommand;
use serde_json::Value;

use super::product;
use super::{cli_env, open, SystemClock};
use crate::error::{AppError, AppResult};
use crate::provisioning::{Actor, Source};
use crate::service;

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

/// Runs one `provisor licenses` verb.
pub(super) fn run(database_url: &str, cmd: LicensesCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
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
