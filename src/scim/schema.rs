//! SCIM schemas as static data (RFC 7643 §2, §7, §8.7.1).
//!
//! Every attribute characteristic the protocol depends on (type, multiValued, caseExact,
//! mutability, returned, uniqueness, …) lives here as `'static` data, so that the filter
//! evaluator, the PATCH applier and the HTTP layer all consult one source of truth and
//! lookups cost no allocation.
//!
//! Resources served: `User` (core + EnterpriseUser + the provisor extension) and `Group`.
//! The common attributes of RFC 7643 §3.1 (`id`, `externalId`, `meta`, `schemas`) are
//! resolvable on every resource but, as the RFC prescribes, are not listed in `/Schemas`.
//!
//! # Name resolution
//! Attribute names are case-insensitive. A URN-qualified path
//! (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`) resolves in that
//! schema only. An unqualified name resolves in the core schema first, then the common
//! attributes, then each extension in declaration order (EnterpriseUser, then provisor).
//! Hence unqualified `userType` is the core attribute; the provisor `userType` must be
//! qualified. Extension attributes live under their schema URN in resource JSON.
//!
//! # Deviations from RFC 7643 §8.7.1 (deliberate, for client compatibility)
//! - `Group.members` has a `display` sub-attribute (immutable): the RFC's own examples and
//!   Okta/Entra ID send it.
//! - `User.addresses` has a `primary` sub-attribute: RFC 7643 §2.4 defines `primary` for
//!   multi-valued attributes and the RFC's User example uses it on addresses.
//! - `Group.displayName` is `"required": true`, as the RFC's prose says: a group is stored
//!   and found by its name, so the server refuses a group without one.
//!
//! Characteristics otherwise follow §8.7.1 literally, including where its prose says
//! "REQUIRED" but the data says `"required": false` (`manager.value`). Canonical values are
//! advertised; the provisor extension's are the only names its product fields accept.

use serde_json::{json, Map, Value};

use super::error::ScimError;
use super::filter::AttrPath;

/// Schema URN of the core User resource.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Schema URN of the core Group resource.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema URN of the enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Schema URN of the provisor product extension for Users.
pub const PROVISOR_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:provisor:2.0:User";
/// Schema URN of a schema resource itself (RFC 7643 §7).
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Schema URN of a resource type resource (RFC 7643 §6).
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// URN of a list response message (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    /// The wire name (`"string"`, `"dateTime"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }

    /// Whether values of this type are JSON strings (string, dateTime, binary, reference).
    pub fn is_textual(self) -> bool {
        matches!(self, Self::String | Self::DateTime | Self::Binary | Self::Reference)
    }
}

/// Whether and how an attribute may be modified (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The wire name (`"readOnly"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned in responses (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The wire name (`"always"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

/// How the service provider enforces uniqueness (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The wire name (`"none"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

/// One attribute definition with all its characteristics (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeDef {
    /// Attribute name in its canonical spelling (e.g. `userName`).
    pub name: &'static str,
    pub attr_type: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    /// Whether string comparisons are case-sensitive.
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    /// Suggested values (not enforced here; RFC 7643 §7 says they MAY be used).
    pub canonical_values: &'static [&'static str],
    /// For `reference` attributes: the resource types that may be referenced.
    pub reference_types: &'static [&'static str],
    /// For `complex` attributes: the sub-attributes.
    pub sub_attributes: &'static [AttributeDef],
}

