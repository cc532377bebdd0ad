-- Assertion IDs are unique per account (tenant), not across the platform: one tenant's IdP
-- cannot burn another tenant's assertion IDs.
ALTER TABLE saml_replay DROP CONSTRAINT saml_replay_pkey;
ALTER TABLE saml_replay ADD PRIMARY KEY (account_id, assertion_id);
