//! The mapping rule engine: identity attributes in, desired state out.
//!
//! One engine serves SCIM pushes, SAML logins and CSV imports, so an account's rules mean the
//! same thing whichever way a user arrives. It runs on every push and every login: the account's
//! [`MappingConfig`] is checked and compiled once ([`CompiledMapping::compile`], regexes
//! included) and evaluation only reads it.
//!
//! # Precedence
//! 1. **Placement.** The first placement rule whose conditions *all* hold places the user in
//!    that sub account. The desired state then carries only the placement's meeting license and
//!    meeting add-ons; every other target is `Keep` (phone, groups and roles are configured in
//!    the sub account itself). When no rule places the user, each placement rule of which some
//!    but not all conditions held is reported as `placement_partial_match`.
//! 2. **Rules**, in order. Single-valued targets: the first matching rule wins. Multi-valued
//!    targets (`group`, `addon`, `phone_role`): every matching rule contributes.
//! 3. **Direct mappings** copy attribute values. Single-valued targets: used only when no rule
//!    matched, the first direct mapping with a non-blank value wins (first value of a
//!    multi-valued attribute). Multi-valued targets: every value contributes, next to the rules.
//! 4. **No match**: `when_no_match` per target, `keep` (the default, Zoom's behaviour) or
//!    `default` (apply `defaults`, where `null` clears).
//!
//! An incoming value that cannot be read as its target's type (a direct mapping sending
//! `"platinum"` as user type) is reported as `invalid_value` (`invalid_phone_number` for an
//! incomplete number) and the target is left as it is (`Keep`), even when a default exists: a
//! typo at the identity provider must not downgrade anyone. Static values in the configuration
//! are checked when it is loaded instead.
//!
//! # Matching
//! Attribute names compare ASCII case-insensitively; a condition holds when *any* value of the
//! (possibly multi-valued) attribute matches, and a negated condition holds when *none* does,
//! which includes the attribute being absent. `equals`, `one_of` and `contains` ignore case
//! unless `case_sensitive` is set, and `equals` / `one_of` ignore surrounding spaces; regexes
//! are unanchored, case-insensitive unless `case_sensitive`, and size-limited.
//!
//! # File format
//! ```json
//! {
//!   "rules": [
//!     { "attribute": "department", "match": { "equals": "Sales" },
//!       "target": "user_type", "value": "business" },
//!     { "attribute": "title", "match": { "regex": "^(vp|director)\\b" },
//!       "target": "user_type", "value": "enterprise" },
//!     { "attribute": "memberOf", "match": { "one_of": ["zoom-webinar", "marketing"] },
//!       "target": "addon", "value": "webinar" },
//!     { "attribute": "memberOf", "match": { "equals": "contractors" }, "negate": true,
//!       "target": "group", "value": "Employees" },
//!     { "attribute": "office", "match": { "contains": "LON" }, "case_sensitive": true,
//!       "target": "phone_site", "value": "London" }
//!   ],
//!   "direct": [
//!     { "attribute": "telephoneNumber", "target": "phone_number" },
//!     { "attribute": "telephoneExtension", "target": "phone_extension" }
//!   ],
//!   "when_no_match": { "user_type": "default", "calling_plan": "default" },
//!   "defaults": { "user_type": "pro", "calling_plan": null },
//!   "placement": [
//!     { "sub_account": "Healthcare",
//!       "conditions": [
//!         { "attribute": "memberOf", "match": { "equals": "global_users" } },
//!         { "attribute": "department",
//!           "match": { "one_of": ["HIPAA", "Developer", "Tester"] } }
//!       ],
//!       "user_type": "business", "addons": ["large_meetings"] }
//!   ]
//! }
//! ```
//! Targets: `user_type`, `addon`, `group`, `phone_role` (multi-valued), `role`, `department`,
//! `job_title`, `location`, `cost_center`, `phone_site`, `phone_extension` (`0` = next free),
//! `phone_number` (normalized to E.164), `calling_plan` (name or numeric code), and
//! `sub_account` (rules only; see [`MappingConfig`]). Unknown fields are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::catalog::{AddOn, CallingPlan, UserTier};
pub use super::field::Field;
use super::issue::{IssueCode, ProvisioningIssue};
use super::phone::{normalize_e164, ExtensionRequest, PhoneRole};

/// Identity attributes as received: name → values (SAML attributes may repeat).
pub type Attributes = BTreeMap<String, Vec<String>>;

/// Most rules an account may configure.
pub const MAX_RULES: usize = 1_000;
/// Most direct mappings an account may configure.
pub const MAX_DIRECT: usize = 100;
/// Most placement rules an account may configure.
pub const MAX_PLACEMENT_RULES: usize = 200;
/// Most conditions in one placement rule.
pub const MAX_CONDITIONS: usize = 32;
/// Most entries in one `one_of` list.
pub const MAX_ONE_OF: usize = 1_000;
/// Longest pattern (equals, contains, one_of entry, regex) in characters.
pub const MAX_PATTERN_CHARS: usize = 1_024;
/// Longest text value (group, department, site name…) in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Compiled size limit of one regex, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache limit of one regex, in bytes.
pub const REGEX_DFA_SIZE_LIMIT: usize = 2 << 20;

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

/// What an entitlement or profile rule sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[serde(alias = "license", alias = "user_tier")]
    UserType,
    #[serde(alias = "addons", alias = "add_on")]
    Addon,
    SubAccount,
    #[serde(alias = "groups")]
    Group,
    Role,
    Department,
    JobTitle,
    Location,
    CostCenter,
    PhoneSite,
    PhoneExtension,
    PhoneNumber,
    CallingPlan,
    #[serde(alias = "phone_roles")]
    PhoneRole,
}

impl Target {
    const COUNT: usize = 14;

    /// Every target, in declaration order.
    pub const ALL: [Target; Target::COUNT] = [
        Target::UserType,
        Target::Addon,
        Target::SubAccount,
        Target::Group,
        Target::Role,
        Target::Department,
        Target::JobTitle,
        Target::Location,
        Target::CostCenter,
        Target::PhoneSite,
        Target::PhoneExtension,
        Target::PhoneNumber,
        Target::CallingPlan,
        Target::PhoneRole,
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::UserType => "user_type",
            Target::Addon => "addon",
            Target::SubAccount => "sub_account",
            Target::Group => "group",
            Target::Role => "role",
            Target::Department => "department",
            Target::JobTitle => "job_title",
            Target::Location => "location",
            Target::CostCenter => "cost_center",
            Target::PhoneSite => "phone_site",
            Target::PhoneExtension => "phone_extension",
            Target::PhoneNumber => "phone_number",
            Target::CallingPlan => "calling_plan",
            Target::PhoneRole => "phone_role",
        }
    }

    /// Multi-valued targets accumulate every matching rule.
    pub const fn is_multi_valued(self) -> bool {
        matches!(self, Target::Addon | Target::Group | Target::PhoneRole)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an attribute value is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Match {
    Equals(String),
    Contains(String),
    OneOf(Vec<String>),
    Regex(String),
}

/// One test on one attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub attribute: String,
    #[serde(rename = "match")]
    pub matcher: Match,
    #[serde(default, skip_serializing_if = "is_false")]
    pub negate: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_sensitive: bool,
}

/// An ordered rule: when the condition holds, `target` gets `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub attribute: String,
    #[serde(rename = "match")]
    pub matcher: Match,
    #[serde(default, skip_serializing_if = "is_false")]
    pub negate: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub case_sensitive: bool,
    pub target: Target,
    pub value: String,
}

