package refs

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// CreateCollection creates a collection at version 1.
func (s *Service) CreateCollection(ctx context.Context, c index.NewCollection, req Request[index.Collection]) (Answer, error) {
	f := c.CollectionFields
	if err := checkTexts("name", f.Name, "description", f.Description, "owner", f.Owner, "author", f.Author, "license", f.License); err != nil {
		return Answer{}, err
	}
	op := &writeOp[index.Collection]{req: req, body: bodyHash(req.Body)}
	op.apply = func(tx index.Tx) (index.Collection, bool, error) {
		col, err := tx.CreateCollection(c)
		if err != nil {
			return col, false, fmt.Errorf("refs: create collection: %w", err)
		}
		return col, true, nil
	}
	return commit(ctx, s, op)
}

// UpdateCollection adds a version with the fields of p changed. A patch
// that changes nothing creates nothing and returns the latest version.
func (s *Service) UpdateCollection(ctx context.Context, id uuid.UUID, p index.CollectionPatch) (index.Collection, error) {
	if err := checkTexts("name", p.Name, "description", p.Description, "owner", p.Owner, "author", p.Author, "license", p.License); err != nil {
		return index.Collection{}, err
	}
	var out index.Collection
	err := s.update(ctx, func(tx index.Tx) error {
		c, _, err := tx.UpdateCollection(id, p)
		out = c
		return err
	})
	if err != nil {
		return index.Collection{}, fmt.Errorf("refs: update collection %s: %w", id, err)
	}
	return out, nil
}

// DeleteCollection deletes a collection; see index.Tx.DeleteCollection.
func (s *Service) DeleteCollection(ctx context.Context, id uuid.UUID, recursive bool) error {
	err := s.update(ctx, func(tx index.Tx) error {
		return tx.DeleteCollection(id, recursive)
	})
	if err != nil {
		return fmt.Errorf("refs: delete collection %s: %w", id, err)
	}
	return nil
}

// Collection returns version n of a collection (0: the latest).
func (s *Service) Collection(ctx context.Context, id uuid.UUID, n int64) (index.Collection, error) {
	c, err := s.idx.Collection(ctx, id, n)
	if err != nil {
		return index.Collection{}, fmt.Errorf("refs: read collection %s: %w", index.Ref{ID: id, Version: n}, err)
	}
	return c, nil
}

// Collections lists collections, latest version of each.
func (s *Service) Collections(ctx context.Context, opt index.ListOptions) (index.Page[index.Collection], error) {
	p, err := s.idx.Collections(ctx, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list collections: %w", err)
	}
	return p, nil
}

// CollectionVersions lists the versions of a collection, newest first.
func (s *Service) CollectionVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	p, err := s.idx.CollectionVersions(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list versions of collection %s: %w", id, err)
	}
	return p, nil
}

// CollectionUnits lists the units of a collection, latest version of each.
func (s *Service) CollectionUnits(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	if err := checkFilter(opt); err != nil {
		return index.Page[index.Unit]{}, err
	}
	p, err := s.idx.Units(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list units of collection %s: %w", id, err)
	}
	return p, nil
}

// CollectionAssets lists the assets of a collection, latest version of each.
func (s *Service) CollectionAssets(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	if err := checkFilter(opt); err != nil {
		return index.Page[index.Asset]{}, err
	}
	p, err := s.idx.Assets(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list assets of collection %s: %w", id, err)
	}
	return p, nil
}
