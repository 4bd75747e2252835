package pgindex

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// current is an entity's state as a writer sees it once the row is locked:
// the row, and its latest published version and its draft (nil when absent).
type current struct {
	found       bool
	kind        index.Kind
	collection  uuid.UUID
	latest      int64
	latestLinks []byte
	draftLinks  []byte
	lv, dv      *verRow
}

// base is the version whose values omitted fields keep (doc.go, "Base
// version"): for a draft, the draft else the latest; for a published
// version, the latest else the draft.
func (c *current) base(draft bool) *verRow {
	if draft && c.dv != nil || c.lv == nil {
		return c.dv
	}
	return c.lv
}

const (
	// Writers number versions under this lock. It does not conflict with
	// the FOR KEY SHARE that link writers take on their targets.
	sqlLockNoKey = `SELECT kind, collection, latest, latest_links, draft_links FROM entities WHERE id = $1 FOR NO KEY UPDATE`
	// Deleters take this one: it waits for the transactions that are
	// linking the entity (FOR KEY SHARE) and keeps new ones out.
	sqlLockDelete = `SELECT kind, collection, latest, latest_links, draft_links FROM entities WHERE id = $1 FOR UPDATE`
	// The latest published version and the draft, read in a statement of
	// its own so that it sees the state as of the lock.
	sqlCurrent = `SELECT ` + verCols + `
FROM entities e JOIN LATERAL (
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version = e.latest
	UNION ALL
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version IS NULL
) v ON true
` + linksLateral + `
WHERE e.id = $1`
	// sqlCurrentNoLinks is sqlCurrent without the links, for a published
	// commit that gives its links (the hot path): the link set IDs compare.
	sqlCurrentNoLinks = `SELECT ` + verCols + `
FROM entities e JOIN LATERAL (
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version = e.latest
	UNION ALL
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version IS NULL
) v ON true
CROSS JOIN (SELECT NULL::uuid[] AS targets, NULL::smallint[] AS kinds, NULL::bigint[] AS pins) ls
WHERE e.id = $1`
)

// queueCurrent locks id's row (lockSQL) and reads its current versions.
func queueCurrent(b *pgx.Batch, id uuid.UUID, lockSQL string, cur *current) {
	queueCurrentVersions(b, id, lockSQL, sqlCurrent, cur)
}

func queueCurrentVersions(b *pgx.Batch, id uuid.UUID, lockSQL, currentSQL string, cur *current) {
	b.Queue(lockSQL, id).QueryRow(func(row pgx.Row) error {
		var (
			kind int16
			coll pgtype.UUID
		)
		err := row.Scan(&kind, &coll, &cur.latest, &cur.latestLinks, &cur.draftLinks)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		cur.found, cur.kind = true, index.Kind(kind)
		if coll.Valid {
			cur.collection = coll.Bytes
		}
		return nil
	})
	b.Queue(currentSQL, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			r, err := scanVersion(rows)
			if err != nil {
				return err
			}
			if r.version == 0 {
				cur.dv = r
			} else {
				cur.lv = r
			}
		}
		return rows.Err()
	})
}

// blobRef is the registry row of a blob a version names, share-locked.
type blobRef struct {
	hash  cas.Hash
	found bool
	state index.BlobState
	size  int64
}

// queueBlobShare locks h's registry row FOR SHARE until the transaction
// ends: ClaimBlobs (FOR UPDATE) waits for this commit and then sees its
// version, or it claimed the row first and this reads it as deleting.
func queueBlobShare(b *pgx.Batch, h cas.Hash, ref *blobRef) {
	ref.hash = h
	b.Queue(`SELECT state, size FROM blobs WHERE hash = $1 FOR SHARE`, h[:]).QueryRow(func(row pgx.Row) error {
		var state int16
		err := row.Scan(&state, &ref.size)
		if err == pgx.ErrNoRows {
			return nil
		}
		ref.found, ref.state = err == nil, index.BlobState(state)
		return err
	})
}

func (r *blobRef) check() error {
	if !r.found || r.state != index.BlobLive {
		return &index.BlobMissingError{Hash: r.hash}
	}
	return nil
}

