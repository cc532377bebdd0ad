//! The one input of the provisioning pipeline: an [`IdentityChange`], whichever protocol it
//! came from, and its result, an [`Outcome`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::authz::{Area, Permission, PermissionSet, Standing};
use crate::domain::catalog::{AddOn, UserTier};
use crate::domain::users::{BaseRole, UserStatus};

/// Where a change came from; recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Scim,
    Saml,
    Csv,
    Api,
    Sync,
    Cli,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Scim => "scim",
            Source::Saml => "saml",
            Source::Csv => "csv",
            Source::Api => "api",
            Source::Sync => "sync",
            Source::Cli => "cli",
        }
    }
}

/// Who made a change: a label for the audit log, their standing (the grant rules — "only
/// the owner grants Admin", "only the owner changes the owner" — depend on it) and the
/// permissions they hold (nobody grants more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub label: String,
    pub standing: Standing,
    pub holds: PermissionSet,
    /// The user a person acts as (none for the system, the operator and IdPs).
    pub user_id: Option<String>,
    /// For an ancestor's admin on the mirror: the master account they act from. What they
    /// grant here (tokens, SSO trust, mapping rules) is marked with it, so disassociation
    /// revokes exactly that.
    pub from_account: Option<String>,
    /// The channel the actor came through, for the audit log (`api`, `cli`, `scim`, `saml`).
    pub via: Source,
    /// For a partner's delegate: the relationship they act under (every audit entry they
    /// cause carries it).
    pub delegated: Option<Box<DelegatedBy>>,
}

/// What the customer's audit log records of a delegated action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DelegatedBy {
    pub relationship_id: String,
    pub partner_account_id: String,
    pub partner: String,
    /// The partner user's id, or their stable pseudonym when the relationship is undisclosed.
    pub delegate: String,
    /// The catalogue permission the route needed.
    pub permission: Option<String>,
}

impl Actor {
    /// The server itself or the CLI (which has the database, so holds everything).
    pub fn system(label: impl Into<String>) -> Actor {
        Actor {
            label: label.into(),
            standing: Standing::System,
            holds: PermissionSet::all(),
            user_id: None,
            from_account: None,
            via: Source::Api,
            delegated: None,
        }
    }

    /// The platform operator.
    pub fn operator(label: impl Into<String>) -> Actor {
        Actor {
            label: label.into(),
            standing: Standing::Operator,
            holds: PermissionSet::all(),
            user_id: None,
            from_account: None,
            via: Source::Api,
            delegated: None,
        }
    }

    /// A local operator at the CLI (database access is all access).
    pub fn cli() -> Actor {
        Actor { via: Source::Cli, ..Actor::system("cli") }
    }

    /// An identity provider (a SCIM token, a SAML login): users and groups only.
    pub fn identity_provider(label: impl Into<String>) -> Actor {
        let holds = [Permission::edit(Area::Users), Permission::edit(Area::Groups)].into_iter().collect();
        let label = label.into();
        let via = if label.starts_with("saml:") { Source::Saml } else { Source::Scim };
        Actor {
            label,
            standing: Standing::IdentityProvider,
            holds,
            user_id: None,
            from_account: None,
            via,
            delegated: None,
        }
    }

    /// A person of the account (or an ancestor's admin on the mirror).
    pub fn person(
        label: impl Into<String>,
        user_id: Option<String>,
        standing: Standing,
        holds: PermissionSet,
    ) -> Actor {
        Actor { label: label.into(), standing, holds, user_id, from_account: None, via: Source::Api, delegated: None }
    }

    /// An admin of the ancestor master `from` acting in a sub account through the mirror.
    pub fn master_admin(label: impl Into<String>, from: &str) -> Actor {
        Actor {
            label: label.into(),
            standing: Standing::MasterAdmin,
            holds: PermissionSet::all(),
            user_id: None,
            from_account: Some(from.to_owned()),
            via: Source::Api,
            delegated: None,
        }
    }
}

pub use crate::domain::field::Field;

pub use crate::domain::phone::{DeskPhone, PhoneFields};

