//! The product catalogue: meeting tiers, phone calling plans and add-ons.
//!
//! Every product has one stable snake_case name (used in JSON, the database and the CLI) and
//! parses from that name or the human name an administrator or an identity provider is likely to
//! send ("Business Plus", "Zoom Workplace Enterprise", "Regional Unlimited", a numeric calling plan
//! code…). Keeping the names here means the mapping rules, the phone rules, the license pools and
//! the wire adapters all agree on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A catalogue name that matched no product of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {expected})")]
pub struct UnknownProduct {
    /// Which kind of product was expected ("user type", "calling plan", "add-on", "product").
    pub kind: &'static str,
    /// The value as received.
    pub value: String,
    /// The accepted stable names, comma separated.
    pub expected: &'static str,
}

/// Lower-cases a product name and folds every run of separators into one `_`; `+` reads as
/// "plus", and marketing prefixes ("Zoom Workplace", "Zoom Phone", "Zoom") are dropped.
pub(crate) fn canonical(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 4);
    let mut pending_sep = false;
    for ch in raw.trim().chars() {
        if ch == '+' {
            if !out.is_empty() {
                out.push('_');
            }
            out.push_str("plus");
            pending_sep = true;
        } else if ch.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(ch.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    for prefix in ["zoom_workplace_", "zoom_phone_", "zoom_"] {
        if let Some(rest) = out.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    out
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A meeting user type. `Basic` is free and unlimited; the others are licensed tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserTier {
    Basic,
    Pro,
    Business,
    BusinessPlus,
    Enterprise,
}

impl UserTier {
    /// Every tier, cheapest first.
    pub const ALL: [UserTier; 5] =
        [UserTier::Basic, UserTier::Pro, UserTier::Business, UserTier::BusinessPlus, UserTier::Enterprise];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserTier::Basic => "basic",
            UserTier::Pro => "pro",
            UserTier::Business => "business",
            UserTier::BusinessPlus => "business_plus",
            UserTier::Enterprise => "enterprise",
        }
    }

    /// The name shown to people.
    pub const fn display_name(self) -> &'static str {
        match self {
            UserTier::Basic => "Basic",
            UserTier::Pro => "Pro",
            UserTier::Business => "Business",
            UserTier::BusinessPlus => "Business Plus",
            UserTier::Enterprise => "Enterprise",
        }
    }

    /// Whether the tier takes a seat from a license pool (everything but Basic).
    pub const fn is_licensed(self) -> bool {
        !matches!(self, UserTier::Basic)
    }
}

impl FromStr for UserTier {
    type Err = UnknownProduct;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let tier = match canonical(raw).as_str() {
            "basic" | "free" => UserTier::Basic,
            "pro" => UserTier::Pro,
            "business" => UserTier::Business,
            "business_plus" | "businessplus" => UserTier::BusinessPlus,
            "enterprise" => UserTier::Enterprise,
            _ => {
                return Err(UnknownProduct {
                    kind: "user type",
                    value: raw.to_owned(),
                    expected: "basic, pro, business, business_plus, enterprise",
                })
            }
        };
        Ok(tier)
    }
}

string_serde!(UserTier);

/// A Zoom Phone-style calling plan. Holding one makes a phone user a licensed phone user.
///
/// Numeric codes follow Zoom's published phone plan codes: the regional plans have one code per
/// region (metered 100–107, unlimited 200–207) and Global Select is `METERED_GLOBAL_SELECT`
/// (1001). We do not model the region, so every regional code parses to its plan and
/// [`CallingPlan::code`] returns the US/CA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallingPlan {
    RegionalMetered,
    RegionalUnlimited,
    GlobalSelect,
}

