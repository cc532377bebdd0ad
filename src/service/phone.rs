//! Phone administration: sites, the number pool and the bulk phone CSV. Per-user phone
//! changes (the CSV's rows included) go through the provisioning pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::domain::catalog::{CallingPlan, Product};
use crate::domain::phone::{
    did_capacity, normalize_e164, DidAllowance, ExtensionPlan, ExtensionRequest, PhoneLicensing, SiteCode,
};
use crate::domain::phone_csv::{
    self, ChangeAction, ImportMode, MacAddress, OutboundCallerId, PhoneCsvReader, PhoneCsvRow, PhonePlanState,
};
use crate::domain::users::RowError;
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{
    self, Actor, DeskPhone, Env, Field, IdentityChange, Operation, PhoneFields, Shortage, Source,
};
use crate::store::models::{AccountRow, PhoneSiteRow, UserPhoneRow};
use crate::store::{self, Db, DbConn};

/// The main site every phone-enabled account has.
pub const MAIN_SITE_NAME: &str = "Main Site";
pub const MAIN_SITE_CODE: &str = "1";
pub const DEFAULT_EXTENSION_LENGTH: i32 = 4;

/// Creates the main site if the account has none.
pub fn ensure_main_site(conn: &mut DbConn, now: NaiveDateTime, account: &str) -> AppResult<PhoneSiteRow> {
    if let Some(site) = store::phone::main_site(conn, account)? {
        return Ok(site);
    }
    let row = PhoneSiteRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        name: MAIN_SITE_NAME.into(),
        name_lower: MAIN_SITE_NAME.to_lowercase(),
        site_code: MAIN_SITE_CODE.into(),
        extension_length: DEFAULT_EXTENSION_LENGTH,
        is_main: true,
        allocation_seq: 0,
        created_at: now,
    };
    store::phone::insert_site(conn, &row)?;
    Ok(row)
}

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
            "phone is not enabled on this account (PATCH /api/v1/account {\"phone_enabled\": true})",
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
        Source::Api,
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
    audit::record(conn, env, account, actor, Source::Api, "phone.number_removed", Some(&number), serde_json::json!({}))
}

