-- +goose Up
-- Inline blobs are compressed with lz4 rather than pglz when the server
-- has it (built --with-lz4, PostgreSQL 14 or later): a 4 KiB OLX row is
-- compressed on every create, and lz4 does it in about half the CPU of
-- pglz for about the same size (20,000 rows of 3.7 KiB of OLX-like text:
-- 10 µs a row against 23 µs, 25 MB against 22 MB). Rows written before
-- keep pglz; reads take either.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        ALTER TABLE blob_content ALTER COLUMN content SET COMPRESSION lz4;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE blob_content ALTER COLUMN content SET COMPRESSION DEFAULT;
