-- Partner relationships: a partner account's delegated access into a customer account.
CREATE TABLE relationships (
    id TEXT PRIMARY KEY NOT NULL,
    partner_account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    customer_account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- invited | pending | active | declined | expired | terminated
    status TEXT NOT NULL,
    -- partner | customer
    initiated_by TEXT NOT NULL,
    -- The partner's point of contact: the requesting user, or the invited partner user.
    contact_user_id TEXT,
    permissions TEXT NOT NULL,
    -- A wider set the partner asked for, in force only once the customer approves it.
    pending_permissions TEXT,
    expires_at TIMESTAMP,
    auto_extend BOOLEAN NOT NULL,
    allow_delegates BOOLEAN NOT NULL,
    undisclosed BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    ended_at TIMESTAMP,
    -- partner | customer | expiry
    ended_by TEXT,
    updated_at TIMESTAMP NOT NULL,
    -- Bumped by every change: a change read from an older version is refused, so a
    -- termination is never overwritten by a concurrent approval.
    version BIGINT NOT NULL DEFAULT 0,
    CHECK (partner_account_id <> customer_account_id)
);
CREATE INDEX relationships_by_partner ON relationships (partner_account_id, created_at);
CREATE INDEX relationships_by_customer ON relationships (customer_account_id, created_at);
CREATE INDEX relationships_by_status ON relationships (status);

-- Expiry warnings already mailed: the key makes each one go out once, whatever the process.
CREATE TABLE relationship_warnings (
    relationship_id TEXT NOT NULL REFERENCES relationships(id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL,
    days_before INTEGER NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (relationship_id, expires_at, days_before)
);

-- Partner users acting in the customer account of a relationship.
CREATE TABLE delegates (
    relationship_id TEXT NOT NULL REFERENCES relationships(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- invited | active
    status TEXT NOT NULL,
    -- JSON list: "manual", "group:<id>", …
    sources TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    PRIMARY KEY (relationship_id, user_id)
);
CREATE INDEX delegates_by_user ON delegates (user_id);

-- One-time codes a delegate exchanges for a delegated token (only their hash is stored).
CREATE TABLE delegate_codes (
    id TEXT PRIMARY KEY NOT NULL,
    relationship_id TEXT NOT NULL REFERENCES relationships(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    failed_attempts INTEGER NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX delegate_codes_by_delegate ON delegate_codes (relationship_id, user_id, created_at);

-- Two more token scopes: `user` (a person's own rights) and `delegated` (a partner's
-- delegate inside a customer, naming the relationship it acts under). SQLite cannot alter
-- a CHECK, so the table is rebuilt with the same rows.
CREATE TABLE api_tokens_new (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('operator', 'admin', 'scim', 'user', 'delegated')),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    granted_from TEXT,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    relationship_id TEXT
);
INSERT INTO api_tokens_new (id, account_id, user_id, scope, token_hash, label, created_at, revoked_at, granted_from, expires_at, last_used_at)
    SELECT id, account_id, user_id, scope, token_hash, label, created_at, revoked_at, granted_from, expires_at, last_used_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_account ON api_tokens(account_id);
CREATE INDEX api_tokens_by_relationship ON api_tokens (relationship_id);
