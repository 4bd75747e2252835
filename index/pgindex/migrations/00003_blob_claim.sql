-- +goose Up
-- The sweep that holds a deleting row and when it took it, on the database's
-- clock: a later sweep takes the row over (and deletes its bytes) only once
-- the delete bound has passed since then, so that no delete of the first
-- sweep can still be in flight (package gc, "Fenced deletes"). Rows left
-- deleting before this migration count as claimed now.
ALTER TABLE blobs ADD COLUMN claimed_by text NOT NULL DEFAULT '';
ALTER TABLE blobs ADD COLUMN claimed_at timestamptz;
UPDATE blobs SET claimed_at = clock_timestamp() WHERE state = 3;

-- +goose Down
ALTER TABLE blobs DROP COLUMN claimed_at;
ALTER TABLE blobs DROP COLUMN claimed_by;
