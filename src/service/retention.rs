//! Retention: what is kept how long, and the purge that `serve` runs hourly from its
//! maintenance loop and `provisor retention purge` runs by hand. Each kind is deleted in
//! batches of [`BATCH`] rows, one short write transaction per batch (through the process's
//! write gate on SQLite), so a large backlog never holds up request writes. A period of 0
//! days keeps that kind forever.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::store::{retention as q, Db, DbConn};

/// Rows per purge transaction.
pub const BATCH: i64 = 1000;

/// Days each kind is kept (0: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Audit log entries, from when they were written.
    pub audit_days: u32,
    /// Outbox mail, from when it was sent or failed for good.
    pub mail_days: u32,
    /// Group-sync membership events, from when they were applied.
    pub events_days: u32,
    /// Ended relationships (terminated, declined, expired) with their delegates and codes,
    /// from when they ended.
    pub relationships_days: u32,
    /// Expired or revoked tokens, sessions, delegate codes, SAML replay entries and
    /// requests, from when they expired (or were revoked or used).
    pub credentials_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { audit_days: 365, mail_days: 30, events_days: 7, relationships_days: 90, credentials_days: 7 }
    }
}

/// Rows purged (or, in a dry run, that would be) per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub audit: usize,
    pub mail: usize,
    pub membership_events: usize,
    pub ended_relationships: usize,
    pub expired_credentials: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.audit + self.mail + self.membership_events + self.ended_relationships + self.expired_credentials
    }
}

type Query = fn(&mut DbConn, NaiveDateTime, Option<i64>) -> diesel::QueryResult<usize>;

/// Purges everything older than the policy allows at `now`; with `dry_run` only counts.
pub fn purge(db: &Db, now: NaiveDateTime, policy: &Policy, dry_run: bool) -> AppResult<Purged> {
    let kinds: [(u32, Query); 5] = [
        (policy.audit_days, q::audit),
        (policy.mail_days, q::mail),
        (policy.events_days, q::membership_events),
        (policy.relationships_days, q::ended_relationships),
        (policy.credentials_days, q::credentials),
    ];
    let mut counts = [0usize; 5];
    for ((days, query), count) in kinds.into_iter().zip(counts.iter_mut()) {
        if days == 0 {
            continue;
        }
        let cutoff = now - Duration::days(i64::from(days));
        if dry_run {
            *count = db.read_blocking(|c| query(c, cutoff, None).map_err(AppError::from))?;
            continue;
        }
        loop {
            let n = db.write_blocking(|c| query(c, cutoff, Some(BATCH)).map_err(AppError::from))?;
            *count += n;
            if n == 0 {
                break;
            }
        }
    }
    let [audit, mail, membership_events, ended_relationships, expired_credentials] = counts;
    Ok(Purged { audit, mail, membership_events, ended_relationships, expired_credentials })
}
