//! Stored rows → SCIM resources (their `attributes`/`excludedAttributes` projection is
//! `scim::projection`).
//!
//! A User is rendered from its row: the columns the pipeline owns (`userName`,
//! `externalId`, `displayName`, `name.givenName/familyName`, `title`, `active`, the primary
//! e-mail, the enterprise `department`) win over the stored document, which supplies every
//! attribute without a column (`phoneNumbers`, `addresses`, `manager`, …) exactly as the
//! identity provider sent it.
//!
//! The provisor extension of a user managed through SCIM shows what the identity provider
//! asked for (tier, add-ons, phone). The product applies those within the account's seats,
//! sites and number pool; whatever it could not apply is listed, with the reason, in the
//! read-only `provisioningIssues`. Showing the request rather than the outcome keeps an IdP
//! from re-pushing the same value forever. Users that never came through SCIM (admin API,
//! CSV, SAML) show their applied tier, add-ons and phone line.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::adapter::get;
pub use crate::scim::projection::Projection;
use crate::scim::schema::{ENTERPRISE_USER_URN, GROUP_URN, PROVISOR_USER_URN, USER_URN};
use crate::store::models::{GroupRow, PhoneSiteRow, UserPhoneRow, UserRow};
use crate::store::scim::MemberRow;

/// An instant as SCIM shows it (RFC 3339, UTC, as precise as stored).
pub fn timestamp(t: &NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(*t, Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The ETag of a resource version (weak: equal versions are semantically equal).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn stored(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<&str>) {
    m.retain(|k, _| !k.eq_ignore_ascii_case(key));
    if let Some(v) = v {
        m.insert(key.to_owned(), Value::String(v.to_owned()));
    }
}

fn take_object(m: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    let k = m.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
    match k.and_then(|k| m.remove(&k)) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// What a User resource needs besides its row.
#[derive(Default)]
pub struct UserExtras<'a> {
    /// `(group id, group display name)` of the user's groups.
    pub groups: Vec<(&'a str, &'a str)>,
    pub phone: Option<&'a UserPhoneRow>,
    pub sites: &'a [PhoneSiteRow],
}

/// The User resource of a row.
pub fn user(row: &UserRow, extras: &UserExtras<'_>, base: &str) -> Value {
    let mut doc = stored(&row.scim);
    let managed = doc.contains_key("schemas");
    for k in ["schemas", "id", "meta", "groups", "password"] {
        doc.remove(k);
    }
    put(&mut doc, "userName", Some(&row.user_name));
    put(&mut doc, "externalId", row.external_id.as_deref());
    put(&mut doc, "displayName", row.display_name.as_deref());
    put(&mut doc, "title", row.job_title.as_deref());

    let mut name = take_object(&mut doc, "name");
    put(&mut name, "givenName", row.given_name.as_deref());
    put(&mut name, "familyName", row.family_name.as_deref());
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }

    // `active` is stated whenever it was sent or the user is deactivated (an IdP reading a
    // deactivated user back always sees it); an IdP that removed it reads it absent.
    let inactive = row.status == crate::domain::users::UserStatus::Inactive;
    let has_active = doc.keys().any(|k| k.eq_ignore_ascii_case("active"));
    doc.retain(|k, _| !k.eq_ignore_ascii_case("active"));
    if inactive || has_active || !managed {
        doc.insert("active".into(), Value::Bool(!inactive));
    }

    render_emails(&mut doc, row.email.as_deref());

    let mut enterprise = take_object(&mut doc, ENTERPRISE_USER_URN);
    put(&mut enterprise, "department", row.department.as_deref());
    let mut product = take_object(&mut doc, PROVISOR_USER_URN);
    product.remove("provisioningIssues");
    if !managed {
        applied_product(&mut product, row, extras);
    }
    let issues: Vec<Value> = serde_json::from_str(&row.provisioning_issues).unwrap_or_default();
    if !issues.is_empty() {
        product.insert("provisioningIssues".into(), Value::Array(issues));
    }

    let mut schemas = vec![json!(USER_URN)];
    if !enterprise.is_empty() {
        schemas.push(json!(ENTERPRISE_USER_URN));
        doc.insert(ENTERPRISE_USER_URN.into(), Value::Object(enterprise));
    }
    if !product.is_empty() {
        schemas.push(json!(PROVISOR_USER_URN));
        doc.insert(PROVISOR_USER_URN.into(), Value::Object(product));
    }
    if !extras.groups.is_empty() {
        let groups: Vec<Value> = extras
            .groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "$ref": format!("{base}/Groups/{id}"), "display": name, "type": "direct" })
            })
            .collect();
        doc.insert("groups".into(), Value::Array(groups));
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.insert("id".into(), json!(row.id));
    doc.insert(
        "meta".into(),
        meta("User", &row.created_at, &row.updated_at, row.version, &format!("{base}/Users/{}", row.id)),
    );
    Value::Object(doc)
}

