-- Which outside account (a master acting through the mirror) minted a token or configured
-- SSO trust or mapping rules here: disassociation revokes exactly those.
ALTER TABLE api_tokens ADD COLUMN granted_from TEXT;
ALTER TABLE sso_configs ADD COLUMN granted_from TEXT;
ALTER TABLE mapping_configs ADD COLUMN granted_from TEXT;
