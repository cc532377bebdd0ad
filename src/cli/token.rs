//! `provisor token create`.

use clap::Subcommand;
use serde_json::{json, Value};

use super::{cli_env, open, SystemClock};
use crate::error::AppResult;
use crate::provisioning::{Actor, Source};
use crate::service;

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token for an account (printed once), or with `--operator` a new platform
    /// operator token (recovery when the first is lost; audited).
    Create {
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        account: Option<String>,
        /// admin, scim or user (a member's personal token: only their own rights).
        #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
        scope: Option<String>,
        /// A platform operator token instead of an account's.
        #[arg(long)]
        operator: bool,
        /// Admin and user tokens act as this user, by e-mail (admin default: the owner).
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
    let TokenCmd::Create { account, scope, operator, user, label, expires_in_days } = cmd;
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    if operator {
        let (token, id) = db.write_blocking(|c| service::tokens::create_operator(c, &env, &actor, label.clone()))?;
        return Ok(Some(json!({ "token": token, "id": id, "scope": "operator" })));
    }
    let (account, scope) = (account.unwrap_or_default(), scope.unwrap_or_default());
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
