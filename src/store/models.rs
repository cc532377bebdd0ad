//! Row types, one per table, as Diesel reads and writes them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable, AsChangeset)]
#[diesel(table_name = accounts, treat_none_as_default_value = false)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub is_master: bool,
    pub bulk_licensing: bool,
    pub billing: Option<String>,
    pub vanity_name: Option<String>,
    pub settings: String,
    pub phone_enabled: bool,
    pub bundled_licensing: bool,
    pub auto_phone_provisioning: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = license_pools, treat_none_as_default_value = false)]
pub struct LicensePoolRow {
    pub account_id: String,
    pub product: String,
    pub available: i64,
    pub used: i64,
    pub delegated: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct UserRow {
    pub id: String,
    pub account_id: String,
    pub email: Option<String>,
    pub user_name: String,
    pub user_name_lower: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub display_name_lower: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub user_type: String,
    pub role: crate::domain::users::BaseRole,
    pub custom_role_id: Option<String>,
    pub status: crate::domain::users::UserStatus,
    pub addons: String,
    pub seats: String,
    pub scim: String,
    pub provisioning_issues: String,
    pub last_source: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// The master whose IdP placed the user here (its SCIM token still reaches the user).
    pub placed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = user_phones, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct UserPhoneRow {
    pub user_id: String,
    pub account_id: String,
    pub site_id: Option<String>,
    pub extension: Option<i64>,
    pub long_extension: Option<String>,
    pub phone_number: Option<String>,
    pub calling_plan: Option<String>,
    pub calling_plan_bundled: bool,
    pub phone_roles: String,
    pub outbound_caller_id: Option<String>,
    pub sms_enabled: Option<bool>,
    pub phone_status: Option<String>,
    pub phone_package: Option<String>,
    pub user_template: Option<String>,
    pub allow_caller_id_change: Option<bool>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = phone_sites, treat_none_as_default_value = false)]
pub struct PhoneSiteRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub name_lower: String,
    pub site_code: String,
    pub extension_length: i32,
    pub is_main: bool,
    pub allocation_seq: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = desk_phones, treat_none_as_default_value = false)]
pub struct DeskPhoneRow {
    pub user_id: String,
    pub slot: i32,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub mac_address: String,
    pub provision_template: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens, treat_none_as_default_value = false)]
pub struct TokenRow {
    pub id: String,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    pub scope: String,
    pub token_hash: String,
    pub label: Option<String>,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    /// The outside account (a master on the mirror) whose principal minted it.
    pub granted_from: Option<String>,
    /// After this instant the token is refused.
    pub expires_at: Option<NaiveDateTime>,
    /// When it was last used (kept to the minute).
    pub last_used_at: Option<NaiveDateTime>,
    /// For a `delegated` token: the relationship it acts under.
    pub relationship_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations, treat_none_as_default_value = false)]
pub struct InvitationRow {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub token_hash: String,
    pub sent_count: i32,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct NewAudit {
    pub account_id: Option<String>,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<String>,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = mail_outbox, treat_none_as_default_value = false)]
pub struct NewMail {
    pub account_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct MailRow {
    pub id: i64,
    pub account_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    /// Delivery attempts so far (successful or not).
    pub attempts: i32,
    /// Not retried before this instant (`None`: due now).
    pub next_attempt_at: Option<NaiveDateTime>,
    /// The lease of the process delivering it: nobody else claims it before this instant.
    pub claimed_until: Option<NaiveDateTime>,
    pub claim_token: Option<String>,
    pub last_error: Option<String>,
    /// Given up on (a permanent rejection, repeated, or an address that cannot be sent to).
    pub failed_at: Option<NaiveDateTime>,
    /// The `Message-ID` header: set when the row is first claimed, the same on every attempt.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = groups, treat_none_as_default_value = false)]
pub struct GroupRow {
    pub id: String,
    pub account_id: String,
    pub display_name: String,
    pub display_name_lower: String,
    pub external_id: Option<String>,
    pub scim: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = roles, treat_none_as_default_value = false)]
pub struct RoleRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub name_lower: String,
    pub permissions: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = relationships, treat_none_as_default_value = false)]
pub struct RelationshipRow {
    pub id: String,
    pub partner_account_id: String,
    pub customer_account_id: String,
    pub name: String,
    pub status: String,
    pub initiated_by: String,
    pub contact_user_id: Option<String>,
    /// JSON list of catalogue names.
    pub permissions: String,
    pub pending_permissions: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub auto_extend: bool,
    pub allow_delegates: bool,
    pub undisclosed: bool,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub ended_by: Option<String>,
    pub updated_at: NaiveDateTime,
    /// Bumped by every change (optimistic concurrency).
    pub version: i64,
    /// When group sync last applied a change or a reconcile to it.
    pub last_synced_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = relationship_warnings)]
pub struct WarningRow {
    pub relationship_id: String,
    pub expires_at: NaiveDateTime,
    pub days_before: i32,
    pub sent_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = delegates, treat_none_as_default_value = false)]
pub struct DelegateRow {
    pub relationship_id: String,
    pub user_id: String,
    /// `invited` or `active`.
    pub status: String,
    /// JSON list of sources (`manual`, `group:<id>`).
    pub sources: String,
    pub added_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = delegate_codes, treat_none_as_default_value = false)]
pub struct DelegateCodeRow {
    pub id: String,
    pub relationship_id: String,
    pub user_id: String,
    pub code_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub failed_attempts: i32,
    pub used_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = group_bindings, treat_none_as_default_value = false)]
pub struct GroupBindingRow {
    pub id: String,
    pub relationship_id: String,
    pub group_id: String,
    pub permissions: String,
    pub auto_accept: bool,
    pub created_at: NaiveDateTime,
    pub last_synced_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sync_holds, treat_none_as_default_value = false)]
pub struct SyncHoldRow {
    pub id: String,
    pub relationship_id: String,
    pub removals: String,
    pub reason: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = membership_events)]
pub struct MembershipEventRow {
    pub id: i64,
    pub account_id: String,
    pub group_id: String,
    pub user_id: String,
    pub change: String,
    pub source: String,
    pub created_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
}