impl AttributeDef {
    /// The sub-attribute named `name` (case-insensitive), if this is a complex attribute.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.sub_attributes, name)
    }

    /// Whether this attribute is complex.
    pub fn is_complex(&self) -> bool {
        self.attr_type == AttrType::Complex
    }

    /// Whether `value` is one of the canonical values (case-insensitive unless caseExact).
    pub fn is_canonical_value(&self, value: &str) -> bool {
        self.canonical_values.iter().any(|c| if self.case_exact { *c == value } else { c.eq_ignore_ascii_case(value) })
    }

    /// The attribute definition as rendered in a `/Schemas` resource (RFC 7643 §7).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.attr_type.as_str()));
        m.insert("multiValued".into(), json!(self.multi_valued));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if self.attr_type.is_textual() {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if !self.reference_types.is_empty() {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if !self.sub_attributes.is_empty() {
            let subs: Vec<Value> = self.sub_attributes.iter().map(Self::to_json).collect();
            m.insert("subAttributes".into(), Value::Array(subs));
        }
        m.insert("mutability".into(), json!(self.mutability.as_str()));
        m.insert("returned".into(), json!(self.returned.as_str()));
        m.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        Value::Object(m)
    }

    // -- const builders used by the static tables below --

    const fn new(name: &'static str, attr_type: AttrType, description: &'static str) -> Self {
        Self {
            name,
            attr_type,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn req(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutab(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn ret(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    const fn canon(mut self, v: &'static [&'static str]) -> Self {
        self.canonical_values = v;
        self
    }
    const fn refs(mut self, v: &'static [&'static str]) -> Self {
        self.reference_types = v;
        self
    }
}

const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::String, description)
}
const fn boolean(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::Boolean, description)
}
const fn date_time(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::DateTime, description)
}
const fn integer(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::Integer, description)
}
const fn binary(name: &'static str, description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::Binary, description)
}
const fn reference(name: &'static str, types: &'static [&'static str], description: &'static str) -> AttributeDef {
    AttributeDef::new(name, AttrType::Reference, description).refs(types)
}
const fn complex(name: &'static str, description: &'static str, subs: &'static [AttributeDef]) -> AttributeDef {
    let mut a = AttributeDef::new(name, AttrType::Complex, description);
    a.sub_attributes = subs;
    a
}

/// The `primary` sub-attribute shared by multi-valued attributes (RFC 7643 §2.4).
const PRIMARY: AttributeDef = boolean(
    "primary",
    "A Boolean value indicating the 'primary' or preferred attribute value for this \
     attribute. The primary attribute value 'true' MUST appear no more than once.",
);
const DISPLAY: AttributeDef =
    string("display", "A human-readable name, primarily used for display purposes. READ-ONLY.");

/// One schema (RFC 7643 §7): a URN, a name and a list of attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaDef {
    /// The schema URN, e.g. [`USER_URN`].
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    /// The top-level attribute named `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        find_attr(self.attributes, name)
    }

    /// The schema as a `/Schemas/{id}` resource (RFC 7643 §7), with
    /// `meta.location = {base_url}/Schemas/{id}`. `base_url` is the SCIM service root,
    /// e.g. `https://example.com/scim/v2` (a trailing slash is ignored).
    pub fn to_json(&self, base_url: &str) -> Value {
        let attributes: Vec<Value> = self.attributes.iter().map(AttributeDef::to_json).collect();
        json!({
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attributes,
            "meta": {
                "resourceType": "Schema",
                "location": format!("{}/Schemas/{}", base_url.trim_end_matches('/'), self.id),
            },
        })
    }
}

