ALTER TABLE api_tokens DROP COLUMN granted_from;
ALTER TABLE sso_configs DROP COLUMN granted_from;
ALTER TABLE mapping_configs DROP COLUMN granted_from;
