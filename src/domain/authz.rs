//! Who may do what: the permission catalogue, the standing of whoever acts, and the grant
//! rules. Plain data; the services ask these questions and `http` only renders refusals.
//!
//! The catalogue is every admin area × `view`/`edit` (`edit` implies `view`). Built-in roles
//! and custom roles are sets of it. Two rules hold everywhere:
//! - **nobody grants what they do not hold** (roles, custom-role contents, tokens, mapping
//!   rules): a grant is allowed only when the granted set is a subset of the grantor's;
//! - **only the owner changes the owner** (role, status, account, deletion), besides the
//!   platform operator and the server itself.

use serde::Serialize;

/// An admin area of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Account,
    Domains,
    Users,
    Groups,
    Roles,
    Licenses,
    SubAccounts,
    PhoneSites,
    PhoneNumbers,
    PhoneUsers,
    Sso,
    Mapping,
    Tokens,
    Audit,
    Reports,
    ExternalAccounts,
}

impl Area {
    pub const ALL: [Area; 16] = [
        Area::Account,
        Area::Domains,
        Area::Users,
        Area::Groups,
        Area::Roles,
        Area::Licenses,
        Area::SubAccounts,
        Area::PhoneSites,
        Area::PhoneNumbers,
        Area::PhoneUsers,
        Area::Sso,
        Area::Mapping,
        Area::Tokens,
        Area::Audit,
        Area::Reports,
        Area::ExternalAccounts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Account => "account",
            Area::Domains => "domains",
            Area::Users => "users",
            Area::Groups => "groups",
            Area::Roles => "roles",
            Area::Licenses => "licenses",
            Area::SubAccounts => "sub_accounts",
            Area::PhoneSites => "phone_sites",
            Area::PhoneNumbers => "phone_numbers",
            Area::PhoneUsers => "phone_users",
            Area::Sso => "sso",
            Area::Mapping => "mapping",
            Area::Tokens => "tokens",
            Area::Audit => "audit",
            Area::Reports => "reports",
            Area::ExternalAccounts => "external_accounts",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Area::Account => "the account's profile and settings",
            Area::Domains => "the account's e-mail domain claims",
            Area::Users => "users, their types, roles and invitations",
            Area::Groups => "groups and their members",
            Area::Roles => "custom roles",
            Area::Licenses => "the account's licenses",
            Area::SubAccounts => "sub accounts and the licenses delegated to them",
            Area::PhoneSites => "phone sites",
            Area::PhoneNumbers => "the phone number pool",
            Area::PhoneUsers => "users' phone settings and the bulk phone CSV",
            Area::Sso => "SAML single sign-on configuration",
            Area::Mapping => "mapping rules",
            Area::Tokens => "API and SCIM tokens",
            Area::Audit => "the audit log",
            Area::Reports => "usage reports",
            Area::ExternalAccounts => "partner relationships and their delegates",
        }
    }

    fn index(self) -> u32 {
        self as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    View,
    Edit,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::View => "view",
            Level::Edit => "edit",
        }
    }
}

/// One entry of the catalogue, spelled `area:level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub area: Area,
    pub level: Level,
}

impl Permission {
    pub const fn view(area: Area) -> Permission {
        Permission { area, level: Level::View }
    }

    pub const fn edit(area: Area) -> Permission {
        Permission { area, level: Level::Edit }
    }

    pub fn name(self) -> String {
        format!("{}:{}", self.area.as_str(), self.level.as_str())
    }

    fn bit(self) -> u64 {
        1u64 << (self.area.index() * 2 + u32::from(self.level == Level::Edit))
    }

    /// The whole catalogue, area by area, view before edit.
    pub fn catalogue() -> impl Iterator<Item = Permission> {
        Area::ALL.into_iter().flat_map(|a| [Permission::view(a), Permission::edit(a)])
    }