/// Copies an attribute's value(s) into a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectMapping {
    pub attribute: String,
    pub target: Target,
}

/// What happens to a target when nothing matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoMatch {
    /// Leave the user's current value alone.
    #[default]
    Keep,
    /// Apply the account default from `defaults`.
    Default,
}

/// A default value: one value, or a list for multi-valued targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DefaultValue {
    One(String),
    Many(Vec<String>),
}

/// Places users who meet *every* condition in a sub account, with a meeting license and
/// meeting add-ons only. `user_type` / `addons` absent: left as they are; `addons: []` clears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementRule {
    /// The sub account's id or name, resolved by the caller.
    pub sub_account: String,
    pub conditions: Vec<Condition>,
    /// A user type (`basic`, `licensed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub user_type: Option<UserTier>,
    /// Meeting add-ons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub addons: Option<Vec<AddOn>>,
}

/// An account's mapping configuration: the `provisor mapping set --file RULES.json` format.
///
/// A rule with target `sub_account` is shorthand for a one-condition placement rule without
/// license or add-ons; such rules are tried after the `placement` list, in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct: Vec<DirectMapping>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub when_no_match: BTreeMap<Target, NoMatch>,
    /// Values applied by `when_no_match: default`, by target: a value, a list of values
    /// (multi-valued targets) or `null`, which clears the target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub defaults: BTreeMap<Target, Option<DefaultValue>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<PlacementRule>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl MappingConfig {
    /// Reads the JSON file format (unknown fields are refused, so typos do not pass silently).
    pub fn from_json(text: &str) -> Result<Self, MappingError> {
        serde_json::from_str(text).map_err(|error| MappingError::Syntax(error.to_string()))
    }

    /// Everything these rules can give or take, from every part of the document (`rules`,
    /// `direct`, `defaults`, `placement`): what storing them grants.
    pub fn reach(&self) -> MappingReach {
        let mut reach = MappingReach::default();
        for r in &self.rules {
            reach.note(r.target, Some(&r.value));
        }
        for d in &self.direct {
            // A direct mapping copies an attribute's value: it can give any value.
            reach.note(d.target, None);
        }
        for (target, value) in &self.defaults {
            match value {
                Some(DefaultValue::One(v)) => reach.note(*target, Some(v)),
                Some(DefaultValue::Many(vs)) => vs.iter().for_each(|v| reach.note(*target, Some(v))),
                None => reach.note(*target, Some("")),
            }
        }
        if !self.placement.is_empty() {
            reach.targets.insert(Target::SubAccount);
        }
        reach
    }
}

/// The groups, phone sites and sub accounts a document names by value: they must exist in
/// the account when the document is stored (see [`MappingConfig::named_targets`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedTargets {
    pub groups: std::collections::BTreeSet<String>,
    pub sites: std::collections::BTreeSet<String>,
    pub sub_accounts: std::collections::BTreeSet<String>,
}

impl MappingConfig {
    /// Every group, site and sub account a rule, a default or a placement names (direct
    /// mappings copy whatever the IdP sends, so they name nothing in advance).
    pub fn named_targets(&self) -> NamedTargets {
        let mut named = NamedTargets::default();
        let mut note = |target: Target, value: &str| {
            let value = value.trim();
            if value.is_empty() {
                return;
            }
            match target {
                Target::Group => named.groups.insert(value.to_owned()),
                Target::PhoneSite => named.sites.insert(value.to_owned()),
                _ => false,
            };
        };
        for r in &self.rules {
            note(r.target, &r.value);
        }
        for (target, value) in &self.defaults {
            match value {
                Some(DefaultValue::One(v)) => note(*target, v),
                Some(DefaultValue::Many(vs)) => vs.iter().for_each(|v| note(*target, v)),
                None => {}
            }
        }
        for p in &self.placement {
            named.sub_accounts.insert(p.sub_account.trim().to_owned());
        }
        named
    }
}

/// What a mapping document can change (see [`MappingConfig::reach`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappingReach {
    /// Every target some part of the document sets.
    pub targets: std::collections::BTreeSet<Target>,
    /// Role values named (`admin`, `member`, custom role names; `""` clears).
    pub role_values: std::collections::BTreeSet<String>,
    /// A direct mapping sets the role from an attribute: any role at all.
    pub any_role: bool,
}

impl MappingReach {
    fn note(&mut self, target: Target, value: Option<&str>) {
        self.targets.insert(target);
        if target == Target::Role {
            match value {
                Some(v) => {
                    self.role_values.insert(v.trim().to_lowercase());
                }
                None => self.any_role = true,
            }
        }
    }

    /// The rules can grant or remove the built-in Admin role: they name `admin`, or
    /// `member` or a clear (which demote an Admin), or copy the role from an attribute.
    pub fn touches_admin(&self) -> bool {
        self.any_role || self.role_values.iter().any(|v| matches!(v.as_str(), "admin" | "member" | ""))
    }

    /// Custom role names the rules assign.
    pub fn custom_roles(&self) -> impl Iterator<Item = &str> {
        self.role_values.iter().map(String::as_str).filter(|v| !matches!(*v, "admin" | "member" | "owner" | ""))
    }
}

/// Why a mapping configuration cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("the mapping file does not follow the rule format: {0}")]
    Syntax(String),
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
}

// ---------------------------------------------------------------------------------------------
// The result
// ---------------------------------------------------------------------------------------------

/// The desired value of a multi-valued field: the complete set, or leave it alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "action", content = "value", rename_all = "snake_case")]
pub enum MultiDesired<T: Ord> {
    #[default]
    Keep,
    /// Exactly these values (empty: remove all).
    Set(BTreeSet<T>),
}

impl<T: Ord + Clone> MultiDesired<T> {
    /// The set the field ends up with, given its current set.
    pub fn resolve(&self, current: &BTreeSet<T>) -> BTreeSet<T> {
        match self {
            MultiDesired::Keep => current.clone(),
            MultiDesired::Set(values) => values.clone(),
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, MultiDesired::Keep)
    }
}

/// Where a placement rule sends the user: a sub account id or name, resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SubAccountRef(pub String);

impl fmt::Display for SubAccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the mapping wants for one user, plus what it had to report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DesiredState {
    pub user_type: Field<UserTier>,
    pub addons: MultiDesired<AddOn>,
    pub groups: MultiDesired<String>,
    pub role: Field<String>,
    pub department: Field<String>,
    pub job_title: Field<String>,
    pub location: Field<String>,
    pub cost_center: Field<String>,
    pub phone_site: Field<String>,
    pub phone_extension: Field<ExtensionRequest>,
    /// E.164.
    pub phone_number: Field<String>,
    pub calling_plan: Field<CallingPlan>,
    pub phone_roles: MultiDesired<PhoneRole>,
    /// Set when a placement rule matched completely.
    pub placement: Option<SubAccountRef>,
    pub issues: Vec<ProvisioningIssue>,
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

/// A target value, checked and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Tier(UserTier),
    AddOn(AddOn),
    Plan(CallingPlan),
    Extension(ExtensionRequest),
    Role(PhoneRole),
    Text(String),
}

