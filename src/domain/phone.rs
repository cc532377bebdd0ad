//! Phone rules (Zoom Phone-style): numbers, sites, extensions, entitlements, roles.
//!
//! Everything here decides; nothing here stores. Conflicts a user's incoming data can cause (a
//! taken extension, an unknown number, a full site) come back as [`ProvisioningIssue`]s with the
//! user keeping what they had, because one bad attribute must never fail a login or a SCIM push
//! and must never take something away from another user.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::catalog::{canonical, AddOn, CallingPlan, Product, UserTier};
use super::field::Field;
use super::issue::{IssueCode, ProvisioningIssue};

// ---------------------------------------------------------------------------------------------
// E.164 numbers
// ---------------------------------------------------------------------------------------------

/// E.164 allows at most 15 digits after the `+`.
pub const E164_MAX_DIGITS: usize = 15;
/// The shortest complete international numbers in service (small Pacific territories) have 7
/// digits including the country code; anything shorter is certainly incomplete.
pub const E164_MIN_DIGITS: usize = 7;

/// Why a string is not a complete international phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the number is empty")]
    Empty,
    #[error("unexpected character `{0}` in the number")]
    InvalidCharacter(char),
    #[error("`+` may only start the number")]
    MisplacedPlus,
    #[error("the number has no country code; write it as +<country code> <number>")]
    MissingCountryCode,
    #[error("a country code never starts with 0")]
    InvalidCountryCode,
    #[error("the number has {0} digits; a complete international number has at least 7")]
    TooShort(usize),
    #[error("the number has {0} digits; E.164 allows at most 15")]
    TooLong(usize),
    #[error("a North American (+1) number has a 3-digit area code and 7 digits, neither starting with 0 or 1")]
    InvalidNorthAmerican,
    #[error("a direct number cannot carry an extension or sub-address")]
    HasExtension,
}

/// Normalizes a complete phone number written in a common notation to E.164 (`+<digits>`).
///
/// Accepted: a leading `+` or the `00` international prefix, a `tel:` URI, the separators
/// space (including no-break spaces), `-`, `.`, `/`, parentheses and typographic dashes, and the
/// national trunk prefix written as `(0)` after the country code (`+44 (0)20 …`). Refused:
/// numbers without a country code, letters, a country code starting with 0, fewer than 7 or
/// more than 15 digits, malformed North American numbers, and `tel:` extensions.
pub fn normalize_e164(raw: &str) -> Result<String, NumberError> {
    let mut text = raw.trim();
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if text.get(..4).is_some_and(|scheme| scheme.eq_ignore_ascii_case("tel:")) {
        text = text.get(4..).unwrap_or_default();
        if let Some((number, params)) = text.split_once(';') {
            for param in params.split(';') {
                let name = param.split('=').next().unwrap_or_default().trim();
                if name.eq_ignore_ascii_case("ext") || name.eq_ignore_ascii_case("isub") {
                    return Err(NumberError::HasExtension);
                }
            }
            text = number;
        }
        text = text.trim();
    }

    let mut digits = String::with_capacity(E164_MAX_DIGITS + 2);
    let mut plus = false;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        let international = plus || digits.starts_with("00");
        let country_started = if plus { !digits.is_empty() } else { digits.len() > 2 };
        if ch == '(' && international && country_started {
            if let Some(after) = strip_trunk_zero(rest) {
                rest = after;
                continue;
            }
        }
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if !plus && digits.is_empty() => plus = true,
            '+' => return Err(NumberError::MisplacedPlus),
            '-' | '.' | '/' | '(' | ')' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
            c if c.is_whitespace() => {}
            c => return Err(NumberError::InvalidCharacter(c)),
        }
        rest = rest.get(ch.len_utf8()..).unwrap_or_default();
    }

    if digits.is_empty() {
        return Err(if plus { NumberError::TooShort(0) } else { NumberError::Empty });
    }
    let national = if plus {
        digits.as_str()
    } else if let Some(after_prefix) = digits.strip_prefix("00") {
        after_prefix
    } else {
        return Err(NumberError::MissingCountryCode);
    };
    if national.starts_with('0') {
        return Err(NumberError::InvalidCountryCode);
    }
    let count = national.len();
    if count > E164_MAX_DIGITS {
        return Err(NumberError::TooLong(count));
    }
    if count < E164_MIN_DIGITS {
        return Err(NumberError::TooShort(count));
    }
    if let Some(nanp) = national.strip_prefix('1') {
        let bytes = nanp.as_bytes();
        let valid = bytes.len() == 10
            && bytes.first().is_some_and(|&area| area >= b'2')
            && bytes.get(3).is_some_and(|&exchange| exchange >= b'2');
        if !valid {
            return Err(NumberError::InvalidNorthAmerican);
        }
    }
    let mut out = String::with_capacity(count + 1);
    out.push('+');
    out.push_str(national);
    Ok(out)
}

/// If `text` starts with a trunk-prefix group `(0)` (spaces allowed inside), returns what follows.
fn strip_trunk_zero(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('(')?;
    let inner = inner.trim_start();
    let inner = inner.strip_prefix('0')?;
    let inner = inner.trim_start();
    inner.strip_prefix(')')
}

// ---------------------------------------------------------------------------------------------
// Sites and extensions
// ---------------------------------------------------------------------------------------------

/// Shortest allowed short-extension length.
pub const MIN_EXTENSION_LENGTH: u8 = 2;
/// Longest allowed short-extension length (with a 3-digit site code a long extension has at
/// most 9 digits, which always fits a `u32`).
pub const MAX_EXTENSION_LENGTH: u8 = 6;

/// Why a site's code or extension plan is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("a site code is 1 to 3 digits, got `{0}`")]
    InvalidSiteCode(String),
    #[error("a short extension has {MIN_EXTENSION_LENGTH} to {MAX_EXTENSION_LENGTH} digits, got {0}")]
    InvalidLength(u8),
    #[error("extension range {first}..={last} does not fit {length} digits (1..={max})")]
    InvalidRange { first: u32, last: u32, length: u8, max: u32 },
}

/// A site code: 1 to 3 ASCII digits, kept as written (`"01"` and `"1"` are different codes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteCode(String);