const (
	sqlKinds       = `SELECT id, kind FROM entities WHERE id = ANY($1)`
	sqlKindsLocked = `SELECT id, kind FROM entities WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`
)

// queueKinds reads the kinds of ids into kinds, locking the rows FOR KEY
// SHARE when lock is set (a deleter then waits for this transaction).
func queueKinds(b *pgx.Batch, ids []uuid.UUID, lock bool, kinds map[uuid.UUID]index.Kind) {
	sql := sqlKinds
	if lock {
		sql = sqlKindsLocked
	}
	b.Queue(sql, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id   uuid.UUID
				kind int16
			)
			if err := rows.Scan(bin(&id), &kind); err != nil {
				return err
			}
			kinds[id] = index.Kind(kind)
		}
		return rows.Err()
	})
}

// linkTargets returns the distinct targets of links.
func linkTargets(links []index.Link) []uuid.UUID {
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

// resolveLinks checks links against their targets' kinds and returns them
// normalized (index.NormalizeLinks) with the kinds filled in.
func resolveLinks(in []index.Link, kinds map[uuid.UUID]index.Kind) ([]index.Link, error) {
	for _, l := range in {
		if l.Version < 0 {
			return nil, fmt.Errorf("%w: link to %s pins a negative version", index.ErrInvalid, l.Target)
		}
		k, ok := kinds[l.Target]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: link target %s does not exist", index.ErrInvalid, l.Target)
		case k != index.KindUnit && k != index.KindAsset:
			return nil, fmt.Errorf("%w: link target %s is a %s", index.ErrInvalid, l.Target, k)
		case l.Kind != 0 && l.Kind != k:
			return nil, fmt.Errorf("%w: link target %s is a %s, not a %s", index.ErrInvalid, l.Target, k, l.Kind)
		}
	}
	out := index.NormalizeLinks(in)
	for i := range out {
		out[i].Kind = kinds[out[i].Target]
	}
	return out, nil
}

// givenKinds returns the kinds of the targets of links when every link gives
// one (unit or asset) and no target is given two; ok false otherwise.
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

