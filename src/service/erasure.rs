//! Erasing a user's personal data on request (the right to erasure).
//!
//! One write transaction:
//! 1. the user is removed through the provisioning pipeline like any removal (seats,
//!    extension, number and memberships are released, group sync hears of it), and with the
//!    row go everything that hangs off it (`ON DELETE CASCADE`: e-mail index, phone profile,
//!    desk phones, attributes, sessions, tokens, invitations, delegations, codes);
//! 2. relationships that named the user as their contact forget it;
//! 3. mail addressed to the user is deleted, and other mail that names the user has the
//!    names replaced by the pseudonym;
//! 4. audit entries keep what happened and when, but every personal value in them becomes
//!    the user's pseudonym, `erased:<user id>` (the id is random and, with the row gone,
//!    identifies nobody, yet the entries of one person still read as one person);
//! 5. the erasure itself is audited, with the pseudonym and counts only.
//!
//! What is personal: the user's e-mail addresses, user name, external id, display name and
//! full name anywhere in those texts; and, in entries about the user, every value of a
//! personal field (e-mail, names, department, job title), old values included. A directory
//! that still holds the person pushes them again on its next sync: erasure is for people the
//! identity provider no longer has (or is told to drop too).

use serde::Serialize;

use crate::domain::accounts::normalize_email;
use crate::error::{AppError, AppResult};
use crate::provisioning::{self, audit, Actor, Env};
use crate::store::erasure::{self as q, AuditText, MailText};
use crate::store::{self, DbConn};

/// What an erasure changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureReport {
    /// The erased user's id (the user no longer exists).
    pub user_id: String,
    /// What the audit log now says instead of the user's personal data.
    pub pseudonym: String,
    /// Audit entries rewritten.
    pub audit_entries: usize,
    /// Outbox mail addressed to the user, deleted.
    pub mail_deleted: usize,
    /// Other outbox mail that named the user, rewritten.
    pub mail_rewritten: usize,
}

/// Audit fields whose values are the person's own data.
const PERSONAL_FIELDS: [&str; 10] = [
    "user",
    "email",
    "emails",
    "user_name",
    "external_id",
    "display_name",
    "given_name",
    "family_name",
    "department",
    "job_title",
];

/// The personal strings of one user, lower-cased: `specific` ones are replaced wherever
/// they occur inside a text; `names` (a given or family name alone) only where a whole
/// value equals them, since "Ann" inside "Annual" is not Ann.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalStrings {
    pub specific: Vec<String>,
    pub names: Vec<String>,
}

impl PersonalStrings {
    /// Collects the strings; a specific string shorter than 4 characters (an unlikely user
    /// name or external id) only counts as a whole value.
    pub fn new(specific: impl IntoIterator<Item = String>, names: impl IntoIterator<Item = String>) -> Self {
        let mut out = PersonalStrings::default();
        for s in specific {
            let s = s.trim().to_lowercase();
            if s.chars().count() >= 4 {
                push_unique(&mut out.specific, s);
            } else if !s.is_empty() {
                push_unique(&mut out.names, s);
            }
        }
        for s in names {
            let s = s.trim().to_lowercase();
            if !s.is_empty() && !out.specific.contains(&s) {
                push_unique(&mut out.names, s);
            }
        }
        // Longest first, so an address is replaced before the user name inside it.
        out.specific.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }

    /// `text` with every personal string replaced by `pseudonym`; `None` if nothing was.
    pub fn scrub_text(&self, text: &str, pseudonym: &str) -> Option<String> {
        let lower = text.to_lowercase();
        if self.names.contains(&lower.trim().to_owned()) {
            return Some(pseudonym.to_owned());
        }
        let mut out = text.to_owned();
        let mut changed = false;
        for needle in &self.specific {
            if let Some(replaced) = replace_ignoring_case(&out, needle, pseudonym) {
                out = replaced;
                changed = true;
            }
        }
        changed.then_some(out)
    }

