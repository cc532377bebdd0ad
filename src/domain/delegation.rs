//! Delegated administration, the rules: relationship states and their timing, what a
//! delegate may hold, one-time codes, expiry warnings. Plain data over plain instants; the
//! service applies them and `store` keeps the rows.
//!
//! Decisions (also in the README):
//! - A relationship's state is computed from its stored instants at every request
//!   ([`effective`]), so expiry holds to the second with no background task; the periodic
//!   sweep only writes down (and audits, and mails) what has already become true.
//! - An auto-extending relationship moves its expiry by [`AUTO_EXTEND_DAYS`] each time it is
//!   reached, until terminated; it gets no expiry warnings (it does not expire).
//! - When several warnings are due at once (a relationship created with 5 days left), only
//!   the nearest is mailed; the earlier ones are recorded as passed.
//! - A one-time code is always required to enter a customer account, MFA at the partner's
//!   IdP or not: the assertion is the partner's own claim about a login that may be hours
//!   old, while the code proves the delegate now, and one path is simpler to audit.

use chrono::{Duration, NaiveDateTime};

use super::authz::{Area, Permission, PermissionSet};

/// The longest a relationship may run from now (GDAP's P2Y).
pub const MAX_DURATION_DAYS: i64 = 730;
/// One automatic extension (GDAP's `autoExtendDuration` P180D).
pub const AUTO_EXTEND_DAYS: i64 = 180;
/// A request nobody answers expires after this.
pub const REQUEST_TTL_DAYS: i64 = 90;
/// Expiry warnings, days before the end.
pub const WARNING_DAYS: [i32; 3] = [30, 7, 1];
/// A one-time code's life.
pub const CODE_TTL_MINUTES: i64 = 10;
/// Wrong tries before a code locks.
pub const CODE_MAX_TRIES: i32 = 5;
/// The shortest interval between two codes for one delegate and relationship.
pub const CODE_RESEND_SECONDS: i64 = 60;
/// Digits of a one-time code.
pub const CODE_DIGITS: usize = 8;
/// A delegated token's longest life (and never past the relationship's end).
pub const SESSION_HOURS: i64 = 8;

/// Where a relationship stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The customer invited a partner user, who has not accepted yet.
    Invited,
    /// The partner asked; the customer has not answered yet.
    Pending,
    Active,
    Declined,
    Expired,
    Terminated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Invited => "invited",
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Declined => "declined",
            Status::Expired => "expired",
            Status::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "invited" => Status::Invited,
            "pending" => Status::Pending,
            "active" => Status::Active,
            "declined" => Status::Declined,
            "expired" => Status::Expired,
            "terminated" => Status::Terminated,
            _ => return None,
        })
    }

    /// Declined, expired or terminated: nothing changes it any more.
    pub fn is_ended(self) -> bool {
        matches!(self, Status::Declined | Status::Expired | Status::Terminated)
    }
}

/// Which end of a relationship a principal stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Partner,
    Customer,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Partner => "partner",
            Side::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "partner" => Some(Side::Partner),
            "customer" => Some(Side::Customer),
            _ => None,
        }
    }
}

/// The timing facts of a relationship, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub status: Status,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub auto_extend: bool,
}

/// A relationship's state at `now`, with the expiry in force then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub status: Status,
    pub expires_at: Option<NaiveDateTime>,
    /// How many automatic extensions `now` implies beyond the stored expiry.
    pub extensions: i64,
}

/// The state a relationship is in at `now`, from its stored instants alone.
pub fn effective(t: Timing, now: NaiveDateTime) -> Effective {
    let same = Effective { status: t.status, expires_at: t.expires_at, extensions: 0 };
    match t.status {
        Status::Pending | Status::Invited if now >= t.created_at + Duration::days(REQUEST_TTL_DAYS) => {
            Effective { status: Status::Expired, ..same }
        }
        Status::Active => match t.expires_at {
            Some(end) if now >= end && t.auto_extend => {
                let step = Duration::days(AUTO_EXTEND_DAYS);
                let behind = (now - end).num_seconds() / step.num_seconds() + 1;
                Effective { status: Status::Active, expires_at: Some(end + step * behind as i32), extensions: behind }
            }
            Some(end) if now >= end => Effective { status: Status::Expired, ..same },
            _ => same,
        },
        _ => same,
    }
}

/// Why a requested expiry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    #[error("expires_at must be in the future")]
    Past,
    #[error("expires_at may be at most {MAX_DURATION_DAYS} days (2 years) from now")]
    TooFar,
}