func targetsOfKind(links []index.Link, k index.Kind) []uuid.UUID {
	var out []uuid.UUID
	for _, l := range links {
		if l.Kind == k && !slices.Contains(out, l.Target) {
			out = append(out, l.Target)
		}
	}
	return out
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
// latest version nor its draft has: it locks the targets FOR KEY SHARE (so
// that none is deleted, and none of the pinned versions expires, before
// this commits) and checks for a cycle under graphLockKey, which writers
// adding unit edges take so that two of them cannot each close half of one.
func (t *tx) checkNewLinks(id uuid.UUID, links []index.Link) error {
	ids := linkTargets(links)
	units := targetsOfKind(links, index.KindUnit)
	locked := make(map[uuid.UUID]index.Kind, len(ids))
	cycle := false
	b := &pgx.Batch{}
	queueKinds(b, ids, true, locked)
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
	for _, l := range links {
		if k, ok := locked[l.Target]; !ok {
			return fmt.Errorf("%w: link target %s does not exist", index.ErrInvalid, l.Target)
		} else if k != l.Kind {
			return fmt.Errorf("%w: link target %s is a %s, not a %s", index.ErrInvalid, l.Target, k, l.Kind)
		}
	}
	if cycle {
		return fmt.Errorf("%w: the links of %s would close a cycle", index.ErrInvalid, id)
	}
	return nil
}

// heldNames returns the non-empty names among names, once each.
func heldNames(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func nameOf(r *verRow) string {
	if r == nil {
		return ""
	}
	return r.name
}

const (
	sqlClaimName  = `INSERT INTO names (collection, name, entity) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	sqlNameHolder = `SELECT entity FROM names WHERE collection = $1 AND name = $2`
)

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
				return &index.ConflictError{Reason: fmt.Sprintf("name %q is taken in collection %s", name, coll), Holder: holder}
			}
			// The holder let the name go between the two statements: claim again.
		}
	}
	return nil
}

const (
	sqlInsertEntity = `INSERT INTO entities (id, kind, collection, created_at, latest, latest_links, draft_links, gc)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	sqlInsertVersion = `INSERT INTO versions (entity, version, created_at, garbage_collect, name, hash, size, link_set,
	media_type, description, owner, author, license)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	sqlSupersede    = `UPDATE versions SET superseded_at = $3 WHERE entity = $1 AND version = $2`
	sqlSetLatest    = `UPDATE entities SET latest = $2, latest_links = $3, gc = $4 WHERE id = $1`
	sqlSetDraft     = `UPDATE entities SET draft_links = $2, gc = $3 WHERE id = $1`
	sqlReplaceDraft = `UPDATE versions SET created_at = $2, garbage_collect = $3, name = $4, hash = $5, size = $6,
	link_set = $7, media_type = $8 WHERE entity = $1 AND version IS NULL`
	sqlStoreLinkSet = `SELECT blockstore_store_link_set($1, $2, $3, $4, $5)`
	sqlEverLinked   = `UPDATE entities SET ever_linked = true WHERE id = ANY($1) AND kind = 3 AND NOT ever_linked`
	sqlUnlinked     = `UPDATE entities SET last_unlinked_at = $2 WHERE id = ANY($1) AND kind = 3`
	sqlReleaseNames = `DELETE FROM names WHERE collection = $1 AND name = ANY($2) AND entity = $3`
	// Link-set cleanup: lock the candidates (waiting for writers that are
	// reusing them, FOR KEY SHARE), then, in a statement with a fresh
	// snapshot, drop those that no stored version uses.
	sqlLockSets = `SELECT id FROM link_sets WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	sqlDropSets = `DELETE FROM link_sets s WHERE s.id = ANY($1) AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.link_set = s.id)`
	// Orphan tracking when versions that link assets go away.
	sqlUnlinkSets = `UPDATE entities SET last_unlinked_at = $2
WHERE kind = 3 AND id IN (SELECT target FROM link_set_members WHERE set_id = ANY($1) AND kind = 3)`
)

// newVersion is a version about to be stored.
type newVersion struct {
	kind      index.Kind
	name      string
	gc        bool
	hash      cas.Hash
	size      int64
	links     []index.Link
	setID     []byte
	mediaType string
	fields    index.CollectionFields
}

// row returns nv as the verRow that a read would return.
func (nv *newVersion) row(id, coll uuid.UUID, version int64, t *tx, entityCreated bool) *verRow {
	r := &verRow{id: id, kind: nv.kind, collection: coll, version: version, createdAt: t.now, gc: nv.gc,
		name: nv.name, hash: nv.hash, size: nv.size, linkSet: nv.setID, mediaType: nv.mediaType, fields: nv.fields,
		links: nv.links}
	if nv.kind == index.KindCollection {
		r.name = nv.fields.Name
	}
	if entityCreated {
		r.entityCreated = t.now
	}
	return r
}

// insertVersion queues the INSERT of nv as version (0: the draft) of id.
func (t *tx) insertVersion(id uuid.UUID, version int64, nv *newVersion) {
	var ver any
	if version > 0 {
		ver = version
	}
	var (
		hash, size, media          any
		desc, owner, author, licen any
	)
	name := nv.name
	switch nv.kind {
	case index.KindCollection:
		name = nv.fields.Name
		desc, owner, author, licen = nv.fields.Description, nv.fields.Owner, nv.fields.Author, nv.fields.License
	case index.KindAsset:
		hash, size, media = nv.hash[:], nv.size, nv.mediaType
	case index.KindUnit:
		hash, size = nv.hash[:], nv.size
	}
	t.write(sqlInsertVersion, id, ver, t.now, nv.gc, name, hash, size, nv.setID, media, desc, owner, author, licen)
}

// storeLinkSet queues the link set of nv (stored once per content; see
// blockstore_store_link_set) and marks its assets as ever linked.
func (t *tx) storeLinkSet(nv *newVersion) {
	targets := make([]uuid.UUID, len(nv.links))
	kinds := make([]int16, len(nv.links))
	pins := make([]int64, len(nv.links))
	for i, l := range nv.links {
		targets[i], kinds[i], pins[i] = l.Target, int16(l.Kind), l.Version
	}
	t.write(sqlStoreLinkSet, nv.setID, len(nv.links), targets, kinds, pins)
	if assets := targetsOfKind(nv.links, index.KindAsset); len(assets) > 0 {
		t.write(sqlEverLinked, assets)
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

// store stores nv as the next published version of id, or as its draft,
// given its locked state cur, and returns it as read back. It checks what
// the version adds (a new link set, names) before it queues any write, so
// that an error leaves the transaction as it was.
func (t *tx) store(id uuid.UUID, cur *current, nv *newVersion, draft bool) (*verRow, error) {
	newSet := nv.kind == index.KindUnit && !bytes.Equal(nv.setID, cur.latestLinks) && !bytes.Equal(nv.setID, cur.draftLinks)
	if newSet && len(nv.links) > 0 {
		if err := t.checkNewLinks(id, nv.links); err != nil {
			return nil, err
		}
	}
	before := heldNames(nameOf(cur.lv), nameOf(cur.dv))
	var after []string
	if draft {
		after = heldNames(nameOf(cur.lv), nv.name)
	} else {
		after = heldNames(nv.name, nameOf(cur.dv))
	}
	if err := t.claimNames(cur.collection, id, minusNames(after, before)); err != nil {
		return nil, err
	}
	if released := minusNames(before, after); len(released) > 0 {
		t.write(sqlReleaseNames, cur.collection, released, id)
	}
	if newSet {
		t.storeLinkSet(nv)
	}
	if !draft {
		n := cur.latest + 1
		t.insertVersion(id, n, nv)
		if cur.latest > 0 {
			t.write(sqlSupersede, id, cur.latest, t.now)
		}
		t.write(sqlSetLatest, id, n, nv.setID, nv.gc)
		return nv.row(id, cur.collection, n, t, false), nil
	}
	if cur.dv == nil {
		t.insertVersion(id, 0, nv)
	} else {
		var hash, media any = nv.hash[:], nil
		if nv.kind == index.KindAsset {
			media = nv.mediaType
		}
		t.write(sqlReplaceDraft, id, t.now, nv.gc, nv.name, hash, nv.size, nv.setID, media)
		if nv.kind == index.KindUnit && !bytes.Equal(cur.dv.linkSet, nv.setID) {
			// The old draft goes away: its assets are unlinked now (those the
			// new draft keeps are still linked), and its set may be unused.
			gone := minus(targetsOfKind(cur.dv.links, index.KindAsset), targetsOfKind(nv.links, index.KindAsset))
			if len(gone) > 0 {
				t.write(sqlUnlinked, gone, t.now)
			}
			if !bytes.Equal(cur.dv.linkSet, cur.latestLinks) {
				t.dropLinkSets([][]byte{cur.dv.linkSet})
			}
		}
	}
	t.write(sqlSetDraft, id, nv.setID, nv.gc)
	return nv.row(id, cur.collection, 0, t, false), nil
}

func minusNames(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

// --- collections -------------------------------------------------------

func (t *tx) CreateCollection(c index.NewCollection) (index.Collection, error) {
	if err := t.op(); err != nil {
		return index.Collection{}, err
	}
	t.stamp()
	id := uuid.New()
	nv := &newVersion{kind: index.KindCollection, gc: c.GarbageCollect, fields: c.CollectionFields}
	t.write(sqlInsertEntity, id, int16(index.KindCollection), nil, t.now, int64(1), nil, nil, c.GarbageCollect)
	t.insertVersion(id, 1, nv)
	return nv.row(id, uuid.Nil, 1, t, true).collectionVersion(), nil
}

func (t *tx) UpdateCollection(id uuid.UUID, p index.CollectionPatch) (index.Collection, bool, error) {
	if err := t.op(); err != nil {
		return index.Collection{}, false, err
	}
	var cur current
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockNoKey, &cur)
	if err := t.run(t.ctx, b); err != nil {
		return index.Collection{}, false, fmt.Errorf("pgindex: update collection %s: %w", id, err)
	}
	t.stamp()
	if !cur.found || cur.kind != index.KindCollection || cur.lv == nil {
		return index.Collection{}, false, fmt.Errorf("pgindex: update collection %s: %w", id, index.ErrNotFound)
	}
	f, gc := cur.lv.fields, cur.lv.gc
	for _, x := range []struct {
		dst *string
		src *string
	}{{&f.Name, p.Name}, {&f.Description, p.Description}, {&f.Owner, p.Owner}, {&f.Author, p.Author}, {&f.License, p.License}} {
		if x.src != nil {
			*x.dst = *x.src
		}
	}
	if p.GarbageCollect != nil {
		gc = *p.GarbageCollect
	}
	if f == cur.lv.fields && gc == cur.lv.gc {
		return cur.lv.collectionVersion(), false, nil
	}
	nv := &newVersion{kind: index.KindCollection, gc: gc, fields: f}
	n := cur.latest + 1
	t.insertVersion(id, n, nv)
	t.write(sqlSupersede, id, cur.latest, t.now)
	t.write(sqlSetLatest, id, n, nil, gc)
	return nv.row(id, uuid.Nil, n, t, false).collectionVersion(), true, nil
}

// queueMembersCheck reads the units and assets of coll that a unit outside
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
		b.Queue(`SELECT DISTINCT v.link_set FROM entities e JOIN versions v ON v.entity = e.id
WHERE e.collection = $1 AND v.link_set IS NOT NULL`, id).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var s []byte
				if err := rows.Scan(&s); err != nil {
					return err
				}
				sets = append(sets, s)
			}
			return rows.Err()
		})
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

// --- units ---------------------------------------------------------------

// queueCollection locks coll FOR KEY SHARE (a collection being deleted
// waits for this transaction, or this one waits and finds it gone).
func queueCollection(b *pgx.Batch, coll uuid.UUID, kind *index.Kind) {
	b.Queue(`SELECT kind FROM entities WHERE id = $1 FOR KEY SHARE`, coll).QueryRow(func(row pgx.Row) error {
		var k int16
		err := row.Scan(&k)
		if err == pgx.ErrNoRows {
			return nil
		}
		*kind = index.Kind(k)
		return err
	})
}

func (t *tx) CreateUnit(nu index.NewUnit) (index.Unit, error) {
	if err := t.op(); err != nil {
		return index.Unit{}, err
	}
	var (
		collKind index.Kind
		blob     blobRef
		kinds    = make(map[uuid.UUID]index.Kind, len(nu.Links))
	)
	b := &pgx.Batch{}
	queueCollection(b, nu.Collection, &collKind)
	queueBlobShare(b, nu.Hash, &blob)
	if len(nu.Links) > 0 {
		queueKinds(b, linkTargets(nu.Links), true, kinds)
	}
	if err := t.run(t.ctx, b); err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: create unit: %w", err)
	}
	t.stamp()
	if collKind != index.KindCollection {
		return index.Unit{}, fmt.Errorf("pgindex: create unit: collection %s: %w", nu.Collection, index.ErrNotFound)
	}
	links, err := resolveLinks(nu.Links, kinds)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: create unit: %w", err)
	}
	if err := blob.check(); err != nil {
		return index.Unit{}, err
	}
	id := uuid.New()
	nv := &newVersion{kind: index.KindUnit, name: nu.Name, gc: nu.GarbageCollect, hash: nu.Hash, size: blob.size, links: links}
	id32 := index.LinkSetID(links)
	nv.setID = id32[:]
	r, err := t.create(id, nu.Collection, nv, nu.Draft)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: create unit: %w", err)
	}
	return r.unit(), nil
}

