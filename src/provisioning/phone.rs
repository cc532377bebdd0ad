//! The phone step of the pipeline: site, extension, direct number, phone roles, the rest of
//! the phone profile and desk phones. Runs after the user row is written (the phone rows
//! refer to it) and after seats were settled (the calling plan comes from there).
//!
//! Conflicts are provisioning issues, never errors: a taken extension or number leaves the
//! user with what they had. Concurrency: "next free extension" takes the site's row lock
//! first; a number is claimed with a conditional UPDATE; both are backed by unique indexes.

use std::collections::BTreeSet;

use super::change::{DeskPhone, Field, FieldChange, PhoneFields, ProvisioningIssue};
use super::entitlements::SeatPlan;
use crate::domain::issue::IssueCode;
use crate::domain::phone::{extension_candidates, normalize_e164, ExtensionPlan, PhoneRole, SiteCode};
use crate::error::AppResult;
use crate::store::models::{AccountRow, DeskPhoneRow, PhoneSiteRow, UserPhoneRow};
use crate::store::{self, DbConn};

/// The main site every phone-enabled account has.
pub const MAIN_SITE_NAME: &str = "Main Site";
pub const MAIN_SITE_CODE: &str = "1";
pub const DEFAULT_EXTENSION_LENGTH: i32 = 4;

/// Creates the main site if the account has none.
pub fn ensure_main_site(conn: &mut DbConn, now: chrono::NaiveDateTime, account: &str) -> AppResult<PhoneSiteRow> {
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

/// What the phone step is asked to do, beyond the explicit fields.
pub struct PhoneTask<'a> {
    pub account: &'a AccountRow,
    pub user_id: &'a str,
    pub current: Option<UserPhoneRow>,
    pub fields: &'a PhoneFields,
    /// The calling plan after seats were settled.
    pub plan: &'a SeatPlan,
    /// The user is a phone user without an extension: give them the next free one.
    pub needs_extension: bool,
    pub now: chrono::NaiveDateTime,
    /// The import batch, whose rows share site lookups.
    pub batch: Option<&'a super::batch_scope::BatchScope>,
}

fn issue(code: IssueCode, attribute: &str, message: impl Into<String>) -> ProvisioningIssue {
    ProvisioningIssue::on(code, attribute, message)
}

/// Whether a change asks anything of the phone profile.
pub fn touches_phone(f: &PhoneFields) -> bool {
    !(f.site.is_keep()
        && f.extension.is_keep()
        && f.number.is_keep()
        && f.calling_plan.is_keep()
        && f.roles.is_none()
        && f.outbound_caller_id.is_keep()
        && f.sms_enabled.is_keep()
        && f.status.is_keep()
        && f.package.is_keep()
        && f.user_template.is_keep()
        && f.allow_caller_id_change.is_keep()
        && f.desk_phones.is_none())
}

fn plan_of(site: &PhoneSiteRow) -> Option<ExtensionPlan> {
    u8::try_from(site.extension_length).ok().and_then(|l| ExtensionPlan::new(l).ok())
}

fn long_form(site: &PhoneSiteRow, extension: u32) -> Option<String> {
    let plan = plan_of(site)?;
    let code: Option<SiteCode> = site.site_code.parse().ok();
    plan.long_form(code.as_ref(), extension).ok()
}

/// Whether an extension of a site is free, also in its long form across the account. The
/// long form is unique per account and determines the extension within a site, so one probe
/// of it covers both.
fn extension_free(conn: &mut DbConn, site: &PhoneSiteRow, extension: u32) -> AppResult<bool> {
    match long_form(site, extension) {
        Some(long) => Ok(!store::phone::long_extension_used(conn, &site.account_id, &long)?),
        None => Ok(false),
    }
}

