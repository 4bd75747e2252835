-- +goose Up
-- The store id that binds this index to its blob store (DESIGN.md,
-- invariant 6): at most one row, written at first use and compared with the
-- id recorded in the blob store every time a process opens both.
CREATE TABLE store_identity (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    store_id  text        NOT NULL CHECK (store_id <> ''),
    bound_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE store_identity;
