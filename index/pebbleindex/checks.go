package pebbleindex

import (
	"slices"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The checks a writer runs before its first write, on what index's rules
// leave to the engine: the blob registry, link targets, the unit graph and
// the name keys.

// liveBlob returns the registry size of h, or a *BlobMissingError unless h
// is live. The single writer holds the row against ClaimBlobs until commit.
func (t *tx) liveBlob(h cas.Hash) (int64, error) {
	b, ok, err := t.blob(h)
	if err != nil {
		return 0, err
	}
	return index.LiveBlob(h, b, ok)
}

// resolveLinks reads the kinds of the targets of given and resolves the
// links (index.ResolveLinks).
func (t *tx) resolveLinks(given []index.Link) ([]index.Link, error) {
	kinds := make(map[uuid.UUID]index.Kind, len(given))
	for _, l := range given {
		if _, seen := kinds[l.Target]; seen {
			continue
		}
		e, found, err := t.entity(l.Target)
		if err != nil {
			return nil, err
		}
		if found {
			kinds[l.Target] = e.Kind
		}
	}
	return index.ResolveLinks(given, kinds)
}

// unitEdges returns the units that unit n has an edge to: those its latest
// published version or its draft links, pinned or not.
func (t *tx) unitEdges(n uuid.UUID) ([]uuid.UUID, error) {
	e, ok, err := t.entity(n)
	if err != nil || !ok || e.Kind != index.KindUnit {
		return nil, err
	}
	var out []uuid.UUID
	if e.Latest > 0 {
		links, err := t.links(e.LatestLinks)
		if err != nil {
			return nil, err
		}
		out = index.TargetsOfKind(links, index.KindUnit)
	}
	if e.HasDraft && (e.Latest == 0 || e.DraftLinks != e.LatestLinks) {
		links, err := t.links(e.DraftLinks)
		if err != nil {
			return nil, err
		}
		out = append(out, index.TargetsOfKind(links, index.KindUnit)...)
	}
	return out, nil
}

// checkCycle refuses links of unit id (heads h) that would close a cycle.
// The graph has none, so only targets that are not already edges of id can
// close one.
func (t *tx) checkCycle(id uuid.UUID, h index.Heads, set cas.Hash, links []index.Link) error {
	if h.HasLinkSet(set) {
		return nil
	}
	targets := index.TargetsOfKind(links, index.KindUnit)
	if len(targets) == 0 {
		return nil
	}
	current, err := t.unitEdges(id)
	if err != nil {
		return err
	}
	var fresh []uuid.UUID
	for _, u := range targets {
		if !slices.Contains(current, u) {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	cycle, err := index.Reaches(fresh, id, t.unitEdges)
	if err != nil {
		return err
	}
	if cycle {
		return index.CycleError(id)
	}
	return nil
}

// checkNames refuses the names of claim that another entity holds in coll.
func (t *tx) checkNames(id, coll uuid.UUID, claim []string) error {
	for _, n := range claim {
		b, ok, err := getValue(t.r, nameKey(coll, n))
		if err != nil {
			return err
		}
		if ok && len(b) == sizeUUID && readUUID(b) != id {
			return index.NameTaken(coll, n, readUUID(b))
		}
	}
	return nil
}

// moveNames releases the names id gives up and takes the new ones when the
// names it holds go from before to after (index.NameMoves); checkNames
// checked the claims.
func (t *tx) moveNames(id, coll uuid.UUID, before, after []string) {
	claim, release := index.NameMoves(before, after)
	for _, n := range release {
		t.del(nameKey(coll, n))
	}
	for _, n := range claim {
		t.set(nameKey(coll, n), id[:])
	}
}

// linkerOutside returns a unit other than target whose latest version or
// draft links target and whose collection inside does not accept, or uuid.Nil.
func (t *tx) linkerOutside(target uuid.UUID, inside func(coll uuid.UUID) bool) (uuid.UUID, error) {
	found := uuid.Nil
	p := edgePrefix(target)
	err := t.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
		_, linker := listPosition(k)
		if linker == target {
			return true, nil
		}
		_, coll, err := decodeEdge(val)
		if err != nil {
			return false, err
		}
		if inside(coll) {
			return true, nil
		}
		found = linker
		return false, nil
	})
	return found, err
}
