//! SAML → provisioning: turns a [`VerifiedLogin`] into the pipeline's [`IdentityChange`].
//!
//! Plain data in, plain data out. Every attribute goes to the mapping rules under its
//! `Name` and, when it has one, its `FriendlyName`; the NameID is offered as `NameID`.
//! A handful of well-known claims (Okta's `email`/`firstName`, Entra ID and AD FS's
//! `…/claims/emailaddress`, LDAP OIDs) fill the profile directly.

use std::collections::BTreeMap;

use super::validate::VerifiedLogin;
use super::xml::name_id_format;
use crate::provisioning::{Actor, Field, IdentityChange, Operation, Shortage, Source};

/// Where the e-mail address is looked for, in order, before the NameID.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "Email",
    "emailAddress",
    "emailaddress",
    "user.email",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];
/// Used when neither an e-mail attribute nor an e-mail NameID is present (AD FS with a
/// transient NameID sends the UPN).
const UPN_ATTRIBUTES: &[&str] = &["upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"];
const GIVEN_NAME_ATTRIBUTES: &[&str] = &[
    "firstName",
    "givenName",
    "given_name",
    "first_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "urn:oid:2.5.4.42",
];
const FAMILY_NAME_ATTRIBUTES: &[&str] = &[
    "lastName",
    "surname",
    "sn",
    "family_name",
    "last_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "urn:oid:2.5.4.4",
];
const DISPLAY_NAME_ATTRIBUTES: &[&str] = &[
    "displayName",
    "display_name",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
];
const DEPARTMENT_ATTRIBUTES: &[&str] = &["department", "urn:oid:2.5.4.11"];
const TITLE_ATTRIBUTES: &[&str] = &["title", "jobTitle", "urn:oid:2.5.4.12"];

/// Why a verified login cannot become an identity change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginMappingError {
    #[error(
        "the assertion carries no e-mail address (an email/mail attribute, an emailAddress NameID or a UPN); \
         configure the IdP to send one"
    )]
    NoEmail,
}

fn first<'a>(login: &'a VerifiedLogin, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| login.first_attribute(n)).map(str::trim).filter(|v| !v.is_empty())
}

fn looks_like_email(v: &str) -> bool {
    let mut parts = v.splitn(2, '@');
    matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.') && !v.contains(char::is_whitespace))
}

/// The address the user is known by: an e-mail attribute, else an e-mail NameID, else a UPN.
pub fn login_email(login: &VerifiedLogin) -> Result<String, LoginMappingError> {
    if let Some(v) = first(login, EMAIL_ATTRIBUTES).filter(|v| looks_like_email(v)) {
        return Ok(v.to_owned());
    }
    let name_id = login.name_id.value.trim();
    let email_format = login.name_id.format.as_deref() == Some(name_id_format::EMAIL);
    let opaque_format =
        matches!(login.name_id.format.as_deref(), Some(name_id_format::TRANSIENT) | Some(name_id_format::PERSISTENT));
    if (email_format || !opaque_format) && looks_like_email(name_id) {
        return Ok(name_id.to_owned());
    }
    first(login, UPN_ATTRIBUTES).filter(|v| looks_like_email(v)).map(str::to_owned).ok_or(LoginMappingError::NoEmail)
}

/// The attributes the mapping rules see: each under its Name and its FriendlyName, plus
/// `NameID`.
pub fn rule_attributes(login: &VerifiedLogin) -> BTreeMap<String, Vec<String>> {
    let mut out = login.attributes.clone();
    for (friendly, name) in &login.friendly_names {
        if let Some(values) = login.attributes.get(name) {
            out.entry(friendly.clone()).or_insert_with(|| values.clone());
        }
    }
    out.entry("NameID".to_owned()).or_insert_with(|| vec![login.name_id.value.clone()]);
    out
}