pub fn check_expiry(expires_at: Option<NaiveDateTime>, now: NaiveDateTime) -> Result<(), ExpiryError> {
    match expires_at {
        Some(t) if t <= now => Err(ExpiryError::Past),
        Some(t) if t > now + Duration::days(MAX_DURATION_DAYS) => Err(ExpiryError::TooFar),
        _ => Ok(()),
    }
}

/// What no delegate holds in a customer account, whatever the relationship says: they
/// could otherwise mint tokens, write roles or open relationships and so outlive it.
pub fn never_delegated() -> PermissionSet {
    [Permission::edit(Area::Tokens), Permission::edit(Area::Roles), Permission::edit(Area::ExternalAccounts)]
        .into_iter()
        .collect()
}

/// What a delegate holds in the customer: the relationship's permissions without
/// [`never_delegated`] (viewing stays).
pub fn delegate_permissions(relationship: PermissionSet) -> PermissionSet {
    relationship.iter().filter(|p| !never_delegated().contains(*p) || p.level == super::authz::Level::View).collect()
}

/// The warnings due at `now` for a relationship ending at `expires_at`, given those already
/// recorded: `(mail, record)` — the one to mail (the nearest due) and all to record.
pub fn warnings_due(expires_at: NaiveDateTime, now: NaiveDateTime, recorded: &[i32]) -> (Option<i32>, Vec<i32>) {
    if now >= expires_at {
        return (None, Vec::new());
    }
    let due: Vec<i32> = WARNING_DAYS
        .into_iter()
        .filter(|d| now >= expires_at - Duration::days(i64::from(*d)) && !recorded.contains(d))
        .collect();
    (due.iter().copied().min(), due)
}

/// A stable pseudonym for a delegate of a relationship, shown to customers of undisclosed
/// relationships instead of the person.
pub fn pseudonym(relationship_id: &str, user_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{relationship_id}\u{1f}{user_id}").as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("delegate-{hex}")
}

/// Where a one-time code stands against a submitted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    /// Wrong value; the try is counted.
    Wrong,
    /// Used already or past its life.
    Expired,
    /// Too many wrong tries; a new code may be asked for in this many seconds.
    Locked {
        retry_after_secs: u64,
    },
}

/// The facts of the latest code of a delegate.
#[derive(Debug, Clone, Copy)]
pub struct CodeFacts {
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub failed_attempts: i32,
    pub used: bool,
    pub matches: bool,
}

pub fn check_code(c: CodeFacts, now: NaiveDateTime) -> CodeCheck {
    if c.used || now >= c.expires_at {
        return CodeCheck::Expired;
    }
    if c.failed_attempts >= CODE_MAX_TRIES {
        return CodeCheck::Locked { retry_after_secs: resend_wait(c.created_at, now).max(1) };
    }
    if c.matches {
        CodeCheck::Accepted
    } else {
        CodeCheck::Wrong
    }
}

/// Seconds before another code may be sent after one made at `last` (0: now).
pub fn resend_wait(last: NaiveDateTime, now: NaiveDateTime) -> u64 {
    let next = last + Duration::seconds(CODE_RESEND_SECONDS);
    u64::try_from((next - now).num_seconds()).unwrap_or(0)
}

/// A delegated token's end: [`SESSION_HOURS`] from now, never past the relationship's end.
pub fn session_end(now: NaiveDateTime, relationship_end: Option<NaiveDateTime>) -> NaiveDateTime {
    let end = now + Duration::hours(SESSION_HOURS);
    relationship_end.map_or(end, |r| r.min(end))
}