/// The attribute named `name` in `attrs`, compared case-insensitively.
fn find_attr(attrs: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------
// Common attributes (RFC 7643 §3.1)
// ---------------------------------------------------------------------------------------

const META_SUBS: &[AttributeDef] = &[
    string("resourceType", "The name of the resource type of the resource.").exact().mutab(Mutability::ReadOnly),
    date_time("created", "The DateTime that the resource was added to the service provider.")
        .mutab(Mutability::ReadOnly),
    date_time(
        "lastModified",
        "The most recent DateTime that the details of this resource were updated at the service provider.",
    )
    .mutab(Mutability::ReadOnly),
    reference("location", &["uri"], "The URI of the resource being returned.").exact().mutab(Mutability::ReadOnly),
    string("version", "The version of the resource being returned (its entity tag).")
        .exact()
        .mutab(Mutability::ReadOnly),
];

/// The common attributes every resource carries (RFC 7643 §3.1). They are resolvable in
/// paths and filters but are not part of any `/Schemas` resource.
pub static COMMON_ATTRIBUTES: &[AttributeDef] = &[
    string("id", "A unique identifier for a SCIM resource as defined by the service provider.")
        .exact()
        .mutab(Mutability::ReadOnly)
        .ret(Returned::Always)
        .unique(Uniqueness::Server),
    string("externalId", "A String that is an identifier for the resource as defined by the provisioning client.")
        .exact(),
    complex("meta", "A complex attribute containing resource metadata.", META_SUBS).mutab(Mutability::ReadOnly),
    reference("schemas", &["uri"], "The schema URIs that define the attributes present in the resource.")
        .multi()
        .req()
        .ret(Returned::Always),
];

// ---------------------------------------------------------------------------------------
// Core User (RFC 7643 §4.1, §8.7.1)
// ---------------------------------------------------------------------------------------

const NAME_SUBS: &[AttributeDef] = &[
    string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III')."),
    string("familyName", "The family name of the User, or last name in most Western languages (e.g., 'Jensen' given the full name 'Ms. Barbara J Jensen, III')."),
    string("givenName", "The given name of the User, or first name in most Western languages (e.g., 'Barbara' given the full name 'Ms. Barbara J Jensen, III')."),
    string("middleName", "The middle name(s) of the User (e.g., 'Jane' given the full name 'Ms. Barbara J Jensen, III')."),
    string("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages (e.g., 'Ms.' given the full name 'Ms. Barbara J Jensen, III')."),
    string("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages (e.g., 'III' given the full name 'Ms. Barbara J Jensen, III')."),
];

const EMAIL_SUBS: &[AttributeDef] = &[
    string("value", "Email addresses for the user. The value SHOULD be canonicalized by the service provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'. Canonical type values of 'work', 'home', and 'other'."),
    DISPLAY,
    string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
        .canon(&["work", "home", "other"]),
    PRIMARY,
];

const PHONE_SUBS: &[AttributeDef] = &[
    string("value", "Phone number of the User."),
    DISPLAY,
    string("type", "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.")
        .canon(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];

const IM_SUBS: &[AttributeDef] = &[
    string("value", "Instant messaging address for the User."),
    DISPLAY,
    string("type", "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.")
        .canon(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    PRIMARY,
];

const PHOTO_SUBS: &[AttributeDef] = &[
    reference("value", &["external"], "URL of a photo of the User."),
    DISPLAY,
    string("type", "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.")
        .canon(&["photo", "thumbnail"]),
    PRIMARY,
];

const ADDRESS_SUBS: &[AttributeDef] = &[
    string("formatted", "The full mailing address, formatted for display or use with a mailing label. This attribute MAY contain newlines."),
    string("streetAddress", "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information. This attribute MAY contain newlines."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
        .canon(&["work", "home", "other"]),
    PRIMARY,
];

const USER_GROUP_SUBS: &[AttributeDef] = &[
    string("value", "The identifier of the User's group.").mutab(Mutability::ReadOnly),
    reference("$ref", &["User", "Group"], "The URI of the corresponding 'Group' resource to which the user belongs.")
        .mutab(Mutability::ReadOnly),
    DISPLAY.mutab(Mutability::ReadOnly),
    string("type", "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.")
        .canon(&["direct", "indirect"])
        .mutab(Mutability::ReadOnly),
];

const ENTITLEMENT_SUBS: &[AttributeDef] = &[
    string("value", "The value of an entitlement."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const ROLE_SUBS: &[AttributeDef] = &[
    string("value", "The value of a role."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const X509_SUBS: &[AttributeDef] = &[
    binary("value", "The value of an X.509 certificate."),
    DISPLAY,
    string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const USER_ATTRS: &[AttributeDef] = &[
    string("userName", "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value. This identifier MUST be unique across the service provider's entire set of Users. REQUIRED.")
        .req()
        .unique(Uniqueness::Server),
    complex("name", "The components of the user's real name. Providers MAY return just the full name as a single string in the formatted sub-attribute, or they MAY return just the individual component attributes using the other sub-attributes, or they MAY return both.", NAME_SUBS),
    string("displayName", "The name of the User, suitable for display to end-users. The name SHOULD be the full name of the User being described, if known."),
    string("nickName", "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead of 'Robert'."),
    reference("profileUrl", &["external"], "A fully qualified URL pointing to a page representing the User's online profile."),
    string("title", "The user's title, such as \"Vice President.\""),
    string("userType", "Used to identify the relationship between the organization and the user. Typical values used might be 'Contractor', 'Employee', 'Intern', 'Temp', 'External', and 'Unknown', but any value may be used."),
    string("preferredLanguage", "Indicates the User's preferred written or spoken language. Generally used for selecting a localized user interface; e.g., 'en_US' specifies the language English and country US."),
    string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
    string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
    boolean("active", "A Boolean value indicating the User's administrative status."),
    string("password", "The User's cleartext password. This attribute is intended to be used as a means to specify an initial password when creating a new User or to reset an existing User's password.")
        .mutab(Mutability::WriteOnly)
        .ret(Returned::Never),
    complex("emails", "Email addresses for the user. The value SHOULD be canonicalized by the service provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'. Canonical type values of 'work', 'home', and 'other'.", EMAIL_SUBS)
        .multi(),
    complex("phoneNumbers", "Phone numbers for the User. The value SHOULD be canonicalized by the service provider according to the format specified in RFC 3966, e.g., 'tel:+1-201-555-0123'. Canonical type values of 'work', 'home', 'mobile', 'fax', 'pager', and 'other'.", PHONE_SUBS)
        .multi(),
    complex("ims", "Instant messaging addresses for the User.", IM_SUBS).multi(),
    complex("photos", "URLs of photos of the User.", PHOTO_SUBS).multi(),
    complex("addresses", "A physical mailing address for this User. Canonical type values of 'work', 'home', and 'other'. This attribute is a complex type with the following sub-attributes.", ADDRESS_SUBS)
        .multi(),
    complex("groups", "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.", USER_GROUP_SUBS)
        .multi()
        .mutab(Mutability::ReadOnly),
    complex("entitlements", "A list of entitlements for the User that represent a thing the User has.", ENTITLEMENT_SUBS)
        .multi(),
    complex("roles", "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.", ROLE_SUBS)
        .multi(),
    complex("x509Certificates", "A list of certificates issued to the User.", X509_SUBS).multi(),
];

/// The core User schema (RFC 7643 §4.1).
pub static USER_SCHEMA: SchemaDef =
    SchemaDef { id: USER_URN, name: "User", description: "User Account", attributes: USER_ATTRS };

// ---------------------------------------------------------------------------------------
// Core Group (RFC 7643 §4.2, §8.7.1)
// ---------------------------------------------------------------------------------------

const MEMBER_SUBS: &[AttributeDef] = &[
    string("value", "Identifier of the member of this Group.").mutab(Mutability::Immutable),
    reference("$ref", &["User", "Group"], "The URI corresponding to a SCIM resource that is a member of this Group.")
        .mutab(Mutability::Immutable),
    string("type", "A label indicating the type of resource, e.g., 'User' or 'Group'.")
        .canon(&["User", "Group"])
        .mutab(Mutability::Immutable),
    DISPLAY.mutab(Mutability::Immutable),
];

const GROUP_ATTRS: &[AttributeDef] = &[
    string("displayName", "A human-readable name for the Group. REQUIRED.").req(),
    complex("members", "A list of members of the Group.", MEMBER_SUBS).multi(),
];

/// The core Group schema (RFC 7643 §4.2).
pub static GROUP_SCHEMA: SchemaDef =
    SchemaDef { id: GROUP_URN, name: "Group", description: "Group", attributes: GROUP_ATTRS };

// ---------------------------------------------------------------------------------------
// Enterprise User extension (RFC 7643 §4.3, §8.7.1)
// ---------------------------------------------------------------------------------------

const MANAGER_SUBS: &[AttributeDef] = &[
    string("value", "The id of the SCIM resource representing the User's manager. REQUIRED."),
    reference("$ref", &["User"], "The URI of the SCIM resource representing the User's manager. REQUIRED."),
    string("displayName", "The displayName of the User's manager. OPTIONAL and READ-ONLY.").mutab(Mutability::ReadOnly),
];

const ENTERPRISE_ATTRS: &[AttributeDef] = &[
    string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
    string("costCenter", "Identifies the name of a cost center."),
    string("organization", "Identifies the name of an organization."),
    string("division", "Identifies the name of a division."),
    string("department", "Identifies the name of a department."),
    complex("manager", "The User's manager. A complex type that optionally allows service providers to represent organizational hierarchy by referencing the 'id' attribute of another User.", MANAGER_SUBS),
];

/// The enterprise User extension (RFC 7643 §4.3).
pub static ENTERPRISE_USER_SCHEMA: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRS,
};

// ---------------------------------------------------------------------------------------
// provisor product extension
// ---------------------------------------------------------------------------------------

const PHONE_EXT_SUBS: &[AttributeDef] = &[
    integer("extension", "The internal extension dialled to reach the user; 0 asks for the next free one of the site. Applied only when free in the site (otherwise a provisioning issue says why)."),
    string("number", "The direct phone number (E.164 or a common notation) from the account's pool; applied only when in the pool and free."),
    string("site", "The phone site, by site code or name (default: the account's main site)."),
    string("callingPlan", "The calling plan assigned to the phone line.").canon(&[
        "regional_metered",
        "regional_unlimited",
        "global_select",
    ]),
    string("role", "The user's phone role, e.g. phone_super_admin, call_queue_admin, phone_site_admin:<site>."),
];

/// One flag per add-on (rather than a list of names): an identity provider maps each to a
/// boolean profile attribute, and a PATCH of one flag never disturbs the others.
const ADDON_SUBS: &[AttributeDef] = &[
    boolean("powerPack", "Phone Power Pack (needs a phone user)."),
    boolean("largeMeetings", "Large Meetings."),
    boolean("webinar", "Webinar."),
];

const ISSUE_SUBS: &[AttributeDef] = &[
    string("code", "A machine-readable issue code.").exact().mutab(Mutability::ReadOnly),
    string("message", "A human-readable description of the issue.").mutab(Mutability::ReadOnly),
    string("attribute", "The attribute path the issue relates to, if any.").mutab(Mutability::ReadOnly),
];

const PROVISOR_ATTRS: &[AttributeDef] = &[
    string("userType", "The product license tier requested for the user (applied within the account's seats).")
        .canon(&["basic", "pro", "business", "business_plus", "enterprise"]),
    complex(
        "addons",
        "Product add-ons, one flag each: true asks for the add-on (within the account's seats), false or absent for none.",
        ADDON_SUBS,
    ),
    string(
        "subAccount",
        "A sub account hint for the account's placement rules (read by mapping rules as `subAccount`).",
    ),
    complex("phone", "The user's phone line.", PHONE_EXT_SUBS),
    complex(
        "provisioningIssues",
        "What the service provider could not apply of the last change (a seat, extension or number that was not available, …) and why. READ-ONLY; returned when asked for with `attributes`.",
        ISSUE_SUBS,
    )
    .multi()
    .mutab(Mutability::ReadOnly)
    .ret(Returned::Request),
];

/// The provisor product extension for Users.
pub static PROVISOR_USER_SCHEMA: SchemaDef = SchemaDef {
    id: PROVISOR_USER_URN,
    name: "ProvisorUser",
    description: "provisor product attributes",
    attributes: PROVISOR_ATTRS,
};

/// Every schema served at `/Schemas`, in a stable order.
pub static ALL_SCHEMAS: [&SchemaDef; 4] = [&USER_SCHEMA, &GROUP_SCHEMA, &ENTERPRISE_USER_SCHEMA, &PROVISOR_USER_SCHEMA];

/// The schema with this URN (case-insensitive) among [`ALL_SCHEMAS`].
pub fn schema_by_id(id: &str) -> Option<&'static SchemaDef> {
    ALL_SCHEMAS.iter().copied().find(|s| s.id.eq_ignore_ascii_case(id))
}

/// The `/Schemas` resources (RFC 7643 §7), each with `meta.location` under `base_url`.
pub fn schemas_json(base_url: &str) -> Vec<Value> {
    ALL_SCHEMAS.iter().map(|s| s.to_json(base_url)).collect()
}

/// The full `/Schemas` list response (RFC 7644 §3.4.2 shape).
pub fn schemas_list_response(base_url: &str) -> Value {
    let resources = schemas_json(base_url);
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

// ---------------------------------------------------------------------------------------
// Resource types and path resolution
// ---------------------------------------------------------------------------------------

/// A resource type (RFC 7643 §6): its core schema plus its extensions. This is the
/// "schema" the filter evaluator and PATCH applier take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSchema {
    /// Resource type name, e.g. `User`; also `meta.resourceType`.
    pub name: &'static str,
    /// Endpoint relative to the service root, e.g. `/Users`.
    pub endpoint: &'static str,
    pub description: &'static str,
    pub core: &'static SchemaDef,
    /// Extensions in resolution order for unqualified names.
    pub extensions: &'static [&'static SchemaDef],
}

/// The User resource type: core User + EnterpriseUser + provisor extension.
pub static USER: ResourceSchema = ResourceSchema {
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    core: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_USER_SCHEMA, &PROVISOR_USER_SCHEMA],
};

/// The Group resource type.
pub static GROUP: ResourceSchema =
    ResourceSchema { name: "Group", endpoint: "/Groups", description: "Group", core: &GROUP_SCHEMA, extensions: &[] };

/// Why a path did not resolve against a [`ResourceSchema`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown schema `{0}`")]
    UnknownSchema(String),
    #[error("unknown attribute `{0}`")]
    UnknownAttribute(String),
    #[error("attribute `{attr}` has no sub-attribute `{sub}`")]
    UnknownSubAttribute { attr: String, sub: String },
    #[error("attribute `{0}` is not complex and has no sub-attributes")]
    NotComplex(String),
    #[error("`{0}` names a whole schema, not an attribute")]
    WholeSchema(String),
}

impl ResolveError {
    /// As an `invalidPath` error (PATCH paths, attribute lists).
    pub fn into_invalid_path(self) -> ScimError {
        ScimError::InvalidPath(self.to_string())
    }
    /// As an `invalidFilter` error (filters).
    pub fn into_invalid_filter(self) -> ScimError {
        ScimError::InvalidFilter(self.to_string())
    }
}

/// A path resolved against a resource type: where the attribute is defined and where
/// its value lives in the resource JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedAttr {
    /// The schema defining the attribute (the core schema for common attributes).
    pub schema: &'static SchemaDef,
    /// The top-level attribute.
    pub attribute: &'static AttributeDef,
    /// The sub-attribute, for `attr.sub` paths.
    pub sub_attribute: Option<&'static AttributeDef>,
    /// For extension attributes: the resource JSON key holding the extension object
    /// (the schema URN). `None` for core and common attributes (top-level keys).
    pub container: Option<&'static str>,
}

impl ResolvedAttr {
    /// The innermost definition (the sub-attribute if any, else the attribute).
    pub fn leaf(&self) -> &'static AttributeDef {
        self.sub_attribute.unwrap_or(self.attribute)
    }

    /// Whether the attribute is one of the common attributes (`id`, `externalId`, …).
    pub fn is_common(&self) -> bool {
        self.container.is_none() && COMMON_ATTRIBUTES.iter().any(|a| std::ptr::eq(a, self.attribute))
    }

    /// Canonical lowercase form: `username`, `emails.value`, `meta.lastmodified`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department`.
    /// Core and common attributes are unqualified; extension attributes are qualified.
    pub fn canonical(&self) -> String {
        let mut s = String::new();
        if let Some(urn) = self.container {
            s.push_str(urn);
            s.push(':');
        }
        s.push_str(self.attribute.name);
        if let Some(sub) = self.sub_attribute {
            s.push('.');
            s.push_str(sub.name);
        }
        s.to_ascii_lowercase()
    }
}

impl ResourceSchema {
    /// The core schema or an extension with this URN (case-insensitive).
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        if self.core.id.eq_ignore_ascii_case(urn) {
            return Some(self.core);
        }
        self.extension_by_urn(urn)
    }

    /// The extension with this URN (case-insensitive).
    pub fn extension_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions.iter().copied().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// If `path` (syntactically `urn:name`) names a whole extension schema, e.g. the path
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`, that extension.
    pub fn extension_for_path(&self, path: &AttrPath) -> Option<&'static SchemaDef> {
        let urn = path.urn.as_deref()?;
        if path.sub.is_some() {
            return None;
        }
        self.extensions.iter().copied().find(|s| {
            s.id.len() == urn.len() + 1 + path.name.len()
                && s.id.get(..urn.len()).is_some_and(|u| u.eq_ignore_ascii_case(urn))
                && s.id.get(urn.len() + 1..).is_some_and(|n| n.eq_ignore_ascii_case(&path.name))
        })
    }

    /// Resolve a (possibly URN-qualified) attribute path. See the module docs for the
    /// resolution order of unqualified names.
    pub fn resolve(&self, path: &AttrPath) -> Result<ResolvedAttr, ResolveError> {
        if path.urn.is_some() && path.sub.is_none() && self.schema_by_urn(&path.to_string()).is_some() {
            return Err(ResolveError::WholeSchema(path.to_string()));
        }
        let (schema, attribute, container) = match path.urn.as_deref() {
            Some(urn) => {
                let schema = self.schema_by_urn(urn).ok_or_else(|| ResolveError::UnknownSchema(urn.to_string()))?;
                let is_core = std::ptr::eq(schema, self.core);
                let attr = schema
                    .attribute(&path.name)
                    .or_else(|| is_core.then(|| find_attr(COMMON_ATTRIBUTES, &path.name)).flatten())
                    .ok_or_else(|| ResolveError::UnknownAttribute(path.to_string()))?;
                (schema, attr, (!is_core).then_some(schema.id))
            }
            None => {
                self.resolve_unqualified(&path.name).ok_or_else(|| ResolveError::UnknownAttribute(path.name.clone()))?
            }
        };
        let sub_attribute = match path.sub.as_deref() {
            None => None,
            Some(sub) => {
                if !attribute.is_complex() {
                    return Err(ResolveError::NotComplex(attribute.name.to_string()));
                }
                Some(attribute.sub_attribute(sub).ok_or_else(|| ResolveError::UnknownSubAttribute {
                    attr: attribute.name.to_string(),
                    sub: sub.to_string(),
                })?)
            }
        };
        Ok(ResolvedAttr { schema, attribute, sub_attribute, container })
    }

    fn resolve_unqualified(
        &self,
        name: &str,
    ) -> Option<(&'static SchemaDef, &'static AttributeDef, Option<&'static str>)> {
        if let Some(a) = self.core.attribute(name) {
            return Some((self.core, a, None));
        }
        if let Some(a) = find_attr(COMMON_ATTRIBUTES, name) {
            return Some((self.core, a, None));
        }
        self.extensions.iter().find_map(|s| s.attribute(name).map(|a| (*s, a, Some(s.id))))
    }

    /// Parse and resolve a textual attribute path such as `name.givenName` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    /// Unknown or malformed paths yield `invalidPath`.
    pub fn lookup(&self, path: &str) -> Result<ResolvedAttr, ScimError> {
        let p = AttrPath::parse(path).map_err(|e| ScimError::InvalidPath(e.to_string()))?;
        self.resolve(&p).map_err(ResolveError::into_invalid_path)
    }

    /// Whether string comparisons on `path` are case-sensitive.
    pub fn case_exact(&self, path: &str) -> Result<bool, ScimError> {
        Ok(self.lookup(path)?.leaf().case_exact)
    }

    /// Whether `path` is read-only (the attribute or, for `attr.sub`, either level).
    pub fn is_read_only(&self, path: &str) -> Result<bool, ScimError> {
        let r = self.lookup(path)?;
        Ok(r.attribute.mutability == Mutability::ReadOnly
            || r.sub_attribute.is_some_and(|s| s.mutability == Mutability::ReadOnly))
    }

    /// The `returned` characteristic of `path`. For `attr.sub`, `never` on either level
    /// wins, then `always` on the sub-attribute, then the sub-attribute's own setting.
    pub fn returned(&self, path: &str) -> Result<Returned, ScimError> {
        let r = self.lookup(path)?;
        Ok(match r.sub_attribute {
            None => r.attribute.returned,
            Some(_) if r.attribute.returned == Returned::Never => Returned::Never,
            Some(s) => s.returned,
        })
    }

    /// The `/ResourceTypes/{name}` resource (RFC 7643 §6).
    pub fn resource_type_json(&self, base_url: &str) -> Value {
        let extensions: Vec<Value> =
            self.extensions.iter().map(|s| json!({ "schema": s.id, "required": false })).collect();
        json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": extensions,
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{}/ResourceTypes/{}", base_url.trim_end_matches('/'), self.name),
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn unqualified_names_resolve_core_then_common_then_extensions() {
        let r = USER.lookup("USERNAME").unwrap();
        assert_eq!(r.attribute.name, "userName");
        assert!(r.container.is_none());
        assert!(!r.is_common());

        let r = USER.lookup("id").unwrap();
        assert!(r.is_common());
        assert!(r.leaf().case_exact);

        let r = USER.lookup("department").unwrap();
        assert_eq!(r.container, Some(ENTERPRISE_USER_URN));
        assert_eq!(r.canonical(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department");

        // Core userType shadows the provisor one unless qualified.
        let r = USER.lookup("userType").unwrap();
        assert!(r.container.is_none());
        let r = USER.lookup("urn:ietf:params:scim:schemas:extension:provisor:2.0:User:userType").unwrap();
        assert_eq!(r.container, Some(PROVISOR_USER_URN));
        assert!(r.leaf().is_canonical_value("Business_Plus"));
    }

    #[test]
    fn qualified_and_sub_attribute_paths() {
        let r = USER.lookup("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:MANAGER.value").unwrap();
        assert_eq!(r.attribute.name, "manager");
        assert_eq!(r.sub_attribute.map(|s| s.name), Some("value"));

        let r = USER.lookup("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName").unwrap();
        assert_eq!(r.canonical(), "name.familyname");
        assert_eq!(USER.lookup("meta.lastModified").unwrap().canonical(), "meta.lastmodified");
        assert_eq!(GROUP.lookup("members.$ref").unwrap().leaf().attr_type, AttrType::Reference);
    }

    #[test]
    fn unknown_paths_are_detected() {
        for bad in [
            "nope",
            "name.nope",
            "userName.x",
            "urn:example:unknown:Thing:x",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName",
            "members",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ] {
            let e = USER.lookup(bad).unwrap_err();
            assert_eq!(e.scim_type(), "invalidPath", "{bad}");
        }
        assert!(GROUP.lookup("department").is_err());
    }

    #[test]
    fn helper_characteristics() {
        assert!(!USER.case_exact("userName").unwrap());
        assert!(USER.case_exact("externalId").unwrap());
        assert!(USER.case_exact("id").unwrap());
        assert!(USER.is_read_only("id").unwrap());
        assert!(USER.is_read_only("meta.created").unwrap());
        assert!(USER.is_read_only("groups.value").unwrap());
        assert!(USER
            .is_read_only("urn:ietf:params:scim:schemas:extension:provisor:2.0:User:provisioningIssues")
            .unwrap());
        assert!(!USER.is_read_only("emails.value").unwrap());
        assert_eq!(USER.returned("password").unwrap(), Returned::Never);
        assert_eq!(USER.returned("id").unwrap(), Returned::Always);
        assert_eq!(USER.returned("emails.type").unwrap(), Returned::Default);
    }

    #[test]
    fn extension_root_paths() {
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user").unwrap();
        assert_eq!(USER.extension_for_path(&p).map(|s| s.id), Some(ENTERPRISE_USER_URN));
        let p = AttrPath::parse("userName").unwrap();
        assert!(USER.extension_for_path(&p).is_none());
    }

    #[test]
    fn schema_rendering_has_rfc_shape() {
        let v = USER_SCHEMA.to_json("https://example.com/scim/v2/");
        assert_eq!(v["id"], USER_URN);
        assert_eq!(v["schemas"][0], SCHEMA_URN);
        assert_eq!(v["meta"]["resourceType"], "Schema");
        assert_eq!(
            v["meta"]["location"],
            "https://example.com/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
        let user_name = &v["attributes"][0];
        assert_eq!(
            user_name,
            &json!({
                "name": "userName", "type": "string", "multiValued": false,
                "description": USER_ATTRS[0].description, "required": true, "caseExact": false,
                "mutability": "readWrite", "returned": "default", "uniqueness": "server"
            })
        );
        let emails = v["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"][2]["canonicalValues"], json!(["work", "home", "other"]));

        let list = schemas_list_response("https://x");
        assert_eq!(list["totalResults"], 4);
        let ids: Vec<&str> = list["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [USER_URN, GROUP_URN, ENTERPRISE_USER_URN, PROVISOR_USER_URN]);

        let rt = USER.resource_type_json("https://x");
        assert_eq!(rt["schemaExtensions"][1]["schema"], PROVISOR_USER_URN);
        assert_eq!(rt["meta"]["location"], "https://x/ResourceTypes/User");
    }

    #[test]
    fn rfc_characteristics_spot_checks() {
        let members = GROUP_SCHEMA.attribute("members").unwrap();
        assert!(members.multi_valued);
        assert_eq!(members.sub_attribute("value").unwrap().mutability, Mutability::Immutable);
        assert_eq!(members.sub_attribute("$ref").unwrap().reference_types, &["User", "Group"]);
        let groups = USER_SCHEMA.attribute("groups").unwrap();
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        let x509 = USER_SCHEMA.attribute("x509Certificates").unwrap();
        assert_eq!(x509.sub_attribute("value").unwrap().attr_type, AttrType::Binary);
        let manager = ENTERPRISE_USER_SCHEMA.attribute("manager").unwrap();
        assert_eq!(manager.sub_attribute("displayName").unwrap().mutability, Mutability::ReadOnly);
        let phone = PROVISOR_USER_SCHEMA.attribute("phone").unwrap();
        assert_eq!(phone.sub_attributes.len(), 5);
    }
}
