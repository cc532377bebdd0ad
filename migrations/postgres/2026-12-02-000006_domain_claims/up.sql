-- Domain claims: several accounts may claim a domain; only a verified claim (DNS TXT
-- challenge, or the operator's approval) routes users or blocks other tenants, and the
-- first verified claim wins. Associations made before verification existed become pending
-- claims with a fresh challenge: nobody keeps a domain on their word alone.
CREATE TABLE domain_claims (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'verified')),
    challenge TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    verified_at TIMESTAMP,
    PRIMARY KEY (account_id, domain)
);
CREATE UNIQUE INDEX domain_claims_one_verified ON domain_claims(domain) WHERE status = 'verified';
CREATE INDEX domain_claims_domain ON domain_claims(domain);
INSERT INTO domain_claims (account_id, domain, status, challenge, created_at, verified_at)
    SELECT account_id, domain, 'pending', md5(random()::text || clock_timestamp()::text), created_at, NULL FROM account_domains;
DROP TABLE account_domains;