    /// Rewrites the strings of a JSON value in place; in an entry about the user
    /// (`about_user`), `changes[].from/to` of personal fields are replaced whatever they
    /// hold. Returns whether anything changed.
    pub fn scrub_json(&self, value: &mut serde_json::Value, pseudonym: &str, about_user: bool) -> bool {
        use serde_json::Value;
        match value {
            Value::String(s) => match self.scrub_text(s, pseudonym) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.scrub_json(item, pseudonym, about_user);
                }
                changed
            }
            Value::Object(map) => {
                let personal_change = about_user
                    && map.get("field").and_then(Value::as_str).is_some_and(|f| PERSONAL_FIELDS.contains(&f));
                let mut changed = false;
                for (key, item) in map.iter_mut() {
                    if personal_change && (key == "from" || key == "to") && !item.is_null() {
                        if item.as_str() != Some(pseudonym) {
                            *item = Value::String(pseudonym.to_owned());
                            changed = true;
                        }
                    } else {
                        changed |= self.scrub_json(item, pseudonym, about_user);
                    }
                }
                changed
            }
            _ => false,
        }
    }
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// `haystack` with every case-insensitive occurrence of `needle` (lower case) replaced;
/// `None` if there is none. Matching is per character so that non-ASCII text is safe.
fn replace_ignoring_case(haystack: &str, needle: &str, with: &str) -> Option<String> {
    let needle: Vec<char> = needle.chars().collect();
    let chars: Vec<char> = haystack.chars().collect();
    let mut out = String::with_capacity(haystack.len());
    let mut found = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let matches = needle
            .iter()
            .enumerate()
            .all(|(k, n)| chars.get(i + k).is_some_and(|h| h.to_lowercase().eq(n.to_lowercase())));
        if matches && !needle.is_empty() {
            out.push_str(with);
            found = true;
            i += needle.len();
        } else {
            out.push(c);
            i += 1;
        }
    }
    found.then_some(out)
}

/// The pseudonym an erased user is known by in the audit log.
pub fn pseudonym(user_id: &str) -> String {
    format!("erased:{user_id}")
}

/// Erases the user `user` (an id, or an e-mail address) of `account` in the caller's
/// transaction. The owner cannot be erased (hand the account over first); the actor must
/// be allowed to remove the user, exactly as for a removal.
pub fn erase_user(conn: &mut DbConn, env: &Env, actor: &Actor, account: &str, user: &str) -> AppResult<ErasureReport> {
    let row = match store::users::find(conn, account, user)? {
        Some(row) => row,
        None => {
            let by_email = normalize_email(user).ok().map(|e| store::users::find_by_email(conn, &e)).transpose()?;
            by_email.flatten().filter(|u| u.account_id == account).ok_or(AppError::not_found("user"))?
        }
    };
    let mut specific: Vec<String> = store::users::emails_of(conn, &row.id)?;
    specific.extend(row.email.clone());
    specific.push(row.user_name.clone());
    specific.extend(row.external_id.clone());
    specific.extend(row.display_name.clone());
    if let (Some(g), Some(f)) = (&row.given_name, &row.family_name) {
        specific.push(format!("{g} {f}"));
    }
    let names = [row.given_name.clone(), row.family_name.clone()];
    let personal = PersonalStrings::new(specific, names.into_iter().flatten());
    let addresses: Vec<String> = store::users::emails_of(conn, &row.id)?
        .into_iter()
        .chain(row.email.clone())
        .map(|e| e.to_lowercase())
        .collect();

    let change = super::users::delete_change(account, actor, actor.via, &row.id);
    provisioning::run(conn, env, change)?;
    q::forget_contact(conn, &row.id)?;

    let name = pseudonym(&row.id);
    let mut needles = personal.specific.clone();
    needles.push(row.id.to_lowercase());
    let mut audit_entries = 0;
    for mut entry in q::audit_mentioning(conn, &needles)? {
        if scrub_audit_entry(&personal, &row.id, &name, &mut entry) {
            q::rewrite_audit(conn, &entry)?;
            audit_entries += 1;
        }
    }

    let (mut to_delete, mut mail_rewritten) = (Vec::new(), 0);
    for mut mail in q::mail_mentioning(conn, &personal.specific)? {
        if addresses.contains(&mail.recipient.trim().to_lowercase()) {
            to_delete.push(mail.id);
        } else if scrub_mail(&personal, &name, &mut mail) {
            q::rewrite_mail(conn, &mail)?;
            mail_rewritten += 1;
        }
    }
    let mail_deleted = q::delete_mail(conn, &to_delete)?;

    let report =
        ErasureReport { user_id: row.id.clone(), pseudonym: name, audit_entries, mail_deleted, mail_rewritten };
    let detail = serde_json::to_value(&report).map_err(|e| AppError::Internal(e.to_string()))?;
    audit::record(conn, env, account, actor, actor.via, "user.erased", Some(&row.id), detail)?;
    Ok(report)
}

