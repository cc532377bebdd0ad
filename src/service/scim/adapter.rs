//! Incoming SCIM documents → what the rest of provisor understands.
//!
//! - [`normalize`] turns a POST/PUT body into the canonical document we store: keys in
//!   their schema spelling, values type-checked (Entra's `"False"` becomes `false`),
//!   read-only and unknown-extension data dropped, `password` never kept. It reuses the
//!   PATCH applier (a path-less `replace` of the whole body onto an empty resource), so a
//!   created, replaced or patched resource obeys exactly the same rules.
//! - [`user_change`] maps a normalized User onto an [`IdentityChange`] for the provisioning
//!   pipeline: columns the pipeline owns become explicit fields, every attribute is also
//!   offered flat to the account's mapping rules (see [`flatten`]), and the document
//!   itself is stored so attributes without a column round-trip.
//!
//! Absent attributes: an attribute the previous document had and the new one lacks is
//! cleared; one neither had is left alone. So a PUT from an IdP that never sends
//! `department` does not wipe what an administrator or a mapping rule set, while removing
//! an attribute the IdP did send (PUT without it, PATCH `remove`) clears it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::domain::catalog::{AddOn, CallingPlan, UserTier};
use crate::domain::users::UserStatus;
use crate::provisioning::{Actor, ExplicitFields, Field, IdentityChange, Operation, Shortage, Source};
use crate::scim::error::ScimError;
use crate::scim::patch::{apply, PatchOpKind, PatchOperation, PatchRequest};
use crate::scim::schema::{ResourceSchema, ENTERPRISE_USER_URN, PROVISOR_USER_URN};

/// The provisor extension's add-on flags (`addons.webinar: true`).
pub const ADDON_FLAGS: [(&str, AddOn); 3] =
    [("powerPack", AddOn::PowerPack), ("largeMeetings", AddOn::LargeMeetings), ("webinar", AddOn::Webinar)];

/// Keys of a body that the server owns: ignored on input.
const SERVER_KEYS: [&str; 3] = ["schemas", "id", "meta"];

/// The canonical document for a POST/PUT body of `schema`'s resource type.
pub fn normalize(body: &Value, schema: &ResourceSchema) -> Result<Value, ScimError> {
    let obj = body.as_object().ok_or_else(|| ScimError::InvalidSyntax("the body must be a JSON object".into()))?;
    check_schemas(obj, schema)?;
    let mut value = Map::new();
    for (k, v) in obj {
        if SERVER_KEYS.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            continue;
        }
        // Data under an extension this server does not know is not ours to keep.
        if is_urn_key(k) && v.is_object() && schema.schema_by_urn(k).is_none() {
            continue;
        }
        value.insert(k.clone(), v.clone());
    }
    let request = PatchRequest {
        operations: vec![PatchOperation { op: PatchOpKind::Replace, path: None, value: Some(Value::Object(value)) }],
    };
    let base = json!({ "schemas": [schema.core.id] });
    let mut doc = apply(&base, &request, schema)
        .map_err(|e| match e {
            // "Unknown attribute" is a property of the body here, not of a PATCH path.
            ScimError::InvalidPath(m) => ScimError::InvalidSyntax(m),
            other => other,
        })?
        .resource;
    if let Some(m) = doc.as_object_mut() {
        m.remove("password");
    }
    Ok(doc)
}

/// `schemas` must be an array of strings naming the core schema (RFC 7643 §3); extension
/// URNs must be ones this resource type has.
fn check_schemas(obj: &Map<String, Value>, schema: &ResourceSchema) -> Result<(), ScimError> {
    let Some(list) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")).map(|(_, v)| v) else {
        return Err(ScimError::InvalidSyntax(format!("`schemas` is required and must contain \"{}\"", schema.core.id)));
    };
    let Some(items) = list.as_array() else {
        return Err(ScimError::InvalidSyntax("`schemas` must be an array of schema URNs".into()));
    };
    let mut has_core = false;
    for item in items {
        let Some(urn) = item.as_str() else {
            return Err(ScimError::InvalidSyntax("`schemas` must be an array of schema URNs".into()));
        };
        has_core |= urn.eq_ignore_ascii_case(schema.core.id);
    }
    if !has_core {
        return Err(ScimError::InvalidSyntax(format!("`schemas` must contain \"{}\"", schema.core.id)));
    }
    Ok(())
}

