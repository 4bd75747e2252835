package refs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// NewUnit is the first version (or, with Draft, the first draft) of a unit.
type NewUnit struct {
	Collection     uuid.UUID
	Name           string // "" for none
	OLX            []byte
	Links          []index.Link
	GarbageCollect bool
	Draft          bool
}

// UnitChange is a new version or a draft of a unit. Nil fields keep the
// value of the base version (see index.UnitChange); OLX too.
type UnitChange struct {
	OLX            *[]byte
	Name           *string
	Links          *[]index.Link // a pointer to an empty slice removes all links
	GarbageCollect *bool
}

// CreateUnit stores the OLX, then creates the unit at version 1 (or its
// draft).
func (s *Service) CreateUnit(ctx context.Context, u NewUnit, req Request[index.Unit]) (Answer, error) {
	if err := checkText("name", u.Name); err != nil {
		return Answer{}, err
	}
	op := unitOp(req)
	h := cas.Sum(u.OLX)
	inline := s.inlines(len(u.OLX))
	if err := s.prepareOLX(ctx, op, h, u.OLX, inline); err != nil {
		return Answer{}, err
	}
	op.apply = func(tx index.Tx) (index.Unit, bool, error) {
		if inline {
			if err := putInline(tx, h, u.OLX); err != nil {
				return index.Unit{}, false, err
			}
		}
		unit, err := tx.CreateUnit(index.NewUnit{
			Collection:     u.Collection,
			Name:           u.Name,
			Hash:           h,
			Links:          u.Links,
			GarbageCollect: u.GarbageCollect,
			Draft:          u.Draft,
		})
		if err != nil {
			return unit, false, fmt.Errorf("refs: create unit in collection %s: %w", u.Collection, err)
		}
		return unit, true, nil
	}
	return s.commitOLX(ctx, op, inline, h, u.OLX)
}

// CommitUnit adds the next published version of a unit. A version identical
// to the latest creates nothing (Render is told created false).
func (s *Service) CommitUnit(ctx context.Context, id uuid.UUID, c UnitChange, req Request[index.Unit]) (Answer, error) {
	return s.commitUnit(ctx, id, c, false, req)
}

// PutUnitDraft creates or replaces the draft of a unit.
func (s *Service) PutUnitDraft(ctx context.Context, id uuid.UUID, c UnitChange) (index.Unit, error) {
	var out index.Unit
	_, err := s.commitUnit(ctx, id, c, true, Request[index.Unit]{Render: keep(&out)})
	return out, err
}

func (s *Service) commitUnit(ctx context.Context, id uuid.UUID, c UnitChange, draft bool, req Request[index.Unit]) (Answer, error) {
	if err := checkTexts("name", c.Name); err != nil {
		return Answer{}, err
	}
	op := unitOp(req)
	var (
		h      cas.Hash
		inline bool
	)
	if c.OLX != nil {
		olx := *c.OLX
		h = cas.Sum(olx)
		inline = s.inlines(len(olx))
		if err := s.prepareOLX(ctx, op, h, olx, inline); err != nil {
			return Answer{}, err
		}
	}
	op.apply = func(tx index.Tx) (index.Unit, bool, error) {
		ch := index.UnitChange{Hash: h, Name: c.Name, Links: c.Links, GarbageCollect: c.GarbageCollect}
		if inline {
			if err := putInline(tx, h, *c.OLX); err != nil {
				return index.Unit{}, false, err
			}
		}
		if c.OLX == nil {
			base, err := baseUnit(ctx, tx, id, draft)
			if err != nil {
				return index.Unit{}, false, fmt.Errorf("refs: commit unit %s: %w", id, err)
			}
			ch.Hash = base.Hash
		}
		u, created, err := tx.CommitUnit(id, ch, draft)
		if err != nil {
			return u, false, fmt.Errorf("refs: commit unit %s: %w", id, err)
		}
		return u, created, nil
	}
	if inline {
		return s.commitOLX(ctx, op, true, h, *c.OLX)
	}
	return commit(ctx, s, op)
}