impl CallingPlan {
    /// Every calling plan.
    pub const ALL: [CallingPlan; 3] =
        [CallingPlan::RegionalMetered, CallingPlan::RegionalUnlimited, CallingPlan::GlobalSelect];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallingPlan::RegionalMetered => "regional_metered",
            CallingPlan::RegionalUnlimited => "regional_unlimited",
            CallingPlan::GlobalSelect => "global_select",
        }
    }

    /// The name shown to people.
    pub const fn display_name(self) -> &'static str {
        match self {
            CallingPlan::RegionalMetered => "Regional Metered",
            CallingPlan::RegionalUnlimited => "Regional Unlimited",
            CallingPlan::GlobalSelect => "Global Select",
        }
    }

    /// The canonical numeric plan code (US/CA code for the regional plans).
    pub const fn code(self) -> u32 {
        match self {
            CallingPlan::RegionalMetered => 100,
            CallingPlan::RegionalUnlimited => 200,
            CallingPlan::GlobalSelect => 1001,
        }
    }

    /// The plan for a numeric code, accepting every regional variant.
    pub const fn from_code(code: u32) -> Option<CallingPlan> {
        match code {
            100..=104 | 107 => Some(CallingPlan::RegionalMetered),
            200..=204 | 207 => Some(CallingPlan::RegionalUnlimited),
            1001 => Some(CallingPlan::GlobalSelect),
            _ => None,
        }
    }
}

impl FromStr for CallingPlan {
    type Err = UnknownProduct;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let unknown = || {
            UnknownProduct {
            kind: "calling plan",
            value: raw.to_owned(),
            expected: "regional_metered (100; Zoom's \"US/CA Metered\" and other regions too), regional_unlimited (200), global_select (1001)",
        }
        };
        let trimmed = raw.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return trimmed.parse::<u32>().ok().and_then(CallingPlan::from_code).ok_or_else(unknown);
        }
        let canon = canonical(raw);
        // Zoom names its plans by region too ("US/CA Metered", "Metered Plan AU/NZ",
        // "Unlimited EURA", "US/CA Unlimited Calling Plan"): the region does not change the
        // plan here, so it is dropped.
        let bare = canon.trim_end_matches("_calling_plan").trim_end_matches("_plan");
        let mut words: Vec<&str> = bare.split('_').filter(|w| !w.is_empty()).collect();
        words.retain(|w| {
            !matches!(*w, "us" | "ca" | "au" | "nz" | "gb" | "uk" | "ie" | "jp" | "eura" | "eurb" | "plan" | "regional")
        });
        let plan = match words.as_slice() {
            ["metered"] => CallingPlan::RegionalMetered,
            ["unlimited"] => CallingPlan::RegionalUnlimited,
            ["global", "select"] | ["metered", "global", "select"] => CallingPlan::GlobalSelect,
            _ => return Err(unknown()),
        };
        Ok(plan)
    }
}

string_serde!(CallingPlan);

/// An add-on product. Power Pack is a phone add-on; the others are meeting add-ons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddOn {
    PowerPack,
    LargeMeetings,
    Webinar,
}

impl AddOn {
    /// Every add-on.
    pub const ALL: [AddOn; 3] = [AddOn::PowerPack, AddOn::LargeMeetings, AddOn::Webinar];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AddOn::PowerPack => "power_pack",
            AddOn::LargeMeetings => "large_meetings",
            AddOn::Webinar => "webinar",
        }
    }

    /// The name shown to people.
    pub const fn display_name(self) -> &'static str {
        match self {
            AddOn::PowerPack => "Phone Power Pack",
            AddOn::LargeMeetings => "Large Meetings",
            AddOn::Webinar => "Webinar",
        }
    }

    /// Meeting add-ons are the only ones a sub-account placement may grant.
    pub const fn is_meeting_addon(self) -> bool {
        matches!(self, AddOn::LargeMeetings | AddOn::Webinar)
    }

    /// Phone add-ons need a phone user to attach to.
    pub const fn is_phone_addon(self) -> bool {
        matches!(self, AddOn::PowerPack)
    }

    /// Zoom's numeric phone plan code, for the add-ons that have one (Power Pack: 4010).
    pub const fn phone_plan_code(self) -> Option<u32> {
        match self {
            AddOn::PowerPack => Some(4010),
            AddOn::LargeMeetings | AddOn::Webinar => None,
        }
    }
}

