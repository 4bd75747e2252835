package pgindex

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

var _ index.Identity = (*Store)(nil)

// StoreID implements index.Identity: the one row of store_identity.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	err := s.query(ctx, func(r pgx.Rows) error { return r.Scan(&id) }, `SELECT store_id FROM store_identity`)
	if err != nil {
		return "", s.wrap("read store id", err)
	}
	return id, nil
}

// BindStoreID implements index.Identity. The primary key on a constant
// column makes the first insert win when replicas bind at once.
func (s *Store) BindStoreID(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", errors.New("pgindex: bind store id: empty id")
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO store_identity (store_id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`, id)
	if err := s.run(ctx, b); err != nil {
		return "", s.wrap("bind store id", err)
	}
	return s.StoreID(ctx)
}

// ReplaceStoreID implements index.Identity.
func (s *Store) ReplaceStoreID(ctx context.Context, id string) error {
	b := &pgx.Batch{}
	if id == "" {
		b.Queue(`DELETE FROM store_identity`)
	} else {
		b.Queue(`INSERT INTO store_identity (store_id) VALUES ($1)
			ON CONFLICT (singleton) DO UPDATE SET store_id = excluded.store_id, bound_at = now()`, id)
	}
	return s.wrap("replace store id", s.run(ctx, b))
}

// Fresh reports, without migrating or writing anything, whether the
// database at url has never held a Blockstore index: no table of the
// schema exists. A process checks the store binding against a fresh index
// before Open migrates it, so that a wrong URL leaves the database as it was.
func Fresh(ctx context.Context, url string) (bool, error) {
	cfg, err := parseConfig(url)
	if err != nil {
		return false, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return false, redact(fmt.Errorf("pgindex: connect: %w", translate(err)), cfg.ConnConfig.Password)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('blobs') IS NOT NULL OR to_regclass('entities') IS NOT NULL`).Scan(&exists); err != nil {
		return false, redact(fmt.Errorf("pgindex: look for the schema: %w", translate(err)), cfg.ConnConfig.Password)
	}
	return !exists, nil
}
