-- Groups of the partner account bound to a relationship: their members are delegates.
CREATE TABLE group_bindings (
    id TEXT PRIMARY KEY NOT NULL,
    relationship_id TEXT NOT NULL REFERENCES relationships(id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    -- JSON list of catalogue names, within the relationship's.
    permissions TEXT NOT NULL,
    auto_accept BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_synced_at TIMESTAMP,
    UNIQUE (relationship_id, group_id)
);
CREATE INDEX group_bindings_by_group ON group_bindings (group_id);

-- Removals held for an admin's confirmation (too many at once).
CREATE TABLE sync_holds (
    id TEXT PRIMARY KEY NOT NULL,
    relationship_id TEXT NOT NULL REFERENCES relationships(id) ON DELETE CASCADE,
    -- JSON list of {"user_id", "source"}.
    removals TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- held | confirmed | discarded
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    decided_by TEXT
);
CREATE INDEX sync_holds_by_relationship ON sync_holds (relationship_id, status);

ALTER TABLE relationships ADD COLUMN last_synced_at TIMESTAMP;
