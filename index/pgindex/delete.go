package pgindex

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

// Deletions: a collection (with its members when recursive) and a unit or
// an asset. Each locks what it deletes FOR UPDATE first, which waits for the
// transactions that are linking it (FOR KEY SHARE); its checks then run in
// statements with a fresh snapshot that sees them.

// sqlLinkedFromOutside finds the units and assets of coll that a unit outside
// coll links through its latest version or draft (the first one found).
const sqlLinkedFromOutside = `SELECT e.id, m.target FROM entities t
JOIN link_set_members m ON m.target = t.id
JOIN entities e ON m.set_id IN (e.latest_links, e.draft_links)
WHERE t.collection = $1 AND e.collection <> $1
LIMIT 1`

func (t *tx) DeleteCollection(id uuid.UUID, recursive bool) error {
	if err := t.op(); err != nil {
		return err
	}
	var (
		cur            current
		member         uuid.UUID
		hasMember      bool
		linker, target uuid.UUID
		linked         bool
		sets           [][]byte
	)
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockDelete, &cur)
	if recursive {
		// Lock the members (deleters wait for transactions linking them),
		// then look for links from outside with a fresh snapshot.
		b.Queue(`SELECT id FROM entities WHERE collection = $1 ORDER BY id FOR UPDATE`, id)
		b.Queue(sqlLinkedFromOutside, id).QueryRow(func(row pgx.Row) error {
			err := row.Scan(bin(&linker), bin(&target))
			if err == pgx.ErrNoRows {
				return nil
			}
			linked = err == nil
			return err
		})
		queueSets(b, `SELECT DISTINCT v.link_set FROM entities e JOIN versions v ON v.entity = e.id
WHERE e.collection = $1 AND v.link_set IS NOT NULL`, id, &sets)
	} else {
		b.Queue(`SELECT id FROM entities WHERE collection = $1 LIMIT 1`, id).QueryRow(func(row pgx.Row) error {
			err := row.Scan(bin(&member))
			if err == pgx.ErrNoRows {
				return nil
			}
			hasMember = err == nil
			return err
		})
	}
	if err := t.run(t.ctx, b); err != nil {
		return fmt.Errorf("pgindex: delete collection %s: %w", id, err)
	}
	t.stamp()
	if !cur.found || cur.kind != index.KindCollection {
		return fmt.Errorf("pgindex: delete collection %s: %w", id, index.ErrNotFound)
	}
	if hasMember {
		return &index.ConflictError{Reason: fmt.Sprintf("collection %s holds units or assets", id), Holder: member}
	}
	if linked {
		return &index.ConflictError{Reason: fmt.Sprintf("%s of collection %s is linked from another collection", target, id), Holder: linker}
	}
	if recursive {
		if len(sets) > 0 {
			t.write(sqlUnlinkSets, sets, t.now)
		}
		t.write(`DELETE FROM entities WHERE collection = $1`, id)
		t.dropLinkSets(sets)
	}
	t.write(`DELETE FROM entities WHERE id = $1`, id)
	return nil
}

// sqlLinker finds a unit, other than the target itself, whose latest
// published version or draft links $1.
const sqlLinker = `SELECT e.id FROM link_set_members m JOIN entities e ON e.latest_links = m.set_id
WHERE m.target = $1 AND e.id <> $1
UNION ALL
SELECT e.id FROM link_set_members m JOIN entities e ON e.draft_links = m.set_id
WHERE m.target = $1 AND e.id <> $1
LIMIT 1`

func (t *tx) DeleteEntity(id uuid.UUID) error {
	if err := t.op(); err != nil {
		return err
	}
	if err := t.deleteEntity(id); err != nil {
		return fmt.Errorf("pgindex: delete %s: %w", id, err)
	}
	return nil
}

// deleteEntity deletes a unit or an asset with its versions, draft and
// names. The row is locked FOR UPDATE first, which waits for transactions
// that are linking it (FOR KEY SHARE); the linker check then runs with a
// fresh snapshot that sees them.
func (t *tx) deleteEntity(id uuid.UUID) error {
	var (
		cur    current
		linker uuid.UUID
		linked bool
		sets   [][]byte
	)
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockDelete, &cur)
	b.Queue(sqlLinker, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(bin(&linker))
		if err == pgx.ErrNoRows {
			return nil
		}
		linked = err == nil
		return err
	})
	queueSets(b, `SELECT DISTINCT link_set FROM versions WHERE entity = $1 AND link_set IS NOT NULL`, id, &sets)
	if err := t.run(t.ctx, b); err != nil {
		return err
	}
	t.stamp()
	if !cur.found || cur.kind == index.KindCollection {
		return index.ErrNotFound
	}
	if linked {
		return &index.ConflictError{Reason: fmt.Sprintf("%s %s is linked by a unit", cur.kind, id), Holder: linker}
	}
	if len(sets) > 0 {
		t.write(sqlUnlinkSets, sets, t.now)
	}
	t.write(`DELETE FROM entities WHERE id = $1`, id)
	t.dropLinkSets(sets)
	return nil
}

// queueSets reads the link sets that sql (one argument, arg) selects into
// sets: those of versions about to be deleted, to unlink their assets and
// drop the sets no other version uses.
func queueSets(b *pgx.Batch, sql string, arg any, sets *[][]byte) {
	b.Queue(sql, arg).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var s []byte
			if err := rows.Scan(&s); err != nil {
				return err
			}
			*sets = append(*sets, s)
		}
		return rows.Err()
	})
}