    /// A permission by its name or a legacy alias (`users:read`, `phone:manage`, …); an
    /// alias can stand for several.
    pub fn parse(name: &str) -> Option<Vec<Permission>> {
        if let Some(p) = Permission::catalogue().find(|p| p.name() == name) {
            return Some(vec![p]);
        }
        let edit = |a| vec![Permission::edit(a)];
        Some(match name {
            "account:read" => vec![Permission::view(Area::Account)],
            "users:read" => {
                vec![Permission::view(Area::Users), Permission::view(Area::Groups), Permission::view(Area::Roles)]
            }
            "licenses:manage" => edit(Area::Licenses),
            "sub_accounts:manage" => edit(Area::SubAccounts),
            "groups:manage" => edit(Area::Groups),
            "roles:manage" => edit(Area::Roles),
            "phone:manage" => {
                vec![
                    Permission::edit(Area::PhoneSites),
                    Permission::edit(Area::PhoneNumbers),
                    Permission::edit(Area::PhoneUsers),
                ]
            }
            "mapping:manage" => edit(Area::Mapping),
            "sso:manage" => edit(Area::Sso),
            "tokens:manage" => edit(Area::Tokens),
            "audit:read" => vec![Permission::view(Area::Audit)],
            _ => return None,
        })
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.area.as_str(), self.level.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of catalogue permissions, closed under "edit implies view". A bit set: copied
/// freely, compared in one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn all() -> PermissionSet {
        Permission::catalogue().collect()
    }

    /// The built-in Admin: everything but managing sub accounts (which the owner grants by
    /// a custom role) — Admins see sub accounts.
    pub fn admin() -> PermissionSet {
        let mut s = PermissionSet::all();
        s.0 &= !Permission::edit(Area::SubAccounts).bit();
        s
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
        if p.level == Level::Edit {
            self.0 |= Permission::view(p.area).bit();
        }
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_subset(self, of: PermissionSet) -> bool {
        self.0 & !of.0 == 0
    }

    pub fn union(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 | other.0)
    }

    /// What both hold (still closed under "edit implies view": a view bit stays wherever
    /// either side's edit implied it in both).
    pub fn intersection(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// What `self` holds that `of` does not.
    pub fn beyond(self, of: PermissionSet) -> Vec<Permission> {
        Permission::catalogue().filter(|p| self.contains(*p) && !of.contains(*p)).collect()
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::catalogue().filter(move |p| self.contains(*p))
    }

    /// Canonical names, for storage and views.
    pub fn names(self) -> Vec<String> {
        self.iter().map(Permission::name).collect()
    }

    /// A stored or submitted list of names (aliases accepted); unknown names are returned.
    pub fn parse_names<S: AsRef<str>>(names: &[S]) -> Result<PermissionSet, String> {
        let mut set = PermissionSet::EMPTY;
        for n in names {
            let ps = Permission::parse(n.as_ref()).ok_or_else(|| n.as_ref().to_owned())?;
            for p in ps {
                set.insert(p);
            }
        }
        Ok(set)
    }
}

/// A stored custom role's permissions (a JSON list of names; legacy names are read as
/// their aliases; a name no longer known grants nothing).
pub fn stored_role_permissions(text: &str) -> PermissionSet {
    serde_json::from_str::<Vec<String>>(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| Permission::parse(n))
        .flatten()
        .collect()
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut s = PermissionSet::EMPTY;
        for p in iter {
            s.insert(p);
        }
        s
    }
}

/// Who acts, as far as the grant rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The account's owner.
    Owner,
    /// A user with the built-in Admin role.
    Admin,
    /// A member, perhaps with a custom role.
    Member,
    /// The platform operator.
    Operator,
    /// An admin of an ancestor master acting in a sub account through the mirror: they
    /// administer the sub (Admin role included) but are not its owner.
    MasterAdmin,
    /// An identity provider (SCIM token, SAML login): applies its data and the stored
    /// mapping rules; never grants Admin on its own and never touches the owner.
    IdentityProvider,
    /// The server itself or a local operator at the CLI (database access is all access).
    System,
    /// A partner's delegate acting in a customer account under a relationship: holds the
    /// relationship's permissions (never token, role or relationship edit rights), never
    /// manages admins or the owner.
    Delegate,
}

