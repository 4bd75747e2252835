package pebbleindex

import (
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// Link sets are stored once per content and counted by the versions that
// use them; edges (k keys) record what each unit's latest version and draft
// link, for the cycle check and for deletion checks.

// removeVersion deletes one stored version and what names it.
func (t *tx) removeVersion(id uuid.UUID, kind index.Kind, ver int64, r *versionRec) error {
	t.del(versionKey(id, ver))
	if kind != index.KindCollection {
		t.del(hashRefKey(r.Hash, kind, id, ver))
	}
	if r.Superseded != 0 {
		t.del(supersededKey(r.Superseded, id, ver))
	}
	if kind == index.KindUnit {
		return t.unrefLinkSet(r.Links)
	}
	return nil
}

// refLinkSet counts one more stored version using the set, storing the set
// (and its reverse keys) when it is new.
func (t *tx) refLinkSet(set cas.Hash, links []index.Link) error {
	ls, ok, err := t.linkSet(set)
	if err != nil {
		return err
	}
	if ok {
		ls.Refs++
		t.set(linkSetKey(set), ls.encode())
		return nil
	}
	ls = linkSet{Refs: 1, Links: links}
	t.set(linkSetKey(set), ls.encode())
	for _, l := range links {
		t.set(reverseKey(l.Target, l.Version, set), nil)
		if l.Kind != index.KindAsset {
			continue
		}
		a, ok, err := t.entity(l.Target)
		if err != nil {
			return err
		}
		if ok && a.Kind == index.KindAsset && !a.EverLinked {
			a.EverLinked = true
			t.putEntity(l.Target, &a)
		}
	}
	return nil
}

// unrefLinkSet counts one stored version fewer using the set, deleting it
// (and its reverse keys) with the last; the assets it links lost a link.
func (t *tx) unrefLinkSet(set cas.Hash) error {
	ls, ok, err := t.linkSet(set)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: link set %s is used but not stored", errCorrupt, set)
	}
	for _, l := range ls.Links {
		if l.Kind == index.KindAsset {
			if t.unlinked == nil {
				t.unlinked = make(map[uuid.UUID]struct{})
			}
			t.unlinked[l.Target] = struct{}{}
		}
	}
	if ls.Refs > 1 {
		ls.Refs--
		t.set(linkSetKey(set), ls.encode())
		return nil
	}
	t.del(linkSetKey(set))
	for _, l := range ls.Links {
		t.del(reverseKey(l.Target, l.Version, set))
	}
	return nil
}

// setEdges replaces the edges that unit id's version in role (latest or
// draft) gives its targets: one k key per target, with the pin of the
// first link to it.
func (t *tx) setEdges(id uuid.UUID, e *entityRec, role byte, old, next []index.Link) {
	for _, l := range firstLinks(old) {
		t.del(edgeKey(l.Target, role, e.Created, id))
	}
	for _, l := range firstLinks(next) {
		t.set(edgeKey(l.Target, role, e.Created, id), encodeEdge(l.Version, e.Collection))
	}
}

// firstLinks returns the first link to each target, in order.
func firstLinks(links []index.Link) []index.Link {
	out := make([]index.Link, 0, len(links))
	for _, l := range links {
		if !slices.ContainsFunc(out, func(o index.Link) bool { return o.Target == l.Target }) {
			out = append(out, l)
		}
	}
	return out
}