// create stores the entity id and its first version (or draft) nv. A new
// entity closes no cycle (nothing can link it yet) and its link targets are
// locked already.
func (t *tx) create(id, coll uuid.UUID, nv *newVersion, draft bool) (*verRow, error) {
	if err := t.claimNames(coll, id, heldNames(nv.name)); err != nil {
		return nil, err
	}
	latest, version := int64(1), int64(1)
	var latestLinks, draftLinks []byte = nv.setID, nil
	if draft {
		latest, version = 0, 0
		latestLinks, draftLinks = nil, nv.setID
	}
	t.write(sqlInsertEntity, id, int16(nv.kind), coll, t.now, latest, latestLinks, draftLinks, nv.gc)
	if nv.kind == index.KindUnit {
		t.storeLinkSet(nv)
	}
	t.insertVersion(id, version, nv)
	return nv.row(id, coll, version, t, true), nil
}

func (t *tx) CommitUnit(id uuid.UUID, c index.UnitChange, draft bool) (index.Unit, bool, error) {
	if err := t.op(); err != nil {
		return index.Unit{}, false, err
	}
	var (
		cur   current
		blob  blobRef
		kinds map[uuid.UUID]index.Kind
	)
	b := &pgx.Batch{}
	if c.Links != nil && !draft {
		// The current versions' links are not needed: not as base values
		// (given), nor for a draft that goes away (none does).
		queueCurrentVersions(b, id, sqlLockNoKey, sqlCurrentNoLinks, &cur)
	} else {
		queueCurrent(b, id, sqlLockNoKey, &cur)
	}
	queueBlobShare(b, c.Hash, &blob)
	if c.Links != nil && len(*c.Links) > 0 {
		// When the writer gave every kind, the set's ID is known without a
		// read; checkNewLinks verifies kinds and existence if the set is new
		// (an unchanged set was verified when first stored). Else the kinds
		// are read here, unlocked: the targets are locked later if need be.
		var given bool
		if kinds, given = givenKinds(*c.Links); !given {
			kinds = make(map[uuid.UUID]index.Kind, len(*c.Links))
			queueKinds(b, linkTargets(*c.Links), false, kinds)
		}
	}
	if err := t.run(t.ctx, b); err != nil {
		return index.Unit{}, false, fmt.Errorf("pgindex: commit unit %s: %w", id, err)
	}
	t.stamp()
	if !cur.found || cur.kind != index.KindUnit || cur.base(draft) == nil {
		return index.Unit{}, false, fmt.Errorf("pgindex: commit unit %s: %w", id, index.ErrNotFound)
	}
	base := cur.base(draft)
	nv := &newVersion{kind: index.KindUnit, name: base.name, gc: base.gc, hash: c.Hash, size: blob.size, links: base.links}
	if c.Name != nil {
		nv.name = *c.Name
	}
	if c.GarbageCollect != nil {
		nv.gc = *c.GarbageCollect
	}
	if c.Links != nil {
		links, err := resolveLinks(*c.Links, kinds)
		if err != nil {
			return index.Unit{}, false, fmt.Errorf("pgindex: commit unit %s: %w", id, err)
		}
		nv.links = links
	}
	setID := index.LinkSetID(nv.links)
	nv.setID = setID[:]
	if err := blob.check(); err != nil {
		return index.Unit{}, false, err
	}
	if lv := cur.lv; !draft && lv != nil && lv.hash == nv.hash && lv.name == nv.name && lv.gc == nv.gc && bytes.Equal(lv.linkSet, nv.setID) {
		u := lv.unit()
		u.Links = nv.links // the same set (lv's links may not have been read)
		return u, false, nil
	}
	r, err := t.store(id, &cur, nv, draft)
	if err != nil {
		return index.Unit{}, false, fmt.Errorf("pgindex: commit unit %s: %w", id, err)
	}
	return r.unit(), true, nil
}

