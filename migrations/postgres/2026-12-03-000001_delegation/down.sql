DROP INDEX api_tokens_by_relationship;
ALTER TABLE api_tokens DROP COLUMN relationship_id;
DELETE FROM api_tokens WHERE scope IN ('user', 'delegated');
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_scope_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (scope IN ('operator', 'admin', 'scim'));
DROP TABLE delegate_codes;
DROP TABLE delegates;
DROP TABLE relationship_warnings;
DROP TABLE relationships;
