package index

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
)

// Links (doc.go, "Links"): each target is an existing unit or asset (a
// draft-only one too) of the kind the link gives, if it gives one; a pin is a
// positive version or none; the set is stored normalized, under its
// LinkSetID; and a unit link must not close a cycle.

// ResolveLinks checks given links against the kinds of their targets (kinds
// holds every target that exists; the engine reads them, under whatever
// lock it needs) and returns them normalized (NormalizeLinks) with the kinds
// filled in. Errors wrap ErrInvalid. Links that are resolved already pass
// unchanged: an engine re-checks stored links against fresh kinds with it.
func ResolveLinks(given []Link, kinds map[uuid.UUID]Kind) ([]Link, error) {
	for _, l := range given {
		if l.Version < 0 {
			return nil, fmt.Errorf("%w: link to %s pins version %d", ErrInvalid, l.Target, l.Version)
		}
		k, ok := kinds[l.Target]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: link target %s does not exist", ErrInvalid, l.Target)
		case k != KindUnit && k != KindAsset:
			return nil, fmt.Errorf("%w: link target %s is a %s", ErrInvalid, l.Target, k)
		case l.Kind != 0 && l.Kind != k:
			return nil, fmt.Errorf("%w: link target %s is a %s, not a %s", ErrInvalid, l.Target, k, l.Kind)
		}
	}
	out := NormalizeLinks(given)
	for i := range out {
		out[i].Kind = kinds[out[i].Target]
	}
	return out, nil
}

// LinkTargets returns the distinct targets of links, in order.
func LinkTargets(links []Link) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(links))
	seen := make(map[uuid.UUID]bool, len(links))
	for _, l := range links {
		if !seen[l.Target] {
			seen[l.Target] = true
			out = append(out, l.Target)
		}
	}
	return out
}

// TargetsOfKind returns the distinct targets of kind k among resolved links,
// in order; nil when there are none.
func TargetsOfKind(links []Link, k Kind) []uuid.UUID {
	var out []uuid.UUID
	for _, l := range links {
		if l.Kind == k && !slices.Contains(out, l.Target) {
			out = append(out, l.Target)
		}
	}
	return out
}

// HasLinkSet reports whether the latest published version or the draft of a
// unit has the link set set. Its links are then edges of the graph already
// and were checked when the set was stored: a version that keeps them needs
// neither the targets checked again nor the cycle check.
func (h Heads) HasLinkSet(set cas.Hash) bool {
	return h.Latest > 0 && set == h.LatestLinks || h.HasDraft && set == h.DraftLinks
}

// CycleError is the error of links of unit id that would close a cycle.
func CycleError(id uuid.UUID) error {
	return fmt.Errorf("%w: the links of unit %s would close a cycle", ErrInvalid, id)
}

// NormalizeLinks returns links without repeats of the same (target, version),
// the first kept, in the order given. It never returns nil.
func NormalizeLinks(links []Link) []Link {
	out := make([]Link, 0, len(links))
	type key struct {
		t uuid.UUID
		v int64
	}
	seen := make(map[key]bool, len(links))
	for _, l := range links {
		k := key{l.Target, l.Version}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, l)
	}
	return out
}

// LinkSetID names a normalized link set by its content, so that versions with
// the same links share one stored set. The empty set has the ID of no bytes.
func LinkSetID(links []Link) cas.Hash {
	h := cas.NewHasher()
	var b [1 + 16 + 8]byte
	for _, l := range links {
		b[0] = byte(l.Kind)
		copy(b[1:], l.Target[:])
		binary.BigEndian.PutUint64(b[17:], uint64(l.Version))
		h.Write(b[:])
	}
	return h.Sum()
}

// SameLinks reports whether two link lists are equal, order included.
func SameLinks(a, b []Link) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Reaches reports whether any of from reaches to by following edges
// (breadth first; each unit visited once). Backends use it for the cycle
// check: committing links from X to units T closes a cycle when Reaches(T, X).
func Reaches(from []uuid.UUID, to uuid.UUID, edges func(uuid.UUID) ([]uuid.UUID, error)) (bool, error) {
	seen := make(map[uuid.UUID]bool, len(from))
	queue := append([]uuid.UUID(nil), from...)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			return true, nil
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		next, err := edges(n)
		if err != nil {
			return false, err
		}
		queue = append(queue, next...)
	}
	return false, nil
}