// ---------------------------------------------------------------------------------------------
// Bulk phone CSV
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PhoneImportReport {
    pub mode: String,
    pub dry_run: bool,
    pub rows: u64,
    pub applied: u64,
    /// Users the file named that did not exist yet (created as pending invitations).
    pub created: u64,
    pub unchanged: u64,
    pub failed: Vec<RowError>,
    /// Header cells that are not phone CSV columns (skipped).
    pub ignored_columns: Vec<String>,
    /// Every change, per row, removals first (always filled in a dry run; otherwise only
    /// rows with issues are listed, with their issues).
    pub changes: Vec<RowPlan>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowPlan {
    pub line: u64,
    pub email: String,
    pub changes: Vec<String>,
    pub issues: Vec<provisioning::ProvisioningIssue>,
}

fn csv_field<T: Clone, U>(f: &phone_csv::Field<T>, mode: ImportMode, map: impl Fn(&T) -> U) -> Field<U> {
    match (f, mode) {
        (phone_csv::Field::Value(v), _) => Field::Set(map(v)),
        (_, ImportMode::Merge) => Field::Keep,
        (phone_csv::Field::Absent, ImportMode::Replace) | (phone_csv::Field::Empty, ImportMode::Replace) => {
            Field::Clear
        }
    }
}

/// The phone fields one CSV row asks for, under a mode.
fn row_fields(row: &PhoneCsvRow, mode: ImportMode, current_desk: &[DeskPhone]) -> Result<PhoneFields, RowError> {
    let err = |column: &str, message: String| RowError { line: row.line, column: Some(column.into()), message };
    let site = match (&row.site_code, &row.site_name) {
        (phone_csv::Field::Value(code), _) => Field::Set(code.as_str().to_owned()),
        (_, phone_csv::Field::Value(name)) => Field::Set(name.clone()),
        _ if mode == ImportMode::Replace => Field::Clear,
        _ => Field::Keep,
    };
    let number = match &row.phone_numbers {
        phone_csv::Field::Value(set) if set.len() > 1 => {
            return Err(err("Phone Number", format!("{} numbers given; a user holds one direct number", set.len())))
        }
        other => csv_field(other, mode, |set: &BTreeSet<String>| set.iter().next().cloned().unwrap_or_default()),
    };
    let number = match number {
        Field::Set(n) if n.is_empty() => Field::Keep,
        other => other,
    };
    let desk_phones = if row.desk_phones.is_empty() {
        (mode == ImportMode::Replace).then(Vec::new)
    } else {
        let mut list: BTreeMap<u8, DeskPhone> = if mode == ImportMode::Merge {
            current_desk.iter().map(|d| (d.slot, d.clone())).collect()
        } else {
            BTreeMap::new()
        };
        for cols in &row.desk_phones {
            let value = |f: &phone_csv::Field<String>| match f {
                phone_csv::Field::Value(v) => Some(v.clone()),
                _ => None,
            };
            match &cols.mac {
                phone_csv::Field::Value(mac) => {
                    let mac = mac_text(mac);
                    list.retain(|_, d| d.mac_address != mac);
                    list.insert(
                        cols.slot,
                        DeskPhone {
                            slot: cols.slot,
                            brand: value(&cols.brand),
                            model: value(&cols.model),
                            mac_address: mac,
                            provision_template: value(&cols.provision_template),
                        },
                    );
                }
                _ if mode == ImportMode::Replace => {
                    list.remove(&cols.slot);
                }
                _ => {}
            }
        }
        Some(list.into_values().collect())
    };
    Ok(PhoneFields {
        site,
        extension: csv_field(&row.extension, mode, |e: &ExtensionRequest| match e {
            ExtensionRequest::NextFree => 0,
            ExtensionRequest::Exact(n) => *n,
        }),
        number,
        calling_plan: csv_field(&row.calling_plan, mode, |p: &CallingPlan| *p),
        roles: None,
        outbound_caller_id: csv_field(&row.outbound_caller_id, mode, |c: &OutboundCallerId| match c {
            OutboundCallerId::Number(n) => n.clone(),
            OutboundCallerId::Hidden => "hidden".to_owned(),
        }),
        sms_enabled: csv_field(&row.sms, mode, |b: &bool| *b),
        status: csv_field(&row.status, mode, |s: &phone_csv::UserStatus| s.to_string()),
        package: csv_field(&row.package, mode, |p: &String| p.clone()),
        user_template: csv_field(&row.user_template, mode, |p: &String| p.clone()),
        allow_caller_id_change: csv_field(&row.allow_caller_id_change, mode, |b: &bool| *b),
        desk_phones,
    })
}

fn mac_text(mac: &MacAddress) -> String {
    mac.to_string()
}

/// The current phone profile in the planner's terms.
fn plan_state(
    conn: &mut DbConn,
    account: &str,
    phone: Option<&UserPhoneRow>,
    desk: &[DeskPhone],
) -> AppResult<PhonePlanState> {
    let mut state = PhonePlanState::default();
    if let Some(p) = phone {
        if let Some(site_id) = &p.site_id {
            if let Some(site) = store::phone::site(conn, account, site_id)? {
                state.site_code = site.site_code.parse().ok();
                state.site_name = Some(site.name);
            }
        }
        state.package = p.phone_package.clone();
        state.user_template = p.user_template.clone();
        state.extension = p.extension.and_then(|e| u32::try_from(e).ok());
        state.phone_numbers = p.phone_number.iter().cloned().collect();
        state.calling_plan = p.calling_plan.as_deref().and_then(|c| c.parse().ok());
        state.outbound_caller_id = p.outbound_caller_id.as_deref().map(|c| {
            if c == "hidden" {
                OutboundCallerId::Hidden
            } else {
                OutboundCallerId::Number(c.to_owned())
            }
        });
        state.allow_caller_id_change = p.allow_caller_id_change;
        state.sms = p.sms_enabled;
        state.status = match p.phone_status.as_deref() {
            Some("active") => Some(phone_csv::UserStatus::Active),
            Some("inactive") => Some(phone_csv::UserStatus::Inactive),
            _ => None,
        };
    }
    for d in desk {
        if let Ok(mac) = d.mac_address.parse::<MacAddress>() {
            state.desk_phones.insert(
                mac,
                phone_csv::DeskPhone {
                    brand: d.brand.clone(),
                    model: d.model.clone(),
                    provision_template: d.provision_template.clone(),
                },
            );
        }
    }
    Ok(state)
}

/// A change the pipeline applied, in the dry run's notation (`-` removed, `+` added, `~` set).
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

fn import_row(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    actor: &Actor,
    row: &PhoneCsvRow,
    mode: ImportMode,
    dry_run: bool,
    report: &mut PhoneImportReport,
) {
    let result = diesel::Connection::transaction::<_, AppError, _>(conn, |c| {
        let user = store::users::find_by_email(c, &row.email)?;
        let (phone, desk) = match &user {
            Some(u) if u.account_id == account => (store::users::phone(c, &u.id)?, desk_of(c, &u.id)?),
            Some(_) => return Err(AppError::taken("email_taken", format!("{} belongs to another account", row.email))),
            None => (None, Vec::new()),
        };
        let fields = row_fields(row, mode, &desk).map_err(|e| AppError::bad_request("invalid_row", e.message))?;
        if dry_run {
            let state = plan_state(c, account, phone.as_ref(), &desk)?;
            let mut planned = phone_csv::plan_phone_change(&state, row, mode);
            planned.sort_by_key(|ch| ch.action != ChangeAction::Remove);
            let lines: Vec<String> = planned.iter().map(|ch| ch.to_string()).collect();
            if user.is_none() {
                report.created += 1;
            }
            report.changes.push(RowPlan {
                line: row.line,
                email: row.email.clone(),
                changes: lines,
                issues: Vec::new(),
            });
            return Ok(());
        }
        let mut change = IdentityChange::new(account, Source::Csv, actor.clone(), Operation::Upsert);
        change.explicit.email = Field::Set(row.email.clone());
        change.explicit.phone = fields;
        change.shortage = Shortage::Report;
        change.invite = true;
        change.prefetched_user = Some(user);
        let applied = provisioning::run(c, env, change)?;
        let o = applied.outcome;
        if o.created {
            report.created += 1;
        }
        if o.changes.is_empty() {
            report.unchanged += 1;
        } else {
            report.applied += 1;
        }
        if !o.issues.is_empty() {
            let lines = o.changes.iter().map(describe_change).collect();
            report.changes.push(RowPlan { line: row.line, email: row.email.clone(), changes: lines, issues: o.issues });
        }
        Ok(())
    });
    if let Err(e) = result {
        report.failed.push(RowError { line: row.line, column: None, message: e.public_message() });
    }
}

/// Streams a phone CSV into the account, in batches of [`PHONE_IMPORT_BATCH`] rows per
/// transaction. A dry run plans every row and writes nothing.
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
    let mut report = PhoneImportReport {
        mode: match mode {
            ImportMode::Merge => "merge".into(),
            ImportMode::Replace => "replace".into(),
        },
        dry_run,
        ..PhoneImportReport::default()
    };
    let reader = match PhoneCsvReader::new(input) {
        Ok(r) => r,
        Err(errors) => {
            report.failed =
                errors.into_iter().map(|e| RowError { line: e.line, column: e.column, message: e.message }).collect();
            return Ok(report);
        }
    };
    report.ignored_columns = reader.ignored_columns().to_vec();
    report.rows = super::batch::apply_in_batches(
        db,
        reader,
        dry_run,
        &mut report,
        |report, errors| {
            report.failed.extend(errors.into_iter().map(|e| RowError {
                line: e.line,
                column: e.column,
                message: e.message,
            }))
        },
        |c, report, rows| {
            let env = env_at();
            for row in rows {
                import_row(c, &env, account, actor, row, mode, dry_run, report);
            }
            Ok(())
        },
        &mut progress,
    )?;
    report.failed.sort_by_key(|e| e.line);
    Ok(report)
}