// unitOp is the op of a unit write. It does not look for its key's record
// before the transaction, nor in it (checked): a retry whose first attempt
// committed finds the record when PutIdempotency refuses the key, or when
// the write itself fails (its name taken by that first attempt), and
// commit answers it with the stored answer, or ErrKeyReused; the
// transaction that found it writes nothing. Every other keyed unit write,
// nearly all of them, saves a read of a record that is not there: a point
// read of a missing key through Pebble's memtables and tables, or a round
// trip to PostgreSQL. The OLX a retry stores again before its transaction
// is the same bytes.
func unitOp(req Request[index.Unit]) *writeOp[index.Unit] {
	return &writeOp[index.Unit]{req: req, body: bodyHash(req.Body), checked: true}
}

// prepareOLX readies the OLX of a commit: inline, nothing is written before
// the transaction (which writes the bytes) and a sweep deleting the same
// bytes is waited out; otherwise the bytes are stored in the blob store
// first, and again should a sweep take them before the commit.
func (s *Service) prepareOLX(ctx context.Context, op *writeOp[index.Unit], h cas.Hash, olx []byte, inline bool) error {
	if inline {
		op.restore = func(ctx context.Context) error { return s.awaitForgotten(ctx, h) }
		return nil
	}
	op.restore = func(ctx context.Context) error { return s.storeBytes(ctx, h, olx) }
	return op.restore(ctx)
}

// commitOLX commits op and, when the OLX went inline with it, keeps the
// bytes in the cache as storeBytes does for the blob store.
func (s *Service) commitOLX(ctx context.Context, op *writeOp[index.Unit], inline bool, h cas.Hash, olx []byte) (Answer, error) {
	ans, err := commit(ctx, s, op)
	if err == nil && inline && !ans.Replayed {
		s.cache.add(h, olx)
	}
	return ans, err
}

// baseUnit returns the version whose values a change keeps (index.doc.go,
// "Base version").
func baseUnit(ctx context.Context, tx index.Tx, id uuid.UUID, draft bool) (index.Unit, error) {
	if draft {
		u, err := tx.Unit(ctx, index.Ref{ID: id, Draft: true})
		if !errors.Is(err, index.ErrNotFound) {
			return u, err
		}
	}
	u, err := tx.Unit(ctx, index.Latest(id))
	if !draft && errors.Is(err, index.ErrNotFound) {
		return tx.Unit(ctx, index.Ref{ID: id, Draft: true})
	}
	return u, err
}

// PublishUnitDraft turns the draft of a unit into its next version;
// index.ErrNotFound when there is no draft.
func (s *Service) PublishUnitDraft(ctx context.Context, id uuid.UUID, req Request[index.Unit]) (Answer, error) {
	op := &writeOp[index.Unit]{req: req, body: bodyHash(req.Body)}
	op.apply = func(tx index.Tx) (index.Unit, bool, error) {
		u, err := tx.PublishUnitDraft(id)
		if err != nil {
			return u, false, fmt.Errorf("refs: publish draft of unit %s: %w", id, err)
		}
		return u, true, nil
	}
	return commit(ctx, s, op)
}

// DeleteUnitDraft deletes the draft of a unit; index.ErrNotFound when there
// is none.
func (s *Service) DeleteUnitDraft(ctx context.Context, id uuid.UUID) error {
	err := s.update(ctx, func(tx index.Tx) error { return tx.DeleteUnitDraft(id) })
	if err != nil {
		return fmt.Errorf("refs: delete draft of unit %s: %w", id, err)
	}
	return nil
}

// DeleteUnit deletes a unit with all its versions; index.ErrNotFound when
// id is not a unit.
func (s *Service) DeleteUnit(ctx context.Context, id uuid.UUID) error {
	return s.deleteEntity(ctx, index.KindUnit, id)
}

func (s *Service) deleteEntity(ctx context.Context, kind index.Kind, id uuid.UUID) error {
	err := s.update(ctx, func(tx index.Tx) error {
		k, err := tx.Kind(ctx, id)
		if err != nil {
			return err
		}
		if k != kind {
			return fmt.Errorf("%s is a %s: %w", id, k, index.ErrNotFound)
		}
		return tx.DeleteEntity(id)
	})
	if err != nil {
		return fmt.Errorf("refs: delete %s %s: %w", kind, id, err)
	}
	return nil
}

