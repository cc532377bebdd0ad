//! Master-account reports across an account and its sub accounts (three tiers deep):
//! licenses, active users in a period, phone. JSON views here; the CSV rendering is
//! [`to_csv`], one header per report (documented in the README).
//!
//! Active users are read from the audit log, which every SSO login (`saml.login`) and every
//! SCIM or API change of a user (`user.*`) already writes in its transaction: no extra write
//! on any path, and a period in the past is answered as it was.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::store::models::AccountRow;
use crate::store::{self, DbConn};

/// How deep a report reaches below the account it is asked for (master → sub → sub).
pub const MAX_TIERS: usize = 3;

/// One account of a report: its id, name and tier (0: the account asked for).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportAccount {
    pub account_id: String,
    pub name: String,
    pub tier: usize,
}

/// The accounts a report covers: `root` and its sub accounts down to [`MAX_TIERS`], or the
/// `selected` ones among them (a sub account outside the tree is not found, like every
/// foreign id).
pub fn accounts(conn: &mut DbConn, root: &str, selected: Option<&[String]>) -> AppResult<Vec<ReportAccount>> {
    let top = store::accounts::find(conn, root)?.ok_or(AppError::not_found("account"))?;
    let mut tree = vec![(top, 0usize)];
    let mut i = 0;
    while let Some((a, tier)) = tree.get(i).map(|(a, t)| (a.clone(), *t)) {
        if tier + 1 < MAX_TIERS {
            for s in store::accounts::list_subs(conn, &a.id)? {
                tree.push((s, tier + 1));
            }
        }
        i += 1;
    }
    let view =
        |(a, tier): &(AccountRow, usize)| ReportAccount { account_id: a.id.clone(), name: a.name.clone(), tier: *tier };
    match selected {
        None => Ok(tree.iter().map(view).collect()),
        Some(ids) => ids
            .iter()
            .map(|id| tree.iter().find(|(a, _)| a.id == *id).map(view).ok_or(AppError::not_found("account")))
            .collect(),
    }
}

/// One product of one account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenseLine {
    pub account_id: String,
    pub account_name: String,
    pub tier: usize,
    pub product: String,
    /// `purchased` (its own) or `delegated` (from its master).
    pub source: String,
    pub available: i64,
    pub used: i64,
    /// Passed on to its own sub accounts.
    pub delegated_out: i64,
    pub remaining: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicenseTotal {
    pub product: String,
    pub available: i64,
    pub used: i64,
    pub delegated_out: i64,
    pub remaining: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LicensesReport {
    pub accounts: Vec<ReportAccount>,
    pub lines: Vec<LicenseLine>,
    /// Per product, the sums of the lines.
    pub totals: Vec<LicenseTotal>,
}

pub fn licenses(conn: &mut DbConn, accounts: Vec<ReportAccount>) -> AppResult<LicensesReport> {
    let mut lines = Vec::new();
    let mut totals: BTreeMap<String, LicenseTotal> = BTreeMap::new();
    for a in &accounts {
        let row = store::accounts::find(conn, &a.account_id)?.ok_or(AppError::not_found("account"))?;
        // A sub account's pools hold what its master delegated unless it is billed separately.
        let delegated = row.parent_id.is_some() && row.billing.as_deref() != Some("separate");
        for p in store::licenses::pools(conn, &a.account_id)? {
            if p.available == 0 && p.used == 0 && p.delegated == 0 {
                continue;
            }
            let line = LicenseLine {
                account_id: a.account_id.clone(),
                account_name: a.name.clone(),
                tier: a.tier,
                product: p.product.as_str().to_owned(),
                source: if delegated { "delegated" } else { "purchased" }.into(),
                available: p.available,
                used: p.used,
                delegated_out: p.delegated,
                remaining: p.remaining(),
            };
            let t = totals.entry(line.product.clone()).or_insert_with(|| LicenseTotal {
                product: line.product.clone(),
                available: 0,
                used: 0,
                delegated_out: 0,
                remaining: 0,
            });
            t.available += line.available;
            t.used += line.used;
            t.delegated_out += line.delegated_out;
            t.remaining += line.remaining;
            lines.push(line);
        }
    }
    Ok(LicensesReport { accounts, lines, totals: totals.into_values().collect() })
}

/// A report period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// An RFC 3339 date (midnight UTC) or instant.
pub fn parse_bound(s: &str) -> AppResult<NaiveDateTime> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.naive_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).ok_or_else(|| {
        AppError::bad_request("invalid_period", format!("{s:?} is not an RFC 3339 date (2026-12-01) or instant"))
    })
}