/// Rewrites one audit entry; whether it changed.
fn scrub_audit_entry(personal: &PersonalStrings, user_id: &str, pseudonym: &str, entry: &mut AuditText) -> bool {
    let about_user = entry.target.as_deref() == Some(user_id);
    let mut changed = false;
    if let Some(actor) = personal.scrub_text(&entry.actor, pseudonym) {
        entry.actor = actor;
        changed = true;
    }
    if let Some(target) = entry.target.as_deref().and_then(|t| personal.scrub_text(t, pseudonym)) {
        entry.target = Some(target);
        changed = true;
    }
    match serde_json::from_str::<serde_json::Value>(&entry.detail) {
        Ok(mut detail) => {
            if personal.scrub_json(&mut detail, pseudonym, about_user) {
                entry.detail = detail.to_string();
                changed = true;
            }
        }
        Err(_) => {
            if let Some(detail) = personal.scrub_text(&entry.detail, pseudonym) {
                entry.detail = detail;
                changed = true;
            }
        }
    }
    changed
}

fn scrub_mail(personal: &PersonalStrings, pseudonym: &str, mail: &mut MailText) -> bool {
    let subject = personal.scrub_text(&mail.subject, pseudonym);
    let body = personal.scrub_text(&mail.body, pseudonym);
    let changed = subject.is_some() || body.is_some();
    if let Some(s) = subject {
        mail.subject = s;
    }
    if let Some(b) = body {
        mail.body = b;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ann() -> PersonalStrings {
        PersonalStrings::new(
            ["Ann.Lee@Example.com".to_owned(), "Ann Lee".to_owned(), "ext-77".to_owned(), "al".to_owned()],
            ["Ann".to_owned(), "Lee".to_owned()],
        )
    }

    #[test]
    fn specific_strings_go_wherever_they_are_and_names_only_as_whole_values() {
        let p = ann();
        assert_eq!(p.scrub_text("mail to ANN.LEE@example.com now", "X").as_deref(), Some("mail to X now"));
        assert_eq!(p.scrub_text("Dear Ann Lee,", "X").as_deref(), Some("Dear X,"));
        assert_eq!(p.scrub_text("ann", "X").as_deref(), Some("X"));
        assert_eq!(p.scrub_text("AL", "X").as_deref(), Some("X"), "a short user name as a whole value");
        assert_eq!(p.scrub_text("Annual report", "X"), None);
        assert_eq!(p.scrub_text("always", "X"), None, "a short string is not looked for inside words");
    }

    #[test]
    fn non_ascii_text_around_a_match_is_kept() {
        let p = PersonalStrings::new(["Zoë Straße".to_owned()], []);
        assert_eq!(p.scrub_text("für ZOË STRASSE? no; zoë straße!", "X").as_deref(), Some("für ZOË STRASSE? no; X!"));
    }

    #[test]
    fn an_entry_about_the_user_loses_every_personal_value_even_old_ones() {
        let p = ann();
        let mut detail = json!({ "changes": [
            { "field": "given_name", "from": "Annie", "to": "Ann" },
            { "field": "department", "from": "Sales" },
            { "field": "role", "from": "member", "to": "admin" },
        ], "note": "by ann.lee@example.com" });
        assert!(p.scrub_json(&mut detail, "X", true));
        assert_eq!(
            detail,
            json!({ "changes": [
                { "field": "given_name", "from": "X", "to": "X" },
                { "field": "department", "from": "X" },
                { "field": "role", "from": "member", "to": "admin" },
            ], "note": "by X" })
        );
        // In an entry about someone else only the user's own strings go.
        let mut other = json!({ "changes": [{ "field": "given_name", "from": "Bob", "to": "Ann" }] });
        assert!(p.scrub_json(&mut other, "X", false));
        assert_eq!(other, json!({ "changes": [{ "field": "given_name", "from": "Bob", "to": "X" }] }));
        assert!(!p.scrub_json(&mut other, "X", false), "scrubbing twice changes nothing");
    }
}
