-- +goose Up
-- blockstore_claim_name claims a name in a collection for an entity, or
-- fails with SQLSTATE BSN01 when another entity holds it, the collection,
-- name and holder in DETAIL (JSON). The INSERT waits for a concurrent
-- claimant of the same name to end; the holder is then read in a statement
-- of its own (a volatile function's statements each take a fresh
-- snapshot). Failing rather than answering lets the claim go out with the
-- transaction's other writes and COMMIT: a taken name turns the COMMIT
-- into a rollback, and nothing the request wrote stays.
-- +goose StatementBegin
CREATE FUNCTION blockstore_claim_name(p_collection uuid, p_name text, p_entity uuid)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_holder uuid;
BEGIN
    FOR attempt IN 1..3 LOOP
        INSERT INTO names (collection, name, entity) VALUES (p_collection, p_name, p_entity) ON CONFLICT DO NOTHING;
        SELECT entity INTO v_holder FROM names WHERE collection = p_collection AND name = p_name;
        IF v_holder = p_entity THEN
            RETURN;
        END IF;
        -- Held by another entity; or let go between the two statements:
        -- claim again.
        EXIT WHEN v_holder IS NOT NULL;
    END LOOP;
    RAISE EXCEPTION 'name is taken' USING ERRCODE = 'BSN01',
        DETAIL = json_build_object('collection', p_collection, 'name', p_name, 'holder', v_holder)::text;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION blockstore_claim_name(uuid, text, uuid);
