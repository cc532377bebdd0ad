//! Accounts: kinds, the two- and three-tier tree, names, and the rules for creating and
//! disassociating sub accounts.

use serde::{Deserialize, Serialize};

/// What an account is, derived from its place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Standard,
    Master,
    Sub,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    PayByMaster,
    Separate,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::PayByMaster => "pay_by_master",
            Billing::Separate => "separate",
        }
    }

    pub fn parse(s: &str) -> Option<Billing> {
        match s {
            "pay_by_master" => Some(Billing::PayByMaster),
            "separate" => Some(Billing::Separate),
            _ => None,
        }
    }
}

/// The facts about an account that the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub id: String,
    pub parent_id: Option<String>,
    pub is_master: bool,
    pub bulk_licensing: bool,
    /// Depth in the tree: 1 for a top-level account, 2 for its subs, 3 below a pseudo-master.
    pub depth: u8,
}

impl AccountFacts {
    pub fn kind(&self) -> AccountKind {
        match (&self.parent_id, self.is_master) {
            (Some(_), _) => AccountKind::Sub,
            (None, true) => AccountKind::Master,
            (None, false) => AccountKind::Standard,
        }
    }

    /// A sub account that manages subs of its own (the middle of a three-tier tree).
    pub fn is_pseudo_master(&self) -> bool {
        self.parent_id.is_some() && self.is_master
    }
}

/// Deepest level of the tree: top master → pseudo-master → sub.
pub const MAX_DEPTH: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRuleError {
    #[error("account {0} is not a master account and cannot own sub accounts")]
    NotAMaster(String),
    #[error("a sub account at the third tier cannot manage sub accounts of its own")]
    TooDeep,
    #[error("{0}")]
    InvalidName(String),
    #[error("invalid e-mail address {0:?}")]
    InvalidEmail(String),
    #[error(
        "invalid vanity name {0:?}: use 3 to 63 lowercase letters, digits or '-', not starting or ending with '-'"
    )]
    InvalidVanity(String),
    #[error("invalid domain {0:?}")]
    InvalidDomain(String),
}

/// Checks that `parent` may own a new sub account, which itself may be a master when
/// `child_is_master` (three-tier).
pub fn check_new_sub(parent: &AccountFacts, child_is_master: bool) -> Result<u8, AccountRuleError> {
    if !parent.is_master {
        return Err(AccountRuleError::NotAMaster(parent.id.clone()));
    }
    let depth = parent.depth + 1;
    if depth > MAX_DEPTH || (child_is_master && depth >= MAX_DEPTH) {
        return Err(AccountRuleError::TooDeep);
    }
    Ok(depth)
}

pub fn validate_account_name(name: &str) -> Result<String, AccountRuleError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(AccountRuleError::InvalidName("account name must be 1 to 128 printable characters".into()));
    }
    Ok(name.to_owned())
}

pub fn validate_vanity(name: &str) -> Result<String, AccountRuleError> {
    let v = name.trim().to_ascii_lowercase();
    let ok = (3..=63).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(v)
    } else {
        Err(AccountRuleError::InvalidVanity(name.to_owned()))
    }
}

pub fn validate_domain(domain: &str) -> Result<String, AccountRuleError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_alphabetic()));
    if ok {
        Ok(d)
    } else {
        Err(AccountRuleError::InvalidDomain(domain.to_owned()))
    }
}

/// Normalises and checks an e-mail address: the one e-mail rule of the product (API, CSV,
/// SCIM, SAML). A pragmatic subset of RFC 5321/5322's addr-spec — what identity providers
/// and mail systems accept in practice: an ASCII dot-atom local part of at most 64
/// characters and a DNS domain (internationalized addresses are refused, as most mail and
/// meeting platforms do). Returns it lowercased.
pub fn normalize_email(email: &str) -> Result<String, AccountRuleError> {
    let e = email.trim();
    let bad = || AccountRuleError::InvalidEmail(email.to_owned());
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = e.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    if !local_ok {
        return Err(bad());
    }
    validate_domain(domain).map_err(|_| bad())?;
    Ok(e.to_lowercase())
}