/// The primary e-mail column wins: it replaces the primary (else first) stored value when
/// an administrator changed it, and is the only value of a user without a stored list.
fn render_emails(doc: &mut Map<String, Value>, email: Option<&str>) {
    let Some(email) = email else { return };
    let key = doc.keys().find(|k| k.eq_ignore_ascii_case("emails")).cloned();
    let mut items = match key.and_then(|k| doc.remove(&k)) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let known =
        items.iter().any(|e| get(e, "value").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(email)));
    if !known {
        let slot = items.iter().position(|e| get(e, "primary") == Some(&Value::Bool(true)));
        match slot.and_then(|i| items.get_mut(i)).and_then(Value::as_object_mut) {
            Some(primary) => {
                primary.insert("value".into(), json!(email));
            }
            None => items.insert(0, json!({ "value": email, "type": "work", "primary": true })),
        }
    }
    doc.insert("emails".into(), Value::Array(items));
}

/// The applied tier, add-ons and phone line (users not managed through SCIM).
fn applied_product(product: &mut Map<String, Value>, row: &UserRow, extras: &UserExtras<'_>) {
    product.insert("userType".into(), json!(row.user_type));
    let held: Vec<&str> = row.addons.split(',').filter(|a| !a.is_empty()).collect();
    let flags: Map<String, Value> = super::adapter::ADDON_FLAGS
        .iter()
        .map(|(flag, addon)| ((*flag).to_owned(), Value::Bool(held.contains(&addon.as_str()))))
        .collect();
    product.insert("addons".into(), Value::Object(flags));
    let Some(p) = extras.phone else { return };
    let mut phone = Map::new();
    if let Some(e) = p.extension {
        phone.insert("extension".into(), json!(e));
    }
    if let Some(n) = &p.phone_number {
        phone.insert("number".into(), json!(n));
    }
    if let Some(site) = p.site_id.as_ref().and_then(|id| extras.sites.iter().find(|s| &s.id == id)) {
        phone.insert("site".into(), json!(site.name));
    }
    if let Some(plan) = &p.calling_plan {
        phone.insert("callingPlan".into(), json!(plan));
    }
    if let Some(role) = p.phone_roles.split(',').find(|r| !r.is_empty()) {
        phone.insert("role".into(), json!(role));
    }
    if !phone.is_empty() {
        product.insert("phone".into(), Value::Object(phone));
    }
}

fn meta(kind: &str, created: &NaiveDateTime, modified: &NaiveDateTime, version: i64, location: &str) -> Value {
    json!({
        "resourceType": kind,
        "created": timestamp(created),
        "lastModified": timestamp(modified),
        "location": location,
        "version": etag(version),
    })
}

