package index

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Names (doc.go, "Names"): an entity holds the names of its latest published
// version and of its draft, within its collection, among units and assets
// together; "" is no name. An engine keeps one record a held name and moves
// them with NameMoves.

// HeldNames returns the names an entity with these heads holds, each once.
func (h Heads) HeldNames() []string {
	var latest, draft string
	if h.Latest > 0 {
		latest = h.LatestName
	}
	if h.HasDraft {
		draft = h.DraftName
	}
	return nameSet(latest, draft)
}

// NameMoves returns what an entity does to its names when the names it holds
// go from before to after (HeldNames of its heads before and after a write):
// the names it must claim, which fail if another entity holds one
// (NameTaken), and those it releases, free at once for others.
func NameMoves(before, after []string) (claim, release []string) {
	return namesNotIn(after, before), namesNotIn(before, after)
}

// NameTaken is the error of a claim on a name that holder holds in coll.
func NameTaken(coll uuid.UUID, name string, holder uuid.UUID) error {
	return &ConflictError{Reason: fmt.Sprintf("name %q is taken in collection %s", name, coll), Holder: holder}
}

// nameSet returns the non-empty names given, each once, in order.
func nameSet(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// namesNotIn returns the names of a that are not in b.
func namesNotIn(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}