/// Values the adapter states directly (as opposed to raw attributes the mapping rules read).
/// Explicit values win over what mapping rules derive for the same target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExplicitFields {
    pub email: Field<String>,
    pub user_name: Option<String>,
    pub external_id: Field<String>,
    pub display_name: Field<String>,
    pub given_name: Field<String>,
    pub family_name: Field<String>,
    pub department: Field<String>,
    pub job_title: Field<String>,
    pub user_type: Option<UserTier>,
    pub addons: Option<BTreeSet<AddOn>>,
    pub role: Option<BaseRole>,
    /// Custom role by name.
    pub custom_role: Field<String>,
    /// `Active` or `Inactive` (deactivation keeps the user and its data).
    pub status: Option<UserStatus>,
    /// Every address the user carries (SCIM `emails`), for the e-mail index.
    pub emails: Option<Vec<String>>,
    /// Groups to add the user to, by name (CSV `user group`, admin API).
    pub add_to_groups: Vec<String>,
    /// The SCIM representation to store (attributes without a column of their own).
    pub scim: Option<serde_json::Value>,
    pub phone: PhoneFields,
    /// Record a sign-in (SAML).
    pub login: bool,
    /// The person accepts their invitation (the invitation link, or signing in through the
    /// account's IdP): a pending user becomes active. An IdP merely saying "active" does not.
    pub accepts_invitation: bool,
}

/// What the change does to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A new user; conflicts if the e-mail or user name exists.
    Create,
    /// Create, or update the user with the same e-mail address in this account tree.
    Upsert,
    /// Update one user; with `expected_version`, only if nobody changed it meanwhile.
    Update { user_id: String, expected_version: Option<i64> },
    /// Remove a user: seats, number, extension and memberships are released.
    Delete { user_id: String },
}

/// What to do when a seat, extension or number cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    /// Refuse the whole change (admin API: the administrator asked for exactly this).
    Refuse,
    /// Apply the rest and report a provisioning issue (identity providers and imports).
    Report,
}

#[derive(Debug, Clone)]
pub struct IdentityChange {
    pub account_id: String,
    pub source: Source,
    pub actor: Actor,
    pub operation: Operation,
    /// Raw identity attributes (SAML attributes, SCIM attributes flattened) for the rules.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub explicit: ExplicitFields,
    pub shortage: Shortage,
    /// New users start as pending invitations (admin API, CSV) instead of active (IdPs).
    pub invite: bool,
    /// Apply the account's mapping rules (identity providers and imports do).
    pub apply_mapping: bool,
    /// For `Upsert`: the user with this e-mail as the caller already read it in this
    /// transaction (`Some(None)`: there is none), so the pipeline need not look again.
    pub prefetched_user: Option<Option<crate::store::models::UserRow>>,
    /// The prefetched user was read with its row locked (`FOR UPDATE` on PostgreSQL): the
    /// pipeline does not lock it again (one round trip less per sign-in).
    pub prefetched_user_locked: bool,
    /// An administrator's move of the (existing) user into this account of the same tree:
    /// the pipeline releases what the user holds in its account and settles them here.
    pub move_to: Option<crate::store::models::AccountRow>,
}

impl IdentityChange {
    pub fn new(account_id: impl Into<String>, source: Source, actor: Actor, operation: Operation) -> IdentityChange {
        IdentityChange {
            account_id: account_id.into(),
            source,
            actor,
            operation,
            attributes: BTreeMap::new(),
            explicit: ExplicitFields::default(),
            shortage: Shortage::Report,
            invite: false,
            apply_mapping: false,
            prefetched_user: None,
            prefetched_user_locked: false,
            move_to: None,
        }
    }
}

pub use crate::domain::issue::{IssueCode, ProvisioningIssue};

/// One field that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl FieldChange {
    pub fn new(field: &str, from: Option<String>, to: Option<String>) -> FieldChange {
        FieldChange { field: field.to_owned(), from, to }
    }
}

/// The result of one change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub user_id: String,
    pub account_id: String,
    pub created: bool,
    pub deleted: bool,
    pub changes: Vec<FieldChange>,
    pub issues: Vec<ProvisioningIssue>,
    pub version: i64,
    /// The invitation token, for new pending users (only ever handed to the mail outbox
    /// and, in the CLI, to the operator).
    #[serde(skip)]
    pub invitation_token: Option<String>,
}