/// `doc[key]` with a case-insensitive key.
/// A key naming a schema extension (`urn:…`). Keys are client data: any UTF-8 at all.
fn is_urn_key(k: &str) -> bool {
    k.len() > 4 && k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

pub fn get<'v>(doc: &'v Value, key: &str) -> Option<&'v Value> {
    let m = doc.as_object()?;
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

/// A value at `path` (`["name", "givenName"]`) of a document.
fn at<'v>(doc: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(doc, |v, k| get(v, k))
}

/// Set when the new document has it, Clear when only the previous one had it, else Keep.
fn field(new: &Value, previous: Option<&Value>, path: &[&str]) -> Field<String> {
    match text(at(new, path)) {
        Some(v) => Field::Set(v),
        None if previous.is_some_and(|p| present(at(p, path))) => Field::Clear,
        None => Field::Keep,
    }
}

/// The e-mail addresses of a User document, primary first.
pub fn email_values(doc: &Value) -> Vec<String> {
    let Some(Value::Array(items)) = get(doc, "emails") else { return Vec::new() };
    let mut out: Vec<(u8, String)> = items
        .iter()
        .filter_map(|e| {
            let value = text(get(e, "value"))?;
            let rank = if get(e, "primary") == Some(&Value::Bool(true)) {
                0
            } else if text(get(e, "type")).is_some_and(|t| t.eq_ignore_ascii_case("work")) {
                1
            } else {
                2
            };
            Some((rank, value))
        })
        .collect();
    out.sort_by_key(|(rank, _)| *rank);
    out.into_iter().map(|(_, v)| v).collect()
}

fn invalid(attr: &str, e: impl std::fmt::Display) -> ScimError {
    ScimError::InvalidValue(format!("{attr}: {e}"))
}

/// The provisor extension object of a document, if any.
fn provisor(doc: &Value) -> Option<&Value> {
    get(doc, PROVISOR_USER_URN)
}