/// The identity change of one login to `account`: create the user (JIT) or update the one
/// with this e-mail address, record the sign-in, and let the account's rules apply.
pub fn login_change(account: &str, login: &VerifiedLogin) -> Result<IdentityChange, LoginMappingError> {
    let email = login_email(login)?;
    let mut change = IdentityChange::new(
        account,
        Source::Saml,
        Actor::identity_provider(format!("saml:{}", login.issuer)),
        Operation::Upsert,
    );
    change.attributes = rule_attributes(login);
    change.shortage = Shortage::Report;
    change.invite = false;
    change.apply_mapping = true;
    let ex = &mut change.explicit;
    ex.email = Field::Set(email);
    ex.login = true;
    ex.accepts_invitation = true;
    let set = |names: &[&str]| first(login, names).map(|v| Field::Set(v.to_owned())).unwrap_or(Field::Keep);
    ex.given_name = set(GIVEN_NAME_ATTRIBUTES);
    ex.family_name = set(FAMILY_NAME_ATTRIBUTES);
    ex.display_name = set(DISPLAY_NAME_ATTRIBUTES);
    ex.department = set(DEPARTMENT_ATTRIBUTES);
    ex.job_title = set(TITLE_ATTRIBUTES);
    Ok(change)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::saml::validate::{NameId, SignedElements};

    fn login(name_id: &str, format: Option<&str>, attrs: &[(&str, &[&str])]) -> VerifiedLogin {
        VerifiedLogin {
            name_id: NameId {
                value: name_id.into(),
                format: format.map(Into::into),
                name_qualifier: None,
                sp_name_qualifier: None,
            },
            session_index: None,
            assertion_id: "_a".into(),
            assertion_expires_at: chrono::Utc::now(),
            in_response_to: None,
            issuer: "https://idp.example.com".into(),
            attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect(),
            friendly_names: BTreeMap::new(),
            authn_instant: chrono::Utc::now(),
            session_not_on_or_after: None,
            authn_context_class: None,
            signed: SignedElements { response: true, assertion: true },
            relay_state: None,
        }
    }

    #[test]
    fn email_comes_from_attribute_then_name_id_then_upn() {
        let okta = login("jane@example.com", Some(name_id_format::EMAIL), &[("email", &["JANE@example.com"])]);
        assert_eq!(login_email(&okta).unwrap(), "JANE@example.com");
        let name_id_only = login("jane@example.com", Some(name_id_format::EMAIL), &[]);
        assert_eq!(login_email(&name_id_only).unwrap(), "jane@example.com");
        let adfs = login(
            "_transient",
            Some(name_id_format::TRANSIENT),
            &[("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", &["jane@corp.example.com"])],
        );
        assert_eq!(login_email(&adfs).unwrap(), "jane@corp.example.com");
        // A persistent NameID that happens to contain @ is an opaque id, not an address.
        let opaque = login("x@y.z", Some(name_id_format::PERSISTENT), &[]);
        assert_eq!(login_email(&opaque), Err(LoginMappingError::NoEmail));
        let garbage = login("not an email", None, &[("email", &["nope"])]);
        assert_eq!(login_email(&garbage), Err(LoginMappingError::NoEmail));
    }

    #[test]
    fn change_fills_profile_and_offers_every_attribute_to_the_rules() {
        let mut l = login(
            "jane@example.com",
            Some(name_id_format::EMAIL),
            &[
                ("urn:oid:2.5.4.42", &["Jane"]),
                ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", &["Doe"]),
                ("groups", &["Everyone", "Sales"]),
            ],
        );
        l.friendly_names.insert("givenName".into(), "urn:oid:2.5.4.42".into());
        let c = login_change("acct", &l).unwrap();
        assert_eq!(c.source, Source::Saml);
        assert_eq!(c.operation, Operation::Upsert);
        assert!(c.explicit.login && c.apply_mapping && !c.invite);
        assert_eq!(c.explicit.given_name, Field::Set("Jane".into()));
        assert_eq!(c.explicit.family_name, Field::Set("Doe".into()));
        assert_eq!(c.explicit.department, Field::Keep);
        assert_eq!(c.attributes["groups"], vec!["Everyone", "Sales"]);
        assert_eq!(c.attributes["givenName"], vec!["Jane"]);
        assert_eq!(c.attributes["NameID"], vec!["jane@example.com"]);
        assert_eq!(c.actor.label, "saml:https://idp.example.com");
    }
}