/// Reads a raw value for a target; the error is a sentence for the administrator.
fn parse_value(target: Target, raw: &str) -> Result<Value, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(format!("{target} value is empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("{target} value is longer than {MAX_TEXT_CHARS} characters"));
    }
    match target {
        Target::UserType => text.parse().map(Value::Tier).map_err(|e| e.to_string()),
        Target::Addon => text.parse().map(Value::AddOn).map_err(|e| e.to_string()),
        Target::CallingPlan => text.parse().map(Value::Plan).map_err(|e| e.to_string()),
        Target::PhoneExtension => {
            text.parse().map(Value::Extension).map_err(|e: super::phone::ExtensionError| e.to_string())
        }
        Target::PhoneNumber => normalize_e164(text).map(Value::Text).map_err(|e| format!("phone number `{text}`: {e}")),
        Target::PhoneRole => text.parse().map(Value::Role).map_err(|e: super::phone::PhoneRoleError| e.to_string()),
        Target::Role if text.eq_ignore_ascii_case("owner") => {
            Err("the owner role cannot be granted by mapping".to_owned())
        }
        Target::Role
        | Target::SubAccount
        | Target::Group
        | Target::Department
        | Target::JobTitle
        | Target::Location
        | Target::CostCenter
        | Target::PhoneSite => Ok(Value::Text(text.to_owned())),
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Equals { pattern: String, fold: bool },
    OneOf { patterns: Vec<String>, fold: bool },
    Contains { pattern: String },
    Regex(Regex),
}

/// Case-insensitive equality without allocating (full Unicode lower-casing).
fn eq_fold(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

impl Matcher {
    fn is_match(&self, value: &str) -> bool {
        match self {
            Matcher::Equals { pattern, fold } => {
                let value = value.trim();
                if *fold {
                    eq_fold(value, pattern)
                } else {
                    value == pattern
                }
            }
            Matcher::OneOf { patterns, fold } => {
                let value = value.trim();
                patterns.iter().any(|pattern| if *fold { eq_fold(value, pattern) } else { value == pattern })
            }
            Matcher::Contains { pattern } => value.contains(pattern.as_str()),
            Matcher::Regex(regex) => regex.is_match(value),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledCondition {
    attribute: String,
    matcher: Matcher,
    negate: bool,
    /// "department one of [HIPAA, Developer]" for issue messages.
    label: String,
}

impl CompiledCondition {
    fn holds(&self, attributes: &Attributes) -> bool {
        let any = values_of(attributes, &self.attribute).any(|value| self.matcher.is_match(value));
        any != self.negate
    }
}

/// The names one attribute has across adapters: a user's group memberships are `groups` in a
/// SCIM push, and `memberOf`, `groups` or Entra ID's groups claim in a SAML assertion. A rule
/// naming any of them reads all of them, so one rules document works for every source.
const GROUP_ATTRIBUTE_NAMES: [&str; 3] =
    ["groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"];

/// Is `name` one of the names of the group attribute?
pub fn is_group_attribute(name: &str) -> bool {
    GROUP_ATTRIBUTE_NAMES.iter().any(|g| g.eq_ignore_ascii_case(name))
}

fn same_attribute(key: &str, name: &str) -> bool {
    key.eq_ignore_ascii_case(name) || (is_group_attribute(name) && is_group_attribute(key))
}

/// Every value of every attribute whose name equals `name` ignoring ASCII case: what a
/// direct mapping copies (exactly the attribute it names).
fn values_named<'a>(attributes: &'a Attributes, name: &'a str) -> impl Iterator<Item = &'a str> {
    attributes
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
        .flat_map(|(_, values)| values.iter().map(String::as_str))
}

/// What a condition tests: like [`values_named`], but the group attribute under any of its
/// names (see [`GROUP_ATTRIBUTE_NAMES`]).
fn values_of<'a>(attributes: &'a Attributes, name: &'a str) -> impl Iterator<Item = &'a str> {
    attributes
        .iter()
        .filter(move |(key, _)| same_attribute(key, name))
        .flat_map(|(_, values)| values.iter().map(String::as_str))
}

fn invalid(location: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError::Invalid { location: location.into(), message: message.into() }
}

fn check_pattern(location: &str, pattern: &str) -> Result<(), MappingError> {
    if pattern.trim().is_empty() {
        return Err(invalid(location, "the match pattern is empty"));
    }
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(invalid(location, format!("the match pattern is longer than {MAX_PATTERN_CHARS} characters")));
    }
    Ok(())
}

fn compile_condition(
    location: &str,
    attribute: &str,
    matcher: &Match,
    negate: bool,
    case_sensitive: bool,
) -> Result<CompiledCondition, MappingError> {
    let attribute = attribute.trim();
    if attribute.is_empty() {
        return Err(invalid(location, "the attribute name is empty"));
    }
    let fold = !case_sensitive;
    let (compiled, description) = match matcher {
        Match::Equals(pattern) => {
            check_pattern(location, pattern)?;
            let pattern = pattern.trim().to_owned();
            let description = format!("equals \"{pattern}\"");
            (Matcher::Equals { pattern, fold }, description)
        }
        Match::OneOf(patterns) => {
            if patterns.is_empty() {
                return Err(invalid(location, "`one_of` needs at least one value"));
            }
            if patterns.len() > MAX_ONE_OF {
                return Err(invalid(location, format!("`one_of` has more than {MAX_ONE_OF} values")));
            }
            for pattern in patterns {
                check_pattern(location, pattern)?;
            }
            let patterns: Vec<String> = patterns.iter().map(|p| p.trim().to_owned()).collect();
            let description = format!("one of [{}]", patterns.join(", "));
            (Matcher::OneOf { patterns, fold }, description)
        }
        Match::Contains(pattern) => {
            check_pattern(location, pattern)?;
            let description = format!("contains \"{pattern}\"");
            let compiled = if fold {
                Matcher::Regex(build_regex(location, &regex::escape(pattern), true)?)
            } else {
                Matcher::Contains { pattern: pattern.clone() }
            };
            (compiled, description)
        }
        Match::Regex(pattern) => {
            check_pattern(location, pattern)?;
            let description = format!("matches /{pattern}/");
            (Matcher::Regex(build_regex(location, pattern, fold)?), description)
        }
    };
    let not = if negate { "not " } else { "" };
    Ok(CompiledCondition {
        attribute: attribute.to_owned(),
        matcher: compiled,
        negate,
        label: format!("{attribute} {not}{description}"),
    })
}

fn build_regex(location: &str, pattern: &str, fold: bool) -> Result<Regex, MappingError> {
    RegexBuilder::new(pattern)
        .case_insensitive(fold)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|error| invalid(location, format!("invalid regex: {error}")))
}

#[derive(Debug, Clone)]
struct CompiledRule {
    condition: CompiledCondition,
    target: Target,
    value: Value,
}

#[derive(Debug, Clone)]
struct CompiledDirect {
    attribute: String,
    target: Target,
}

#[derive(Debug, Clone)]
struct CompiledPlacement {
    /// 1-based position for messages ("placement rule 2", or "rule 7" for the shorthand).
    origin: String,
    sub_account: SubAccountRef,
    conditions: Vec<CompiledCondition>,
    user_type: Option<UserTier>,
    addons: Option<BTreeSet<AddOn>>,
}

/// What a target gets when nothing matched.
#[derive(Debug, Clone, Default)]
enum Fallback {
    #[default]
    Keep,
    Clear,
    Values(Vec<Value>),
}

/// A checked, ready-to-evaluate mapping configuration.
#[derive(Debug, Clone)]
pub struct CompiledMapping {
    config: MappingConfig,
    rules: Vec<CompiledRule>,
    direct: Vec<CompiledDirect>,
    placement: Vec<CompiledPlacement>,
    fallback: [Fallback; Target::COUNT],
    /// Multi-valued targets (groups, add-ons) that rules manage without an explicit
    /// `when_no_match`: when no rule matches, the user leaves the managed values.
    managed_multi: [bool; Target::COUNT],
}

impl CompiledMapping {
    /// Checks every rule, value and regex, and compiles them; errors name the rule at fault.
    pub fn compile(config: &MappingConfig) -> Result<Self, MappingError> {
        if config.rules.len() > MAX_RULES {
            return Err(invalid("rules", format!("more than {MAX_RULES} rules")));
        }
        if config.direct.len() > MAX_DIRECT {
            return Err(invalid("direct", format!("more than {MAX_DIRECT} direct mappings")));
        }
        if config.placement.len() > MAX_PLACEMENT_RULES {
            return Err(invalid("placement", format!("more than {MAX_PLACEMENT_RULES} placement rules")));
        }

        let mut placement = Vec::with_capacity(config.placement.len());
        for (i, rule) in config.placement.iter().enumerate() {
            placement.push(compile_placement(i + 1, rule)?);
        }

        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, rule) in config.rules.iter().enumerate() {
            let location = format!("rule {} (`{}` → {})", i + 1, rule.attribute.trim(), rule.target);
            let condition =
                compile_condition(&location, &rule.attribute, &rule.matcher, rule.negate, rule.case_sensitive)?;
            let value = parse_value(rule.target, &rule.value).map_err(|message| invalid(&location, message))?;
            if rule.target == Target::SubAccount {
                if let Value::Text(sub_account) = value {
                    placement.push(CompiledPlacement {
                        origin: format!("rule {}", i + 1),
                        sub_account: SubAccountRef(sub_account),
                        conditions: vec![condition],
                        user_type: None,
                        addons: None,
                    });
                }
                continue;
            }
            rules.push(CompiledRule { condition, target: rule.target, value });
        }

        let mut direct = Vec::with_capacity(config.direct.len());
        for (i, mapping) in config.direct.iter().enumerate() {
            let location = format!("direct mapping {}", i + 1);
            let attribute = mapping.attribute.trim();
            if attribute.is_empty() {
                return Err(invalid(location, "the attribute name is empty"));
            }
            if mapping.target == Target::SubAccount {
                return Err(invalid(
                    location,
                    "sub accounts are chosen by placement rules, not copied from an attribute",
                ));
            }
            direct.push(CompiledDirect { attribute: attribute.to_owned(), target: mapping.target });
        }

        let fallback = compile_fallbacks(config)?;

        let mut managed_multi = [false; Target::COUNT];
        for target in [Target::Group, Target::Addon] {
            let ruled =
                config.rules.iter().any(|r| r.target == target) || config.direct.iter().any(|d| d.target == target);
            if let Some(slot) = managed_multi.get_mut(target.index()) {
                *slot = ruled && !config.when_no_match.contains_key(&target);
            }
        }
        Ok(CompiledMapping { config: config.clone(), rules, direct, placement, fallback, managed_multi })
    }

    /// Parses and compiles the JSON file format.
    pub fn from_json(text: &str) -> Result<Self, MappingError> {
        CompiledMapping::compile(&MappingConfig::from_json(text)?)
    }

    /// The configuration this was compiled from.
    pub fn config(&self) -> &MappingConfig {
        &self.config
    }

    /// Turns one user's identity attributes into their desired state.
    pub fn evaluate(&self, attributes: &Attributes) -> DesiredState {
        let mut partial = Vec::new();
        for rule in &self.placement {
            let failures = rule.conditions.iter().filter(|condition| !condition.holds(attributes)).count();
            if failures == 0 {
                return DesiredState {
                    user_type: rule.user_type.map_or(Field::Keep, Field::Set),
                    addons: rule.addons.clone().map_or(MultiDesired::Keep, MultiDesired::Set),
                    placement: Some(rule.sub_account.clone()),
                    ..DesiredState::default()
                };
            }
            if failures < rule.conditions.len() {
                let failed: Vec<&str> = rule
                    .conditions
                    .iter()
                    .filter(|condition| !condition.holds(attributes))
                    .map(|condition| condition.label.as_str())
                    .collect();
                partial.push(ProvisioningIssue::new(
                    IssueCode::PlacementPartialMatch,
                    format!(
                        "placement rule not fully matched ({} → sub account \"{}\"); the user \
                         stays in this account. Failed conditions: {}",
                        rule.origin,
                        rule.sub_account,
                        failed.join("; ")
                    ),
                ));
            }
        }

        let mut hits: [Hit<'_>; Target::COUNT] = Default::default();
        let mut issues = partial;

        for rule in &self.rules {
            let Some(slot) = hits.get_mut(rule.target.index()) else { continue };
            if !rule.target.is_multi_valued() && slot.matched {
                continue;
            }
            if rule.condition.holds(attributes) {
                slot.matched = true;
                slot.values.push(HitValue::Config(&rule.value));
            }
        }

        for mapping in &self.direct {
            let target = mapping.target;
            let Some(slot) = hits.get_mut(target.index()) else { continue };
            if !target.is_multi_valued() && (slot.matched || slot.invalid) {
                continue;
            }
            let mut values =
                values_named(attributes, &mapping.attribute).map(str::trim).filter(|value| !value.is_empty());
            let mut take = |raw: &str, slot: &mut Hit<'_>| match parse_value(target, raw) {
                Ok(value) => {
                    slot.matched = true;
                    slot.values.push(HitValue::Owned(value));
                }
                Err(message) => {
                    slot.invalid = true;
                    let code = if target == Target::PhoneNumber {
                        IssueCode::InvalidPhoneNumber
                    } else {
                        IssueCode::InvalidValue
                    };
                    issues.push(
                        ProvisioningIssue::new(code, format!("{message}; {target} left unchanged"))
                            .with_attribute(mapping.attribute.as_str()),
                    );
                }
            };
            if target.is_multi_valued() {
                for raw in values {
                    take(raw, slot);
                }
            } else if let Some(raw) = values.next() {
                take(raw, slot);
            }
        }

        let mut resolved: [Resolution; Target::COUNT] = Default::default();
        let managed_multi = self.managed_multi;
        for (index, ((hit, slot), fallback)) in
            hits.iter_mut().zip(resolved.iter_mut()).zip(self.fallback.iter()).enumerate()
        {
            *slot = if hit.invalid {
                Resolution::Keep
            } else if hit.matched {
                Resolution::Set(hit.values.drain(..).map(HitValue::into_value).collect())
            } else {
                match fallback {
                    // Multi-valued targets the rules manage (groups, add-ons): no match means
                    // none of the managed values; the pipeline leaves those and keeps what
                    // was given by hand.
                    Fallback::Keep if managed_multi.get(index).copied().unwrap_or(false) => Resolution::Set(Vec::new()),
                    Fallback::Keep => Resolution::Keep,
                    Fallback::Clear => Resolution::Clear,
                    Fallback::Values(values) => Resolution::Set(values.clone()),
                }
            };
        }

        let mut take =
            |target: Target| resolved.get_mut(target.index()).map(std::mem::take).unwrap_or(Resolution::Keep);
        DesiredState {
            user_type: single(take(Target::UserType), |v| match v {
                Value::Tier(tier) => Some(tier),
                _ => None,
            }),
            addons: multi(take(Target::Addon), |v| match v {
                Value::AddOn(addon) => Some(addon),
                _ => None,
            }),
            groups: multi(take(Target::Group), text),
            role: single(take(Target::Role), text),
            department: single(take(Target::Department), text),
            job_title: single(take(Target::JobTitle), text),
            location: single(take(Target::Location), text),
            cost_center: single(take(Target::CostCenter), text),
            phone_site: single(take(Target::PhoneSite), text),
            phone_extension: single(take(Target::PhoneExtension), |v| match v {
                Value::Extension(extension) => Some(extension),
                _ => None,
            }),
            phone_number: single(take(Target::PhoneNumber), text),
            calling_plan: single(take(Target::CallingPlan), |v| match v {
                Value::Plan(plan) => Some(plan),
                _ => None,
            }),
            phone_roles: multi(take(Target::PhoneRole), |v| match v {
                Value::Role(role) => Some(role),
                _ => None,
            }),
            placement: None,
            issues,
        }
    }
}

fn compile_placement(number: usize, rule: &PlacementRule) -> Result<CompiledPlacement, MappingError> {
    let location = format!("placement rule {number}");
    let sub_account = rule.sub_account.trim();
    if sub_account.is_empty() {
        return Err(invalid(location, "the sub account is empty"));
    }
    if rule.conditions.is_empty() {
        return Err(invalid(location, "a placement rule needs at least one condition"));
    }
    if rule.conditions.len() > MAX_CONDITIONS {
        return Err(invalid(location, format!("more than {MAX_CONDITIONS} conditions")));
    }
    let mut conditions = Vec::with_capacity(rule.conditions.len());
    for (j, condition) in rule.conditions.iter().enumerate() {
        let condition_location = format!("{location}, condition {}", j + 1);
        conditions.push(compile_condition(
            &condition_location,
            &condition.attribute,
            &condition.matcher,
            condition.negate,
            condition.case_sensitive,
        )?);
    }
    if let Some(addons) = &rule.addons {
        if let Some(phone) = addons.iter().find(|addon| !addon.is_meeting_addon()) {
            return Err(invalid(
                location,
                format!(
                    "{phone} is not a meeting add-on; placement grants only a meeting license \
                     and meeting add-ons"
                ),
            ));
        }
    }
    Ok(CompiledPlacement {
        origin: location,
        sub_account: SubAccountRef(sub_account.to_owned()),
        conditions,
        user_type: rule.user_type,
        addons: rule.addons.as_ref().map(|a| a.iter().copied().collect()),
    })
}

fn compile_fallbacks(config: &MappingConfig) -> Result<[Fallback; Target::COUNT], MappingError> {
    let mut fallback: [Fallback; Target::COUNT] = Default::default();
    for (&target, &mode) in &config.when_no_match {
        let location = format!("when_no_match.{target}");
        if target == Target::SubAccount {
            return Err(invalid(location, "without a matching placement rule the user stays in this account"));
        }
        if mode == NoMatch::Default && !config.defaults.contains_key(&target) {
            return Err(invalid(location, format!("`default` needs a value in defaults.{target} (null clears)")));
        }
    }
    for (&target, default) in &config.defaults {
        let location = format!("defaults.{target}");
        let mode = config.when_no_match.get(&target).copied().unwrap_or_default();
        if mode == NoMatch::Keep {
            return Err(invalid(
                location,
                format!("this default is never used: set when_no_match.{target} to \"default\""),
            ));
        }
        let raw: Vec<&str> = match default {
            None => Vec::new(),
            Some(DefaultValue::One(value)) => vec![value.as_str()],
            Some(DefaultValue::Many(values)) => values.iter().map(String::as_str).collect(),
        };
        if raw.len() > 1 && !target.is_multi_valued() {
            return Err(invalid(location, format!("{target} takes a single value")));
        }
        let mut values = Vec::with_capacity(raw.len());
        for value in raw {
            values.push(parse_value(target, value).map_err(|message| invalid(&location, message))?);
        }
        if let Some(slot) = fallback.get_mut(target.index()) {
            *slot = if values.is_empty() { Fallback::Clear } else { Fallback::Values(values) };
        }
    }
    Ok(fallback)
}

/// What evaluation found for one target.
#[derive(Default)]
struct Hit<'a> {
    matched: bool,
    invalid: bool,
    values: Vec<HitValue<'a>>,
}

enum HitValue<'a> {
    Config(&'a Value),
    Owned(Value),
}

impl HitValue<'_> {
    fn into_value(self) -> Value {
        match self {
            HitValue::Config(value) => value.clone(),
            HitValue::Owned(value) => value,
        }
    }
}

