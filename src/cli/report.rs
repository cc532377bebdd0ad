//! `provisor report licenses|active-users|phone`: the master-account reports, JSON or CSV.

use clap::Subcommand;
use serde_json::Value;

use super::{cli_env, open, SystemClock};
use crate::error::{AppError, AppResult};

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Licenses per account and product, with totals.
    Licenses(ReportArgs),
    /// Users with an SSO login or a SCIM/API change in the period.
    ActiveUsers(ReportArgs),
    /// Phone numbers, users per site, calling plans.
    Phone(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The account (a master: its sub accounts are included, three tiers deep).
    #[arg(long)]
    account: String,
    /// Only these accounts of the tree (repeatable; default: all).
    #[arg(long = "sub")]
    subs: Vec<String>,
    /// RFC 3339 date or instant (default: 30 days before --to).
    #[arg(long)]
    from: Option<String>,
    /// RFC 3339 date or instant, exclusive (default: now).
    #[arg(long)]
    to: Option<String>,
    /// json (default) or csv.
    #[arg(long, default_value = "json")]
    format: String,
    /// Active users: list them per account.
    #[arg(long)]
    list: bool,
}

/// Runs `provisor report …`; CSV goes to stdout as is (`None` tells the caller it printed).
pub(super) fn run_report(database_url: &str, cmd: ReportCmd) -> AppResult<Option<Value>> {
    use crate::service::reports::{self, Kind};
    let (kind, a) = match cmd {
        ReportCmd::Licenses(a) => (Kind::Licenses, a),
        ReportCmd::ActiveUsers(a) => (Kind::ActiveUsers, a),
        ReportCmd::Phone(a) => (Kind::Phone, a),
    };
    let clock = SystemClock;
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let period = reports::period(a.from.as_deref(), a.to.as_deref(), env.now)?;
    let selected = if a.subs.is_empty() {
        None
    } else {
        let mut ids = vec![a.account.clone()];
        ids.extend(a.subs.iter().cloned());
        Some(ids)
    };
    let report = db.read_blocking(|c| reports::run(c, kind, &a.account, selected.as_deref(), period, a.list))?;
    match a.format.as_str() {
        "csv" => {
            print!("{}", reports::to_csv(&report)?);
            Ok(None)
        }
        "json" => Ok(Some(serde_json::to_value(report)?)),
        other => Err(AppError::bad_request("invalid_format", format!("format {other:?}: use json or csv"))),
    }
}
