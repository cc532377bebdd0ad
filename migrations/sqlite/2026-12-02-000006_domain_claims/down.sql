CREATE TABLE account_domains (
    domain TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX account_domains_account ON account_domains(account_id);
INSERT INTO account_domains (domain, account_id, created_at)
    SELECT domain, account_id, created_at FROM domain_claims WHERE status = 'verified';
DROP TABLE domain_claims;
