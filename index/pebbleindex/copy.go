package pebbleindex

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// The copy capability (index.Exporter, index.Importer): see index/copy.go.
// Export walks the c keys (collections in creation order) and each
// collection's m keys a page at a time, each page and its histories read
// from one snapshot. Import runs as a writer: it reads the entity record
// and its versions, checks everything, then writes the difference through
// the same helpers the writes use (link-set counts, reverse keys, edges,
// hash refs, superseded and orphan keys, names), so every invariant of
// doc.go holds after it.

var (
	_ index.Exporter = (*Store)(nil)
	_ index.Importer = (*Store)(nil)
)

// exportPage is how many entities one snapshot of an export reads.
const exportPage = 200

// copySourceKey holds the source of a copy (SetCopySource), in the meta space.
const copySourceKey = "a" + "copy-source"

// Export streams every entity with its history (index.Exporter).
func (s *Store) Export(ctx context.Context, fn func(index.History) error) error {
	var colls []uuid.UUID
	err := s.exportList(ctx, []byte{pCollection}, func(h index.History) error {
		colls = append(colls, h.ID)
		return fn(h)
	})
	if err != nil {
		return err
	}
	for _, c := range colls {
		for _, k := range []index.Kind{index.KindUnit, index.KindAsset} {
			if err := s.exportList(ctx, memberKindPrefix(c, k), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// exportList pages through the list keys under prefix (ending in
// created|uuid) and calls fn with each entity's history, outside the
// snapshot.
func (s *Store) exportList(ctx context.Context, prefix []byte, fn func(index.History) error) error {
	lower := prefix
	for {
		var page []index.History
		err := s.read(ctx, "export", func(v *view) error {
			return v.scan(lower, prefixEnd(prefix), func(k, _ []byte) (bool, error) {
				_, id := listPosition(k)
				h, ok, err := v.exportHistory(id)
				if err != nil {
					return false, err
				}
				if ok {
					page = append(page, h)
				}
				lower = after(k)
				return len(page) < exportPage, nil
			})
		})
		if err != nil {
			return fmt.Errorf("index: export: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		for _, h := range page {
			if err := fn(h); err != nil {
				return err
			}
		}
	}
}

// exportHistory reads the history of id; ok is false when there is no entity or
// it has no version (a shell).
func (v *view) exportHistory(id uuid.UUID) (index.History, bool, error) {
	e, ok, err := v.entity(id)
	if err != nil || !ok {
		return index.History{}, false, err
	}
	h := index.History{Kind: e.Kind, ID: id, CreatedAt: fromNS(e.Created), EverLinked: e.EverLinked}
	if e.Kind != index.KindCollection {
		h.Collection = e.Collection
	}
	if e.LastUnlinked != 0 {
		h.LastUnlinked = fromNS(e.LastUnlinked)
	}
	recs, err := v.versions(id, e.Kind)
	if err != nil {
		return index.History{}, false, err
	}
	for _, r := range recs {
		h.Versions = append(h.Versions, r.VersionRecord)
	}
	return h, len(h.Versions) > 0, nil
}

// storedVersion is a stored version as an import compares it, with its record.
type storedVersion struct {
	index.VersionRecord
	rec versionRec
}

// versions reads every stored version of id, ascending, the draft last.
func (v *view) versions(id uuid.UUID, kind index.Kind) ([]storedVersion, error) {
	var (
		out   []storedVersion
		draft *storedVersion
	)
	p := versionPrefix(id)
	err := v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
		r, err := decodeVersion(val)
		if err != nil {
			return false, fmt.Errorf("index: version of %s: %w", id, err)
		}
		sv := storedVersion{rec: r, VersionRecord: index.VersionRecord{
			Number: versionOfKey(k), CreatedAt: fromNS(r.Created), GarbageCollect: r.GC, Name: r.Name,
			Description: r.Description, Owner: r.Owner, Author: r.Author, License: r.License,
		}}
		if r.Superseded != 0 {
			sv.SupersededAt = fromNS(r.Superseded)
		}
		if kind != index.KindCollection {
			sv.Hash, sv.Size, sv.MediaType = r.Hash, r.Size, r.MediaType
		}
		if kind == index.KindUnit {
			if sv.Links, err = v.links(r.Links); err != nil {
				return false, err
			}
		}
		if sv.Number == 0 {
			draft = &sv
		} else {
			out = append(out, sv)
		}
		return true, nil
	})
	if draft != nil {
		out = append(out, *draft)
	}
	return out, err
}

// Entities streams the kind and uuid of every entity (index.Exporter).
func (s *Store) Entities(ctx context.Context, fn func(index.Kind, uuid.UUID) error) error {
	p := []byte{pEntity}
	return s.stream(ctx, "entities", func(v *view, tick func() error) error {
		return v.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
			if err := tick(); err != nil {
				return false, err
			}
			if len(val) < 2 || len(k) != sizeEntityKey {
				return false, fmt.Errorf("%w: entity record", errCorrupt)
			}
			return true, fn(index.Kind(val[1]), readUUID(k[1:]))
		})
	})
}

// Import makes the entity h.ID equal to h (index.Importer).
func (s *Store) Import(ctx context.Context, h index.History) (index.ImportResult, error) {
	if err := h.Check(); err != nil {
		return index.ImportResult{}, fmt.Errorf("index: import: %w", err)
	}
	var res index.ImportResult
	err := s.write(ctx, func(t *tx) error {
		var err error
		res, err = t.importHistory(&h, false)
		return err
	})
	if err != nil {
		return index.ImportResult{}, fmt.Errorf("index: import %s %s: %w", h.Kind, h.ID, err)
	}
	return res, nil
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ImportGroup imports hs in one transaction, their names released first
// (index.Importer).
func (s *Store) ImportGroup(ctx context.Context, hs []index.History) ([]index.ImportResult, error) {
	for i := range hs {
		if err := hs[i].Check(); err != nil {
			return nil, fmt.Errorf("index: import: %w", err)
		}
	}
	out := make([]index.ImportResult, len(hs))
	err := s.write(ctx, func(t *tx) error {
		for _, h := range hs {
			e, ok, err := t.entity(h.ID)
			if err != nil {
				return err
			}
			if ok && e.Kind != index.KindCollection {
				for _, n := range e.heads().HeldNames() {
					t.del(nameKey(e.Collection, n))
				}
			}
		}
		for i := range hs {
			r, err := t.importHistory(&hs[i], true)
			if err != nil {
				return fmt.Errorf("%s %s: %w", hs[i].Kind, hs[i].ID, err)
			}
			out[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: import a group of %d: %w", len(hs), err)
	}
	return out, nil
}

// importHistory imports h; released says that the names the entity held
// were released already (ImportGroup), so that all it holds is claimed.
func (t *tx) importHistory(h *index.History, released bool) (index.ImportResult, error) {
	e, found, err := t.entity(h.ID)
	if err != nil {
		return index.ImportResult{}, err
	}
	// Every check before the first write.
	if h.Kind != index.KindCollection {
		if _, err := t.entityOf(h.Collection, index.KindCollection); err != nil {
			return index.ImportResult{}, err
		}
	}
	if found && (e.Kind != h.Kind || e.Kind != index.KindCollection && e.Collection != h.Collection || e.Created != ns(h.CreatedAt)) {
		return index.ImportResult{}, fmt.Errorf("%w: %s %s here is a %s of collection %s created %s, the source's a %s of %s created %s",
			index.ErrDiverged, h.Kind, h.ID, e.Kind, e.Collection, fromNS(e.Created), h.Kind, h.Collection, h.CreatedAt)
	}
	if h.Kind != index.KindCollection {
		for _, v := range h.Versions {
			size, err := t.liveBlob(v.Hash)
			if err != nil {
				return index.ImportResult{}, err
			}
			if size != v.Size {
				return index.ImportResult{}, fmt.Errorf("%w: version %d names blob %s of %d bytes, registered here with %d",
					index.ErrDiverged, v.Number, v.Hash, v.Size, size)
			}
		}
	}
	var have []storedVersion
	if found {
		if have, err = t.versions(h.ID, e.Kind); err != nil {
			return index.ImportResult{}, err
		}
	}
	records := make([]index.VersionRecord, len(have))
	for i := range have {
		records[i] = have[i].VersionRecord
	}
	plan, err := index.PlanImport(h, records)
	if err != nil {
		return index.ImportResult{}, err
	}
	if !found {
		e = entityRec{Kind: h.Kind, Collection: h.Collection, Created: ns(h.CreatedAt)}
	}
	held := e.heads().HeldNames()
	if released {
		held = nil
	}
	if h.Kind != index.KindCollection {
		claim, _ := index.NameMoves(held, h.HeldNames())
		if err := t.checkNames(h.ID, h.Collection, claim); err != nil {
			return index.ImportResult{}, err
		}
	}
	// The edges' old links, read before removals may drop their sets.
	var oldLatest, oldDraft []index.Link
	if e.Kind == index.KindUnit {
		if e.Latest > 0 {
			if oldLatest, err = t.links(e.LatestLinks); err != nil {
				return index.ImportResult{}, err
			}
		}
		if e.HasDraft {
			if oldDraft, err = t.links(e.DraftLinks); err != nil {
				return index.ImportResult{}, err
			}
		}
	}

	res := index.ImportResult{Created: !found, Written: len(plan.Insert), Removed: len(plan.Remove)}
	for _, j := range plan.Remove {
		if err := t.removeVersion(h.ID, h.Kind, have[j].Number, &have[j].rec); err != nil {
			return index.ImportResult{}, err
		}
	}
	for _, i := range plan.Insert {
		v := &h.Versions[i]
		r := recordOf(h.Kind, v)
		t.putVersion(h.ID, v.Number, &r)
		if h.Kind != index.KindCollection {
			t.set(hashRefKey(v.Hash, h.Kind, h.ID, v.Number), nil)
		}
		if r.Superseded != 0 {
			t.set(supersededKey(r.Superseded, h.ID, v.Number), []byte{byte(h.Kind)})
		}
		if h.Kind == index.KindUnit {
			if err := t.refLinkSet(r.Links, v.Links); err != nil {
				return index.ImportResult{}, err
			}
		}
	}
	byNumber := make(map[int64]*storedVersion, len(have))
	for i := range have {
		byNumber[have[i].Number] = &have[i]
	}
	for _, i := range plan.Supersede {
		v := &h.Versions[i]
		old := byNumber[v.Number]
		r := old.rec
		if r.Superseded != 0 {
			t.del(supersededKey(r.Superseded, h.ID, v.Number))
		}
		r.Superseded = ns(v.SupersededAt)
		if r.Superseded != 0 {
			t.set(supersededKey(r.Superseded, h.ID, v.Number), []byte{byte(h.Kind)})
		}
		t.putVersion(h.ID, v.Number, &r)
		res.Metadata = true
	}

	next := entityRec{Kind: h.Kind, Collection: h.Collection, Created: e.Created, EverLinked: h.EverLinked, LastUnlinked: ns(h.LastUnlinked)}
	if found && (e.EverLinked != next.EverLinked || e.LastUnlinked != next.LastUnlinked) {
		res.Metadata = true
	}
	if l := h.Latest(); l != nil {
		next.Latest, next.LatestCreated, next.LatestGC, next.LatestName = l.Number, ns(l.CreatedAt), l.GarbageCollect, l.Name
		if h.Kind == index.KindUnit {
			next.LatestLinks = index.LinkSetID(l.Links)
		}
	}
	if d := h.Draft(); d != nil {
		next.HasDraft, next.DraftCreated, next.DraftGC, next.DraftName = true, ns(d.CreatedAt), d.GarbageCollect, d.Name
		if h.Kind == index.KindUnit {
			next.DraftLinks = index.LinkSetID(d.Links)
		}
	}
	if h.Kind == index.KindUnit {
		if e.Latest == 0 || next.Latest == 0 || e.LatestLinks != next.LatestLinks {
			var links []index.Link
			if l := h.Latest(); l != nil {
				links = l.Links
			}
			t.setEdges(h.ID, &next, roleLatest, oldLatest, links)
		}
		if !e.HasDraft || !next.HasDraft || e.DraftLinks != next.DraftLinks {
			var links []index.Link
			if d := h.Draft(); d != nil {
				links = d.Links
			}
			t.setEdges(h.ID, &next, roleDraft, oldDraft, links)
		}
	}
	switch h.Kind {
	case index.KindCollection:
		t.set(collectionListKey(next.Created, h.ID), nil)
	default:
		published := byte(0)
		if next.Latest > 0 {
			published = 1
		}
		t.set(memberKey(next.Collection, next.Kind, next.Created, h.ID), []byte{published})
		t.moveNames(h.ID, h.Collection, held, next.heads().HeldNames())
	}
	if e.LastUnlinked != next.LastUnlinked {
		if e.LastUnlinked != 0 {
			t.del(orphanKey(e.LastUnlinked, h.ID))
		}
		if next.LastUnlinked != 0 {
			t.set(orphanKey(next.LastUnlinked, h.ID), nil)
		}
	}
	t.putEntity(h.ID, &next)
	// Orphan times are the source's, copied with each asset: the versions
	// removed here must not stamp the destination's clock on the assets
	// they linked (finish would).
	t.unlinked = nil
	return res, t.err
}

// recordOf returns v as the record an engine write would store.
func recordOf(kind index.Kind, v *index.VersionRecord) versionRec {
	r := versionRec{Created: ns(v.CreatedAt), Superseded: ns(v.SupersededAt), GC: v.GarbageCollect, Name: v.Name}
	switch kind {
	case index.KindCollection:
		r.Description, r.Owner, r.Author, r.License = v.Description, v.Owner, v.Author, v.License
	case index.KindUnit:
		r.Hash, r.Size, r.Links = v.Hash, v.Size, index.LinkSetID(v.Links)
	case index.KindAsset:
		r.Hash, r.Size, r.MediaType = v.Hash, v.Size, v.MediaType
	}
	return r
}

// CopySource returns the recorded source of a copy, "" when none.
func (s *Store) CopySource(ctx context.Context) (src string, err error) {
	err = s.read(ctx, "copy source", func(v *view) error {
		b, _, err := getValue(v.r, []byte(copySourceKey))
		src = string(b)
		return err
	})
	return src, err
}

// SetCopySource records source as the store this index is a copy of.
func (s *Store) SetCopySource(ctx context.Context, source string) error {
	if source == "" {
		return fmt.Errorf("index: record copy source: %w: empty source", index.ErrInvalid)
	}
	return s.write(ctx, func(t *tx) error {
		t.set([]byte(copySourceKey), []byte(source))
		return t.err
	})
}
