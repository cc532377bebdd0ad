-- provisor schema (SQLite). Kept column-for-column equal to the PostgreSQL one;
-- the only differences are auto-increment keys and TEXT vs VARCHAR spellings.

CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES accounts(id),
    is_master BOOLEAN NOT NULL DEFAULT 0,
    bulk_licensing BOOLEAN NOT NULL DEFAULT 0,
    billing TEXT CHECK (billing IN ('pay_by_master', 'separate')),
    vanity_name TEXT UNIQUE,
    settings TEXT NOT NULL DEFAULT '{}',
    phone_enabled BOOLEAN NOT NULL DEFAULT 0,
    -- bundled licensing: an Enterprise license carries phone, a calling plan and Power Pack
    bundled_licensing BOOLEAN NOT NULL DEFAULT 1,
    auto_phone_provisioning BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX accounts_parent ON accounts(parent_id);

CREATE TABLE account_domains (
    domain TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX account_domains_account ON account_domains(account_id);

-- One row per (account, product). `available` is what the account may use: the purchased
-- count for an account that buys its own, or what its master delegated to it.
-- The CHECK is the last line of defence for `used + delegated <= available`; writers use
-- conditional UPDATEs so that an exhausted pool is a clean "no seat" answer, not an abort.
CREATE TABLE license_pools (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    product TEXT NOT NULL,
    available BIGINT NOT NULL DEFAULT 0,
    used BIGINT NOT NULL DEFAULT 0,
    delegated BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, product),
    CHECK (used >= 0 AND delegated >= 0 AND available >= 0 AND used + delegated <= available)
);

CREATE TABLE roles (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, name_lower)
);

CREATE TABLE phone_sites (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    site_code TEXT NOT NULL,
    extension_length INTEGER NOT NULL,
    is_main BOOLEAN NOT NULL DEFAULT 0,
    -- bumped by every extension allocation: the UPDATE takes the row lock that serialises
    -- "next free extension" within one site on PostgreSQL.
    allocation_seq BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, site_code),
    UNIQUE (account_id, name_lower)
);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    email TEXT UNIQUE,
    user_name TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    display_name_lower TEXT,
    given_name TEXT,
    family_name TEXT,
    department TEXT,
    job_title TEXT,
    user_type TEXT NOT NULL DEFAULT 'basic',
    role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    custom_role_id TEXT REFERENCES roles(id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'inactive')),
    addons TEXT NOT NULL DEFAULT '',
    -- products this user holds a seat of in its account's pools (comma-separated); what
    -- a change releases is read from here, so counts stay exact whatever the rules become.
    seats TEXT NOT NULL DEFAULT '',
    scim TEXT NOT NULL DEFAULT '{}',
    provisioning_issues TEXT NOT NULL DEFAULT '[]',
    last_source TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    UNIQUE (account_id, user_name_lower)
);
CREATE INDEX users_account_external ON users(account_id, external_id);
CREATE INDEX users_account_display ON users(account_id, display_name_lower);
CREATE INDEX users_account_updated ON users(account_id, updated_at);

-- A user's phone profile (one row per phone user). The long form (site code + short
-- extension) is unique in the account, which also makes a short extension unique per site.
CREATE TABLE user_phones (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    site_id TEXT REFERENCES phone_sites(id),
    extension BIGINT,
    long_extension TEXT,
    phone_number TEXT UNIQUE,
    calling_plan TEXT,
    calling_plan_bundled BOOLEAN NOT NULL DEFAULT 0,
    phone_roles TEXT NOT NULL DEFAULT '',
    outbound_caller_id TEXT,
    sms_enabled BOOLEAN,
    phone_status TEXT,
    phone_package TEXT,
    user_template TEXT,
    allow_caller_id_change BOOLEAN,
    UNIQUE (account_id, long_extension)
);
CREATE INDEX user_phones_site_extension ON user_phones(site_id, extension);

-- Every e-mail address a user carries (SCIM `emails`), so `emails.value eq` is an index probe.
CREATE TABLE user_emails (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    value_lower TEXT NOT NULL,
    PRIMARY KEY (user_id, value_lower)
);
CREATE INDEX user_emails_lookup ON user_emails(account_id, value_lower);

CREATE TABLE phone_numbers (
    number TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    assigned_user_id TEXT UNIQUE REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX phone_numbers_account ON phone_numbers(account_id);

CREATE TABLE desk_phones (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    slot INTEGER NOT NULL,
    brand TEXT,
    model TEXT,
    mac_address TEXT NOT NULL UNIQUE,
    provision_template TEXT,
    PRIMARY KEY (user_id, slot)
);

CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    external_id TEXT,
    scim TEXT NOT NULL DEFAULT '{}',
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, display_name_lower)
);
CREATE INDEX groups_account_external ON groups(account_id, external_id);
CREATE INDEX groups_account_updated ON groups(account_id, updated_at);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

-- Outbox of membership changes, written in the same transaction as the change; the
-- group-sync engine consumes it.
CREATE TABLE membership_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('added', 'removed')),
    source TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP
);
CREATE INDEX membership_events_pending ON membership_events(processed_at, id);

CREATE TABLE mapping_configs (
    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    config TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('operator', 'admin', 'scim')),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    sent_count INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX invitations_account ON invitations(account_id, expires_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_account ON audit_log(account_id, id);

CREATE TABLE mail_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX mail_outbox_pending ON mail_outbox(sent_at, id);

CREATE TABLE sso_configs (
    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    idp_entity_id TEXT NOT NULL,
    sso_url TEXT,
    sp_entity_id TEXT,
    clock_skew_seconds INTEGER NOT NULL DEFAULT 180,
    allow_idp_initiated BOOLEAN NOT NULL DEFAULT 0,
    jit_enabled BOOLEAN NOT NULL DEFAULT 1,
    allow_sha1 BOOLEAN NOT NULL DEFAULT 0,
    allowed_redirects TEXT NOT NULL DEFAULT '[]',
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE sso_certificates (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    pem TEXT NOT NULL,
    not_after TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, fingerprint)
);

-- AuthnRequests we issued (SP-initiated login): InResponseTo must name one, once.
CREATE TABLE saml_requests (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    relay_state TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_requests_expiry ON saml_requests(expires_at);

-- Assertion IDs already consumed; shared by every server process.
CREATE TABLE saml_replay (
    assertion_id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX saml_replay_expiry ON saml_replay(expires_at);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
