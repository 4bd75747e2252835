package pgindex

import (
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

// The engine's side of the link rules (index.ResolveLinks and the cycle
// rule): reading and locking link targets, the cycle check in SQL, and
// storing, dropping and unlinking link sets.

const (
	sqlKinds       = `SELECT id, kind, false FROM entities WHERE id = ANY($1)`
	sqlKindsLocked = `SELECT id, kind, ever_linked FROM entities WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`
)

// queueKinds reads the kinds of ids into kinds. With lock (t non-nil) it
// locks the rows FOR KEY SHARE (a deleter then waits for this transaction)
// and notes in t the assets already marked as ever linked (see
// storeLinkSet).
func queueKinds(b *pgx.Batch, ids []uuid.UUID, t *tx, kinds map[uuid.UUID]index.Kind) {
	sql := sqlKinds
	if t != nil {
		sql = sqlKindsLocked
	}
	b.Queue(sql, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id     uuid.UUID
				kind   int16
				linked bool
			)
			if err := rows.Scan(bin(&id), &kind, &linked); err != nil {
				return err
			}
			kinds[id] = index.Kind(kind)
			if t != nil && linked && index.Kind(kind) == index.KindAsset {
				if t.linked == nil {
					t.linked = make(map[uuid.UUID]bool)
				}
				t.linked[id] = true
			}
		}
		return rows.Err()
	})
}

// givenKinds returns the kinds of the targets of links when every link gives
// one (unit or asset) and no target is given two; ok false otherwise. The
// commit hot path trusts them to name the link set without a read:
// checkNewLinks verifies them when the set is new to the unit.
func givenKinds(links []index.Link) (kinds map[uuid.UUID]index.Kind, ok bool) {
	kinds = make(map[uuid.UUID]index.Kind, len(links))
	for _, l := range links {
		if l.Kind != index.KindUnit && l.Kind != index.KindAsset {
			return nil, false
		}
		if k, seen := kinds[l.Target]; seen && k != l.Kind {
			return nil, false
		}
		kinds[l.Target] = l.Kind
	}
	return kinds, true
}

// minus returns the ids of a not in b.
func minus(a, b []uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

// sqlReaches: does any of $1 reach $2 along unit edges? Unit A has an edge
// to B when the link set of A's latest published version or of its draft
// links B (pinned or not). UNION (not ALL) visits each unit once.
const sqlReaches = `WITH RECURSIVE reach(id) AS (
	SELECT unnest($1::uuid[])
	UNION
	SELECT m.target FROM reach r
	JOIN entities e ON e.id = r.id
	JOIN link_set_members m ON m.set_id IN (e.latest_links, e.draft_links)
	WHERE m.kind = 2
) SELECT EXISTS (SELECT 1 FROM reach WHERE id = $2)`

// checkNewLinks runs when id's new version has a link set that neither its
// latest version nor its draft has (index.Heads.HasLinkSet): it locks the
// targets FOR KEY SHARE (so that none is deleted, and none of the pinned
// versions expires, before this commits), checks them again against the
// kinds it locked, and checks for a cycle under graphLockKey, which writers
// adding unit edges take so that two of them cannot each close half of one.
func (t *tx) checkNewLinks(id uuid.UUID, links []index.Link) error {
	units := index.TargetsOfKind(links, index.KindUnit)
	locked := make(map[uuid.UUID]index.Kind, len(links))
	cycle := false
	b := &pgx.Batch{}
	queueKinds(b, index.LinkTargets(links), t, locked)
	if len(units) > 0 {
		if !t.graphLock {
			b.Queue(`SELECT pg_advisory_xact_lock($1)`, graphLockKey)
			t.graphLock = true
		}
		b.Queue(sqlReaches, units, id).QueryRow(func(row pgx.Row) error { return row.Scan(&cycle) })
	}
	if err := t.run(t.ctx, b); err != nil {
		return err
	}
	if _, err := index.ResolveLinks(links, locked); err != nil {
		return err
	}
	if cycle {
		return index.CycleError(id)
	}
	return nil
}

const (
	sqlStoreLinkSet = `SELECT blockstore_store_link_set($1, $2, $3, $4, $5)`
	sqlEverLinked   = `UPDATE entities SET ever_linked = true WHERE id = ANY($1) AND kind = 3 AND NOT ever_linked`
	sqlUnlinked     = `UPDATE entities SET last_unlinked_at = $2 WHERE id = ANY($1) AND kind = 3`
	// Link-set cleanup: lock the candidates (waiting for writers that are
	// reusing them, FOR KEY SHARE), then, in a statement with a fresh
	// snapshot, drop those that no stored version uses.
	sqlLockSets = `SELECT id FROM link_sets WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	sqlDropSets = `DELETE FROM link_sets s WHERE s.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.link_set = s.id)`
	// Orphan tracking when versions that link assets go away.
	sqlUnlinkSets = `UPDATE entities SET last_unlinked_at = $2
WHERE kind = 3 AND id IN (SELECT target FROM link_set_members WHERE set_id = ANY($1) AND kind = 3)`
)

// storeLinkSet queues the link set of nv (stored once per content; see
// blockstore_store_link_set) and marks its assets as ever linked, those
// that the transaction's locking read of the targets did not see marked
// already. Writers never clear ever_linked (only a copy refreshing an
// entity from its source sets it to the source's; a mark missed that way
// can hide an orphan, never delete a linked asset), so in the steady state
// (every linked asset marked) no update is sent. That also keeps clear of the
// plan the update's prepared statement may have settled on while the
// table was small: a scan of all of entities_list for kind = 3, whose cost
// grows with the table (auto_explain showed 88 buffers a create at 6,000
// entities), until autovacuum's ANALYZE a minute later.
func (t *tx) storeLinkSet(nv *newVersion) {
	targets := make([]uuid.UUID, len(nv.Links))
	kinds := make([]int16, len(nv.Links))
	pins := make([]int64, len(nv.Links))
	for i, l := range nv.Links {
		targets[i], kinds[i], pins[i] = l.Target, int16(l.Kind), l.Version
	}
	t.write(sqlStoreLinkSet, nv.setID(), len(nv.Links), targets, kinds, pins)
	var unmarked []uuid.UUID
	for _, a := range index.TargetsOfKind(nv.Links, index.KindAsset) {
		if !t.linked[a] {
			unmarked = append(unmarked, a)
		}
	}
	if len(unmarked) > 0 {
		t.write(sqlEverLinked, unmarked)
	}
}

// unlinkAssets queues the last-unlinked time of the assets that a unit
// version going away (gone) links and that the one staying (kept) does not.
func (t *tx) unlinkAssets(gone, kept []index.Link) {
	if assets := minus(index.TargetsOfKind(gone, index.KindAsset), index.TargetsOfKind(kept, index.KindAsset)); len(assets) > 0 {
		t.write(sqlUnlinked, assets, t.now)
	}
}

// dropLinkSets queues the cleanup of link sets that may no longer be used.
func (t *tx) dropLinkSets(sets [][]byte) {
	if len(sets) == 0 {
		return
	}
	t.write(sqlLockSets, sets)
	t.write(sqlDropSets, sets)
}
