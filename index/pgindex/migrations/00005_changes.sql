-- +goose Up
-- The change feed (changes.go explains the order and why it holds).
-- xid is the writing transaction's id (pg_current_xact_id(), assigned once
-- per transaction); seq orders the changes of one transaction. The feed is
-- served in (xid, seq) order, only below the reader's snapshot xmin.
CREATE TABLE changes (
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    kind       smallint    NOT NULL CHECK (kind IN (1, 2, 3)),
    entity     uuid        NOT NULL,
    collection uuid        NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 0),
    event      smallint    NOT NULL CHECK (event BETWEEN 1 AND 6),
    at         timestamptz NOT NULL,
    PRIMARY KEY (xid, seq)
);

-- Followers of one collection.
CREATE INDEX changes_collection ON changes (collection, xid, seq);

-- The last position pruned: a cursor before it is gone. One row.
CREATE TABLE changes_pruned (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    xid  xid8    NOT NULL,
    seq  bigint  NOT NULL
);
INSERT INTO changes_pruned (xid, seq) VALUES ('0', 0);

-- +goose Down
DROP TABLE changes_pruned;
DROP TABLE changes;
