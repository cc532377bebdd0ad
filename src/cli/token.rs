//! `provisor token create`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use crate::error::AppResult;
use crate::provisioning::{Actor, Source};
use crate::service;

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
        /// The token is refused after this many days (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

/// Runs one `provisor token` verb.
pub(super) fn run(database_url: &str, cmd: TokenCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let TokenCmd::Create { account, scope, user, label, expires_in_days } = cmd;
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let t = db.write_blocking(|c| {
        let expires_at = expires_in_days.map(|d| env.now + chrono::Duration::days(i64::from(d)));
        service::tokens::create(
            c,
            &env,
            &actor,
            Source::Cli,
            &account,
            &scope,
            user.as_deref(),
            label.clone(),
            expires_at,
        )
    })?;
    Ok(Some(
        json!({ "token": t.token, "id": t.id, "scope": t.scope, "account_id": t.account_id, "user_id": t.user_id }),
    ))
}
