//! `provisor retention purge [--dry-run]`, and the retention periods `serve` shares.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::error::AppResult;
use crate::service::retention::{self, Policy};

/// Retention periods in days (0 keeps that kind forever); `serve` purges hourly.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Days audit log entries are kept.
    #[arg(long, env = "PROVISOR_RETAIN_AUDIT_DAYS", default_value_t = 365)]
    pub retain_audit_days: u32,
    /// Days sent (or permanently failed) outbox mail is kept.
    #[arg(long, env = "PROVISOR_RETAIN_MAIL_DAYS", default_value_t = 30)]
    pub retain_mail_days: u32,
    /// Days applied group-sync membership events are kept.
    #[arg(long, env = "PROVISOR_RETAIN_EVENTS_DAYS", default_value_t = 7)]
    pub retain_events_days: u32,
    /// Days ended relationships (terminated, declined, expired) are kept, with their
    /// delegates, codes and delegated tokens.
    #[arg(long, env = "PROVISOR_RETAIN_RELATIONSHIPS_DAYS", default_value_t = 90)]
    pub retain_relationships_days: u32,
    /// Days expired or revoked tokens, sessions, delegate codes and SAML replay entries are
    /// kept after they ended.
    #[arg(long, env = "PROVISOR_RETAIN_CREDENTIALS_DAYS", default_value_t = 7)]
    pub retain_credentials_days: u32,
}

impl RetentionArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            audit_days: self.retain_audit_days,
            mail_days: self.retain_mail_days,
            events_days: self.retain_events_days,
            relationships_days: self.retain_relationships_days,
            credentials_days: self.retain_credentials_days,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RetentionCmd {
    /// Deletes what is older than the retention periods; prints the count per kind.
    Purge {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        periods: RetentionArgs,
    },
}

pub(super) fn run(url: &str, cmd: RetentionCmd) -> AppResult<Option<serde_json::Value>> {
    match cmd {
        RetentionCmd::Purge { dry_run, periods } => {
            let db = super::open(url, true)?;
            let purged = retention::purge(&db, SystemClock.now_naive(), &periods.policy(), dry_run)?;
            Ok(Some(json!({ "dry_run": dry_run, "purged": purged, "total": purged.total() })))
        }
    }
}