/// Builds the pipeline change for a normalized User document. `previous` is the stored
/// document of an existing user (for the "absent means cleared" rule).
pub fn user_change(
    account: &str,
    actor: &Actor,
    operation: Operation,
    doc: &Value,
    previous: Option<&Value>,
) -> Result<IdentityChange, ScimError> {
    let user_name = text(get(doc, "userName")).ok_or_else(|| ScimError::InvalidValue("userName is required".into()))?;
    let mut ex = ExplicitFields {
        user_name: Some(user_name),
        external_id: field(doc, previous, &["externalId"]),
        display_name: field(doc, previous, &["displayName"]),
        given_name: field(doc, previous, &["name", "givenName"]),
        family_name: field(doc, previous, &["name", "familyName"]),
        job_title: field(doc, previous, &["title"]),
        department: field(doc, previous, &[ENTERPRISE_USER_URN, "department"]),
        scim: Some(doc.clone()),
        ..ExplicitFields::default()
    };

    let emails = email_values(doc);
    let had_emails = previous.is_some_and(|p| !email_values(p).is_empty());
    match emails.first() {
        Some(primary) => ex.email = Field::Set(primary.clone()),
        None if had_emails => ex.email = Field::Clear,
        None => {}
    }
    if !emails.is_empty() || had_emails {
        ex.emails = Some(emails.clone());
    }

    ex.status = match get(doc, "active") {
        Some(Value::Bool(true)) => Some(UserStatus::Active),
        Some(Value::Bool(false)) => Some(UserStatus::Inactive),
        // Unassigning `active` returns the user to the default: active.
        _ if previous.is_some_and(|p| present(get(p, "active"))) => Some(UserStatus::Active),
        _ => None,
    };

    let ext = provisor(doc);
    let prev_ext = previous.and_then(provisor);
    let ext_text = |key: &str| ext.and_then(|e| text(get(e, key)));
    let had = |key: &str| prev_ext.is_some_and(|e| present(get(e, key)));

    if let Some(t) = ext_text("userType") {
        ex.user_type = Some(t.parse::<UserTier>().map_err(|e| invalid("userType", e))?);
    } else if had("userType") {
        ex.user_type = Some(UserTier::Basic);
    }
    match ext.and_then(|e| get(e, "addons")) {
        Some(Value::Object(flags)) if !flags.is_empty() => {
            let mut set = BTreeSet::new();
            for (name, on) in flags {
                let addon = ADDON_FLAGS
                    .iter()
                    .find(|(flag, _)| flag.eq_ignore_ascii_case(name))
                    .map(|(_, a)| *a)
                    .ok_or_else(|| invalid("addons", format!("unknown add-on {name:?}")))?;
                if on == &Value::Bool(true) {
                    set.insert(addon);
                }
            }
            ex.addons = Some(set);
        }
        _ if had("addons") => ex.addons = Some(BTreeSet::new()),
        _ => {}
    }

    let phone = ext.and_then(|e| get(e, "phone"));
    let prev_phone = prev_ext.and_then(|e| get(e, "phone"));
    let phone_field = |key: &str| -> Field<String> {
        match phone.and_then(|p| text(get(p, key))) {
            Some(v) => Field::Set(v),
            None if prev_phone.is_some_and(|p| present(get(p, key))) => Field::Clear,
            None => Field::Keep,
        }
    };
    ex.phone.site = phone_field("site");
    ex.phone.number = phone_field("number");
    ex.phone.extension = match phone_field("extension") {
        Field::Set(v) => Field::Set(v.trim().parse::<u32>().map_err(|_| {
            invalid("phone.extension", format!("{v:?} is not an extension number (0 asks for the next free one)"))
        })?),
        Field::Clear => Field::Clear,
        Field::Keep => Field::Keep,
    };
    ex.phone.calling_plan = match phone_field("callingPlan") {
        Field::Set(v) => Field::Set(v.parse::<CallingPlan>().map_err(|e| invalid("phone.callingPlan", e))?),
        Field::Clear => Field::Clear,
        Field::Keep => Field::Keep,
    };
    ex.phone.roles = match phone_field("role") {
        Field::Set(v) => Some(BTreeSet::from([v])),
        Field::Clear => Some(BTreeSet::new()),
        Field::Keep => None,
    };

    let mut change = IdentityChange::new(account, Source::Scim, actor.clone(), operation);
    change.attributes = flatten(doc);
    change.explicit = ex;
    change.shortage = Shortage::Report;
    change.invite = false;
    change.apply_mapping = true;
    Ok(change)
}

/// The attributes of a User document as mapping rules read them (`attribute` of a rule):
///
/// - every simple attribute under its name: `userName`, `displayName`, `title`,
///   `userType` (core), `active` (`true`/`false`), `externalId`, `locale`, …;
/// - sub-attributes as `name.givenName`, and for convenience also bare: `givenName`,
///   `familyName`;
/// - multi-valued attributes with every value: `emails` (also `email`: the primary one),
///   `phoneNumbers`, `roles`, `entitlements` (their `value`s), `addresses.country`, …;
/// - extension attributes under their bare name (`department`, `costCenter`, `division`,
///   `organization`, `employeeNumber`, `manager` = its value) and fully qualified;
/// - the provisor extension as `provisor.userType`, `provisor.addons.webinar` (`true`/
///   `false`), `subAccount`, `provisor.phone.extension`, `provisor.phone.site`, …;
/// - `groups`: added by the SCIM service with the names of the user's current groups.
pub fn flatten(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(obj) = doc.as_object() else { return out };
    for (k, v) in obj {
        if k == "schemas" {
            continue;
        }
        if k.eq_ignore_ascii_case(PROVISOR_USER_URN) {
            flatten_into(&mut out, "provisor", v);
            if let Some(s) = get(v, "subAccount").and_then(|x| text(Some(x))) {
                out.entry("subAccount".into()).or_default().push(s);
            }
            continue;
        }
        if is_urn_key(k) {
            if let Some(ext) = v.as_object() {
                for (name, x) in ext {
                    flatten_into(&mut out, name, x);
                    flatten_into(&mut out, &format!("{k}:{name}"), x);
                }
            }
            continue;
        }
        flatten_into(&mut out, k, v);
    }
    if let Some(name) = get(doc, "name") {
        for sub in ["givenName", "familyName"] {
            if let Some(s) = text(get(name, sub)) {
                out.entry(sub.into()).or_default().push(s);
            }
        }
    }
    if let Some(primary) = email_values(doc).into_iter().next() {
        out.insert("email".into(), vec![primary]);
    }
    out
}

