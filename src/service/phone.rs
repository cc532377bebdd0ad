//! Phone administration: sites, the number pool and the bulk phone CSV. Per-user phone
//! changes (the CSV's rows included) go through the provisioning pipeline.

use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::batch::{BatchReport, ImportStopped};
use crate::domain::catalog::Product;
use crate::domain::phone::{did_capacity, normalize_e164, DidAllowance, ExtensionPlan, PhoneLicensing, SiteCode};
use crate::domain::phone_csv::{self, ImportMode, PhoneCsvReader, PhoneCsvRow};
use crate::domain::users::RowError;
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::batch_scope::BatchScope;
use crate::provisioning::{self, Actor, DeskPhone, Env, Field, IdentityChange, Operation, Shortage, Source};
use crate::store::models::{AccountRow, PhoneSiteRow};
use crate::store::{self, Db, DbConn};

pub use crate::provisioning::phone::{ensure_main_site, DEFAULT_EXTENSION_LENGTH};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub id: String,
    pub name: String,
    pub site_code: String,
    pub extension_length: i32,
    pub is_main: bool,
    pub users: i64,
}

pub fn site_view(conn: &mut DbConn, s: PhoneSiteRow) -> AppResult<SiteView> {
    let users = store::phone::site_user_count(conn, &s.id)?;
    Ok(SiteView {
        id: s.id,
        name: s.name,
        site_code: s.site_code,
        extension_length: s.extension_length,
        is_main: s.is_main,
        users,
    })
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub name: String,
    /// 1 to 3 digits, unique in the account.
    pub code: String,
    /// Digits of a short extension, 2 to 6 (default 4).
    pub extension_length: Option<i32>,
}

fn require_phone(conn: &mut DbConn, account: &str) -> AppResult<AccountRow> {
    let row = store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
    if !row.phone_enabled {
        return Err(AppError::conflict(
            "phone_not_enabled",
            "phone is not enabled on this account; enable it first (account setting phone_enabled)",
        ));
    }
    Ok(row)
}

pub fn create_site(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, new: &NewSite) -> AppResult<SiteView> {
    require_phone(conn, account)?;
    ensure_main_site(conn, env.now, account)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request("invalid_name", "a site name is 1 to 100 characters"));
    }
    let code: SiteCode = new
        .code
        .parse()
        .map_err(|e: crate::domain::phone::SiteError| AppError::bad_request("invalid_site_code", e.to_string()))?;
    let length = new.extension_length.unwrap_or(DEFAULT_EXTENSION_LENGTH);
    u8::try_from(length)
        .ok()
        .and_then(|l| ExtensionPlan::new(l).ok())
        .ok_or_else(|| AppError::bad_request("invalid_extension_length", "extension_length must be 2 to 6"))?;
    let row = PhoneSiteRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        name: name.to_owned(),
        name_lower: name.to_lowercase(),
        site_code: code.as_str().to_owned(),
        extension_length: length,
        is_main: false,
        allocation_seq: 0,
        created_at: env.now,
    };
    store::phone::insert_site(conn, &row)
        .map_err(AppError::on_unique("site_exists", "a site with this code or name exists in the account"))?;
    audit::record(
        conn,
        env,
        account,
        actor,
        actor.via,
        "phone.site_created",
        Some(&row.id),
        serde_json::json!({ "name": row.name, "code": row.site_code }),
    )?;
    site_view(conn, row)
}

