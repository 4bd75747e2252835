-- +goose Up
-- Which store this index was copied from (blockstore copy): at most one
-- row, written before a copy sends anything, so that a later run resumes
-- or refreshes the same copy and a copy from another source is refused.
CREATE TABLE copy_source (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    source      text        NOT NULL CHECK (source <> ''),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE copy_source;