impl SiteCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SiteCode {
    type Err = SiteError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let code = raw.trim();
        if (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(SiteCode(code.to_owned()))
        } else {
            Err(SiteError::InvalidSiteCode(raw.to_owned()))
        }
    }
}

impl TryFrom<String> for SiteCode {
    type Error = SiteError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<SiteCode> for String {
    fn from(code: SiteCode) -> Self {
        code.0
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an extension cannot be used in a site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("`{0}` is not an extension number")]
    NotANumber(String),
    #[error("0 is not an extension; it asks for the next free one")]
    Zero,
    #[error("extension {extension} has more than {length} digits")]
    TooManyDigits { extension: u32, length: u8 },
    #[error("extension {extension} is outside the site's range {first}..={last}")]
    OutOfRange { extension: u32, first: u32, last: u32 },
}

/// A site's short-extension plan: how many digits and which numbers may be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ExtensionPlanRaw", into = "ExtensionPlanRaw")]
pub struct ExtensionPlan {
    length: u8,
    first: u32,
    last: u32,
}

#[derive(Serialize, Deserialize)]
struct ExtensionPlanRaw {
    length: u8,
    first: Option<u32>,
    last: Option<u32>,
}

impl TryFrom<ExtensionPlanRaw> for ExtensionPlan {
    type Error = SiteError;

    fn try_from(raw: ExtensionPlanRaw) -> Result<Self, Self::Error> {
        let full = ExtensionPlan::new(raw.length)?;
        ExtensionPlan::with_range(raw.length, raw.first.unwrap_or(full.first), raw.last.unwrap_or(full.last))
    }
}

impl From<ExtensionPlan> for ExtensionPlanRaw {
    fn from(plan: ExtensionPlan) -> Self {
        ExtensionPlanRaw { length: plan.length, first: Some(plan.first), last: Some(plan.last) }
    }
}

impl ExtensionPlan {
    /// Every extension of exactly `length` digits (`3` → 100..=999).
    pub fn new(length: u8) -> Result<Self, SiteError> {
        if !(MIN_EXTENSION_LENGTH..=MAX_EXTENSION_LENGTH).contains(&length) {
            return Err(SiteError::InvalidLength(length));
        }
        let last = 10u32.pow(u32::from(length)) - 1;
        let first = 10u32.pow(u32::from(length) - 1);
        Ok(ExtensionPlan { length, first, last })
    }

    /// A custom range inside `length` digits; numbers shorter than `length` are zero-padded in
    /// the long form. 0 is never an extension (it means "next free").
    pub fn with_range(length: u8, first: u32, last: u32) -> Result<Self, SiteError> {
        let full = ExtensionPlan::new(length)?;
        if first == 0 || first > last || last > full.last {
            return Err(SiteError::InvalidRange { first, last, length, max: full.last });
        }
        Ok(ExtensionPlan { length, first, last })
    }

    pub const fn length(&self) -> u8 {
        self.length
    }

    pub const fn first(&self) -> u32 {
        self.first
    }

    pub const fn last(&self) -> u32 {
        self.last
    }

    pub const fn range(&self) -> RangeInclusive<u32> {
        self.first..=self.last
    }

    /// How many extensions the plan holds.
    pub const fn capacity(&self) -> u32 {
        self.last - self.first + 1
    }

    /// Whether `extension` may be handed out in this site.
    pub fn check(&self, extension: u32) -> Result<(), ExtensionError> {
        if extension == 0 {
            return Err(ExtensionError::Zero);
        }
        if extension > 10u32.pow(u32::from(self.length)) - 1 {
            return Err(ExtensionError::TooManyDigits { extension, length: self.length });
        }
        if !self.range().contains(&extension) {
            return Err(ExtensionError::OutOfRange { extension, first: self.first, last: self.last });
        }
        Ok(())
    }

    /// The long form: the site code followed by the short extension zero-padded to the plan's
    /// length (`"12"` + `7` with length 3 → `"12007"`). Without a site code it is the padded
    /// short extension.
    pub fn long_form(&self, code: Option<&SiteCode>, extension: u32) -> Result<String, ExtensionError> {
        self.check(extension)?;
        let width = usize::from(self.length);
        Ok(match code {
            Some(code) => format!("{code}{extension:0width$}"),
            None => format!("{extension:0width$}"),
        })
    }
}

/// A phone site as far as these rules need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub name: String,
    /// Site codes are optional: accounts that do not use them dial short extensions only.
    pub code: Option<SiteCode>,
    pub extensions: ExtensionPlan,
}

impl Site {
    pub fn long_extension(&self, extension: u32) -> Result<String, ExtensionError> {
        self.extensions.long_form(self.code.as_ref(), extension)
    }
}

/// An incoming extension value: `0` asks for the next free extension of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExtensionRequest {
    NextFree,
    Exact(u32),
}

impl FromStr for ExtensionRequest {
    type Err = ExtensionError;

    /// Digits only (surrounding spaces ignored), at most 9 of them once leading zeros are gone.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let text = raw.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ExtensionError::NotANumber(raw.to_owned()));
        }
        let significant = text.trim_start_matches('0');
        if significant.is_empty() {
            return Ok(ExtensionRequest::NextFree);
        }
        if significant.len() > 9 {
            return Err(ExtensionError::NotANumber(raw.to_owned()));
        }
        significant.parse().map(ExtensionRequest::Exact).map_err(|_| ExtensionError::NotANumber(raw.to_owned()))
    }
}

impl fmt::Display for ExtensionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionRequest::NextFree => f.write_str("0"),
            ExtensionRequest::Exact(extension) => write!(f, "{extension}"),
        }
    }
}

impl Serialize for ExtensionRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ExtensionRequest::NextFree => serializer.serialize_u32(0),
            ExtensionRequest::Exact(extension) => serializer.serialize_u32(*extension),
        }
    }
}

/// The extensions already taken in one site.
pub trait UsedExtensions {
    fn is_used(&self, extension: u32) -> bool;

    /// The lowest extension of `range` that is not used.
    fn first_free(&self, range: RangeInclusive<u32>) -> Option<u32> {
        range.into_iter().find(|extension| !self.is_used(*extension))
    }
}

impl UsedExtensions for BTreeSet<u32> {
    fn is_used(&self, extension: u32) -> bool {
        self.contains(&extension)
    }

