-- The master account whose identity provider placed the user in this (sub) account: that
-- IdP's SCIM token still sees and deprovisions the user.
ALTER TABLE users ADD COLUMN placed_by TEXT;
CREATE INDEX users_placed_by ON users (placed_by) WHERE placed_by IS NOT NULL;
