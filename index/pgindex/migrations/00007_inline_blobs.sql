-- +goose Up
-- Inline blobs: the bytes of small blobs (OLX) kept in the index rather
-- than the blob store, so that a unit commit is one transaction and an OLX
-- read one query. blobs.inline says where a live blob's bytes are; the
-- bytes go with their registry row (ON DELETE CASCADE: the sweep's forget).
-- A table of its own keeps the registry's rows narrow for the sweep's scans
-- and its lease updates from rewriting the bytes.
ALTER TABLE blobs ADD COLUMN inline boolean NOT NULL DEFAULT false;

CREATE TABLE blob_content (
    hash    bytea PRIMARY KEY REFERENCES blobs (hash) ON DELETE CASCADE,
    content bytea NOT NULL
);

-- +goose Down
DROP TABLE blob_content;
ALTER TABLE blobs DROP COLUMN inline;