    /// Walks the used extensions in order instead of probing every candidate.
    fn first_free(&self, range: RangeInclusive<u32>) -> Option<u32> {
        let (first, last) = (*range.start(), *range.end());
        if first > last {
            return None;
        }
        let mut candidate = first;
        for &used in self.range(first..=last) {
            if used != candidate {
                return Some(candidate);
            }
            if candidate == last {
                return None;
            }
            candidate += 1;
        }
        Some(candidate)
    }
}

impl<S: BuildHasher> UsedExtensions for HashSet<u32, S> {
    fn is_used(&self, extension: u32) -> bool {
        self.contains(&extension)
    }
}

impl UsedExtensions for [u32] {
    fn is_used(&self, extension: u32) -> bool {
        self.contains(&extension)
    }
}

impl UsedExtensions for Vec<u32> {
    fn is_used(&self, extension: u32) -> bool {
        self.as_slice().is_used(extension)
    }
}

/// The lowest free extension in `range`, or `None` when every one is taken.
pub fn next_free_extension<U>(range: RangeInclusive<u32>, used: &U) -> Option<u32>
where
    U: UsedExtensions + ?Sized,
{
    used.first_free(range)
}

/// The order in which "next free extension" tries a site's extensions: upwards from just
/// after `hint` (the last one handed out), then wrapping around to the start of the range,
/// each extension exactly once. Allocation stays amortised O(1) probes for bulk imports,
/// instead of re-scanning the filled bottom of the range every time.
pub fn extension_candidates(plan: &ExtensionPlan, hint: Option<u32>) -> impl Iterator<Item = u32> {
    let (first, last) = (plan.first(), plan.last());
    let start = hint.filter(|h| (first..last).contains(h)).map(|h| h + 1).unwrap_or(first);
    (start..=last).chain(first..start)
}

/// The next free extension after `hint` in candidate order, or `None` when the site is full.
pub fn next_free_after<U>(plan: &ExtensionPlan, hint: Option<u32>, used: &U) -> Option<u32>
where
    U: UsedExtensions + ?Sized,
{
    extension_candidates(plan, hint).find(|e| !used.is_used(*e))
}

/// What to do with a user's extension in one site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionOutcome {
    /// Give the user this extension (it is free and valid).
    Assign(u32),
    /// Leave the user's extension as it is (possibly none).
    KeepCurrent,
}

/// The outcome plus the issue to report, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionDecision {
    pub outcome: ExtensionOutcome,
    pub issue: Option<ProvisioningIssue>,
}

impl ExtensionDecision {
    fn assign(extension: u32) -> Self {
        ExtensionDecision { outcome: ExtensionOutcome::Assign(extension), issue: None }
    }

    fn keep() -> Self {
        ExtensionDecision { outcome: ExtensionOutcome::KeepCurrent, issue: None }
    }

    fn refuse(code: IssueCode, message: String) -> Self {
        ExtensionDecision { outcome: ExtensionOutcome::KeepCurrent, issue: Some(ProvisioningIssue::new(code, message)) }
    }
}

/// Decides a requested extension for a user of one site.
///
/// `current` is the user's extension in this same site (none if they have none or are moving in
/// from another site); `used` holds every extension taken in the site, the user's own included.
/// - `NextFree` keeps a valid current extension (so re-sending `0` at every login changes
///   nothing); otherwise it assigns the lowest free one, or reports
///   `extension_range_exhausted`.
/// - `Exact(n)` assigns `n` only if it is valid for the site and free; otherwise the user keeps
///   their extension and `invalid_extension` or `extension_taken` is reported.
pub fn decide_extension<U>(
    plan: &ExtensionPlan,
    request: ExtensionRequest,
    current: Option<u32>,
    used: &U,
) -> ExtensionDecision
where
    U: UsedExtensions + ?Sized,
{
    match request {
        ExtensionRequest::NextFree => {
            if current.is_some_and(|extension| plan.check(extension).is_ok()) {
                return ExtensionDecision::keep();
            }
            match next_free_extension(plan.range(), used) {
                Some(extension) => ExtensionDecision::assign(extension),
                None => ExtensionDecision::refuse(
                    IssueCode::ExtensionRangeExhausted,
                    format!("no free extension left in {}..={}", plan.first(), plan.last()),
                ),
            }
        }
        ExtensionRequest::Exact(extension) => {
            if current == Some(extension) {
                return ExtensionDecision::keep();
            }
            if let Err(error) = plan.check(extension) {
                return ExtensionDecision::refuse(IssueCode::InvalidExtension, error.to_string());
            }
            if used.is_used(extension) {
                return ExtensionDecision::refuse(
                    IssueCode::ExtensionTaken,
                    format!("extension {extension} is already used in this site"),
                );
            }
            ExtensionDecision::assign(extension)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Direct numbers (DIDs)
// ---------------------------------------------------------------------------------------------

/// Where a number stands in the account's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DidStatus {
    NotInPool,
    Free,
    Assigned,
}

/// The account's pool of direct numbers, keyed by E.164.
pub trait DidPool {
    fn status(&self, e164: &str) -> DidStatus;
}

/// A map from number to "is assigned".
impl DidPool for BTreeMap<String, bool> {
    fn status(&self, e164: &str) -> DidStatus {
        match self.get(e164) {
            None => DidStatus::NotInPool,
            Some(false) => DidStatus::Free,
            Some(true) => DidStatus::Assigned,
        }
    }
}

impl<S: BuildHasher> DidPool for HashMap<String, bool, S> {
    fn status(&self, e164: &str) -> DidStatus {
        match self.get(e164) {
            None => DidStatus::NotInPool,
            Some(false) => DidStatus::Free,
            Some(true) => DidStatus::Assigned,
        }
    }
}

/// What to do with a user's direct number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberOutcome {
    Assign(String),
    KeepCurrent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberDecision {
    pub outcome: NumberOutcome,
    pub issue: Option<ProvisioningIssue>,
}

/// Decides a number pushed by SCIM or SAML: it applies only if it is complete, in the pool and
/// free; otherwise the user keeps their number and the reason is reported. `current` is E.164.
pub fn decide_number<P>(requested: &str, current: Option<&str>, pool: &P) -> NumberDecision
where
    P: DidPool + ?Sized,
{
    let refuse = |code, message: String| NumberDecision {
        outcome: NumberOutcome::KeepCurrent,
        issue: Some(ProvisioningIssue::new(code, message)),
    };
    let number = match normalize_e164(requested) {
        Ok(number) => number,
        Err(error) => return refuse(IssueCode::InvalidPhoneNumber, format!("`{requested}`: {error}")),
    };
    if current == Some(number.as_str()) {
        return NumberDecision { outcome: NumberOutcome::KeepCurrent, issue: None };
    }
    match pool.status(&number) {
        DidStatus::NotInPool => {
            refuse(IssueCode::NumberNotInPool, format!("{number} is not one of the account's numbers"))
        }
        DidStatus::Assigned => refuse(IssueCode::NumberTaken, format!("{number} is already assigned")),
        DidStatus::Free => NumberDecision { outcome: NumberOutcome::Assign(number), issue: None },
    }
}

/// What an account's licenses allow for its number pool.
///
/// Seat counts are what the account holds: for a master, purchased minus delegated to subs; for a
/// sub, what was delegated to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidAllowance {
    /// Stand-alone calling-plan seats, all plans together (bundled plans are not counted here).
    pub calling_plan_seats: u32,
    /// Enterprise seats; they count only for bundled licensing with auto phone provisioning on.
    pub enterprise_seats: u32,
    pub licensing: PhoneLicensing,
    /// Numbers bought on their own, beyond those that come with plans.
    pub additional_numbers: u32,
}

/// How many direct numbers the account may hold.
///
/// Rule: every calling plan includes one number, so one number per stand-alone calling-plan
/// seat, plus one per Enterprise seat when those seats bring a calling plan (bundled licensing
/// with automatic phone provisioning on), plus numbers bought on their own. Saturates instead of
/// overflowing.
pub fn did_capacity(allowance: &DidAllowance) -> u32 {
    let bundled = if allowance.licensing.bundled && allowance.licensing.auto_phone_provisioning {
        allowance.enterprise_seats
    } else {
        0
    };
    allowance.calling_plan_seats.saturating_add(bundled).saturating_add(allowance.additional_numbers)
}

/// How many more numbers the pool may take given how many it holds.
pub fn did_room(allowance: &DidAllowance, held: u32) -> u32 {
    did_capacity(allowance).saturating_sub(held)
}

// ---------------------------------------------------------------------------------------------
// Entitlements from licensing
// ---------------------------------------------------------------------------------------------

/// The calling plan bundled Enterprise licenses bring.
pub const BUNDLED_CALLING_PLAN: CallingPlan = CallingPlan::RegionalUnlimited;

/// An account's phone licensing model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneLicensing {
    /// Bundled licensing: an Enterprise license carries phone, a calling plan and Power Pack.
    pub bundled: bool,
    /// Whether bundled licenses provision phone automatically (on unless the account opts out).
    pub auto_phone_provisioning: bool,
}