fn flatten_into(out: &mut BTreeMap<String, Vec<String>>, key: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::String(s) => out.entry(key.to_owned()).or_default().push(s.clone()),
        Value::Bool(b) => out.entry(key.to_owned()).or_default().push(b.to_string()),
        Value::Number(n) => out.entry(key.to_owned()).or_default().push(n.to_string()),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) => {
                        if let Some(value) = get(item, "value") {
                            flatten_into(out, key, value);
                        }
                        if let Some(m) = item.as_object() {
                            for (sub, x) in m {
                                if !x.is_object() && !x.is_array() {
                                    flatten_into(out, &format!("{key}.{sub}"), x);
                                }
                            }
                        }
                    }
                    scalar => flatten_into(out, key, scalar),
                }
            }
        }
        Value::Object(m) => {
            if let Some(value) = m.get("value") {
                flatten_into(out, key, value);
            }
            for (sub, x) in m {
                flatten_into(out, &format!("{key}.{sub}"), x);
            }
        }
    }
}

/// The display name and external id of a normalized Group document.
pub fn group_fields(doc: &Value) -> Result<(String, Option<String>), ScimError> {
    let name = text(get(doc, "displayName"))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ScimError::InvalidValue("displayName is required".into()))?;
    if name.chars().count() > 256 {
        return Err(ScimError::InvalidValue("displayName must be at most 256 characters".into()));
    }
    Ok((name, text(get(doc, "externalId"))))
}