func (t *tx) PublishUnitDraft(id uuid.UUID) (index.Unit, error) {
	r, err := t.publish(id, index.KindUnit)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: publish draft of unit %s: %w", id, err)
	}
	return r.unit(), nil
}

func (t *tx) DeleteUnitDraft(id uuid.UUID) error {
	if err := t.deleteDraft(id, index.KindUnit); err != nil {
		return fmt.Errorf("pgindex: delete draft of unit %s: %w", id, err)
	}
	return nil
}

// --- assets ----------------------------------------------------------------

func (t *tx) CreateAsset(na index.NewAsset) (index.Asset, error) {
	if err := t.op(); err != nil {
		return index.Asset{}, err
	}
	var (
		collKind index.Kind
		blob     blobRef
	)
	b := &pgx.Batch{}
	queueCollection(b, na.Collection, &collKind)
	queueBlobShare(b, na.Hash, &blob)
	if err := t.run(t.ctx, b); err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: create asset: %w", err)
	}
	t.stamp()
	if collKind != index.KindCollection {
		return index.Asset{}, fmt.Errorf("pgindex: create asset: collection %s: %w", na.Collection, index.ErrNotFound)
	}
	if err := blob.check(); err != nil {
		return index.Asset{}, err
	}
	nv := &newVersion{kind: index.KindAsset, name: na.Name, gc: na.GarbageCollect, hash: na.Hash, size: blob.size, mediaType: na.MediaType}
	r, err := t.create(uuid.New(), na.Collection, nv, na.Draft)
	if err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: create asset: %w", err)
	}
	return r.asset(), nil
}