impl Default for PhoneLicensing {
    fn default() -> Self {
        PhoneLicensing { bundled: false, auto_phone_provisioning: true }
    }
}

/// What the user asks for (from mapping, the API or a CSV row).
#[derive(Debug, Clone, Copy)]
pub struct PhoneEntitlementRequest<'a> {
    pub tier: UserTier,
    pub calling_plan: Option<CallingPlan>,
    /// Requested add-ons; meeting add-ons are ignored here.
    pub addons: &'a BTreeSet<AddOn>,
    /// Whether the user has, or will get, an extension.
    pub has_extension: bool,
}

/// Kind of phone user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneUserLevel {
    /// Not a phone user.
    None,
    /// Has an extension but no calling plan.
    Basic,
    /// Has a calling plan.
    Licensed,
}

/// Where an entitlement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// Included in the user's bundled license: takes no separate seat.
    Bundle,
    /// Takes a seat from the account's pool of that product.
    Seat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneEntitlements {
    pub level: PhoneUserLevel,
    pub calling_plan: Option<(CallingPlan, GrantSource)>,
    pub power_pack: Option<GrantSource>,
    /// A phone user without an extension gets the next free one of their site.
    pub needs_extension: bool,
    pub issues: Vec<ProvisioningIssue>,
}

impl PhoneEntitlements {
    /// The phone products that take a seat (the meeting tier is counted by the licensing rules).
    pub fn seats(&self) -> Vec<Product> {
        let mut seats = Vec::with_capacity(2);
        if let Some((plan, GrantSource::Seat)) = self.calling_plan {
            seats.push(Product::CallingPlan(plan));
        }
        if self.power_pack == Some(GrantSource::Seat) {
            seats.push(Product::AddOn(AddOn::PowerPack));
        }
        seats
    }
}

/// Derives phone entitlements from the user's license and request.
///
/// - Bundled account, Enterprise user, auto provisioning on: phone user with
///   [`BUNDLED_CALLING_PLAN`] and Power Pack from the bundle, extension allocated if missing.
/// - Bundled account, Enterprise user, auto provisioning off: nothing automatic, but what is
///   requested and is part of the bundle (its calling plan, Power Pack) still comes from it.
/// - A calling plan the bundle does not include, any other tier, or an unbundled account: each
///   entitlement is assigned on its own and takes a seat. An extension alone makes a basic phone
///   user (no seat); a calling plan makes a licensed one; Power Pack needs a phone user.
pub fn phone_entitlements(request: &PhoneEntitlementRequest<'_>, licensing: &PhoneLicensing) -> PhoneEntitlements {
    let bundle = licensing.bundled && request.tier == UserTier::Enterprise;
    let automatic = bundle && licensing.auto_phone_provisioning;

    let calling_plan = match request.calling_plan {
        Some(plan) if bundle && plan == BUNDLED_CALLING_PLAN => Some((plan, GrantSource::Bundle)),
        Some(plan) => Some((plan, GrantSource::Seat)),
        None if automatic => Some((BUNDLED_CALLING_PLAN, GrantSource::Bundle)),
        None => None,
    };
    let level = if calling_plan.is_some() {
        PhoneUserLevel::Licensed
    } else if request.has_extension {
        PhoneUserLevel::Basic
    } else {
        PhoneUserLevel::None
    };

    let mut issues = Vec::new();
    let wants_power_pack = request.addons.contains(&AddOn::PowerPack);
    let power_pack = if automatic {
        Some(GrantSource::Bundle)
    } else if !wants_power_pack {
        None
    } else if level == PhoneUserLevel::None {
        issues.push(ProvisioningIssue::new(
            IssueCode::AddonRequiresPhoneUser,
            "Power Pack needs a phone user: give the user an extension or a calling plan",
        ));
        None
    } else if bundle {
        Some(GrantSource::Bundle)
    } else {
        Some(GrantSource::Seat)
    };

    PhoneEntitlements {
        level,
        calling_plan,
        power_pack,
        needs_extension: level != PhoneUserLevel::None && !request.has_extension,
        issues,
    }
}

