-- The attributes of a user's last identity-provider push, login or CSV row, as the mapping
-- rules read them: when only the user's group memberships change, the rules run again over
-- these (with the current groups) instead of over nothing.
CREATE TABLE user_attributes (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    attributes TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
