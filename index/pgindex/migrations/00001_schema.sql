-- The index schema. Migrations are numbered and append-only: never edit a
-- file that has been released, add the next number instead. doc.go explains
-- every table and the locks that keep its rules under concurrent writers.

-- +goose Up

-- One row per entity (collection, unit or asset): its kind forever, and the
-- state that writers lock and update to number versions.
CREATE TABLE entities (
    id               uuid        PRIMARY KEY,
    kind             smallint    NOT NULL CHECK (kind IN (1, 2, 3)),
    -- The collection of a unit or an asset; NULL for a collection.
    collection       uuid        REFERENCES entities (id),
    -- created_at of the first version (a draft included); lists order by it.
    created_at       timestamptz NOT NULL,
    -- The highest published version number; 0 while the entity is draft-only.
    latest           bigint      NOT NULL DEFAULT 0 CHECK (latest >= 0),
    -- The link sets of the latest published version and of the draft (units):
    -- the edges of the link graph for cycle checks, deletion checks, LinkedBy.
    latest_links     bytea,
    draft_links      bytea,
    -- garbage_collect of the most recently written of the latest published
    -- version and the draft (retention follows it).
    gc               boolean     NOT NULL,
    -- Orphan tracking (assets): some unit version linked it once; the last
    -- time a unit version or draft that linked it went away.
    ever_linked      boolean     NOT NULL DEFAULT false,
    last_unlinked_at timestamptz,
    CHECK ((kind = 1) = (collection IS NULL))
) WITH (fillfactor = 80);

-- Lists: collections (collection IS NULL), units and assets of a collection,
-- in creation order, by keyset.
CREATE INDEX entities_list ON entities (collection, kind, created_at, id);
-- Reverse edges: which units' latest version or draft uses a link set.
CREATE INDEX entities_latest_links ON entities (latest_links) WHERE latest_links IS NOT NULL;
CREATE INDEX entities_draft_links ON entities (draft_links) WHERE draft_links IS NOT NULL;
-- Orphan candidates.
CREATE INDEX entities_unlinked ON entities (last_unlinked_at) WHERE kind = 3 AND ever_linked;

-- Every stored version of every kind; version NULL is the draft. Columns
-- that a kind does not have are NULL (hash, size: units and assets;
-- link_set: units; media_type: assets; description, owner, author, license:
-- collections).
CREATE TABLE versions (
    entity          uuid        NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    version         bigint      CHECK (version > 0),
    created_at      timestamptz NOT NULL,
    -- created_at of the next published version, set when that one is stored.
    superseded_at   timestamptz,
    garbage_collect boolean     NOT NULL,
    name            text        NOT NULL DEFAULT '',
    hash            bytea       CHECK (hash IS NULL OR length(hash) = 32),
    size            bigint,
    link_set        bytea,
    media_type      text,
    description     text,
    owner           text,
    author          text,
    license         text,
    CONSTRAINT versions_published UNIQUE (entity, version)
) WITH (fillfactor = 90);

-- At most one draft per entity.
CREATE UNIQUE INDEX versions_one_draft ON versions (entity) WHERE version IS NULL;
-- ReferencedHashes (an ordered index-only scan) and the claim check.
CREATE INDEX versions_hash ON versions (hash) WHERE hash IS NOT NULL;
-- Which stored versions use a link set (orphans, pins, link-set cleanup).
CREATE INDEX versions_link_set ON versions (link_set) WHERE link_set IS NOT NULL;

-- A normalized link set, stored once per content (index.LinkSetID).
CREATE TABLE link_sets (
    id   bytea   PRIMARY KEY CHECK (length(id) = 32),
    size integer NOT NULL
);

CREATE TABLE link_set_members (
    set_id   bytea    NOT NULL REFERENCES link_sets (id) ON DELETE CASCADE,
    position integer  NOT NULL,
    target   uuid     NOT NULL, -- no foreign key: old versions may link deleted entities
    kind     smallint NOT NULL CHECK (kind IN (2, 3)),
    pin      bigint   NOT NULL DEFAULT 0 CHECK (pin >= 0),
    PRIMARY KEY (set_id, position)
);

-- The reverse index: which sets link a target (pinned to a version).
CREATE INDEX link_set_members_target ON link_set_members (target, pin, set_id);

-- blockstore_store_link_set stores a link set unless it is stored already,
-- and either way leaves its row locked FOR KEY SHARE until the transaction
-- ends, so that the cleanup (which locks candidates FOR UPDATE, then drops
-- those no version uses) cannot drop it before the version that uses it is
-- committed. A set dropped between the two looks is a serialization failure
-- (40001): the transaction runs again. VOLATILE: each statement sees the
-- latest commits.
-- +goose StatementBegin
CREATE FUNCTION blockstore_store_link_set(p_id bytea, p_size integer, p_targets uuid[], p_kinds smallint[], p_pins bigint[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM link_sets WHERE id = p_id FOR KEY SHARE;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO link_sets (id, size) VALUES (p_id, p_size) ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN
        INSERT INTO link_set_members (set_id, position, target, kind, pin)
        SELECT p_id, m.position, m.target, m.kind, m.pin
        FROM unnest(p_targets, p_kinds, p_pins) WITH ORDINALITY AS m(target, kind, pin, position);
        RETURN;
    END IF;
    -- Another transaction stored it meanwhile: lock what it committed.
    PERFORM 1 FROM link_sets WHERE id = p_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'link set was dropped while being stored' USING ERRCODE = '40001';
    END IF;
END
$$;
-- +goose StatementEnd

-- Names in use: the names of every entity's latest published version and
-- draft, unique per collection across units and assets together.
CREATE TABLE names (
    collection uuid NOT NULL,
    name       text NOT NULL CHECK (name <> ''),
    -- Deferred: a writer claims a name before it inserts a new entity, so
    -- that a taken name leaves nothing behind.
    entity     uuid NOT NULL REFERENCES entities (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (collection, name)
);

CREATE INDEX names_entity ON names (entity);

-- The blob registry. state: 1 pending, 2 live, 3 deleting (index.BlobState).
CREATE TABLE blobs (
    hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
    size       bigint      NOT NULL,
    state      smallint    NOT NULL CHECK (state IN (1, 2, 3)),
    created_at timestamptz NOT NULL,
    leased_at  timestamptz NOT NULL
) WITH (fillfactor = 80);

CREATE INDEX blobs_deleting ON blobs (hash) WHERE state = 3;

-- Answers to creating requests, replayed for retries with the same key.
-- key is bytea: scoped keys hold a NUL between method/path and the client's key.
CREATE TABLE idempotency (
    key         bytea       PRIMARY KEY,
    fingerprint bytea       NOT NULL,
    status      integer     NOT NULL,
    body        bytea       NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE INDEX idempotency_expires ON idempotency (expires_at);

-- Reports of GC sweeps, kept as the JSON the API serves.
CREATE TABLE gc_runs (
    id         text        PRIMARY KEY,
    started_at timestamptz NOT NULL,
    report     bytea       NOT NULL
);

CREATE INDEX gc_runs_started ON gc_runs (started_at DESC, id DESC);

-- +goose Down
DROP FUNCTION blockstore_store_link_set(bytea, integer, uuid[], smallint[], bigint[]);
DROP TABLE gc_runs;
DROP TABLE idempotency;
DROP TABLE blobs;
DROP TABLE names;
DROP TABLE link_set_members;
DROP TABLE link_sets;
DROP TABLE versions;
DROP TABLE entities;