// ---------------------------------------------------------------------------------------------
// Phone roles
// ---------------------------------------------------------------------------------------------

/// A phone role. Written as its stable name; the per-site role and custom roles carry an
/// argument after a colon: `phone_site_admin:<site>`, `custom:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PhoneRole {
    SuperAdmin,
    SiteAdmin { site: String },
    CallQueueAdmin,
    AutoReceptionistAdmin,
    RecordingAdmin,
    ComplianceAdmin,
    Custom(String),
}

/// Why a phone role name could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneRoleError {
    #[error("a phone role name is empty")]
    Empty,
    #[error("the phone site admin role needs a site: `phone_site_admin:<site>`")]
    MissingSite,
    #[error("the phone role `{0}` takes no argument")]
    UnexpectedArgument(String),
}

impl FromStr for PhoneRole {
    type Err = PhoneRoleError;

    /// Stable or human names ("Phone Super Admin", "call_queue_admin"), case-insensitive;
    /// `phone_site_admin:<site>`; `custom:<name>`; any other name is a custom role.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(PhoneRoleError::Empty);
        }
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (text, None),
        };
        let key = canonical(name);
        let key = key.strip_prefix("phone_").unwrap_or(&key);
        let builtin = match key {
            "super_admin" => Some(PhoneRole::SuperAdmin),
            "call_queue_admin" => Some(PhoneRole::CallQueueAdmin),
            "auto_receptionist_admin" => Some(PhoneRole::AutoReceptionistAdmin),
            "recording_admin" => Some(PhoneRole::RecordingAdmin),
            "compliance_admin" => Some(PhoneRole::ComplianceAdmin),
            _ => None,
        };
        match (key, builtin, argument) {
            ("site_admin", _, Some(site)) if !site.is_empty() => Ok(PhoneRole::SiteAdmin { site: site.to_owned() }),
            ("site_admin", _, _) => Err(PhoneRoleError::MissingSite),
            ("custom", _, Some(custom)) if !custom.is_empty() => Ok(PhoneRole::Custom(custom.to_owned())),
            ("custom", _, _) => Err(PhoneRoleError::Empty),
            (_, Some(role), None) => Ok(role),
            (_, Some(_), Some(_)) => Err(PhoneRoleError::UnexpectedArgument(name.to_owned())),
            (_, None, _) => Ok(PhoneRole::Custom(text.to_owned())),
        }
    }
}

impl fmt::Display for PhoneRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneRole::SuperAdmin => f.write_str("phone_super_admin"),
            PhoneRole::SiteAdmin { site } => write!(f, "phone_site_admin:{site}"),
            PhoneRole::CallQueueAdmin => f.write_str("call_queue_admin"),
            PhoneRole::AutoReceptionistAdmin => f.write_str("auto_receptionist_admin"),
            PhoneRole::RecordingAdmin => f.write_str("recording_admin"),
            PhoneRole::ComplianceAdmin => f.write_str("compliance_admin"),
            PhoneRole::Custom(name) => write!(f, "custom:{name}"),
        }
    }
}