/// The domain part of a normalised address.
pub fn email_domain(email: &str) -> Option<&str> {
    email.rsplit_once('@').map(|(_, d)| d)
}

/// What disassociating a sub account must do with its seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisassociationPlan {
    /// Nothing delegated is in use: return the delegated seats to the master.
    ReturnSeats,
    /// Seats are in use and the caller asked to downgrade those users to Basic first.
    DowngradeThenReturn,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisassociationError {
    #[error("account {0} is not a sub account")]
    NotASub(String),
    #[error("{in_use} delegated license(s) are in use in the sub account; downgrade those users first or ask for it with downgrade_users=true")]
    SeatsInUse { in_use: i64 },
    #[error("the sub account still manages sub accounts of its own; disassociate those first")]
    HasSubs,
}

/// Decides whether a sub account may leave its master. Delegated seats go back to the master
/// so that they are never counted twice; seats in use block it unless downgrading is asked.
pub fn plan_disassociation(
    sub: &AccountFacts,
    delegated_in_use: i64,
    has_own_subs: bool,
    downgrade_users: bool,
) -> Result<DisassociationPlan, DisassociationError> {
    if sub.parent_id.is_none() {
        return Err(DisassociationError::NotASub(sub.id.clone()));
    }
    if has_own_subs {
        return Err(DisassociationError::HasSubs);
    }
    match (delegated_in_use, downgrade_users) {
        (0, _) => Ok(DisassociationPlan::ReturnSeats),
        (_, true) => Ok(DisassociationPlan::DowngradeThenReturn),
        (n, false) => Err(DisassociationError::SeatsInUse { in_use: n }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(parent: Option<&str>, master: bool, depth: u8) -> AccountFacts {
        AccountFacts {
            id: "a".into(),
            parent_id: parent.map(str::to_owned),
            is_master: master,
            bulk_licensing: true,
            depth,
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(facts(None, false, 1).kind(), AccountKind::Standard);
        assert_eq!(facts(None, true, 1).kind(), AccountKind::Master);
        assert_eq!(facts(Some("m"), false, 2).kind(), AccountKind::Sub);
        assert!(facts(Some("m"), true, 2).is_pseudo_master());
    }

    #[test]
    fn tree_depth() {
        assert_eq!(check_new_sub(&facts(None, true, 1), true), Ok(2));
        assert_eq!(check_new_sub(&facts(Some("m"), true, 2), false), Ok(3));
        assert_eq!(check_new_sub(&facts(Some("m"), true, 2), true), Err(AccountRuleError::TooDeep));
        assert!(matches!(check_new_sub(&facts(None, false, 1), false), Err(AccountRuleError::NotAMaster(_))));
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" Ann.Lee@Example.COM "), Ok("ann.lee@example.com".into()));
        for bad in ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a..b@c.com", "a@-b.com", "a@b.c0m"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vanity_and_domains() {
        assert_eq!(validate_vanity("Acme-Health"), Ok("acme-health".into()));
        assert!(validate_vanity("-acme").is_err());
        assert!(validate_vanity("ac").is_err());
        assert_eq!(validate_domain("Health.Acme.org."), Ok("health.acme.org".into()));
        assert!(validate_domain("localhost").is_err());
    }

    #[test]
    fn disassociation() {
        let sub = facts(Some("m"), false, 2);
        assert_eq!(plan_disassociation(&sub, 0, false, false), Ok(DisassociationPlan::ReturnSeats));
        assert_eq!(plan_disassociation(&sub, 3, false, false), Err(DisassociationError::SeatsInUse { in_use: 3 }));
        assert_eq!(plan_disassociation(&sub, 3, false, true), Ok(DisassociationPlan::DowngradeThenReturn));
        assert_eq!(plan_disassociation(&sub, 0, true, true), Err(DisassociationError::HasSubs));
    }
}
