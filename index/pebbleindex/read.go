package pebbleindex

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// view answers the index's reads from one consistent state: a snapshot
// (Store's reads) or the transaction's indexed batch (Tx's reads).
type view struct {
	r   pebble.Reader
	now func() time.Time
	// ents is a transaction's use of the Store's entity cache (which it
	// reads only while it holds the writer's turn); nil for snapshots.
	ents *entityReads
}

// getValue returns a copy of the value under k; ok is false when there is none.
func getValue(r pebble.Reader, k []byte) (val []byte, ok bool, err error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, dbErr(err)
	}
	val = append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, false, dbErr(err)
	}
	return val, true, nil
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// scan calls fn for each key in [lower, upper) in order until fn returns
// false or an error. The key and value are valid only during the call.
func (v *view) scan(lower, upper []byte, fn func(k, val []byte) (bool, error)) error {
	return scanReader(v.r, lower, upper, false, fn)
}

// scanReverse is scan from the last key down.
func (v *view) scanReverse(lower, upper []byte, fn func(k, val []byte) (bool, error)) error {
	return scanReader(v.r, lower, upper, true, fn)
}

func scanReader(r pebble.Reader, lower, upper []byte, reverse bool, fn func(k, val []byte) (bool, error)) (err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return dbErr(err)
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = dbErr(cerr)
		}
	}()
	ok := it.First()
	if reverse {
		ok = it.Last()
	}
	for ; ok; ok = next(it, reverse) {
		val, err := it.ValueAndErr()
		if err != nil {
			return dbErr(err)
		}
		more, err := fn(it.Key(), val)
		if err != nil || !more {
			return err
		}
	}
	return dbErr(it.Error())
}

func next(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

// first returns a copy of the first key with prefix p, or nil.
func (v *view) first(p []byte) ([]byte, []byte, error) {
	var k, val []byte
	err := v.scan(p, prefixEnd(p), func(key, value []byte) (bool, error) {
		k = append([]byte(nil), key...)
		val = append([]byte(nil), value...)
		return false, nil
	})
	return k, val, err
}

// has reports whether some key starts with p.
func (v *view) has(p []byte) (bool, error) {
	k, _, err := v.first(p)
	return k != nil, err
}

// entity returns the record of id; ok is false when there is none.
func (v *view) entity(id uuid.UUID) (entityRec, bool, error) {
	if e, ok := v.ents.cached(id); ok {
		return e, true, nil
	}
	b, ok, err := getValue(v.r, entityKey(id))
	if err != nil || !ok {
		return entityRec{}, false, err
	}
	e, err := decodeEntity(b)
	if err != nil {
		return entityRec{}, false, fmt.Errorf("index: entity %s: %w", id, err)
	}
	v.ents.remember(id, e)
	return e, true, nil
}

// entityOf returns the record of id if it is of kind, else ErrNotFound.
func (v *view) entityOf(id uuid.UUID, kind index.Kind) (entityRec, error) {
	e, ok, err := v.entity(id)
	if err != nil {
		return e, err
	}
	if !ok || e.Kind != kind {
		return e, fmt.Errorf("%w: %s %s", index.ErrNotFound, kind, id)
	}
	return e, nil
}

// version returns version ver (0: the draft) of id.
func (v *view) version(id uuid.UUID, ver int64) (versionRec, bool, error) {
	b, ok, err := getValue(v.r, versionKey(id, ver))
	if err != nil || !ok {
		return versionRec{}, false, err
	}
	rec, err := decodeVersion(b)
	if err != nil {
		return versionRec{}, false, fmt.Errorf("index: version %s@%d: %w", id, ver, err)
	}
	return rec, true, nil
}

// mustVersion is version for a version the entity record says exists.
func (v *view) mustVersion(id uuid.UUID, ver int64) (versionRec, error) {
	rec, ok, err := v.version(id, ver)
	if err == nil && !ok {
		err = fmt.Errorf("%w: %s@%d is in its entity record but not stored", errCorrupt, id, ver)
	}
	return rec, err
}

// linkSet returns the stored link set set; ok is false when there is none.
func (v *view) linkSet(set cas.Hash) (linkSet, bool, error) {
	b, ok, err := getValue(v.r, linkSetKey(set))
	if err != nil || !ok {
		return linkSet{}, false, err
	}
	ls, err := decodeLinkSet(b)
	if err != nil {
		return linkSet{}, false, fmt.Errorf("index: link set %s: %w", set, err)
	}
	return ls, true, nil
}

// links returns the links of a set that a stored version uses.
func (v *view) links(set cas.Hash) ([]index.Link, error) {
	ls, ok, err := v.linkSet(set)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: link set %s is used but not stored", errCorrupt, set)
	}
	return ls.Links, nil
}