impl Serialize for PhoneRole {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhoneRole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// A change to a user's phone profile
// ---------------------------------------------------------------------------------------------

/// Phone fields of a change. `extension: Set(0)` asks for the next free one in the site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneFields {
    /// Site by code or name.
    pub site: Field<String>,
    pub extension: Field<u32>,
    /// As given; normalised to E.164 by the pipeline (an incomplete number is an issue).
    pub number: Field<String>,
    pub calling_plan: Field<CallingPlan>,
    pub roles: Option<BTreeSet<String>>,
    pub outbound_caller_id: Field<String>,
    pub sms_enabled: Field<bool>,
    pub status: Field<String>,
    pub package: Field<String>,
    pub user_template: Field<String>,
    pub allow_caller_id_change: Field<bool>,
    /// Desk phones (slot 1–9): `Some` replaces the set.
    pub desk_phones: Option<Vec<DeskPhone>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeskPhone {
    pub slot: u8,
    pub brand: Option<String>,
    pub model: Option<String>,
    pub mac_address: String,
    pub provision_template: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn e164_table() {
        let ok = [
            ("+1 555-555-5555", "+15555555555"),
            ("+1 (555) 555-5555", "+15555555555"),
            ("+1.555.555.5555", "+15555555555"),
            ("+44 5555-555555", "+445555555555"),
            ("+44 (0)20 7946 0018", "+442079460018"),
            ("+44 ( 0 ) 20 7946 0018", "+442079460018"),
            ("00 44 20 7946 0018", "+442079460018"),
            ("0044 (0)20 7946 0018", "+442079460018"),
            ("tel:+1-555-555-5555", "+15555555555"),
            ("TEL:+1-555-555-5555;phone-context=example.com", "+15555555555"),
            ("  +33\u{a0}1\u{a0}23\u{a0}45\u{a0}67\u{a0}89 ", "+33123456789"),
            ("+49\u{202f}30\u{2013}1234567", "+49301234567"),
            ("+683 4002", "+6834002"),
            ("+491234567890123", "+491234567890123"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_e164(raw).as_deref(), Ok(want), "{raw:?}");
        }
        let bad = [
            ("", NumberError::Empty),
            ("   ", NumberError::Empty),
            ("555-5555", NumberError::MissingCountryCode),
            ("(555) 555-5555", NumberError::MissingCountryCode),
            ("020 7946 0018", NumberError::MissingCountryCode),
            ("+0 555 555 5555", NumberError::InvalidCountryCode),
            ("000 44 20 7946 0018", NumberError::InvalidCountryCode),
            ("+1 800 FLOWERS", NumberError::InvalidCharacter('F')),
            ("+44 20 7946 0018 x12", NumberError::InvalidCharacter('x')),
            ("+1 555+555", NumberError::MisplacedPlus),
            ("++15555555555", NumberError::MisplacedPlus),
            ("+", NumberError::TooShort(0)),
            ("+44 123", NumberError::TooShort(5)),
            ("+1234567890123456", NumberError::TooLong(16)),
            ("+1 555 5555", NumberError::InvalidNorthAmerican),
            ("+1 155 555 5555", NumberError::InvalidNorthAmerican),
            ("+1 555 155 5555", NumberError::InvalidNorthAmerican),
            ("tel:+1-555-555-5555;ext=22", NumberError::HasExtension),
            ("+44 20 7946 0018 ☎", NumberError::InvalidCharacter('☎')),
        ];
        for (raw, want) in bad {
            assert_eq!(normalize_e164(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn site_codes_and_plans() {
        assert_eq!("12".parse::<SiteCode>().unwrap().as_str(), "12");
        assert_eq!(" 001 ".parse::<SiteCode>().unwrap().as_str(), "001");
        for bad in ["", "1234", "a1", "-1", "1 2"] {
            assert!(bad.parse::<SiteCode>().is_err(), "{bad}");
        }
        assert_eq!(ExtensionPlan::new(3).unwrap().range(), 100..=999);
        assert_eq!(ExtensionPlan::new(1), Err(SiteError::InvalidLength(1)));
        assert_eq!(ExtensionPlan::new(7), Err(SiteError::InvalidLength(7)));
        assert!(ExtensionPlan::with_range(3, 0, 10).is_err());
        assert!(ExtensionPlan::with_range(3, 50, 40).is_err());
        assert!(ExtensionPlan::with_range(3, 1, 1000).is_err());
        let plan = ExtensionPlan::with_range(3, 5, 20).unwrap();
        assert_eq!(plan.capacity(), 16);
        let code: SiteCode = "12".parse().unwrap();
        assert_eq!(plan.long_form(Some(&code), 7).unwrap(), "12007");
        assert_eq!(plan.long_form(None, 17).unwrap(), "017");
        assert_eq!(
            plan.long_form(Some(&code), 21),
            Err(ExtensionError::OutOfRange { extension: 21, first: 5, last: 20 })
        );
        assert_eq!(plan.check(1000), Err(ExtensionError::TooManyDigits { extension: 1000, length: 3 }));
        assert_eq!(plan.check(0), Err(ExtensionError::Zero));
        let json = serde_json::json!({"length": 4});
        let plan: ExtensionPlan = serde_json::from_value(json).unwrap();
        assert_eq!(plan.range(), 1000..=9999);
        assert!(serde_json::from_value::<ExtensionPlan>(serde_json::json!({"length": 9})).is_err());
    }

    #[test]
    fn extension_requests_parse() {
        assert_eq!("0".parse(), Ok(ExtensionRequest::NextFree));
        assert_eq!(" 000 ".parse(), Ok(ExtensionRequest::NextFree));
        assert_eq!("222".parse(), Ok(ExtensionRequest::Exact(222)));
        assert_eq!("0222".parse(), Ok(ExtensionRequest::Exact(222)));
        for bad in ["", "x1", "-1", "1 2", "9999999999", "+1"] {
            assert!(bad.parse::<ExtensionRequest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn next_free_extension_takes_the_lowest_gap() {
        let used: BTreeSet<u32> = [100, 101, 103].into_iter().collect();
        assert_eq!(next_free_extension(100..=105, &used), Some(102));
        assert_eq!(next_free_extension(104..=105, &used), Some(104));
        assert_eq!(next_free_extension(100..=101, &used), None);
        let slice: &[u32] = &[100, 101, 103];
        assert_eq!(next_free_extension(100..=105, slice), Some(102));
        let hashed: HashSet<u32> = used.iter().copied().collect();
        assert_eq!(next_free_extension(100..=103, &hashed), Some(102));
        let full: BTreeSet<u32> = (10..=99).collect();
        assert_eq!(next_free_extension(10..=99, &full), None);
        let edge: BTreeSet<u32> = [u32::MAX - 1].into_iter().collect();
        assert_eq!(next_free_extension(u32::MAX - 1..=u32::MAX, &edge), Some(u32::MAX));
    }

    #[test]
    fn extension_decisions() {
        let plan = ExtensionPlan::with_range(3, 100, 103).unwrap();
        let used: BTreeSet<u32> = [100, 101].into_iter().collect();

        let next = decide_extension(&plan, ExtensionRequest::NextFree, None, &used);
        assert_eq!(next.outcome, ExtensionOutcome::Assign(102));
        assert_eq!(next.issue, None);

        // Re-sending 0 keeps what the user has.
        let again = decide_extension(&plan, ExtensionRequest::NextFree, Some(101), &used);
        assert_eq!(again, ExtensionDecision::keep());

        // A free real extension applies.
        let exact = decide_extension(&plan, ExtensionRequest::Exact(103), Some(101), &used);
        assert_eq!(exact.outcome, ExtensionOutcome::Assign(103));

        // A taken one is refused and the user keeps theirs.
        let taken = decide_extension(&plan, ExtensionRequest::Exact(100), Some(101), &used);
        assert_eq!(taken.outcome, ExtensionOutcome::KeepCurrent);
        assert_eq!(taken.issue.unwrap().code, IssueCode::ExtensionTaken);

        // Asking for one's own extension is no change.
        let own = decide_extension(&plan, ExtensionRequest::Exact(101), Some(101), &used);
        assert_eq!(own, ExtensionDecision::keep());

        let outside = decide_extension(&plan, ExtensionRequest::Exact(500), None, &used);
        assert_eq!(outside.outcome, ExtensionOutcome::KeepCurrent);
        assert_eq!(outside.issue.unwrap().code, IssueCode::InvalidExtension);

        let full: BTreeSet<u32> = (100..=103).collect();
        let exhausted = decide_extension(&plan, ExtensionRequest::NextFree, None, &full);
        assert_eq!(exhausted.outcome, ExtensionOutcome::KeepCurrent);
        assert_eq!(exhausted.issue.unwrap().code, IssueCode::ExtensionRangeExhausted);

        // A current extension outside the (changed) range is replaced by a valid one.
        let moved = decide_extension(&plan, ExtensionRequest::NextFree, Some(900), &used);
        assert_eq!(moved.outcome, ExtensionOutcome::Assign(102));
    }

    #[test]
    fn number_decisions() {
        let pool: BTreeMap<String, bool> =
            [("+15555555555".to_owned(), false), ("+15555555556".to_owned(), true)].into_iter().collect();
        let free = decide_number("+1 555-555-5555", None, &pool);
        assert_eq!(free.outcome, NumberOutcome::Assign("+15555555555".into()));
        assert_eq!(free.issue, None);
        let same = decide_number("+1 (555) 555-5556", Some("+15555555556"), &pool);
        assert_eq!(same.outcome, NumberOutcome::KeepCurrent);
        assert_eq!(same.issue, None);
        let cases = [
            ("+1 555-555-5556", IssueCode::NumberTaken),
            ("+1 555-555-5557", IssueCode::NumberNotInPool),
            ("555-5555", IssueCode::InvalidPhoneNumber),
        ];
        for (raw, code) in cases {
            let decision = decide_number(raw, Some("+15555555555"), &pool);
            assert_eq!(decision.outcome, NumberOutcome::KeepCurrent, "{raw}");
            assert_eq!(decision.issue.unwrap().code, code, "{raw}");
        }
    }

    #[test]
    fn did_capacity_rule() {
        let mut allowance = DidAllowance {
            calling_plan_seats: 10,
            enterprise_seats: 5,
            licensing: PhoneLicensing { bundled: true, auto_phone_provisioning: true },
            additional_numbers: 2,
        };
        assert_eq!(did_capacity(&allowance), 17);
        assert_eq!(did_room(&allowance, 20), 0);
        assert_eq!(did_room(&allowance, 7), 10);
        allowance.licensing.auto_phone_provisioning = false;
        assert_eq!(did_capacity(&allowance), 12);
        allowance.licensing = PhoneLicensing::default();
        assert_eq!(did_capacity(&allowance), 12);
        allowance.calling_plan_seats = u32::MAX;
        assert_eq!(did_capacity(&allowance), u32::MAX);
    }

    fn entitlements(
        tier: UserTier,
        plan: Option<CallingPlan>,
        addons: &[AddOn],
        has_extension: bool,
        bundled: bool,
        auto: bool,
    ) -> PhoneEntitlements {
        let addons: BTreeSet<AddOn> = addons.iter().copied().collect();
        phone_entitlements(
            &PhoneEntitlementRequest { tier, calling_plan: plan, addons: &addons, has_extension },
            &PhoneLicensing { bundled, auto_phone_provisioning: auto },
        )
    }

    #[test]
    fn bundled_enterprise_brings_phone_plan_and_power_pack() {
        let e = entitlements(UserTier::Enterprise, None, &[], false, true, true);
        assert_eq!(e.level, PhoneUserLevel::Licensed);
        assert_eq!(e.calling_plan, Some((CallingPlan::RegionalUnlimited, GrantSource::Bundle)));
        assert_eq!(e.power_pack, Some(GrantSource::Bundle));
        assert!(e.needs_extension);
        assert!(e.seats().is_empty(), "bundled entitlements take no seat");

        // A plan outside the bundle takes a seat; Power Pack still comes from the bundle.
        let e = entitlements(UserTier::Enterprise, Some(CallingPlan::GlobalSelect), &[], true, true, true);
        assert_eq!(e.seats(), vec![Product::CallingPlan(CallingPlan::GlobalSelect)]);
        assert!(!e.needs_extension);
    }

    #[test]
    fn bundled_with_auto_provisioning_off_grants_only_what_is_asked() {
        let e = entitlements(UserTier::Enterprise, None, &[], false, true, false);
        assert_eq!(e.level, PhoneUserLevel::None);
        assert_eq!(e.calling_plan, None);
        assert_eq!(e.power_pack, None);
        assert!(!e.needs_extension);

        let e = entitlements(
            UserTier::Enterprise,
            Some(CallingPlan::RegionalUnlimited),
            &[AddOn::PowerPack],
            false,
            true,
            false,
        );
        assert_eq!(e.level, PhoneUserLevel::Licensed);
        assert!(e.seats().is_empty());
        assert!(e.needs_extension);
    }

    #[test]
    fn unbundled_entitlements_are_assigned_one_by_one() {
        // Enterprise on an unbundled account brings nothing phone-related.
        let e = entitlements(UserTier::Enterprise, None, &[], false, false, true);
        assert_eq!(e.level, PhoneUserLevel::None);

        // An extension alone: basic phone user, no seat.
        let e = entitlements(UserTier::Pro, None, &[], true, false, true);
        assert_eq!(e.level, PhoneUserLevel::Basic);
        assert!(e.seats().is_empty());

        // A calling plan: licensed phone user, one seat.
        let e = entitlements(
            UserTier::Basic,
            Some(CallingPlan::RegionalMetered),
            &[AddOn::PowerPack, AddOn::Webinar],
            true,
            false,
            true,
        );
        assert_eq!(e.level, PhoneUserLevel::Licensed);
        assert_eq!(
            e.seats(),
            vec![Product::CallingPlan(CallingPlan::RegionalMetered), Product::AddOn(AddOn::PowerPack)]
        );

        // Business Plus on a bundled account is not a phone bundle here.
        let e = entitlements(UserTier::BusinessPlus, None, &[], false, true, true);
        assert_eq!(e.level, PhoneUserLevel::None);

        // Power Pack without a phone user is reported, not granted.
        let e = entitlements(UserTier::Pro, None, &[AddOn::PowerPack], false, false, true);
        assert_eq!(e.power_pack, None);
        assert_eq!(e.issues[0].code, IssueCode::AddonRequiresPhoneUser);
    }

    #[test]
    fn phone_roles_parse_and_round_trip() {
        let cases = [
            ("Phone Super Admin", PhoneRole::SuperAdmin),
            ("phone_super_admin", PhoneRole::SuperAdmin),
            ("Super Admin", PhoneRole::SuperAdmin),
            ("Phone Site Admin: Main Office", PhoneRole::SiteAdmin { site: "Main Office".into() }),
            ("call_queue_admin", PhoneRole::CallQueueAdmin),
            ("Auto Receptionist Admin", PhoneRole::AutoReceptionistAdmin),
            ("RECORDING ADMIN", PhoneRole::RecordingAdmin),
            ("Compliance Admin", PhoneRole::ComplianceAdmin),
            ("custom:Night Shift", PhoneRole::Custom("Night Shift".into())),
            ("Night Shift", PhoneRole::Custom("Night Shift".into())),
        ];
        for (raw, want) in cases {
            let role: PhoneRole = raw.parse().unwrap();
            assert_eq!(role, want, "{raw}");
            assert_eq!(role.to_string().parse::<PhoneRole>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(serde_json::from_str::<PhoneRole>(&json).unwrap(), role);
        }
        assert_eq!("".parse::<PhoneRole>(), Err(PhoneRoleError::Empty));
        assert_eq!("Phone Site Admin".parse::<PhoneRole>(), Err(PhoneRoleError::MissingSite));
        assert_eq!("custom:".parse::<PhoneRole>(), Err(PhoneRoleError::Empty));
        assert!(matches!("recording_admin:x".parse::<PhoneRole>(), Err(PhoneRoleError::UnexpectedArgument(_))));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Next,
        Exact(u32),
        Release(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Next),
            2 => (0u32..40).prop_map(Step::Exact),
            1 => any::<usize>().prop_map(Step::Release),
        ]
    }

    proptest! {
        #[test]
        fn allocations_stay_unique_and_in_range(
            first in 10u32..30,
            span in 0u32..12,
            steps in proptest::collection::vec(step(), 0..80),
        ) {
            let plan = ExtensionPlan::with_range(2, first, first + span).unwrap();
            let mut used = BTreeSet::new();
            let mut holders: Vec<u32> = Vec::new();
            for step in steps {
                let request = match step {
                    Step::Next => ExtensionRequest::NextFree,
                    Step::Exact(n) => ExtensionRequest::Exact(n),
                    Step::Release(i) => {
                        if !holders.is_empty() {
                            let gone = holders.swap_remove(i % holders.len());
                            used.remove(&gone);
                        }
                        continue;
                    }
                };
                let full = used.len() as u32 == plan.capacity();
                let decision = decide_extension(&plan, request, None, &used);
                match decision.outcome {
                    ExtensionOutcome::Assign(extension) => {
                        prop_assert!(plan.range().contains(&extension));
                        prop_assert!(used.insert(extension), "extension handed out twice");
                        holders.push(extension);
                        prop_assert!(decision.issue.is_none());
                    }
                    ExtensionOutcome::KeepCurrent => {
                        let issue = decision.issue.clone();
                        prop_assert!(issue.is_some());
                        if request == ExtensionRequest::NextFree {
                            prop_assert!(full);
                            prop_assert_eq!(issue.map(|i| i.code), Some(IssueCode::ExtensionRangeExhausted));
                        }
                    }
                }
            }
            prop_assert_eq!(used.len(), holders.len());
        }

        #[test]
        fn allocation_after_a_hint_stays_unique_and_in_range(
            first in 10u32..30,
            span in 0u32..12,
            start_hint in proptest::option::of(0u32..99),
            releases in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let plan = ExtensionPlan::with_range(2, first, first + span).unwrap();
            // Every candidate sequence visits each extension of the range exactly once.
            let order: Vec<u32> = extension_candidates(&plan, start_hint).collect();
            let distinct: BTreeSet<u32> = order.iter().copied().collect();
            prop_assert_eq!(order.len() as u32, plan.capacity());
            prop_assert_eq!(distinct.len(), order.len());
            prop_assert!(order.iter().all(|e| plan.range().contains(e)));
            // Allocating until full hands out each extension once, then reports None.
            let mut used = BTreeSet::new();
            let mut hint = start_hint;
            for _ in 0..plan.capacity() {
                let e = next_free_after(&plan, hint, &used);
                prop_assert!(e.is_some(), "ran out early");
                let e = e.unwrap();
                prop_assert!(plan.range().contains(&e));
                prop_assert!(used.insert(e), "extension handed out twice");
                hint = Some(e);
            }
            prop_assert_eq!(next_free_after(&plan, hint, &used), None);
            // Freed extensions are found again.
            let held: Vec<u32> = used.iter().copied().collect();
            for r in releases {
                let gone = held[r % held.len()];
                used.remove(&gone);
                let again = next_free_after(&plan, hint, &used);
                prop_assert_eq!(again, Some(gone));
                used.insert(gone);
            }
        }

        #[test]
        fn exhausting_a_range_yields_the_issue(first in 10u32..90, span in 0u32..9) {
            let plan = ExtensionPlan::with_range(2, first, first + span).unwrap();
            let mut used = BTreeSet::new();
            for _ in 0..plan.capacity() {
                let decision = decide_extension(&plan, ExtensionRequest::NextFree, None, &used);
                match decision.outcome {
                    ExtensionOutcome::Assign(extension) => { used.insert(extension); }
                    ExtensionOutcome::KeepCurrent => prop_assert!(false, "ran out early"),
                }
            }
            let decision = decide_extension(&plan, ExtensionRequest::NextFree, None, &used);
            prop_assert_eq!(decision.outcome, ExtensionOutcome::KeepCurrent);
            prop_assert_eq!(decision.issue.map(|i| i.code), Some(IssueCode::ExtensionRangeExhausted));
        }

        #[test]
        fn btree_first_free_agrees_with_linear_probe(
            used in proptest::collection::btree_set(0u32..64, 0..64),
            start in 0u32..64,
            len in 0u32..64,
        ) {
            let range = start..=start + len;
            let linear = range.clone().find(|e| !used.contains(e));
            prop_assert_eq!(used.first_free(range), linear);
        }

        #[test]
        fn normalize_never_panics_and_output_is_e164(raw in "\\PC{0,40}") {
            if let Ok(number) = normalize_e164(&raw) {
                prop_assert!(number.starts_with('+'));
                let digits = &number[1..];
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&digits.len()));
                prop_assert_eq!(normalize_e164(&number), Ok(number.clone()));
            }
        }

        #[test]
        fn formatted_numbers_normalize_to_their_digits(
            cc in 2u32..999,
            rest in "[0-9]{6,10}",
        ) {
            let written = format!("+{cc} {}-{}", &rest[..3], &rest[3..]);
            let want = format!("+{cc}{rest}");
            if want.len() - 1 <= E164_MAX_DIGITS && !want.starts_with("+1") {
                prop_assert_eq!(normalize_e164(&written), Ok(want));
            }
        }
    }
}