// Unit returns the version of a unit that ref names.
func (s *Service) Unit(ctx context.Context, ref index.Ref) (index.Unit, error) {
	u, err := s.idx.Unit(ctx, ref)
	if err != nil {
		return u, fmt.Errorf("refs: read unit %s: %w", ref, err)
	}
	return u, nil
}

// UnitWithLinks returns the version of a unit that ref names and what each
// of its links resolves to (Kind 0 where the target has no such version).
func (s *Service) UnitWithLinks(ctx context.Context, ref index.Ref) (index.Unit, []index.Entity, error) {
	u, err := s.Unit(ctx, ref)
	if err != nil {
		return u, nil, err
	}
	targets, err := s.ResolveLinks(ctx, u.Links)
	return u, targets, err
}

// ResolveLinks returns what each link resolves to: the pinned version, or
// the target's latest published version; Kind 0 where there is none.
func (s *Service) ResolveLinks(ctx context.Context, links []index.Link) ([]index.Entity, error) {
	if len(links) == 0 {
		return nil, nil
	}
	refs := make([]index.Ref, len(links))
	for i, l := range links {
		refs[i] = index.Ref{ID: l.Target, Version: l.Version}
	}
	out, err := s.idx.Lookup(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("refs: resolve %d links: %w", len(links), err)
	}
	for i := range out {
		if k := out[i].Kind; k != index.KindUnit && k != index.KindAsset {
			out[i] = index.Entity{}
		}
	}
	return out, nil
}

// UnitOLX returns the version of a unit that ref names and its OLX.
func (s *Service) UnitOLX(ctx context.Context, ref index.Ref) (index.Unit, []byte, error) {
	if s.latest == nil || ref != index.Latest(ref.ID) {
		return s.unitOLX(ctx, ref)
	}
	since, began := s.latest.begin(), time.Now()
	if u, b, ok := s.cachedUnitOLX(ctx, ref); ok {
		return u, b, nil
	}
	u, b, err := s.unitOLX(ctx, ref)
	if err == nil {
		s.cache.add(u.Hash, b)
		s.latest.put(u, since, began)
	}
	return u, b, err
}

func (s *Service) unitOLX(ctx context.Context, ref index.Ref) (index.Unit, []byte, error) {
	if s.inline != nil {
		// One index read answers the unit and, when inline, its bytes.
		u, b, err := s.inline.UnitInline(ctx, ref)
		if err != nil {
			return u, nil, fmt.Errorf("refs: read unit %s: %w", ref, err)
		}
		if b != nil {
			return u, b, nil
		}
		b, err = s.storedBytes(ctx, u.Hash, u.Size)
		if err != nil {
			return u, nil, fmt.Errorf("refs: OLX of unit %s: %w", ref, err)
		}
		return u, b, nil
	}
	u, err := s.Unit(ctx, ref)
	if err != nil {
		return u, nil, err
	}
	b, err := s.blobBytes(ctx, u.Hash, u.Size)
	if err != nil {
		return u, nil, fmt.Errorf("refs: OLX of unit %s: %w", ref, err)
	}
	return u, b, nil
}

// UnitVersions lists the versions of a unit, newest first.
func (s *Service) UnitVersions(ctx context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	p, err := s.idx.UnitVersions(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: list versions of unit %s: %w", id, err)
	}
	return p, nil
}

// LinkedBy lists the units whose latest published version links to the
// entity id of the given kind; index.ErrNotFound when id is of another kind.
func (s *Service) LinkedBy(ctx context.Context, kind index.Kind, id uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	k, err := s.idx.Kind(ctx, id)
	if err == nil && k != kind {
		err = fmt.Errorf("%s is a %s: %w", id, k, index.ErrNotFound)
	}
	if err != nil {
		return index.Page[index.LinkingUnit]{}, fmt.Errorf("refs: units linking to %s %s: %w", kind, id, err)
	}
	p, err := s.idx.LinkedBy(ctx, id, opt)
	if err != nil {
		return p, fmt.Errorf("refs: units linking to %s %s: %w", kind, id, err)
	}
	return p, nil
}

// keep returns a Render that records the result in *out (writes that answer
// with the object itself rather than stored bytes).
func keep[T any](out *T) func(T, bool) (int, []byte, error) {
	return func(v T, _ bool) (int, []byte, error) {
		*out = v
		return 0, nil, nil
	}
}
