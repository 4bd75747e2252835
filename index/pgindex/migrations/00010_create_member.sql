-- +goose Up
-- blockstore_create_member creates a unit or an asset (at version 1, or
-- draft-only) in one call: the statements that createMember used to send
-- one by one (write.go), each of which cost the backend a bind, a plan-cache
-- lookup and an executor start-up, now run inside one function. It does, in
-- this order and with the same locks:
--
--   1. with p_content: the inline blob's registry row and bytes (the
--      statement of inline.go's sqlPutInline);
--   2. the collection's row FOR KEY SHARE, the blob's registry row FOR
--      SHARE, the link targets' rows FOR KEY SHARE in id order;
--   3. when the collection is not one (status 1), a target is missing or
--      not of the kind the writer gave (status 3: found_ids and found_kinds
--      are what was locked, for the caller to name the error), or the blob
--      is not live (status 2: blob_state, NULL when absent), it returns
--      having written nothing more;
--   4. otherwise it claims p_names (blockstore_claim_name's rule: BSN01 with
--      the holder in DETAIL; the holder is read only when the insert did
--      not claim the name), inserts the entity, stores the unit's link set
--      (blockstore_store_link_set's rule, 40001 when the set is dropped
--      while being stored), marks its assets ever linked, and inserts the
--      version; status 0, and size is the blob's.
--
-- p_lock_ids are the distinct link targets in uuid order and p_lock_kinds
-- the kinds the writer gave them, p_assets those of kind asset; p_targets,
-- p_kinds and p_pins are the normalized links, in order (the link set's
-- members).
-- +goose StatementBegin
CREATE FUNCTION blockstore_create_member(p_id uuid, p_kind smallint, p_collection uuid, p_now timestamptz,
    p_draft boolean, p_gc boolean, p_name text, p_names text[], p_hash bytea, p_media_type text,
    p_link_set bytea, p_targets uuid[], p_kinds smallint[], p_pins bigint[],
    p_lock_ids uuid[], p_lock_kinds smallint[], p_assets uuid[], p_content bytea, p_content_at timestamptz,
    OUT status smallint, OUT blob_state smallint, OUT size bigint, OUT found_ids uuid[], OUT found_kinds smallint[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_coll_kind smallint;
    v_assets_linked boolean;
    v_name text;
    v_holder uuid;
BEGIN
    status := 0;
    IF p_content IS NOT NULL THEN
        WITH ins AS (
            INSERT INTO blobs (hash, size, state, created_at, leased_at, inline)
            VALUES (p_hash, length(p_content), 2, p_content_at, p_content_at, true)
            ON CONFLICT (hash) DO NOTHING
            RETURNING hash
        ), upd AS (
            UPDATE blobs SET state = 2, size = length(p_content), leased_at = p_content_at, inline = true
            WHERE hash = p_hash AND state = 1 AND NOT EXISTS (SELECT 1 FROM ins)
            RETURNING hash
        )
        INSERT INTO blob_content (hash, content)
        SELECT hash, p_content FROM ins UNION ALL SELECT hash, p_content FROM upd
        ON CONFLICT (hash) DO NOTHING;
    END IF;

    -- The three locking reads in one statement (one executor start-up):
    -- the nested loop runs them in this order.
    SELECT c.kind, b.state, b.size, t.ids, t.kinds, t.linked
    INTO v_coll_kind, blob_state, size, found_ids, found_kinds, v_assets_linked
    FROM (VALUES (1)) one
    LEFT JOIN LATERAL (SELECT e.kind FROM entities e WHERE e.id = p_collection FOR KEY SHARE) c ON true
    LEFT JOIN LATERAL (SELECT x.state, x.size FROM blobs x WHERE x.hash = p_hash FOR SHARE) b ON true
    LEFT JOIN LATERAL (
        SELECT array_agg(l.id ORDER BY l.id) AS ids, array_agg(l.kind ORDER BY l.id) AS kinds,
            bool_and(l.ever_linked OR l.kind <> 3) AS linked
        FROM (SELECT e.id, e.kind, e.ever_linked FROM entities e WHERE e.id = ANY(p_lock_ids) ORDER BY e.id FOR KEY SHARE) l
    ) t ON true;
    IF v_coll_kind IS DISTINCT FROM 1 THEN
        status := 1;
        RETURN;
    END IF;
    IF cardinality(p_lock_ids) > 0 AND (found_ids IS DISTINCT FROM p_lock_ids OR found_kinds IS DISTINCT FROM p_lock_kinds) THEN
        status := 3;
        RETURN;
    END IF;
    IF blob_state IS DISTINCT FROM 2 THEN
        status := 2;
        RETURN;
    END IF;

    FOREACH v_name IN ARRAY p_names LOOP
        v_holder := NULL;
        FOR attempt IN 1..3 LOOP
            INSERT INTO names (collection, name, entity) VALUES (p_collection, v_name, p_id) ON CONFLICT DO NOTHING;
            IF FOUND THEN
                -- Claimed (a new entity held none of its names before).
                v_holder := p_id;
                EXIT;
            END IF;
            SELECT n.entity INTO v_holder FROM names n WHERE n.collection = p_collection AND n.name = v_name;
            EXIT WHEN v_holder IS NOT NULL;
        END LOOP;
        IF v_holder IS DISTINCT FROM p_id THEN
            RAISE EXCEPTION 'name is taken' USING ERRCODE = 'BSN01',
                DETAIL = json_build_object('collection', p_collection, 'name', v_name, 'holder', v_holder)::text;
        END IF;
    END LOOP;

    INSERT INTO entities (id, kind, collection, created_at, latest, latest_links, draft_links, gc)
    VALUES (p_id, p_kind, p_collection, p_now, CASE WHEN p_draft THEN 0 ELSE 1 END,
        CASE WHEN p_draft THEN NULL ELSE p_link_set END, CASE WHEN p_draft THEN p_link_set END, p_gc);

    IF p_link_set IS NOT NULL THEN
        PERFORM 1 FROM link_sets WHERE id = p_link_set FOR KEY SHARE;
        IF NOT FOUND THEN
            INSERT INTO link_sets (id, size) VALUES (p_link_set, cardinality(p_targets)) ON CONFLICT (id) DO NOTHING;
            IF FOUND THEN
                INSERT INTO link_set_members (set_id, position, target, kind, pin)
                SELECT p_link_set, m.position, m.target, m.kind, m.pin
                FROM unnest(p_targets, p_kinds, p_pins) WITH ORDINALITY AS m(target, kind, pin, position);
            ELSE
                PERFORM 1 FROM link_sets WHERE id = p_link_set FOR KEY SHARE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'link set was dropped while being stored' USING ERRCODE = '40001';
                END IF;
            END IF;
        END IF;
        -- Only when an asset is not marked yet (the locking read above saw
        -- the latest committed row): in the steady state every target is,
        -- and the statement is skipped. No "kind = 3" (the kinds were
        -- checked above): with it, the generic plan made while the table
        -- was small may scan all of entities_list for the kind.
        IF NOT v_assets_linked THEN
            UPDATE entities SET ever_linked = true WHERE id = ANY(p_assets) AND NOT ever_linked;
        END IF;
    END IF;

    INSERT INTO versions (entity, version, created_at, garbage_collect, name, hash, size, link_set, media_type)
    VALUES (p_id, CASE WHEN p_draft THEN NULL ELSE 1 END, p_now, p_gc, p_name, p_hash, size, p_link_set, p_media_type);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION blockstore_create_member(uuid, smallint, uuid, timestamptz, boolean, boolean, text, text[], bytea, text,
    bytea, uuid[], smallint[], bigint[], uuid[], smallint[], uuid[], bytea, timestamptz);