#[derive(Default)]
enum Resolution {
    #[default]
    Keep,
    Clear,
    Set(Vec<Value>),
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::Text(text) => Some(text),
        _ => None,
    }
}

fn single<T>(resolution: Resolution, extract: impl Fn(Value) -> Option<T>) -> Field<T> {
    match resolution {
        Resolution::Keep => Field::Keep,
        Resolution::Clear => Field::Clear,
        Resolution::Set(values) => values.into_iter().next().and_then(extract).map_or(Field::Keep, Field::Set),
    }
}

fn multi<T: Ord>(resolution: Resolution, extract: impl Fn(Value) -> Option<T>) -> MultiDesired<T> {
    match resolution {
        Resolution::Keep => MultiDesired::Keep,
        Resolution::Clear => MultiDesired::Set(BTreeSet::new()),
        Resolution::Set(values) => MultiDesired::Set(values.into_iter().filter_map(extract).collect()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The documented example of the file format.
    const EXAMPLE: &str = r#"{
      "rules": [
        { "attribute": "department", "match": { "equals": "Sales" },
          "target": "user_type", "value": "business" },
        { "attribute": "title", "match": { "regex": "^(vp|director)\\b" },
          "target": "user_type", "value": "enterprise" },
        { "attribute": "memberOf", "match": { "one_of": ["zoom-webinar", "marketing"] },
          "target": "addon", "value": "webinar" },
        { "attribute": "memberOf", "match": { "contains": "all-hands" },
          "target": "addon", "value": "large_meetings" },
        { "attribute": "memberOf", "match": { "equals": "contractors" }, "negate": true,
          "target": "group", "value": "Employees" },
        { "attribute": "department", "match": { "equals": "Support" },
          "target": "calling_plan", "value": "Regional Unlimited" },
        { "attribute": "department", "match": { "equals": "Support" },
          "target": "phone_role", "value": "call_queue_admin" },
        { "attribute": "office", "match": { "equals": "LON" }, "case_sensitive": false,
          "target": "phone_site", "value": "London" }
      ],
      "direct": [
        { "attribute": "telephoneNumber", "target": "phone_number" },
        { "attribute": "telephoneExtension", "target": "phone_extension" },
        { "attribute": "department", "target": "department" },
        { "attribute": "groups", "target": "group" }
      ],
      "when_no_match": { "user_type": "default", "calling_plan": "default", "addon": "keep" },
      "defaults": { "user_type": "pro", "calling_plan": null },
      "placement": [
        { "sub_account": "Healthcare",
          "conditions": [
            { "attribute": "memberOf", "match": { "equals": "global_users" } },
            { "attribute": "department", "match": { "one_of": ["HIPAA", "Developer", "Tester"] } }
          ],
          "user_type": "business",
          "addons": ["large_meetings"] }
      ]
    }"#;

    fn attrs(pairs: &[(&str, &[&str])]) -> Attributes {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect())).collect()
    }

    fn compile(json: &str) -> CompiledMapping {
        CompiledMapping::from_json(json).unwrap()
    }

    fn load_error(json: &str) -> String {
        CompiledMapping::from_json(json).unwrap_err().to_string()
    }

    fn set<T: Ord + Clone>(values: &[T]) -> BTreeSet<T> {
        values.iter().cloned().collect()
    }

    #[test]
    fn example_file_loads_and_round_trips() {
        let config = MappingConfig::from_json(EXAMPLE).unwrap();
        let json = serde_json::to_string_pretty(&config).unwrap();
        assert_eq!(MappingConfig::from_json(&json).unwrap(), config);
        let mapping = CompiledMapping::compile(&config).unwrap();
        assert_eq!(mapping.config(), &config);
    }

    #[test]
    fn first_matching_rule_wins_for_single_valued_targets() {
        let mapping = compile(EXAMPLE);
        let state = mapping.evaluate(&attrs(&[("department", &["Sales"]), ("title", &["VP of Sales"])]));
        assert_eq!(state.user_type, Field::Set(UserTier::Business));
        let state = mapping.evaluate(&attrs(&[("title", &["Director, Engineering"])]));
        assert_eq!(state.user_type, Field::Set(UserTier::Enterprise));
    }

    #[test]
    fn multi_valued_targets_accumulate_rules_and_direct_values() {
        let mapping = compile(EXAMPLE);
        let state = mapping.evaluate(&attrs(&[
            ("memberOf", &["marketing", "company-all-hands"]),
            ("groups", &["Design", "  ", "Paris"]),
        ]));
        assert_eq!(state.addons, MultiDesired::Set(set(&[AddOn::Webinar, AddOn::LargeMeetings])));
        assert_eq!(
            state.groups,
            MultiDesired::Set(set(&["Employees".to_owned(), "Design".to_owned(), "Paris".to_owned()]))
        );
    }

    #[test]
    fn keep_versus_default_when_nothing_matches() {
        let mapping = compile(EXAMPLE);
        let state = mapping.evaluate(&attrs(&[("memberOf", &["contractors"])]));
        // user_type: default "pro"; calling_plan: default null clears.
        assert_eq!(state.user_type, Field::Set(UserTier::Pro));
        assert_eq!(state.calling_plan, Field::Clear);
        // addon: an explicit keep. Groups (rule-managed, no when_no_match entry): none of the
        // managed values (the user leaves them; what was given by hand stays).
        assert_eq!(state.addons, MultiDesired::Keep);
        assert_eq!(state.groups, MultiDesired::Set(BTreeSet::new()));
        // Single-valued, no when_no_match entry: keep.
        assert_eq!(state.phone_site, Field::Keep);
        assert_eq!(state.department, Field::Keep);
        assert!(state.issues.is_empty());
    }

    #[test]
    fn negation_holds_when_no_value_matches_including_absent_attributes() {
        let mapping = compile(EXAMPLE);
        let employee = mapping.evaluate(&attrs(&[("memberOf", &["staff"])]));
        assert_eq!(employee.groups, MultiDesired::Set(set(&["Employees".to_owned()])));
        let nothing = mapping.evaluate(&Attributes::new());
        assert_eq!(nothing.groups, MultiDesired::Set(set(&["Employees".to_owned()])));
        let contractor = mapping.evaluate(&attrs(&[("memberOf", &["staff", "Contractors"])]));
        assert_eq!(contractor.groups, MultiDesired::Set(BTreeSet::new()), "leaves the rule's group");
        // An explicit `keep` keeps.
        let mut config = MappingConfig::from_json(EXAMPLE).unwrap();
        config.when_no_match.insert(Target::Group, NoMatch::Keep);
        let keeping = CompiledMapping::compile(&config).unwrap();
        let contractor = keeping.evaluate(&attrs(&[("memberOf", &["staff", "Contractors"])]));
        assert_eq!(contractor.groups, MultiDesired::Keep);
    }

    #[test]
    fn any_value_of_a_multi_valued_attribute_matches() {
        let mapping = compile(EXAMPLE);
        let state = mapping.evaluate(&attrs(&[("department", &["Engineering", "Support"])]));
        assert_eq!(state.calling_plan, Field::Set(CallingPlan::RegionalUnlimited));
        assert_eq!(state.phone_roles, MultiDesired::Set(set(&[PhoneRole::CallQueueAdmin])));
    }

    #[test]
    fn attribute_names_ignore_case_and_values_fold_case() {
        let mapping = compile(EXAMPLE);
        let state = mapping.evaluate(&attrs(&[("DEPARTMENT", &[" sales "]), ("Office", &["lon"])]));
        assert_eq!(state.user_type, Field::Set(UserTier::Business));
        assert_eq!(state.phone_site, Field::Set("London".to_owned()));
        assert_eq!(state.department, Field::Set("sales".to_owned()));
    }

    #[test]
    fn case_sensitive_option_and_match_kinds() {
        let json = r#"{ "rules": [
            { "attribute": "d", "match": { "equals": "Sales" }, "case_sensitive": true,
              "target": "department", "value": "exact" },
            { "attribute": "d", "match": { "contains": "ale" }, "case_sensitive": true,
              "target": "job_title", "value": "contains" },
            { "attribute": "d", "match": { "regex": "^s" }, "case_sensitive": true,
              "target": "location", "value": "regex" },
            { "attribute": "d", "match": { "one_of": ["SALES", "x"] },
              "target": "cost_center", "value": "one_of" }
        ] }"#;
        let mapping = compile(json);
        let upper = mapping.evaluate(&attrs(&[("d", &["SALES"])]));
        assert_eq!(upper.department, Field::Keep);
        assert_eq!(upper.job_title, Field::Keep);
        assert_eq!(upper.location, Field::Keep);
        assert_eq!(upper.cost_center, Field::Set("one_of".to_owned()));
        let exact = mapping.evaluate(&attrs(&[("d", &["Sales"])]));
        assert_eq!(exact.department, Field::Set("exact".to_owned()));
        assert_eq!(exact.job_title, Field::Set("contains".to_owned()));
        let lower = mapping.evaluate(&attrs(&[("d", &["sales"])]));
        assert_eq!(lower.location, Field::Set("regex".to_owned()));
        assert_eq!(lower.department, Field::Keep);
    }

    #[test]
    fn regexes_are_checked_at_load_and_name_the_rule() {
        let bad = r#"{ "rules": [
            { "attribute": "a", "match": { "equals": "x" }, "target": "group", "value": "g" },
            { "attribute": "title", "match": { "regex": "(unclosed" }, "target": "group", "value": "g" }
        ] }"#;
        let error = load_error(bad);
        assert!(error.starts_with("rule 2 (`title` → group): invalid regex"), "{error}");

        let huge = r#"{ "rules": [
            { "attribute": "a", "match": { "regex": "\\w{1000}\\w{1000}\\w{1000}" }, "target": "group", "value": "g" }
        ] }"#;
        assert!(load_error(huge).contains("invalid regex"));

        let placement = r#"{ "placement": [ { "sub_account": "S", "conditions": [
            { "attribute": "a", "match": { "equals": "x" } },
            { "attribute": "b", "match": { "regex": "[" } } ] } ] }"#;
        assert!(load_error(placement).starts_with("placement rule 1, condition 2"));
    }

    #[test]
    fn invalid_configurations_are_refused_with_their_location() {
        let cases = [
            (
                r#"{ "rules": [ { "attribute": "a", "match": { "equals": "x" }, "target": "user_type", "value": "platinum" } ] }"#,
                "rule 1 (`a` → user_type): unknown user type",
            ),
            (
                r#"{ "rules": [ { "attribute": "a", "match": { "equals": " " }, "target": "group", "value": "g" } ] }"#,
                "rule 1 (`a` → group): the match pattern is empty",
            ),
            (
                r#"{ "rules": [ { "attribute": "a", "match": { "one_of": [] }, "target": "group", "value": "g" } ] }"#,
                "rule 1 (`a` → group): `one_of` needs at least one value",
            ),
            (
                r#"{ "rules": [ { "attribute": "a", "match": { "equals": "x" }, "target": "phone_number", "value": "555-5555" } ] }"#,
                "rule 1 (`a` → phone_number): phone number `555-5555`",
            ),
            (
                r#"{ "rules": [ { "attribute": "a", "match": { "equals": "x" }, "target": "role", "value": "Owner" } ] }"#,
                "rule 1 (`a` → role): the owner role cannot be granted by mapping",
            ),
            (
                r#"{ "direct": [ { "attribute": "org", "target": "sub_account" } ] }"#,
                "direct mapping 1: sub accounts are chosen by placement rules",
            ),
            (r#"{ "when_no_match": { "user_type": "default" } }"#, "when_no_match.user_type: `default` needs a value"),
            (r#"{ "defaults": { "user_type": "pro" } }"#, "defaults.user_type: this default is never used"),
            (
                r#"{ "when_no_match": { "user_type": "default" }, "defaults": { "user_type": ["pro", "basic"] } }"#,
                "defaults.user_type: user_type takes a single value",
            ),
            (
                r#"{ "placement": [ { "sub_account": "S", "conditions": [] } ] }"#,
                "placement rule 1: a placement rule needs at least one condition",
            ),
            (
                r#"{ "placement": [ { "sub_account": "S", "addons": ["power_pack"], "conditions": [ { "attribute": "a", "match": { "equals": "x" } } ] } ] }"#,
                "placement rule 1: power_pack is not a meeting add-on",
            ),
        ];
        for (json, want) in cases {
            let error = load_error(json);
            assert!(error.starts_with(want), "{error}\nwanted: {want}");
        }
        for syntax in [
            "{",
            r#"{ "rulez": [] }"#,
            r#"{ "rules": [ { "attribute": "a", "match": { "like": "x" }, "target": "group", "value": "g" } ] }"#,
            r#"{ "rules": [ { "attribute": "a", "match": { "equals": "x" }, "target": "shoe_size", "value": "g" } ] }"#,
            r#"{ "placement": [ { "sub_account": "S", "user_type": "gold", "conditions": [] } ] }"#,
        ] {
            assert!(matches!(CompiledMapping::from_json(syntax), Err(MappingError::Syntax(_))), "{syntax}");
        }
    }

    #[test]
    fn placement_requires_every_condition() {
        let mapping = compile(EXAMPLE);

        // All conditions hold: placed, with only the meeting license and meeting add-ons.
        let placed = mapping.evaluate(&attrs(&[
            ("memberOf", &["global_users", "marketing", "zoom-webinar"]),
            ("department", &["Support", "HIPAA"]),
            ("telephoneNumber", &["+1 555-555-5555"]),
            ("groups", &["Design"]),
        ]));
        assert_eq!(placed.placement, Some(SubAccountRef("Healthcare".into())));
        assert_eq!(placed.user_type, Field::Set(UserTier::Business));
        assert_eq!(placed.addons, MultiDesired::Set(set(&[AddOn::LargeMeetings])));
        assert_eq!(placed.groups, MultiDesired::Keep);
        assert_eq!(placed.phone_roles, MultiDesired::Keep);
        assert_eq!(placed.calling_plan, Field::Keep);
        assert_eq!(placed.phone_number, Field::Keep);
        assert_eq!(placed.department, Field::Keep);
        assert_eq!(placed.role, Field::Keep);
        assert!(placed.issues.is_empty());

        // One condition fails: not placed, reported, and the ordinary rules apply.
        let partial = mapping.evaluate(&attrs(&[("memberOf", &["global_users"]), ("department", &["Support"])]));
        assert_eq!(partial.placement, None);
        assert_eq!(partial.issues.len(), 1);
        let issue = &partial.issues[0];
        assert_eq!(issue.code, IssueCode::PlacementPartialMatch);
        assert!(issue.message.contains("placement rule not fully matched"));
        assert!(issue.message.contains("department one of [HIPAA, Developer, Tester]"), "{}", issue.message);
        assert!(!issue.message.contains("memberOf equals"));
        assert_eq!(partial.calling_plan, Field::Set(CallingPlan::RegionalUnlimited));

        // No condition holds: simply not targeted.
        let none = mapping.evaluate(&attrs(&[("department", &["Legal"])]));
        assert_eq!(none.placement, None);
        assert!(none.issues.is_empty());
    }

    #[test]
    fn placement_without_license_keeps_it_and_shorthand_rules_place_too() {
        let json = r#"{
          "rules": [
            { "attribute": "company", "match": { "equals": "Acme Labs" },
              "target": "sub_account", "value": "labs" },
            { "attribute": "company", "match": { "equals": "Acme Labs" },
              "target": "user_type", "value": "pro" }
          ],
          "placement": [ { "sub_account": "first", "addons": [],
            "conditions": [ { "attribute": "vip", "match": { "equals": "yes" } } ] } ]
        }"#;
        let mapping = compile(json);
        let labs = mapping.evaluate(&attrs(&[("company", &["acme labs"])]));
        assert_eq!(labs.placement, Some(SubAccountRef("labs".into())));
        assert_eq!(labs.user_type, Field::Keep);
        assert_eq!(labs.addons, MultiDesired::Keep);

        // The explicit placement list is tried first; `addons: []` clears add-ons.
        let vip = mapping.evaluate(&attrs(&[("company", &["Acme Labs"]), ("vip", &["YES"])]));
        assert_eq!(vip.placement, Some(SubAccountRef("first".into())));
        assert_eq!(vip.addons, MultiDesired::Set(BTreeSet::new()));
    }

    #[test]
    fn explicit_rules_beat_direct_mappings() {
        let json = r#"{
          "rules": [ { "attribute": "dept", "match": { "equals": "Ops" },
                       "target": "department", "value": "Operations" } ],
          "direct": [ { "attribute": "dept", "target": "department" },
                      { "attribute": "fallbackDept", "target": "department" } ]
        }"#;
        let mapping = compile(json);
        let ruled = mapping.evaluate(&attrs(&[("dept", &["Ops"])]));
        assert_eq!(ruled.department, Field::Set("Operations".to_owned()));
        let copied = mapping.evaluate(&attrs(&[("dept", &["Finance", "Legal"])]));
        assert_eq!(copied.department, Field::Set("Finance".to_owned()));
        let second = mapping.evaluate(&attrs(&[("dept", &[" "]), ("fallbackdept", &["HR"])]));
        assert_eq!(second.department, Field::Set("HR".to_owned()));
    }

    #[test]
    fn direct_phone_values_are_normalized_or_reported() {
        let mapping = compile(EXAMPLE);
        let good =
            mapping.evaluate(&attrs(&[("telephoneNumber", &["+44 (0)20 7946 0018"]), ("telephoneExtension", &["0"])]));
        assert_eq!(good.phone_number, Field::Set("+442079460018".to_owned()));
        assert_eq!(good.phone_extension, Field::Set(ExtensionRequest::NextFree));
        assert!(good.issues.is_empty());

        let bad = mapping.evaluate(&attrs(&[("telephoneNumber", &["555-5555"]), ("telephoneExtension", &["ext 12"])]));
        assert_eq!(bad.phone_number, Field::Keep);
        assert_eq!(bad.phone_extension, Field::Keep);
        let codes: Vec<_> = bad.issues.iter().map(|i| i.code).collect();
        assert_eq!(codes, vec![IssueCode::InvalidPhoneNumber, IssueCode::InvalidValue]);
        assert_eq!(bad.issues[0].attribute.as_deref(), Some("telephoneNumber"));
    }

    #[test]
    fn an_invalid_value_leaves_the_target_alone_even_with_a_default() {
        let json = r#"{
          "direct": [ { "attribute": "license", "target": "user_type" },
                      { "attribute": "extras", "target": "addon" } ],
          "when_no_match": { "user_type": "default", "addon": "default" },
          "defaults": { "user_type": "basic", "addon": [] }
        }"#;
        let mapping = compile(json);
        let typo = mapping.evaluate(&attrs(&[("license", &["Platinum"]), ("extras", &["webinar", "teleport"])]));
        assert_eq!(typo.user_type, Field::Keep);
        assert_eq!(typo.addons, MultiDesired::Keep);
        assert_eq!(typo.issues.len(), 2);
        assert!(typo.issues.iter().all(|i| i.code == IssueCode::InvalidValue));

        let fine = mapping.evaluate(&attrs(&[
            ("license", &["Zoom Workplace Business Plus"]),
            ("extras", &["Webinar", "Large Meetings"]),
        ]));
        assert_eq!(fine.user_type, Field::Set(UserTier::BusinessPlus));
        assert_eq!(fine.addons, MultiDesired::Set(set(&[AddOn::Webinar, AddOn::LargeMeetings])));

        let absent = mapping.evaluate(&Attributes::new());
        assert_eq!(absent.user_type, Field::Set(UserTier::Basic));
        assert_eq!(absent.addons, MultiDesired::Set(BTreeSet::new()));
    }

    #[test]
    fn module_doc_example_loads() {
        let docs = include_str!("mapping.rs");
        let json: String = docs
            .lines()
            .skip_while(|line| *line != "//! ```json")
            .skip(1)
            .take_while(|line| *line != "//! ```")
            .map(|line| line.trim_start_matches("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let mapping = compile(&json);
        let state = mapping.evaluate(&attrs(&[("office", &["LON-2"])]));
        assert_eq!(state.phone_site, Field::Set("London".to_owned()));
    }

    #[test]
    fn targets_index_their_slots_and_compiled_mappings_are_shareable() {
        for (i, target) in Target::ALL.iter().enumerate() {
            assert_eq!(target.index(), i);
            let json = serde_json::to_string(target).unwrap();
            assert_eq!(json, format!("\"{}\"", target.as_str()));
        }
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<CompiledMapping>();
    }

    #[test]
    fn desired_values_resolve_against_the_current_state() {
        assert_eq!(Field::Keep.apply(Some(3)), Some(3));
        assert_eq!(Field::Set(4).apply(Some(3)), Some(4));
        assert_eq!(Field::<u8>::Clear.apply(Some(3)), None);
        let current = set(&[1, 2]);
        assert_eq!(MultiDesired::Keep.resolve(&current), current);
        assert_eq!(MultiDesired::Set(set(&[5])).resolve(&current), set(&[5]));
        let json = serde_json::to_value(Field::Set(UserTier::Pro)).unwrap();
        assert_eq!(json, serde_json::json!({"action": "set", "value": "pro"}));
    }

    proptest! {
        #[test]
        fn evaluation_never_panics(
            raw in proptest::collection::btree_map(
                "(?i)(department|memberof|title|telephonenumber|groups|office|x)",
                proptest::collection::vec("\\PC{0,24}", 0..4),
                0..6,
            )
        ) {
            let mapping = compile(EXAMPLE);
            let state = mapping.evaluate(&raw);
            if state.placement.is_some() {
                prop_assert!(state.groups.is_keep() && state.phone_number.is_keep());
            }
            if let Field::Set(number) = &state.phone_number {
                prop_assert_eq!(normalize_e164(number), Ok(number.clone()));
            }
        }

        #[test]
        fn first_rule_wins_whatever_the_order_of_values(
            values in proptest::collection::vec("(a|b|c|d)", 0..5),
        ) {
            let json = r#"{ "rules": [
                { "attribute": "k", "match": { "equals": "c" }, "target": "department", "value": "C" },
                { "attribute": "k", "match": { "one_of": ["a", "b"] }, "target": "department", "value": "AB" }
            ] }"#;
            let mapping = compile(json);
            let mut attributes = Attributes::new();
            attributes.insert("k".to_owned(), values.clone());
            let state = mapping.evaluate(&attributes);
            let want = if values.iter().any(|v| v == "c") {
                Field::Set("C".to_owned())
            } else if values.iter().any(|v| v == "a" || v == "b") {
                Field::Set("AB".to_owned())
            } else {
                Field::Keep
            };
            prop_assert_eq!(state.department, want);
        }
    }

    #[test]
    fn group_rules_read_groups_and_member_of_alike() {
        let mapping = CompiledMapping::from_json(
            r#"{ "rules": [ { "attribute": "memberOf", "match": { "equals": "zoom-webinar" }, "target": "addon", "value": "webinar" },
                            { "attribute": "groups", "match": { "equals": "Sales" }, "target": "group", "value": "SalesG" } ] }"#,
        )
        .unwrap();
        // A SCIM push names memberships `groups`; a rule written with memberOf still fires.
        let scim = mapping.evaluate(&attrs(&[("groups", &["zoom-webinar"])]));
        assert_eq!(scim.addons, MultiDesired::Set(BTreeSet::from([AddOn::Webinar])), "{scim:?}");
        // And a SAML memberOf attribute feeds a `groups` rule.
        let saml = mapping.evaluate(&attrs(&[("memberOf", &["Sales"])]));
        assert_eq!(saml.groups, MultiDesired::Set(BTreeSet::from(["SalesG".to_owned()])), "{saml:?}");
        // Other attributes are not mixed up.
        let other = mapping.evaluate(&attrs(&[("department", &["Sales"])]));
        assert_eq!(other.groups, MultiDesired::Set(BTreeSet::new()));
    }

    #[test]
    fn named_targets_are_the_literal_groups_sites_and_sub_accounts() {
        let config = MappingConfig::from_json(
            r#"{ "rules": [ { "attribute": "x", "match": { "equals": "a" }, "target": "group", "value": "Employees" },
                            { "attribute": "x", "match": { "equals": "b" }, "target": "phone_site", "value": "London" } ],
                 "direct": [ { "attribute": "groups", "target": "group" } ],
                 "placement": [ { "sub_account": "Healthcare", "conditions": [ { "attribute": "x", "match": { "equals": "c" } } ] } ] }"#,
        )
        .unwrap();
        let named = config.named_targets();
        assert_eq!(named.groups.iter().collect::<Vec<_>>(), ["Employees"]);
        assert_eq!(named.sites.iter().collect::<Vec<_>>(), ["London"]);
        assert_eq!(named.sub_accounts.iter().collect::<Vec<_>>(), ["Healthcare"]);
    }
}