/// How many numbers the account's licenses allow (see `domain::phone::did_capacity`).
pub fn number_capacity(conn: &mut DbConn, account: &AccountRow) -> AppResult<u32> {
    let pools = store::licenses::pools(conn, &account.id)?;
    let held =
        |p: &crate::domain::licenses::Pool| u32::try_from((p.available - p.delegated).max(0)).unwrap_or(u32::MAX);
    let mut allowance = DidAllowance {
        licensing: PhoneLicensing {
            bundled: account.bundled_licensing,
            auto_phone_provisioning: account.auto_phone_provisioning,
        },
        ..DidAllowance::default()
    };
    for p in &pools {
        match p.product {
            Product::CallingPlan(_) => {
                allowance.calling_plan_seats = allowance.calling_plan_seats.saturating_add(held(p))
            }
            Product::Meeting(crate::domain::catalog::UserTier::Enterprise) => allowance.enterprise_seats = held(p),
            _ => {}
        }
    }
    Ok(did_capacity(&allowance))
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct NumbersAdded {
    pub added: Vec<String>,
    pub failed: Vec<NumberFailure>,
    pub capacity: u32,
    pub held: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NumberFailure {
    pub number: String,
    pub reason: String,
}

/// Adds numbers to the account's pool: complete numbers only (stored E.164), each in one
/// account at most, within what the licenses allow. Each number succeeds or fails alone.
pub fn add_numbers(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    numbers: &[String],
) -> AppResult<NumbersAdded> {
    let row = require_phone(conn, account)?;
    // Capacity is read, then numbers are added: hold the account's lock in between, so
    // two concurrent additions cannot both fit under the same capacity.
    store::accounts::lock(conn, account)?;
    let capacity = number_capacity(conn, &row)?;
    let mut held = store::phone::count_numbers(conn, account)?;
    let mut out = NumbersAdded { capacity, ..NumbersAdded::default() };
    for raw in numbers {
        let fail = |reason: String| NumberFailure { number: raw.clone(), reason };
        let number = match normalize_e164(raw) {
            Ok(n) => n,
            Err(e) => {
                out.failed.push(fail(e.to_string()));
                continue;
            }
        };
        match store::phone::number_owner(conn, &number)? {
            Some(owner) if owner == account => {
                out.failed.push(fail(format!("{number} is already in this account's pool")));
                continue;
            }
            Some(_) => {
                out.failed.push(fail(format!("{number} belongs to another account")));
                continue;
            }
            None => {}
        }
        if held >= i64::from(capacity) {
            out.failed.push(fail(format!(
                "the account's licenses allow {capacity} numbers and it holds {held}; add calling plans first"
            )));
            continue;
        }
        store::phone::add_number(conn, account, &number, env.now)?;
        held += 1;
        out.added.push(number);
    }
    out.held = held;
    if !out.added.is_empty() {
        audit::record(
            conn,
            env,
            account,
            actor,
            source,
            "phone.numbers_added",
            None,
            serde_json::json!({ "numbers": out.added }),
        )?;
    }
    Ok(out)
}

pub fn remove_number(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, raw: &str) -> AppResult<()> {
    let number = normalize_e164(raw).map_err(|e| AppError::bad_request("invalid_phone_number", e.to_string()))?;
    if let Some(Some(holder)) = store::phone::number_holder(conn, account, &number)? {
        return Err(AppError::conflict(
            "number_assigned",
            format!("{number} is assigned to user {holder}; unassign it first"),
        ));
    }
    if !store::phone::remove_number(conn, account, &number)? {
        return Err(AppError::not_found("number"));
    }
    audit::record(conn, env, account, actor, actor.via, "phone.number_removed", Some(&number), serde_json::json!({}))
}

// ---------------------------------------------------------------------------------------------
// Bulk phone CSV
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhoneImportReport {
    pub mode: String,
    pub dry_run: bool,
    pub rows: u64,
    /// Rows whose user changed.
    pub applied: u64,
    /// Users the file named that did not exist yet (created as pending invitations).
    pub created: u64,
    pub unchanged: u64,
    pub failed: Vec<RowError>,
    /// Header cells that are not phone CSV columns (skipped).
    pub ignored_columns: Vec<String>,
    /// Every row that changed something or met an issue, with its changes (removals first)
    /// and issues — the same in a dry run and in the import itself. At most
    /// [`MAX_REPORTED_ROWS`] rows are listed.
    pub changes: Vec<RowPlan>,
    /// More rows changed than are listed.
    pub changes_truncated: bool,
    /// Present when the import stopped before the end of the file (see [`ImportStopped`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<ImportStopped>,
}

impl BatchReport for PhoneImportReport {
    fn absorb(&mut self, part: Self) {
        self.applied += part.applied;
        self.created += part.created;
        self.unchanged += part.unchanged;
        self.failed.extend(part.failed);
        let room = MAX_REPORTED_ROWS.saturating_sub(self.changes.len());
        self.changes_truncated |= part.changes_truncated || part.changes.len() > room;
        self.changes.extend(part.changes.into_iter().take(room));
    }

    fn stopped_mut(&mut self) -> &mut Option<ImportStopped> {
        &mut self.stopped
    }
}

/// Rows listed in an import report's `changes` (the counts cover every row).
pub const MAX_REPORTED_ROWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RowPlan {
    pub line: u64,
    pub email: String,
    pub changes: Vec<String>,
    pub issues: Vec<provisioning::ProvisioningIssue>,
}

/// A change the pipeline applied, in the report's notation (`-` removed, `+` added, `~` set).
fn describe_change(c: &provisioning::FieldChange) -> String {
    match (&c.from, &c.to) {
        (Some(from), None) => format!("- {}: {from}", c.field),
        (None, Some(to)) => format!("+ {}: {to}", c.field),
        (Some(from), Some(to)) => format!("~ {}: {from} -> {to}", c.field),
        (None, None) => format!("~ {}", c.field),
    }
}

fn desk_of(conn: &mut DbConn, user: &str) -> AppResult<Vec<DeskPhone>> {
    Ok(store::phone::desk_phones_of(conn, user)?
        .into_iter()
        .map(|d| DeskPhone {
            slot: u8::try_from(d.slot).unwrap_or(1),
            brand: d.brand,
            model: d.model,
            mac_address: d.mac_address,
            provision_template: d.provision_template,
        })
        .collect())
}

/// Applies one row through the pipeline in its own savepoint (a bad row fails alone) and
/// records what happened in the report.
#[allow(clippy::too_many_arguments)]
fn import_row(
    conn: &mut DbConn,
    env: &Env,
    scope: &BatchScope,
    account: &str,
    actor: &Actor,
    row: &PhoneCsvRow,
    mode: ImportMode,
    report: &mut PhoneImportReport,
) {
    let mark = scope.mark();
    let result = diesel::Connection::transaction::<_, AppError, _>(conn, |c| {
        let user = match scope.user(&row.email) {
            Some(known) => known,
            None => store::users::find_by_email(c, &row.email)?,
        };
        let desk = match &user {
            Some(u) if u.account_id == account => desk_of(c, &u.id)?,
            Some(_) => return Err(AppError::taken("email_taken", format!("{} belongs to another account", row.email))),
            None => Vec::new(),
        };
        let fields =
            phone_csv::row_fields(row, mode, &desk).map_err(|e| AppError::bad_request("invalid_row", e.message))?;
        let mut change = IdentityChange::new(account, Source::Csv, actor.clone(), Operation::Upsert);
        change.explicit.email = Field::Set(row.email.clone());
        change.explicit.phone = fields;
        change.shortage = Shortage::Report;
        change.invite = true;
        change.prefetched_user = Some(user);
        let applied = provisioning::run(c, env, change)?;
        Ok((applied.outcome, applied.user))
    });
    let o = match result {
        Ok((o, user)) => {
            scope.remember_user(&row.email, user);
            o
        }
        Err(e) => {
            scope.rollback_to(mark);
            report.failed.push(RowError { line: row.line, column: None, message: e.public_message() });
            return;
        }
    };
    if o.created {
        report.created += 1;
    }
    if o.changes.is_empty() {
        report.unchanged += 1;
    } else {
        report.applied += 1;
    }
    if !o.changes.is_empty() || !o.issues.is_empty() {
        if report.changes.len() >= MAX_REPORTED_ROWS {
            report.changes_truncated = true;
            return;
        }
        let mut lines: Vec<String> = o.changes.iter().map(describe_change).collect();
        lines.sort_by_key(|l| !l.starts_with('-'));
        report.changes.push(RowPlan { line: row.line, email: row.email.clone(), changes: lines, issues: o.issues });
    }
}

/// Streams a phone CSV into the account, in batches of rows per transaction. A dry run runs
/// every batch through the same pipeline in a savepoint it rolls back: it reports exactly
/// what the import would do (within a batch, later rows see earlier rows' effects; across
/// batches they do not) and writes nothing.
#[allow(clippy::too_many_arguments)]
pub fn import_csv<R: Read>(
    db: &Db,
    env_at: impl Fn() -> Env,
    actor: &Actor,
    account: &str,
    input: R,
    mode: ImportMode,
    dry_run: bool,
    mut progress: impl FnMut(u64),
) -> AppResult<PhoneImportReport> {
    db.read_blocking(|c| require_phone(c, account))?;
    let mut report = PhoneImportReport { mode: mode.as_str().into(), dry_run, ..PhoneImportReport::default() };
    let reader = match PhoneCsvReader::new(input) {
        Ok(r) => r,
        Err(errors) => {
            report.failed = errors;
            return Ok(report);
        }
    };
    report.ignored_columns = reader.ignored_columns().to_vec();
    let apply_rows = |c: &mut DbConn, report: &mut PhoneImportReport, rows: &[PhoneCsvRow]| {
        let scope = Arc::new(BatchScope::default());
        let env = env_at().for_batch(scope.clone());
        let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
        scope.prefetch_users(c, &emails)?;
        for row in rows {
            import_row(c, &env, &scope, account, actor, row, mode, report);
        }
        scope.flush(c)
    };
    if dry_run {
        // One transaction for the whole file, rolled back: every row sees what the rows
        // before it would have done, so the report is the import's, exactly.
        let mut part = PhoneImportReport::default();
        report.rows = db.write_blocking(|c| {
            store::in_rolled_back_savepoint(c, |c| {
                super::batch::apply_all(
                    c,
                    reader,
                    &mut part,
                    |r, errors| r.failed.extend(errors),
                    apply_rows,
                    &mut progress,
                )
            })
        })?;
        report.absorb(part);
    } else {
        report.rows = super::batch::apply_in_batches(
            db,
            reader,
            &mut report,
            |report, errors| report.failed.extend(errors),
            apply_rows,
            |row| row.line,
            &mut progress,
        );
    }
    report.failed.sort_by_key(|e| e.line);
    Ok(report)
}

/// `merge` (default) or `replace`.
pub fn parse_mode(mode: Option<&str>) -> AppResult<ImportMode> {
    match mode.unwrap_or("merge") {
        "merge" => Ok(ImportMode::Merge),
        "replace" => Ok(ImportMode::Replace),
        other => Err(AppError::bad_request("invalid_mode", format!("unknown mode {other:?}: use merge or replace"))),
    }
}