/// The members of a normalized Group document: `(value, display)`.
pub fn group_members(doc: &Value) -> Result<Vec<(String, Option<String>)>, ScimError> {
    let Some(Value::Array(items)) = get(doc, "members") else { return Ok(Vec::new()) };
    let mut out: Vec<(String, Option<String>)> = Vec::with_capacity(items.len());
    for m in items {
        let value =
            text(get(m, "value")).ok_or_else(|| ScimError::InvalidValue("every member needs a value".into()))?;
        if let Some(t) = text(get(m, "type")) {
            if !t.eq_ignore_ascii_case("User") {
                return Err(ScimError::InvalidValue(format!(
                    "member {value}: only users can be group members (nested groups are not supported)"
                )));
            }
        }
        if !out.iter().any(|(v, _)| *v == value) {
            out.push((value, text(get(m, "display"))));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP, USER};

    fn actor() -> Actor {
        Actor::identity_provider("scim:test")
    }

    #[test]
    fn normalize_canonicalises_keys_and_entra_booleans() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "ignored", "meta": {"created": "x"},
            "USERNAME": "Bob@Example.com", "active": "False", "password": "secret",
            "name": {"givenname": "Bob"},
            "urn:example:unknown:2.0:User": {"x": 1},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
        });
        let doc = normalize(&body, &USER).unwrap();
        assert_eq!(doc["userName"], "Bob@Example.com");
        assert_eq!(doc["active"], false);
        assert_eq!(doc["name"]["givenName"], "Bob");
        assert!(doc.get("password").is_none() && doc.get("id").is_none() && doc.get("meta").is_none());
        assert!(doc.get("urn:example:unknown:2.0:User").is_none());
        assert_eq!(doc["schemas"], json!([crate::scim::schema::USER_URN, ENTERPRISE_USER_URN]));
    }

    #[test]
    fn normalize_rejects_bad_bodies() {
        for (body, ty) in [
            (json!([]), "invalidSyntax"),
            (json!({"userName": "a"}), "invalidSyntax"),
            (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a"}), "invalidSyntax"),
            (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 5}), "invalidValue"),
            (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "nope": 5}), "invalidSyntax"),
            (
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "abcé": 1}),
                "invalidSyntax",
            ),
            (
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "é": {"x": 1}}),
                "invalidSyntax",
            ),
            (json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ""}), "invalidValue"),
        ] {
            let e = normalize(&body, &USER).unwrap_err();
            assert_eq!(e.scim_type(), ty, "{body}");
        }
    }

    #[test]
    fn user_change_maps_columns_and_clears_only_what_was_sent_before() {
        let before = normalize(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "title": "Eng",
                    "emails": [{"value": "A@x.test", "type": "work"}, {"value": "h@x.test", "primary": true}]}),
            &USER,
        )
        .unwrap();
        let c = user_change("acc", &actor(), Operation::Create, &before, None).unwrap();
        assert_eq!(c.explicit.email, Field::Set("h@x.test".into()));
        assert_eq!(c.explicit.emails, Some(vec!["h@x.test".into(), "A@x.test".into()]));
        assert_eq!(c.explicit.job_title, Field::Set("Eng".into()));
        assert_eq!(c.explicit.department, Field::Keep);
        assert_eq!(c.source, Source::Scim);
        assert!(c.apply_mapping && !c.invite);
        assert_eq!(c.attributes["title"], vec!["Eng"]);
        assert_eq!(c.attributes["email"], vec!["h@x.test"]);

        let after =
            normalize(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"}), &USER)
                .unwrap();
        let c = user_change("acc", &actor(), Operation::Create, &after, Some(&before)).unwrap();
        assert_eq!(c.explicit.job_title, Field::Clear);
        assert_eq!(c.explicit.email, Field::Clear);
        assert_eq!(c.explicit.emails, Some(vec![]));
        assert_eq!(c.explicit.department, Field::Keep);
    }

    #[test]
    fn provisor_extension_maps_to_product_fields() {
        let doc = normalize(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", PROVISOR_USER_URN], "userName": "a",
                    PROVISOR_USER_URN: {"userType": "Business Plus", "addons": {"webinar": "True", "powerPack": false}, "subAccount": "EU",
                        "phone": {"extension": "1001", "site": "HQ", "callingPlan": "Regional Unlimited", "role": "call_queue_admin"}}}),
            &USER,
        )
        .unwrap();
        let c = user_change("acc", &actor(), Operation::Create, &doc, None).unwrap();
        assert_eq!(c.explicit.user_type, Some(UserTier::BusinessPlus));
        assert_eq!(c.explicit.addons, Some(BTreeSet::from([AddOn::Webinar])));
        assert_eq!(c.explicit.phone.extension, Field::Set(1001));
        assert_eq!(c.explicit.phone.calling_plan, Field::Set(CallingPlan::RegionalUnlimited));
        assert_eq!(c.attributes["subAccount"], vec!["EU"]);
        assert_eq!(c.attributes["provisor.phone.site"], vec!["HQ"]);

        let bad = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                         PROVISOR_USER_URN: {"userType": "Platinum"}});
        let doc = normalize(&bad, &USER).unwrap();
        assert_eq!(
            user_change("acc", &actor(), Operation::Create, &doc, None).unwrap_err().scim_type(),
            "invalidValue"
        );
    }

    #[test]
    fn group_members_refuse_nested_groups() {
        let doc = normalize(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": " Eng ",
                    "members": [{"value": "u1", "display": "Bob"}, {"value": "u1"}]}),
            &GROUP,
        )
        .unwrap();
        assert_eq!(group_fields(&doc).unwrap(), ("Eng".to_owned(), None));
        assert_eq!(group_members(&doc).unwrap(), vec![("u1".to_owned(), Some("Bob".to_owned()))]);
        let nested = json!({"members": [{"value": "g1", "type": "Group"}]});
        assert_eq!(group_members(&nested).unwrap_err().scim_type(), "invalidValue");
    }
}
