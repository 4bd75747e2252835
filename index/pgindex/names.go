package pgindex

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

// The names table holds one row per name held (index.Heads.HeldNames):
// its primary key (collection, name) makes a claim race-free.

const (
	sqlClaimName    = `INSERT INTO names (collection, name, entity) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	sqlNameHolder   = `SELECT entity FROM names WHERE collection = $1 AND name = $2`
	sqlReleaseNames = `DELETE FROM names WHERE collection = $1 AND name = ANY($2) AND entity = $3`
)

// moveNames claims for id in coll the names it holds after a write and not
// before, then queues the release of those it gives up (index.NameMoves).
// A taken name fails before anything is queued.
func (t *tx) moveNames(coll, id uuid.UUID, before, after []string) error {
	claim, release := index.NameMoves(before, after)
	if err := t.claimNames(coll, id, claim); err != nil {
		return err
	}
	if len(release) > 0 {
		t.write(sqlReleaseNames, coll, release, id)
	}
	return nil
}

// claimNames takes names for id in coll. The INSERT waits for a concurrent
// claimant of the same name to end; the holder is then read in a statement
// of its own (a fresh snapshot), so a taken name names its holder.
func (t *tx) claimNames(coll, id uuid.UUID, names []string) error {
	for _, name := range names {
		for attempt := 0; ; attempt++ {
			var holder uuid.UUID
			found := false
			b := &pgx.Batch{}
			b.Queue(sqlClaimName, coll, name, id)
			b.Queue(sqlNameHolder, coll, name).QueryRow(func(row pgx.Row) error {
				err := row.Scan(bin(&holder))
				if err == pgx.ErrNoRows {
					return nil
				}
				found = err == nil
				return err
			})
			if err := t.run(t.ctx, b); err != nil {
				return err
			}
			if found && holder == id {
				break
			}
			if found || attempt == 2 {
				return index.NameTaken(coll, name, holder)
			}
			// The holder let the name go between the two statements: claim again.
		}
	}
	return nil
}
