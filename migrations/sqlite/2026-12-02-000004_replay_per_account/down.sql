CREATE TABLE saml_replay_global (
    assertion_id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
INSERT OR IGNORE INTO saml_replay_global SELECT assertion_id, account_id, expires_at FROM saml_replay;
DROP TABLE saml_replay;
ALTER TABLE saml_replay_global RENAME TO saml_replay;
CREATE INDEX saml_replay_expiry ON saml_replay(expires_at);
