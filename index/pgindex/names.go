package pgindex

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// The names table holds one row per name held (index.Heads.HeldNames):
// its primary key (collection, name) makes a claim race-free.

const (
	sqlClaimName    = `SELECT blockstore_claim_name($1, $2, $3)`
	sqlReleaseNames = `DELETE FROM names WHERE collection = $1 AND name = ANY($2) AND entity = $3`
)

// moveNames claims for id in coll the names it holds after a write and not
// before, then queues the release of those it gives up (index.NameMoves).
// A taken name fails the transaction at its next round trip.
func (t *tx) moveNames(coll, id uuid.UUID, before, after []string) {
	claim, release := index.NameMoves(before, after)
	t.claimNames(coll, id, claim)
	if len(release) > 0 {
		t.write(sqlReleaseNames, coll, release, id)
	}
}

// claimNames queues the claims of names for id in coll: each goes out with
// the transaction's next round trip (usually its COMMIT) and fails it with
// BSN01, which translate turns into index.NameTaken, when another entity
// holds the name (blockstore_claim_name, migration 00009).
func (t *tx) claimNames(coll, id uuid.UUID, names []string) {
	for _, name := range names {
		t.write(sqlClaimName, coll, name, id)
	}
}

// nameTaken reads the DETAIL of a BSN01 error: the collection, name and
// holder of the taken name.
func nameTaken(detail string) error {
	var d struct {
		Collection uuid.UUID  `json:"collection"`
		Name       string     `json:"name"`
		Holder     *uuid.UUID `json:"holder"`
	}
	if err := json.Unmarshal([]byte(detail), &d); err != nil {
		return &index.ConflictError{Reason: "name is taken"}
	}
	holder := uuid.Nil
	if d.Holder != nil {
		holder = *d.Holder
	}
	return index.NameTaken(d.Collection, d.Name, holder)
}
