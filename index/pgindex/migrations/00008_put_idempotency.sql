-- +goose Up
-- blockstore_put_idempotency stores the record of a creating request, or
-- replaces an expired one under its key, and fails with SQLSTATE BSK01
-- when a live record holds the key (a concurrent request with the same key
-- committed first; a concurrent one in progress is waited for). Failing
-- rather than answering lets the statement go out with COMMIT in the
-- transaction's last round trip: the failure turns the COMMIT into a
-- rollback, and nothing the request wrote stays.
-- +goose StatementBegin
CREATE FUNCTION blockstore_put_idempotency(p_key bytea, p_fingerprint bytea, p_status integer, p_body bytea,
    p_expires_at timestamptz, p_now timestamptz)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO idempotency (key, fingerprint, status, body, expires_at)
    VALUES (p_key, p_fingerprint, p_status, p_body, p_expires_at)
    ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
        body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
    WHERE idempotency.expires_at <= p_now;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'idempotency key already used' USING ERRCODE = 'BSK01';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION blockstore_put_idempotency(bytea, bytea, integer, bytea, timestamptz, timestamptz);