func (t *tx) CommitAsset(id uuid.UUID, c index.AssetChange, draft bool) (index.Asset, bool, error) {
	if err := t.op(); err != nil {
		return index.Asset{}, false, err
	}
	var (
		cur  current
		blob blobRef
	)
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockNoKey, &cur)
	queueBlobShare(b, c.Hash, &blob)
	if err := t.run(t.ctx, b); err != nil {
		return index.Asset{}, false, fmt.Errorf("pgindex: commit asset %s: %w", id, err)
	}
	t.stamp()
	if !cur.found || cur.kind != index.KindAsset || cur.base(draft) == nil {
		return index.Asset{}, false, fmt.Errorf("pgindex: commit asset %s: %w", id, index.ErrNotFound)
	}
	base := cur.base(draft)
	nv := &newVersion{kind: index.KindAsset, name: base.name, gc: base.gc, hash: c.Hash, size: blob.size, mediaType: base.mediaType}
	if c.Name != nil {
		nv.name = *c.Name
	}
	if c.MediaType != nil {
		nv.mediaType = *c.MediaType
	}
	if c.GarbageCollect != nil {
		nv.gc = *c.GarbageCollect
	}
	if err := blob.check(); err != nil {
		return index.Asset{}, false, err
	}
	if lv := cur.lv; !draft && lv != nil && lv.hash == nv.hash && lv.name == nv.name && lv.gc == nv.gc && lv.mediaType == nv.mediaType {
		return lv.asset(), false, nil
	}
	r, err := t.store(id, &cur, nv, draft)
	if err != nil {
		return index.Asset{}, false, fmt.Errorf("pgindex: commit asset %s: %w", id, err)
	}
	return r.asset(), true, nil
}