impl Standing {
    /// May grant or remove the built-in Admin role.
    pub fn manages_admins(self) -> bool {
        matches!(self, Standing::Owner | Standing::Operator | Standing::MasterAdmin | Standing::System)
    }

    /// May change the owner's role, status or account, or delete the owner.
    pub fn changes_owner(self) -> bool {
        matches!(self, Standing::Owner | Standing::Operator | Standing::System)
    }
}

/// A grant refused by the model (mapped to 403 with its code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("you cannot grant permissions you do not hold: {}", names(.0))]
    NotHeld(Vec<Permission>),
    #[error("only the account owner can grant or remove the Admin role")]
    OnlyOwnerManagesAdmins,
    #[error("only the account owner can change the owner (role, status, account or removal)")]
    OnlyOwnerChangesOwner,
}

impl GrantError {
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::NotHeld(_) => "not_held",
            GrantError::OnlyOwnerManagesAdmins => "owner_only",
            GrantError::OnlyOwnerChangesOwner => "owner_protected",
        }
    }
}

fn names(ps: &[Permission]) -> String {
    ps.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// `grantor` may hand out `granted` (a custom role's contents, a token's reach, what mapping
/// rules can give).
pub fn check_grant(grantor: PermissionSet, granted: PermissionSet) -> Result<(), GrantError> {
    let beyond = granted.beyond(grantor);
    if beyond.is_empty() {
        Ok(())
    } else {
        Err(GrantError::NotHeld(beyond))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_implies_view_and_sets_compare() {
        let mut s = PermissionSet::EMPTY;
        s.insert(Permission::edit(Area::Users));
        assert!(s.contains(Permission::view(Area::Users)));
        assert!(!s.contains(Permission::view(Area::Groups)));
        let v: PermissionSet = [Permission::view(Area::Users)].into_iter().collect();
        assert!(v.is_subset(s));
        assert!(!s.is_subset(v));
        assert_eq!(s.beyond(v), vec![Permission::edit(Area::Users)]);
    }

    #[test]
    fn the_admin_lacks_only_managing_sub_accounts() {
        let admin = PermissionSet::admin();
        assert_eq!(PermissionSet::all().beyond(admin), vec![Permission::edit(Area::SubAccounts)]);
        assert!(admin.contains(Permission::view(Area::SubAccounts)));
    }

    #[test]
    fn names_and_aliases_parse() {
        assert_eq!(Permission::parse("users:view"), Some(vec![Permission::view(Area::Users)]));
        assert_eq!(Permission::parse("sub_accounts:manage"), Some(vec![Permission::edit(Area::SubAccounts)]));
        assert_eq!(Permission::parse("phone:manage").map(|v| v.len()), Some(3));
        assert_eq!(Permission::parse("users:admin"), None);
        for p in Permission::catalogue() {
            assert_eq!(Permission::parse(&p.name()), Some(vec![p]));
        }
        assert_eq!(Permission::catalogue().count(), 32);
        let set = PermissionSet::parse_names(&["users:read", "tokens:manage"]).unwrap();
        assert!(set.contains(Permission::edit(Area::Tokens)) && set.contains(Permission::view(Area::Users)));
        assert_eq!(PermissionSet::parse_names(&["nope"]), Err("nope".into()));
    }

    #[test]
    fn grants_need_what_they_give() {
        let admin = PermissionSet::admin();
        assert!(check_grant(admin, PermissionSet::all()).is_err());
        assert!(check_grant(admin, admin).is_ok());
        assert!(check_grant(PermissionSet::all(), admin).is_ok());
    }

    #[test]
    fn only_the_owner_side_changes_the_owner() {
        assert!(Standing::Owner.changes_owner() && Standing::Operator.changes_owner());
        for s in [Standing::Admin, Standing::Member, Standing::MasterAdmin, Standing::IdentityProvider] {
            assert!(!s.changes_owner(), "{s:?}");
        }
        assert!(Standing::MasterAdmin.manages_admins());
        assert!(!Standing::Admin.manages_admins() && !Standing::IdentityProvider.manages_admins());
    }
}
