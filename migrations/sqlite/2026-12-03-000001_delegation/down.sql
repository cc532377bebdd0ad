DROP INDEX api_tokens_by_relationship;
DELETE FROM api_tokens WHERE scope IN ('user', 'delegated');
CREATE TABLE api_tokens_old (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('operator', 'admin', 'scim')),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    granted_from TEXT,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP
);
INSERT INTO api_tokens_old SELECT id, account_id, user_id, scope, token_hash, label, created_at, revoked_at, granted_from, expires_at, last_used_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_old RENAME TO api_tokens;
CREATE INDEX api_tokens_account ON api_tokens(account_id);
DROP TABLE delegate_codes;
DROP TABLE delegates;
DROP TABLE relationship_warnings;
DROP TABLE relationships;
