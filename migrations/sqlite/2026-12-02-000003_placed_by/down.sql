DROP INDEX users_placed_by;
ALTER TABLE users DROP COLUMN placed_by;
