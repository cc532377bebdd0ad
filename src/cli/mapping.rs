//! `provisor mapping …`: the attribute mapping rules.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use crate::error::{AppError, AppResult};
use crate::provisioning::{Actor, Source};
use crate::service;

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

/// Runs one `provisor mapping` verb.
pub(super) fn run(database_url: &str, cmd: MappingCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
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