func (t *tx) PublishAssetDraft(id uuid.UUID) (index.Asset, error) {
	r, err := t.publish(id, index.KindAsset)
	if err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: publish draft of asset %s: %w", id, err)
	}
	return r.asset(), nil
}

func (t *tx) DeleteAssetDraft(id uuid.UUID) error {
	if err := t.deleteDraft(id, index.KindAsset); err != nil {
		return fmt.Errorf("pgindex: delete draft of asset %s: %w", id, err)
	}
	return nil
}

// --- drafts ------------------------------------------------------------------

// publish turns the draft of id into the next numbered version, created now.
// Nothing goes away, so no asset is unlinked and no link set dropped.
func (t *tx) publish(id uuid.UUID, kind index.Kind) (*verRow, error) {
	if err := t.op(); err != nil {
		return nil, err
	}
	var cur current
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockNoKey, &cur)
	if err := t.run(t.ctx, b); err != nil {
		return nil, err
	}
	t.stamp()
	if !cur.found || cur.kind != kind || cur.dv == nil {
		return nil, index.ErrNotFound
	}
	if released := minusNames(heldNames(nameOf(cur.lv), nameOf(cur.dv)), heldNames(cur.dv.name)); len(released) > 0 {
		t.write(sqlReleaseNames, cur.collection, released, id)
	}
	n := cur.latest + 1
	t.write(`UPDATE versions SET version = $2, created_at = $3 WHERE entity = $1 AND version IS NULL`, id, n, t.now)
	if cur.latest > 0 {
		t.write(sqlSupersede, id, cur.latest, t.now)
	}
	t.write(`UPDATE entities SET latest = $2, latest_links = draft_links, draft_links = NULL, gc = $3 WHERE id = $1`, id, n, cur.dv.gc)
	r := *cur.dv
	r.version, r.createdAt = n, t.now
	return &r, nil
}

