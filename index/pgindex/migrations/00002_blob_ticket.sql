-- +goose Up
-- The ticket of a pending row's registration: FinishBlob makes the row live
-- only under it (index.Ticket).
ALTER TABLE blobs ADD COLUMN ticket bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE blobs DROP COLUMN ticket;