/// Does a change from `current` to `requested` widen the scope (so the customer approves it)?
pub fn widens(current: PermissionSet, requested: PermissionSet) -> bool {
    !requested.is_subset(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2027, 1, day).unwrap().and_hms_opt(12, 0, 0).unwrap()
    }

    fn timing(status: Status, expires: Option<NaiveDateTime>, auto: bool) -> Timing {
        Timing { status, created_at: at(1), expires_at: expires, auto_extend: auto }
    }

    #[test]
    fn expiry_holds_at_the_instant() {
        let t = timing(Status::Active, Some(at(10)), false);
        assert_eq!(effective(t, at(10) - Duration::seconds(1)).status, Status::Active);
        assert_eq!(effective(t, at(10)).status, Status::Expired);
        assert_eq!(effective(timing(Status::Active, None, false), at(31)).status, Status::Active);
    }

    #[test]
    fn auto_extension_moves_the_end_in_steps() {
        let t = timing(Status::Active, Some(at(10)), true);
        let e = effective(t, at(10));
        assert_eq!((e.status, e.expires_at, e.extensions), (Status::Active, Some(at(10) + Duration::days(180)), 1));
        let e = effective(t, at(10) + Duration::days(400));
        assert_eq!(e.expires_at, Some(at(10) + Duration::days(540)));
        assert_eq!(e.extensions, 3);
    }

    #[test]
    fn an_unanswered_request_expires_after_ninety_days() {
        let t = timing(Status::Pending, None, false);
        assert_eq!(effective(t, at(1) + Duration::days(89)).status, Status::Pending);
        assert_eq!(effective(t, at(1) + Duration::days(90)).status, Status::Expired);
        assert_eq!(
            effective(timing(Status::Declined, None, false), at(1) + Duration::days(900)).status,
            Status::Declined
        );
    }

    #[test]
    fn expiry_must_be_future_and_within_two_years() {
        assert_eq!(check_expiry(Some(at(1)), at(1)), Err(ExpiryError::Past));
        assert_eq!(check_expiry(Some(at(1) + Duration::days(731)), at(1)), Err(ExpiryError::TooFar));
        assert!(check_expiry(Some(at(1) + Duration::days(730)), at(1)).is_ok());
        assert!(check_expiry(None, at(1)).is_ok());
    }

    #[test]
    fn delegates_never_hold_tokens_roles_or_relationship_edit() {
        let d = delegate_permissions(PermissionSet::all());
        for a in [Area::Tokens, Area::Roles, Area::ExternalAccounts] {
            assert!(!d.contains(Permission::edit(a)) && d.contains(Permission::view(a)), "{a:?}");
        }
        assert!(d.contains(Permission::edit(Area::Users)));
    }

    #[test]
    fn warnings_go_out_once_and_only_the_nearest_when_several_are_due() {
        let end = at(31);
        assert_eq!(warnings_due(end, end - Duration::days(31), &[]), (None, vec![]));
        assert_eq!(warnings_due(end, end - Duration::days(30), &[]), (Some(30), vec![30]));
        assert_eq!(warnings_due(end, end - Duration::days(20), &[30]), (None, vec![]));
        assert_eq!(warnings_due(end, end - Duration::days(5), &[]), (Some(7), vec![30, 7]));
        assert_eq!(warnings_due(end, end - Duration::hours(2), &[30, 7]), (Some(1), vec![1]));
        assert_eq!(warnings_due(end, end, &[]), (None, vec![]));
    }

    #[test]
    fn codes_lock_expire_and_are_single_use() {
        let facts = CodeFacts {
            created_at: at(1),
            expires_at: at(1) + Duration::minutes(10),
            failed_attempts: 0,
            used: false,
            matches: true,
        };
        assert_eq!(check_code(facts, at(1)), CodeCheck::Accepted);
        assert_eq!(check_code(CodeFacts { matches: false, ..facts }, at(1)), CodeCheck::Wrong);
        assert_eq!(check_code(CodeFacts { used: true, ..facts }, at(1)), CodeCheck::Expired);
        assert_eq!(check_code(facts, at(1) + Duration::minutes(10)), CodeCheck::Expired);
        assert_eq!(
            check_code(CodeFacts { failed_attempts: 5, ..facts }, at(1) + Duration::seconds(20)),
            CodeCheck::Locked { retry_after_secs: 40 }
        );
    }

    #[test]
    fn sessions_end_with_the_relationship() {
        assert_eq!(session_end(at(1), None), at(1) + Duration::hours(8));
        assert_eq!(session_end(at(1), Some(at(1) + Duration::hours(1))), at(1) + Duration::hours(1));
    }

    #[test]
    fn pseudonyms_are_stable_and_distinct() {
        assert_eq!(pseudonym("r1", "u1"), pseudonym("r1", "u1"));
        assert_ne!(pseudonym("r1", "u1"), pseudonym("r1", "u2"));
        assert_ne!(pseudonym("r1", "u1"), pseudonym("r2", "u1"));
        assert!(pseudonym("r", "u").starts_with("delegate-"));
    }

    #[test]
    fn only_a_wider_set_needs_approval() {
        let users_view: PermissionSet = [Permission::view(Area::Users)].into_iter().collect();
        let users_edit: PermissionSet = [Permission::edit(Area::Users)].into_iter().collect();
        assert!(widens(users_view, users_edit));
        assert!(!widens(users_edit, users_view));
        assert!(!widens(users_edit, users_edit));
    }
}