/// The period of `from`/`to` (default: the 30 days before now).
pub fn period(from: Option<&str>, to: Option<&str>, now: NaiveDateTime) -> AppResult<Period> {
    let to = to.map(parse_bound).transpose()?.unwrap_or(now);
    let from = from.map(parse_bound).transpose()?.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(AppError::bad_request("invalid_period", "from must be before to"));
    }
    Ok(Period { from, to })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveUser {
    pub user_id: String,
    pub email: Option<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub last_activity: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveLine {
    pub account_id: String,
    pub account_name: String,
    pub tier: usize,
    pub active_users: usize,
    /// With `list=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<ActiveUser>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveUsersReport {
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub from: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub to: NaiveDateTime,
    pub accounts: Vec<ActiveLine>,
    pub total: usize,
    /// Per tier (0: the account asked for); JSON object keys are the tier numbers as text.
    #[schema(value_type = BTreeMap<String, usize>)]
    pub by_tier: BTreeMap<usize, usize>,
}

pub fn active_users(
    conn: &mut DbConn,
    accounts: Vec<ReportAccount>,
    p: Period,
    list: bool,
) -> AppResult<ActiveUsersReport> {
    let mut lines = Vec::new();
    let (mut total, mut by_tier) = (0, BTreeMap::new());
    for a in accounts {
        let users = store::audit::active_users(conn, &a.account_id, p.from, p.to)?;
        total += users.len();
        *by_tier.entry(a.tier).or_insert(0) += users.len();
        lines.push(ActiveLine {
            account_id: a.account_id,
            account_name: a.name,
            tier: a.tier,
            active_users: users.len(),
            users: list.then(|| {
                users
                    .into_iter()
                    .map(|(user_id, email, last_activity)| ActiveUser { user_id, email, last_activity })
                    .collect()
            }),
        });
    }
    Ok(ActiveUsersReport { from: p.from, to: p.to, accounts: lines, total, by_tier })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneLine {
    pub account_id: String,
    pub account_name: String,
    pub tier: usize,
    pub numbers: i64,
    pub assigned: i64,
    pub free: i64,
    /// Users with a phone, by site id (`""`: no site).
    pub users_per_site: BTreeMap<String, i64>,
    /// Users by calling plan.
    pub calling_plans: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhoneReport {
    pub accounts: Vec<PhoneLine>,
    pub numbers: i64,
    pub assigned: i64,
    pub free: i64,
}

pub fn phone(conn: &mut DbConn, accounts: Vec<ReportAccount>) -> AppResult<PhoneReport> {
    let mut lines = Vec::new();
    let (mut numbers, mut assigned) = (0, 0);
    for a in accounts {
        let (n, used) = store::phone::number_counts(conn, &a.account_id)?;
        numbers += n;
        assigned += used;
        let (sites, plans) = store::phone::phone_user_counts(conn, &a.account_id)?;
        lines.push(PhoneLine {
            account_id: a.account_id,
            account_name: a.name,
            tier: a.tier,
            numbers: n,
            assigned: used,
            free: n - used,
            users_per_site: sites,
            calling_plans: plans,
        });
    }
    Ok(PhoneReport { accounts: lines, numbers, assigned, free: numbers - assigned })
}

fn csv_text(header: &[&str], rows: Vec<Vec<String>>) -> AppResult<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| AppError::Internal(format!("csv: {e}")))?;
    for r in rows {
        w.write_record(&r).map_err(|e| AppError::Internal(format!("csv: {e}")))?;
    }
    let bytes = w.into_inner().map_err(|e| AppError::Internal(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| AppError::Internal(format!("csv: {e}")))
}

/// A report as CSV, one row per account line (columns in the README).
pub fn to_csv(report: &Report) -> AppResult<String> {
    match report {
        Report::Licenses(r) => csv_text(
            &[
                "account_id",
                "account_name",
                "tier",
                "product",
                "source",
                "available",
                "used",
                "delegated_out",
                "remaining",
            ],
            r.lines
                .iter()
                .map(|l| {
                    vec![
                        l.account_id.clone(),
                        l.account_name.clone(),
                        l.tier.to_string(),
                        l.product.clone(),
                        l.source.clone(),
                        l.available.to_string(),
                        l.used.to_string(),
                        l.delegated_out.to_string(),
                        l.remaining.to_string(),
                    ]
                })
                .collect(),
        ),
        Report::ActiveUsers(r) => csv_text(
            &["account_id", "account_name", "tier", "active_users"],
            r.accounts
                .iter()
                .map(|l| {
                    vec![l.account_id.clone(), l.account_name.clone(), l.tier.to_string(), l.active_users.to_string()]
                })
                .collect(),
        ),
        Report::Phone(r) => csv_text(
            &["account_id", "account_name", "tier", "numbers", "assigned", "free", "users_with_phone"],
            r.accounts
                .iter()
                .map(|l| {
                    vec![
                        l.account_id.clone(),
                        l.account_name.clone(),
                        l.tier.to_string(),
                        l.numbers.to_string(),
                        l.assigned.to_string(),
                        l.free.to_string(),
                        l.users_per_site.values().sum::<i64>().to_string(),
                    ]
                })
                .collect(),
        ),
    }
}

/// Any of the three reports.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Report {
    Licenses(LicensesReport),
    ActiveUsers(ActiveUsersReport),
    Phone(PhoneReport),
}

/// Which report, by the name in the path (`licenses`, `active_users`, `phone`; the CLI's
/// `active-users` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Licenses,
    ActiveUsers,
    Phone,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "licenses" => Some(Kind::Licenses),
            "active_users" | "active-users" => Some(Kind::ActiveUsers),
            "phone" => Some(Kind::Phone),
            _ => None,
        }
    }
}

/// Runs a report over `root`'s tree (or the `selected` accounts of it).
pub fn run(
    conn: &mut DbConn,
    kind: Kind,
    root: &str,
    selected: Option<&[String]>,
    period: Period,
    list: bool,
) -> AppResult<Report> {
    let accts = accounts(conn, root, selected)?;
    Ok(match kind {
        Kind::Licenses => Report::Licenses(licenses(conn, accts)?),
        Kind::ActiveUsers => Report::ActiveUsers(active_users(conn, accts, period, list)?),
        Kind::Phone => Report::Phone(phone(conn, accts)?),
    })
}
