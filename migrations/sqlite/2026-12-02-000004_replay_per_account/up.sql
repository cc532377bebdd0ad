-- Assertion IDs are unique per account (tenant), not across the platform: one tenant's IdP
-- cannot burn another tenant's assertion IDs.
CREATE TABLE saml_replay_by_account (
    account_id TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (account_id, assertion_id)
);
INSERT INTO saml_replay_by_account (account_id, assertion_id, expires_at)
    SELECT account_id, assertion_id, expires_at FROM saml_replay;
DROP TABLE saml_replay;
ALTER TABLE saml_replay_by_account RENAME TO saml_replay;
CREATE INDEX saml_replay_expiry ON saml_replay(expires_at);