// refVersion resolves ref against e to a stored version number (0: the draft).
func refVersion(e entityRec, ref index.Ref) (int64, bool) {
	switch {
	case ref.Draft:
		return 0, e.HasDraft
	case ref.Version > 0:
		return ref.Version, ref.Version <= e.Latest
	case ref.Version < 0:
		return 0, false
	}
	return e.Latest, e.Latest > 0
}

func collectionOf(id uuid.UUID, ver int64, r versionRec) index.Collection {
	return index.Collection{
		ID:             id,
		Version:        ver,
		CreatedAt:      fromNS(r.Created),
		GarbageCollect: r.GC,
		CollectionFields: index.CollectionFields{
			Name: r.Name, Description: r.Description, Owner: r.Owner, Author: r.Author, License: r.License,
		},
	}
}

func unitOf(id uuid.UUID, e entityRec, ver int64, r versionRec, links []index.Link) index.Unit {
	return index.Unit{
		ID:             id,
		Collection:     e.Collection,
		Name:           r.Name,
		Version:        ver,
		CreatedAt:      fromNS(r.Created),
		Hash:           r.Hash,
		Size:           r.Size,
		Links:          links,
		GarbageCollect: r.GC,
	}
}

func assetOf(id uuid.UUID, e entityRec, ver int64, r versionRec) index.Asset {
	return index.Asset{
		ID:             id,
		Collection:     e.Collection,
		Name:           r.Name,
		MediaType:      r.MediaType,
		Version:        ver,
		CreatedAt:      fromNS(r.Created),
		Hash:           r.Hash,
		Size:           r.Size,
		GarbageCollect: r.GC,
	}
}

func notFound(what string, ref fmt.Stringer) error {
	return fmt.Errorf("%w: %s %s", index.ErrNotFound, what, ref)
}

// Kind returns the kind of id.
func (v *view) Kind(_ context.Context, id uuid.UUID) (index.Kind, error) {
	e, ok, err := v.entity(id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s", index.ErrNotFound, id)
	}
	return e.Kind, nil
}

// Collection returns version ver of a collection (0: the latest).
func (v *view) Collection(_ context.Context, id uuid.UUID, ver int64) (index.Collection, error) {
	e, err := v.entityOf(id, index.KindCollection)
	if err != nil {
		return index.Collection{}, err
	}
	return v.collectionAt(id, e, ver)
}

func (v *view) collectionAt(id uuid.UUID, e entityRec, ver int64) (index.Collection, error) {
	if ver == 0 {
		ver = e.Latest
	}
	if ver < 0 || ver > e.Latest {
		return index.Collection{}, notFound("collection", index.Ref{ID: id, Version: ver})
	}
	r, ok, err := v.version(id, ver)
	if err != nil {
		return index.Collection{}, err
	}
	if !ok {
		return index.Collection{}, notFound("collection", index.Ref{ID: id, Version: ver})
	}
	return collectionOf(id, ver, r), nil
}

// Unit returns the version of a unit that ref names.
func (v *view) Unit(_ context.Context, ref index.Ref) (index.Unit, error) {
	e, err := v.entityOf(ref.ID, index.KindUnit)
	if err != nil {
		return index.Unit{}, err
	}
	return v.unitAt(e, ref)
}

func (v *view) unitAt(e entityRec, ref index.Ref) (index.Unit, error) {
	ver, ok := refVersion(e, ref)
	if !ok {
		return index.Unit{}, notFound("unit", ref)
	}
	r, ok, err := v.version(ref.ID, ver)
	if err != nil {
		return index.Unit{}, err
	}
	if !ok {
		return index.Unit{}, notFound("unit", ref)
	}
	links, err := v.links(r.Links)
	if err != nil {
		return index.Unit{}, err
	}
	return unitOf(ref.ID, e, ver, r, links), nil
}