/// The next free extension of a site, probing upwards from the last one handed out and
/// wrapping around once: amortised O(1) index probes, so bulk imports stay linear. Must be
/// called with the site locked.
pub fn assign_next_extension(conn: &mut DbConn, site: &PhoneSiteRow, hint: i64) -> AppResult<Option<u32>> {
    let Some(plan) = plan_of(site) else { return Ok(None) };
    for candidate in extension_candidates(&plan, u32::try_from(hint).ok()) {
        if extension_free(conn, site, candidate)? {
            store::phone::set_allocation_hint(conn, &site.id, i64::from(candidate))?;
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn text_field(slot: &mut Option<String>, f: &Field<String>) {
    match f {
        Field::Keep => {}
        Field::Set(v) => *slot = Some(v.clone()),
        Field::Clear => *slot = None,
    }
}

fn bool_field(slot: &mut Option<bool>, f: &Field<bool>) {
    match f {
        Field::Keep => {}
        Field::Set(v) => *slot = Some(*v),
        Field::Clear => *slot = None,
    }
}

/// Applies the phone part of a change; returns the stored phone row (None: not a phone user).
pub fn apply(
    conn: &mut DbConn,
    task: PhoneTask<'_>,
    changes: &mut Vec<FieldChange>,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<Option<UserPhoneRow>> {
    let PhoneTask { account, user_id, current, fields, plan, needs_extension, now, batch } = task;
    let existed = current.is_some();
    let mut row = current.clone().unwrap_or_else(|| UserPhoneRow {
        user_id: user_id.to_owned(),
        account_id: account.id.clone(),
        ..UserPhoneRow::default()
    });

    // The site: asked for, or the current one, or the main site.
    let current_site = match &row.site_id {
        Some(id) => store::phone::site(conn, &account.id, id)?,
        None => None,
    };
    let mut site = current_site.clone();
    match &fields.site {
        Field::Set(key) => match match batch {
            Some(scope) => scope.find_site(conn, &account.id, key)?,
            None => store::phone::find_site(conn, &account.id, key)?,
        } {
            Some(s) => site = Some(s),
            None => issues.push(issue(
                IssueCode::InvalidValue,
                "phone.site",
                format!("no phone site {key:?} in this account"),
            )),
        },
        Field::Clear => site = None,
        Field::Keep => {}
    }
    let wants_extension = matches!(fields.extension, Field::Set(_)) || needs_extension;
    if site.is_none() && (wants_extension || row.extension.is_some()) {
        site = Some(ensure_main_site(conn, now, &account.id)?);
    }
    let site_changed = site.as_ref().map(|s| &s.id) != current_site.as_ref().map(|s| &s.id);

    // The extension.
    let current_ext = if site_changed { None } else { row.extension.and_then(|e| u32::try_from(e).ok()) };
    let request = match fields.extension {
        Field::Set(0) => Some(None),
        Field::Set(n) => Some(Some(n)),
        Field::Clear => {
            row.extension = None;
            row.long_extension = None;
            None
        }
        // Moving to another site, or becoming a phone user: the next free one there.
        Field::Keep if (site_changed && row.extension.is_some()) || (needs_extension && current_ext.is_none()) => {
            Some(None)
        }
        Field::Keep => None,
    };
    if let (Some(request), Some(site)) = (request, site.as_ref()) {
        let hint = store::phone::lock_site(conn, site)?;
        let plan = plan_of(site);
        match request {
            None if current_ext.is_some_and(|e| plan.is_some_and(|p| p.check(e).is_ok())) => {}
            None => match assign_next_extension(conn, site, hint)? {
                Some(e) => {
                    row.extension = Some(i64::from(e));
                    row.long_extension = long_form(site, e);
                }
                None => issues.push(issue(
                    IssueCode::ExtensionRangeExhausted,
                    "phone.extension",
                    format!("no free extension left in site {}", site.name),
                )),
            },
            Some(e) if Some(e) == current_ext => {}
            Some(e) => match plan.map(|p| p.check(e)) {
                Some(Err(err)) => issues.push(issue(IssueCode::InvalidExtension, "phone.extension", err.to_string())),
                None => {
                    issues.push(issue(IssueCode::InvalidExtension, "phone.extension", "the site has no extension plan"))
                }
                Some(Ok(())) => {
                    if extension_free(conn, site, e)? {
                        row.extension = Some(i64::from(e));
                        row.long_extension = long_form(site, e);
                    } else {
                        issues.push(issue(
                            IssueCode::ExtensionTaken,
                            "phone.extension",
                            match row.extension {
                                Some(kept) => format!(
                                    "extension {e} is already used in site {}; the user keeps extension {kept}",
                                    site.name
                                ),
                                None => format!(
                                    "extension {e} is already used in site {}; the user has no extension until a free one is given",
                                    site.name
                                ),
                            },
                        ));
                    }
                }
            },
        }
    }
    row.site_id = if row.extension.is_some() || wants_extension || !fields.site.is_keep() {
        site.as_ref().map(|s| s.id.clone())
    } else {
        row.site_id.clone()
    };
    // The calling plan, as settled by the seat step.
    row.calling_plan = plan.calling_plan.map(|p| p.as_str().to_owned());
    row.calling_plan_bundled = plan.calling_plan.is_some() && plan.calling_plan_bundled;

    // The direct number: only if complete, in the pool and free.
    match &fields.number {
        Field::Keep => {}
        Field::Clear => {
            if row.phone_number.take().is_some() {
                store::phone::release_numbers_of(conn, user_id)?;
            }
        }
        Field::Set(raw) => match normalize_e164(raw) {
            Err(e) => issues.push(issue(IssueCode::InvalidPhoneNumber, "phone.number", format!("{raw:?}: {e}"))),
            Ok(number) if row.phone_number.as_deref() == Some(number.as_str()) => {}
            Ok(number) => match store::phone::number_holder(conn, &account.id, &number)? {
                None => issues.push(issue(
                    IssueCode::NumberNotInPool,
                    "phone.number",
                    format!("{number} is not one of the account's numbers; the user keeps their number"),
                )),
                Some(Some(holder)) if holder != user_id => issues.push(issue(
                    IssueCode::NumberTaken,
                    "phone.number",
                    format!("{number} is assigned to another user; the user keeps their number"),
                )),
                Some(_) => {
                    if row.phone_number.is_some() {
                        store::phone::release_numbers_of(conn, user_id)?;
                    }
                    if store::phone::assign_number(conn, &account.id, &number, user_id)? {
                        row.phone_number = Some(number);
                    } else {
                        // Another change claimed it between our read and this write.
                        issues.push(issue(
                            IssueCode::NumberTaken,
                            "phone.number",
                            format!("{number} was just assigned to another user"),
                        ));
                        if let Some(old) = row.phone_number.clone() {
                            store::phone::assign_number(conn, &account.id, &old, user_id)?;
                        }
                    }
                }
            },
        },
    }

    if let Some(roles) = &fields.roles {
        let mut parsed = BTreeSet::new();
        for r in roles {
            match r.parse::<PhoneRole>() {
                Ok(role) => {
                    parsed.insert(role.to_string());
                }
                Err(e) => issues.push(issue(IssueCode::InvalidValue, "phone.role", format!("{r:?}: {e}"))),
            }
        }
        row.phone_roles = parsed.into_iter().collect::<Vec<_>>().join(",");
    }
    text_field(&mut row.outbound_caller_id, &fields.outbound_caller_id);
    text_field(&mut row.phone_status, &fields.status);
    text_field(&mut row.phone_package, &fields.package);
    text_field(&mut row.user_template, &fields.user_template);
    bool_field(&mut row.sms_enabled, &fields.sms_enabled);
    bool_field(&mut row.allow_caller_id_change, &fields.allow_caller_id_change);

    let desk_changed = match &fields.desk_phones {
        None => false,
        Some(list) => apply_desk_phones(conn, user_id, list, existed, issues)?,
    };

    let is_phone_user = row.extension.is_some() || row.calling_plan.is_some() || row.phone_number.is_some();
    let has_profile = is_phone_user
        || !row.phone_roles.is_empty()
        || row.outbound_caller_id.is_some()
        || row.sms_enabled.is_some()
        || row.phone_status.is_some()
        || row.phone_package.is_some();
    record_changes(current.as_ref(), has_profile.then_some(&row), changes);
    if desk_changed {
        changes.push(FieldChange::new("phone.desk_phones", None, None));
    }
    if !has_profile {
        if existed {
            store::phone::release_numbers_of(conn, user_id)?;
            store::users::delete_phone(conn, user_id)?;
        }
        return Ok(None);
    }
    if current.as_ref() != Some(&row) {
        store::users::save_phone(conn, &row, existed)?;
    }
    Ok(Some(row))
}

fn apply_desk_phones(
    conn: &mut DbConn,
    user_id: &str,
    list: &[DeskPhone],
    existed: bool,
    issues: &mut Vec<ProvisioningIssue>,
) -> AppResult<bool> {
    let mut rows = Vec::new();
    for p in list.iter().take(9) {
        if let Some(holder) = store::phone::desk_phone_holder(conn, &p.mac_address)? {
            if holder != user_id {
                issues.push(issue(
                    IssueCode::InvalidValue,
                    "phone.desk_phones",
                    format!("desk phone {} is assigned to another user", p.mac_address),
                ));
                continue;
            }
        }
        rows.push(DeskPhoneRow {
            user_id: user_id.to_owned(),
            slot: i32::from(p.slot),
            brand: p.brand.clone(),
            model: p.model.clone(),
            mac_address: p.mac_address.clone(),
            provision_template: p.provision_template.clone(),
        });
    }
    // A user without a phone profile has no desk phones yet.
    let current = if existed { store::phone::desk_phones_of(conn, user_id)? } else { Vec::new() };
    let same = current.len() == rows.len()
        && current.iter().zip(&rows).all(|(a, b)| {
            a.slot == b.slot
                && a.mac_address == b.mac_address
                && a.brand == b.brand
                && a.model == b.model
                && a.provision_template == b.provision_template
        });
    if !same {
        if !current.is_empty() {
            store::phone::delete_desk_phones(conn, user_id)?;
        }
        store::phone::insert_desk_phones(conn, &rows)?;
    }
    Ok(!same)
}

fn record_changes(before: Option<&UserPhoneRow>, after: Option<&UserPhoneRow>, changes: &mut Vec<FieldChange>) {
    let get = |r: Option<&UserPhoneRow>, f: fn(&UserPhoneRow) -> Option<String>| r.and_then(f);
    type Getter = fn(&UserPhoneRow) -> Option<String>;
    let fields: [(&str, Getter); 10] = [
        ("phone.site", |r| r.site_id.clone()),
        ("phone.extension", |r| r.extension.map(|e| e.to_string())),
        ("phone.number", |r| r.phone_number.clone()),
        ("phone.calling_plan", |r| r.calling_plan.clone()),
        ("phone.roles", |r| Some(r.phone_roles.clone()).filter(|s| !s.is_empty())),
        ("phone.outbound_caller_id", |r| r.outbound_caller_id.clone()),
        ("phone.sms", |r| r.sms_enabled.map(|b| b.to_string())),
        ("phone.status", |r| r.phone_status.clone()),
        ("phone.package", |r| r.phone_package.clone()),
        ("phone.user_template", |r| r.user_template.clone()),
    ];
    for (name, f) in fields {
        let (a, b) = (get(before, f), get(after, f));
        if a != b {
            changes.push(FieldChange::new(name, a, b));
        }
    }
}
