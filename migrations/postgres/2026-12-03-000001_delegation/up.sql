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
-- delegate inside a customer, naming the relationship it acts under).
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check
    CHECK (scope IN ('operator', 'admin', 'scim', 'user', 'delegated'));
ALTER TABLE api_tokens ADD COLUMN relationship_id TEXT;
CREATE INDEX api_tokens_by_relationship ON api_tokens (relationship_id);