/// The Group resource of a row; `members` is `None` when they were not loaded (the
/// client excluded them).
pub fn group(row: &GroupRow, members: Option<&[&MemberRow]>, base: &str) -> Value {
    let mut doc = stored(&row.scim);
    for k in ["schemas", "id", "meta", "members"] {
        doc.remove(k);
    }
    put(&mut doc, "displayName", Some(&row.display_name));
    put(&mut doc, "externalId", row.external_id.as_deref());
    if let Some(members) = members.filter(|m| !m.is_empty()) {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                let display = m.display.as_deref().or(m.user_display_name.as_deref()).unwrap_or(&m.user_name);
                json!({ "value": m.user_id, "$ref": format!("{base}/Users/{}", m.user_id), "type": "User", "display": display })
            })
            .collect();
        doc.insert("members".into(), Value::Array(list));
    }
    doc.insert("schemas".into(), json!([GROUP_URN]));
    doc.insert("id".into(), json!(row.id));
    doc.insert(
        "meta".into(),
        meta("Group", &row.created_at, &row.updated_at, row.version, &format!("{base}/Groups/{}", row.id)),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP, USER};

    fn row(scim: &str) -> UserRow {
        let t =
            chrono::NaiveDate::from_ymd_opt(2026, 1, 2).and_then(|d| d.and_hms_micro_opt(3, 4, 5, 123_456)).unwrap();
        UserRow {
            id: "u1".into(),
            account_id: "a".into(),
            email: Some("bob@example.com".into()),
            user_name: "bob".into(),
            user_name_lower: "bob".into(),
            external_id: Some("ext".into()),
            display_name: None,
            display_name_lower: None,
            given_name: Some("Bob".into()),
            family_name: None,
            department: Some("R&D".into()),
            job_title: None,
            user_type: "pro".into(),
            role: crate::domain::users::BaseRole::Member,
            custom_role_id: None,
            status: crate::domain::users::UserStatus::Active,
            addons: "webinar".into(),
            seats: String::new(),
            scim: scim.into(),
            provisioning_issues: r#"[{"code":"no_seat_left","attribute":"user_type","message":"no pro license left"}]"#
                .into(),
            last_source: "scim".into(),
            version: 3,
            created_at: t,
            updated_at: t,
            last_login_at: None,
            placed_by: None,
        }
    }

    #[test]
    fn columns_win_and_the_document_fills_the_rest() {
        let scim = json!({"schemas": [USER_URN], "userName": "old", "displayName": "Old", "active": true,
            "name": {"givenName": "Old", "familyName": "Gone", "formatted": "Bob"},
            "phoneNumbers": [{"value": "+1 555", "type": "work"}],
            "emails": [{"value": "old@example.com", "primary": true, "type": "work"}],
            PROVISOR_USER_URN: {"userType": "enterprise"}})
        .to_string();
        let r = user(&row(&scim), &UserExtras::default(), "https://h/scim/v2");
        assert_eq!(r["userName"], "bob");
        assert!(r.get("displayName").is_none());
        assert_eq!(r["name"], json!({"givenName": "Bob", "formatted": "Bob"}));
        assert_eq!(r["phoneNumbers"][0]["value"], "+1 555");
        assert_eq!(r["emails"], json!([{"value": "bob@example.com", "primary": true, "type": "work"}]));
        assert_eq!(r["active"], true);
        assert_eq!(r[ENTERPRISE_USER_URN]["department"], "R&D");
        assert_eq!(r[PROVISOR_USER_URN]["userType"], "enterprise");
        assert_eq!(r[PROVISOR_USER_URN]["provisioningIssues"][0]["code"], "no_seat_left");
        assert_eq!(r["schemas"], json!([USER_URN, ENTERPRISE_USER_URN, PROVISOR_USER_URN]));
        assert_eq!(r["meta"]["version"], "W/\"3\"");
        assert_eq!(r["meta"]["created"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(r["meta"]["location"], "https://h/scim/v2/Users/u1");
    }

    #[test]
    fn users_outside_scim_show_their_applied_state() {
        let r = user(&row("{}"), &UserExtras::default(), "https://h");
        assert_eq!(r["active"], true);
        assert_eq!(r[PROVISOR_USER_URN]["userType"], "pro");
        assert_eq!(
            r[PROVISOR_USER_URN]["addons"],
            json!({"powerPack": false, "largeMeetings": false, "webinar": true})
        );
        assert_eq!(r["emails"][0]["value"], "bob@example.com");
    }

    #[test]
    fn projection_keeps_and_drops() {
        let r = user(&row("{}"), &UserExtras::default(), "https://h");
        let p = Projection::parse(
            Some("userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None,
        )
        .unwrap();
        let v = p.apply(r.clone(), &USER);
        assert_eq!(
            v,
            json!({"schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "u1", "userName": "bob", "name": {"givenName": "Bob"},
                   ENTERPRISE_USER_URN: {"department": "R&D"}})
        );
        let p = Projection::parse(None, Some("emails.value,meta,id,externalId")).unwrap();
        let v = p.apply(r, &USER);
        assert!(v.get("meta").is_none() && v.get("externalId").is_none());
        assert_eq!(v["id"], "u1");
        assert_eq!(v["emails"][0], json!({"type": "work", "primary": true}));
        let r = user(&row("{}"), &UserExtras::default(), "https://h");
        let issues = format!("{PROVISOR_USER_URN}:provisioningIssues");
        let v = Projection::default().apply(r.clone(), &USER);
        assert!(v[PROVISOR_USER_URN].get("provisioningIssues").is_none(), "returned: request");
        let v = Projection::parse(Some(&format!("userName,{issues}")), None).unwrap().apply(r.clone(), &USER);
        assert_eq!(v[PROVISOR_USER_URN]["provisioningIssues"][0]["code"], "no_seat_left");
        assert_eq!(v["schemas"], json!([USER_URN, PROVISOR_USER_URN]));
        let v = Projection::parse(Some("userName"), None).unwrap().apply(r, &USER);
        assert_eq!(v["schemas"], json!([USER_URN]));
        let p = Projection::parse(None, Some("members")).unwrap();
        assert!(!p.wants("members") && p.wants("displayName"));
        assert!(Projection::parse(Some("bad name!"), None).is_err());
        let _ = GROUP;
    }
}