// deleteDraft deletes the draft of id. The draft of a draft-only entity is
// all there is of it: deleting it deletes the entity (DeleteEntity's rules).
func (t *tx) deleteDraft(id uuid.UUID, kind index.Kind) error {
	if err := t.op(); err != nil {
		return err
	}
	var cur current
	b := &pgx.Batch{}
	queueCurrent(b, id, sqlLockNoKey, &cur)
	if err := t.run(t.ctx, b); err != nil {
		return err
	}
	t.stamp()
	if !cur.found || cur.kind != kind || cur.dv == nil {
		return index.ErrNotFound
	}
	if cur.lv == nil {
		return t.deleteEntity(id)
	}
	if released := minusNames(heldNames(nameOf(cur.lv), cur.dv.name), heldNames(cur.lv.name)); len(released) > 0 {
		t.write(sqlReleaseNames, cur.collection, released, id)
	}
	t.write(`DELETE FROM versions WHERE entity = $1 AND version IS NULL`, id)
	t.write(`UPDATE entities SET draft_links = NULL, gc = $2 WHERE id = $1`, id, cur.lv.gc)
	if kind == index.KindUnit && !bytes.Equal(cur.dv.linkSet, cur.latestLinks) {
		if gone := minus(targetsOfKind(cur.dv.links, index.KindAsset), targetsOfKind(cur.lv.links, index.KindAsset)); len(gone) > 0 {
			t.write(sqlUnlinked, gone, t.now)
		}
		t.dropLinkSets([][]byte{cur.dv.linkSet})
	}
	return nil
}

// --- deletion ------------------------------------------------------------------

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
	b.Queue(`SELECT DISTINCT link_set FROM versions WHERE entity = $1 AND link_set IS NOT NULL`, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var s []byte
			if err := rows.Scan(&s); err != nil {
				return err
			}
			sets = append(sets, s)
		}
		return rows.Err()
	})
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

// --- idempotency -------------------------------------------------------------

// MaxIdempotencyKey is the longest key PutIdempotency accepts, in bytes.
const MaxIdempotencyKey = 1024

func (t *tx) PutIdempotency(rec index.IdempotencyRecord) error {
	if err := t.op(); err != nil {
		return err
	}
	t.stamp()
	if len(rec.Key) == 0 || len(rec.Key) > MaxIdempotencyKey {
		return fmt.Errorf("pgindex: idempotency record: %w: key of %d bytes (1 to %d)", index.ErrInvalid, len(rec.Key), MaxIdempotencyKey)
	}
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	stored := false
	b := &pgx.Batch{}
	// An expired record under the key is replaced; a live one is a conflict
	// (a concurrent writer of the same key waits here for the first to end).
	b.Queue(`INSERT INTO idempotency (key, fingerprint, status, body, expires_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
	body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
WHERE idempotency.expires_at <= $6
RETURNING true`, []byte(rec.Key), rec.Fingerprint[:], rec.Status, body, rec.ExpiresAt, t.now).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&stored)
		if err == pgx.ErrNoRows {
			return nil
		}
		return err
	})
	if err := t.run(t.ctx, b); err != nil {
		return fmt.Errorf("pgindex: idempotency record: %w", err)
	}
	if !stored {
		return &index.ConflictError{Reason: "idempotency key already used"}
	}
	return nil
}