// Asset returns the version of an asset that ref names.
func (v *view) Asset(_ context.Context, ref index.Ref) (index.Asset, error) {
	e, err := v.entityOf(ref.ID, index.KindAsset)
	if err != nil {
		return index.Asset{}, err
	}
	return v.assetAt(e, ref)
}

func (v *view) assetAt(e entityRec, ref index.Ref) (index.Asset, error) {
	ver, ok := refVersion(e, ref)
	if !ok {
		return index.Asset{}, notFound("asset", ref)
	}
	r, ok, err := v.version(ref.ID, ver)
	if err != nil {
		return index.Asset{}, err
	}
	if !ok {
		return index.Asset{}, notFound("asset", ref)
	}
	return assetOf(ref.ID, e, ver, r), nil
}

// Lookup resolves refs of any kind; a ref not found gives a zero Entity.
func (v *view) Lookup(_ context.Context, refs []index.Ref) ([]index.Entity, error) {
	out := make([]index.Entity, len(refs))
	for i, ref := range refs {
		e, ok, err := v.entity(ref.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		switch e.Kind {
		case index.KindCollection:
			if ref.Draft {
				continue
			}
			c, err := v.collectionAt(ref.ID, e, ref.Version)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[i] = index.Entity{Kind: e.Kind, Collection: &c}
		case index.KindUnit:
			u, err := v.unitAt(e, ref)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[i] = index.Entity{Kind: e.Kind, Unit: &u}
		case index.KindAsset:
			a, err := v.assetAt(e, ref)
			if errors.Is(err, index.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[i] = index.Entity{Kind: e.Kind, Asset: &a}
		}
	}
	return out, nil
}

// Blob returns the registry row of h.
func (v *view) Blob(_ context.Context, h cas.Hash) (index.Blob, error) {
	b, ok, err := v.blob(h)
	if err != nil {
		return b, err
	}
	if !ok {
		return b, fmt.Errorf("%w: blob %s", index.ErrNotFound, h)
	}
	return b, nil
}

func (v *view) blob(h cas.Hash) (index.Blob, bool, error) {
	b, _, ok, err := v.blobTicket(h)
	return b, ok, err
}

// blobTicket is blob with the ticket of a pending row's registration.
func (v *view) blobTicket(h cas.Hash) (index.Blob, index.Ticket, bool, error) {
	val, ok, err := getValue(v.r, blobKey(h))
	if err != nil || !ok {
		return index.Blob{}, 0, false, err
	}
	b, ticket, err := decodeBlobTicket(h, val)
	if err != nil {
		return index.Blob{}, 0, false, fmt.Errorf("index: blob %s: %w", h, err)
	}
	return b, ticket, true, nil
}

// Idempotency returns the record under key unless it has expired.
func (v *view) Idempotency(_ context.Context, key string) (index.IdempotencyRecord, error) {
	r, ok, err := v.idempotency(key)
	if err != nil {
		return r, err
	}
	if !ok || !r.ExpiresAt.After(v.now()) {
		return index.IdempotencyRecord{}, fmt.Errorf("%w: idempotency key", index.ErrNotFound)
	}
	return r, nil
}

func (v *view) idempotency(key string) (index.IdempotencyRecord, bool, error) {
	val, ok, err := getValue(v.r, idemKey(key))
	if err != nil || !ok {
		return index.IdempotencyRecord{}, false, err
	}
	r, err := decodeIdempotency(key, val)
	if err != nil {
		return r, false, fmt.Errorf("index: idempotency record: %w", err)
	}
	return r, true, nil
}

// encodeEdge and decodeEdge are the value of a k key: the pin of the
// linker's first link to the target, and the linker's collection.
func encodeEdge(pin int64, coll uuid.UUID) []byte {
	return append(appendU64(make([]byte, 0, sizeU64+sizeUUID), uint64(pin)), coll[:]...)
}

func decodeEdge(b []byte) (int64, uuid.UUID, error) {
	if len(b) != sizeU64+sizeUUID {
		return 0, uuid.Nil, fmt.Errorf("%w: edge value of %d bytes", errCorrupt, len(b))
	}
	return int64(readU64(b)), readUUID(b[sizeU64:]), nil
}
