ALTER TABLE relationships DROP COLUMN last_synced_at;
DROP TABLE sync_holds;
DROP TABLE group_bindings;