impl FromStr for AddOn {
    type Err = UnknownProduct;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let addon = match canonical(raw).as_str() {
            "power_pack" | "phone_power_pack" | "powerpack" | "4010" => AddOn::PowerPack,
            "large_meetings" | "large_meeting" | "largemeetings" => AddOn::LargeMeetings,
            "webinar" | "webinars" => AddOn::Webinar,
            _ => {
                return Err(UnknownProduct {
                    kind: "add-on",
                    value: raw.to_owned(),
                    expected: "power_pack, large_meetings, webinar",
                })
            }
        };
        Ok(addon)
    }
}

string_serde!(AddOn);

/// Any product, as counted by license pools. Stable names are unique across kinds, so a
/// product serializes as its bare name (`"business_plus"`, `"global_select"`, `"webinar"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Product {
    Meeting(UserTier),
    CallingPlan(CallingPlan),
    AddOn(AddOn),
}

impl Product {
    /// Every product, meeting tiers first.
    pub const ALL: [Product; 11] = [
        Product::Meeting(UserTier::Basic),
        Product::Meeting(UserTier::Pro),
        Product::Meeting(UserTier::Business),
        Product::Meeting(UserTier::BusinessPlus),
        Product::Meeting(UserTier::Enterprise),
        Product::CallingPlan(CallingPlan::RegionalMetered),
        Product::CallingPlan(CallingPlan::RegionalUnlimited),
        Product::CallingPlan(CallingPlan::GlobalSelect),
        Product::AddOn(AddOn::PowerPack),
        Product::AddOn(AddOn::LargeMeetings),
        Product::AddOn(AddOn::Webinar),
    ];

    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Product::Meeting(tier) => tier.as_str(),
            Product::CallingPlan(plan) => plan.as_str(),
            Product::AddOn(addon) => addon.as_str(),
        }
    }

    /// The name shown to people.
    pub const fn display_name(self) -> &'static str {
        match self {
            Product::Meeting(tier) => tier.display_name(),
            Product::CallingPlan(plan) => plan.display_name(),
            Product::AddOn(addon) => addon.display_name(),
        }
    }

    /// Whether assigning the product takes a seat from a pool (Basic is free and unlimited).
    pub const fn is_counted(self) -> bool {
        match self {
            Product::Meeting(tier) => tier.is_licensed(),
            Product::CallingPlan(_) | Product::AddOn(_) => true,
        }
    }
}

impl From<UserTier> for Product {
    fn from(tier: UserTier) -> Self {
        Product::Meeting(tier)
    }
}

impl From<CallingPlan> for Product {
    fn from(plan: CallingPlan) -> Self {
        Product::CallingPlan(plan)
    }
}

impl From<AddOn> for Product {
    fn from(addon: AddOn) -> Self {
        Product::AddOn(addon)
    }
}

impl FromStr for Product {
    type Err = UnknownProduct;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if let Ok(tier) = raw.parse::<UserTier>() {
            return Ok(Product::Meeting(tier));
        }
        if let Ok(plan) = raw.parse::<CallingPlan>() {
            return Ok(Product::CallingPlan(plan));
        }
        if let Ok(addon) = raw.parse::<AddOn>() {
            return Ok(Product::AddOn(addon));
        }
        Err(UnknownProduct {
            kind: "product",
            value: raw.to_owned(),
            expected: "basic, pro, business, business_plus, enterprise, regional_metered, \
                       regional_unlimited, global_select, power_pack, large_meetings, webinar",
        })
    }
}

string_serde!(Product);

/// Older name of [`UnknownProduct`], kept for the call sites that say "name".
pub type UnknownName = UnknownProduct;

impl UserTier {
    /// The seat this tier takes, if any (Basic is free and unlimited).
    pub fn product(self) -> Option<Product> {
        self.is_licensed().then_some(Product::Meeting(self))
    }
}

impl CallingPlan {
    pub fn product(self) -> Product {
        Product::CallingPlan(self)
    }
}

