-- SCIM: the `display` an identity provider sent with a group member, echoed back in the
-- Group resource (NULL: the member's own display name is shown).
ALTER TABLE group_members ADD COLUMN display TEXT;