impl AddOn {
    pub fn product(self) -> Product {
        Product::AddOn(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_from_stable_and_human_names() {
        let cases = [
            ("basic", UserTier::Basic),
            ("PRO", UserTier::Pro),
            ("Zoom Workplace Pro", UserTier::Pro),
            ("business", UserTier::Business),
            ("Business Plus", UserTier::BusinessPlus),
            ("business_plus", UserTier::BusinessPlus),
            ("Business+", UserTier::BusinessPlus),
            ("Zoom Workplace Business+", UserTier::BusinessPlus),
            ("business-plus", UserTier::BusinessPlus),
            ("  Enterprise ", UserTier::Enterprise),
            ("Zoom Workplace Enterprise", UserTier::Enterprise),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<UserTier>(), Ok(want), "{raw}");
        }
        for bad in ["", "platinum", "business plus plus", "zoom"] {
            assert!(bad.parse::<UserTier>().is_err(), "{bad}");
        }
    }

    #[test]
    fn calling_plans_parse_from_names_and_codes() {
        let cases = [
            ("regional_metered", CallingPlan::RegionalMetered),
            ("Regional Metered", CallingPlan::RegionalMetered),
            ("100", CallingPlan::RegionalMetered),
            ("102", CallingPlan::RegionalMetered),
            ("METERED_PLAN_GB_IE", CallingPlan::RegionalMetered),
            ("Regional Unlimited", CallingPlan::RegionalUnlimited),
            ("200", CallingPlan::RegionalUnlimited),
            ("207", CallingPlan::RegionalUnlimited),
            ("Global Select", CallingPlan::GlobalSelect),
            ("1001", CallingPlan::GlobalSelect),
            ("Zoom Phone Global Select", CallingPlan::GlobalSelect),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<CallingPlan>(), Ok(want), "{raw}");
        }
        for bad in ["", "105", "300", "1000", "99999999999999", "premium"] {
            assert!(bad.parse::<CallingPlan>().is_err(), "{bad}");
        }
        for plan in CallingPlan::ALL {
            assert_eq!(CallingPlan::from_code(plan.code()), Some(plan));
        }
    }

    #[test]
    fn addons_and_products_round_trip_through_json() {
        assert_eq!("Phone Power Pack".parse::<AddOn>(), Ok(AddOn::PowerPack));
        assert_eq!("Large Meetings".parse::<AddOn>(), Ok(AddOn::LargeMeetings));
        assert!(AddOn::Webinar.is_meeting_addon());
        assert!(!AddOn::PowerPack.is_meeting_addon());
        for product in Product::ALL {
            let json = serde_json::to_string(&product).unwrap();
            assert_eq!(json, format!("\"{}\"", product.as_str()));
            let back: Product = serde_json::from_str(&json).unwrap();
            assert_eq!(back, product);
        }
        assert!(!Product::Meeting(UserTier::Basic).is_counted());
        assert!(Product::AddOn(AddOn::Webinar).is_counted());
        let names: std::collections::BTreeSet<_> = Product::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), Product::ALL.len(), "stable names are unique");
        assert!(serde_json::from_str::<UserTier>("\"gold\"").is_err());
    }

    #[test]
    fn zoom_calling_plan_names_are_accepted() {
        for (name, plan) in [
            ("US/CA Metered", CallingPlan::RegionalMetered),
            ("Metered Plan AU/NZ", CallingPlan::RegionalMetered),
            ("UK/IE Metered", CallingPlan::RegionalMetered),
            ("Metered EURA", CallingPlan::RegionalMetered),
            ("JP Metered", CallingPlan::RegionalMetered),
            ("US/CA Unlimited Calling Plan", CallingPlan::RegionalUnlimited),
            ("Unlimited EURB", CallingPlan::RegionalUnlimited),
            ("Regional Unlimited", CallingPlan::RegionalUnlimited),
            ("Global Select", CallingPlan::GlobalSelect),
            ("Metered Global Select", CallingPlan::GlobalSelect),
            ("regional_metered", CallingPlan::RegionalMetered),
            ("100", CallingPlan::RegionalMetered),
            ("1001", CallingPlan::GlobalSelect),
        ] {
            assert_eq!(name.parse::<CallingPlan>(), Ok(plan), "{name}");
        }
        for bad in ["US/CA", "Metered Unlimited", "Global", "Premium", "", "999"] {
            assert!(bad.parse::<CallingPlan>().is_err(), "{bad}");
        }
    }
}
