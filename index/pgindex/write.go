package pgindex

import (
	"bytes"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// This file stores unit and asset versions and drafts as index's rules
// (index.NextVersion, index.Heads) decide them; the entity row's lock
// numbers versions.

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

// heads returns the entity's index.Heads.
func (c *current) heads() index.Heads {
	h := index.Heads{Latest: c.latest, HasDraft: c.dv != nil, LatestLinks: setHash(c.latestLinks), DraftLinks: setHash(c.draftLinks)}
	if c.lv != nil {
		h.LatestName = c.lv.name
	}
	if c.dv != nil {
		h.DraftName = c.dv.name
	}
	return h
}

// content returns the content of the version h.Base names (ok false: none).
func (c *current) content(version int64, ok bool) *index.Content {
	r := c.lv
	if version == 0 {
		r = c.dv
	}
	if !ok || r == nil {
		return nil
	}
	return &index.Content{Name: r.name, MediaType: r.mediaType, Hash: r.hash, GarbageCollect: r.gc, Links: r.links, LinkSet: setHash(r.linkSet)}
}

// setHash reads a link set id column (NULL: the zero hash).
func setHash(b []byte) cas.Hash {
	var h cas.Hash
	copy(h[:], b)
	return h
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
	sqlCurrentVersions = `SELECT ` + verCols + `
FROM entities e JOIN LATERAL (
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version = e.latest
	UNION ALL
	SELECT * FROM versions x WHERE x.entity = e.id AND x.version IS NULL
) v ON true
`
	sqlCurrent = sqlCurrentVersions + linksLateral + `
WHERE e.id = $1`
	// sqlCurrentNoLinks is sqlCurrent without the links, for a published
	// commit that gives its links (the hot path): the link set IDs compare.
	sqlCurrentNoLinks = sqlCurrentVersions + `CROSS JOIN (SELECT NULL::uuid[] AS targets, NULL::smallint[] AS kinds, NULL::bigint[] AS pins) ls
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
	row   index.Blob
}

// queueBlobShare locks h's registry row FOR SHARE until the transaction
// ends: ClaimBlobs (FOR UPDATE) waits for this commit and then sees its
// version, or it claimed the row first and this reads it as deleting.
func queueBlobShare(b *pgx.Batch, h cas.Hash, ref *blobRef) {
	ref.hash = h
	b.Queue(`SELECT state, size FROM blobs WHERE hash = $1 FOR SHARE`, h[:]).QueryRow(func(row pgx.Row) error {
		var state int16
		err := row.Scan(&state, &ref.row.Size)
		if err == pgx.ErrNoRows {
			return nil
		}
		ref.found, ref.row.State = err == nil, index.BlobState(state)
		return err
	})
}

// size returns the blob's size, or *index.BlobMissingError unless it is live.
func (r *blobRef) size() (int64, error) { return index.LiveBlob(r.hash, r.row, r.found) }

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
)

// newVersion is a version about to be stored: a unit's or an asset's
// content, or a collection's fields (and its flag, in Content).
type newVersion struct {
	kind index.Kind
	index.Content
	size   int64
	fields index.CollectionFields
}

// setID is the link_set column of nv: NULL unless a unit.
func (nv *newVersion) setID() []byte {
	if nv.kind != index.KindUnit {
		return nil
	}
	return nv.LinkSet[:]
}

// row returns nv as the verRow that a read would return.
func (nv *newVersion) row(id, coll uuid.UUID, version int64, t *tx, entityCreated bool) *verRow {
	r := &verRow{id: id, kind: nv.kind, collection: coll, version: version, createdAt: t.now, gc: nv.GarbageCollect,
		name: nv.Name, hash: nv.Hash, size: nv.size, linkSet: nv.setID(), mediaType: nv.MediaType, fields: nv.fields,
		links: nv.Links}
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
	name := nv.Name
	switch nv.kind {
	case index.KindCollection:
		name = nv.fields.Name
		desc, owner, author, licen = nv.fields.Description, nv.fields.Owner, nv.fields.Author, nv.fields.License
	case index.KindAsset:
		hash, size, media = nv.Hash[:], nv.size, nv.MediaType
	case index.KindUnit:
		hash, size = nv.Hash[:], nv.size
	}
	t.write(sqlInsertVersion, id, ver, t.now, nv.GarbageCollect, name, hash, size, nv.setID(), media, desc, owner, author, licen)
}

// store stores nv as the next published version of id, or as its draft,
// given its locked state cur and its heads h, and returns it as read back.
// It checks what the version adds (a new link set, names) before it queues
// any write, so that an error leaves the transaction as it was.
func (t *tx) store(id uuid.UUID, cur *current, h index.Heads, nv *newVersion, draft bool) (*verRow, error) {
	newSet := nv.kind == index.KindUnit && !h.HasLinkSet(nv.LinkSet)
	if newSet && len(nv.Links) > 0 {
		if err := t.checkNewLinks(id, nv.Links); err != nil {
			return nil, err
		}
	}
	t.moveNames(cur.collection, id, h.HeldNames(), h.Commit(nv.Content, draft).HeldNames())
	if newSet {
		t.storeLinkSet(nv)
	}
	if !draft {
		n := cur.latest + 1
		t.insertVersion(id, n, nv)
		if cur.latest > 0 {
			t.write(sqlSupersede, id, cur.latest, t.now)
		}
		t.write(sqlSetLatest, id, n, nv.setID(), nv.GarbageCollect)
		return nv.row(id, cur.collection, n, t, false), nil
	}
	if cur.dv == nil {
		t.insertVersion(id, 0, nv)
	} else {
		var media any
		if nv.kind == index.KindAsset {
			media = nv.MediaType
		}
		t.write(sqlReplaceDraft, id, t.now, nv.GarbageCollect, nv.Name, nv.Hash[:], nv.size, nv.setID(), media)
		if nv.kind == index.KindUnit && !bytes.Equal(cur.dv.linkSet, nv.setID()) {
			// The old draft goes away: its assets are unlinked now (those the
			// new draft keeps are still linked), and its set may be unused.
			t.unlinkAssets(cur.dv.links, nv.Links)
			if !bytes.Equal(cur.dv.linkSet, cur.latestLinks) {
				t.dropLinkSets([][]byte{cur.dv.linkSet})
			}
		}
	}
	t.write(sqlSetDraft, id, nv.setID(), nv.GarbageCollect)
	return nv.row(id, cur.collection, 0, t, false), nil
}

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

// createMember creates a unit or asset in coll at version 1, or with only a
// draft: content, and (units) the links as given. The links' targets are
// locked while their kinds are read; a new entity closes no cycle (nothing
// can link it yet).
func (t *tx) createMember(kind index.Kind, coll uuid.UUID, hash cas.Hash, given []index.Link, draft bool,
	content func(links []index.Link) index.Content) (*verRow, error) {
	if err := t.op(); err != nil {
		return nil, err
	}
	var (
		collKind index.Kind
		blob     blobRef
		kinds    = make(map[uuid.UUID]index.Kind, len(given))
	)
	b := &pgx.Batch{}
	queueCollection(b, coll, &collKind)
	queueBlobShare(b, hash, &blob)
	if len(given) > 0 {
		queueKinds(b, index.LinkTargets(given), t, kinds)
	}
	if err := t.run(t.ctx, b); err != nil {
		return nil, err
	}
	t.stamp()
	if collKind != index.KindCollection {
		return nil, fmt.Errorf("collection %s: %w", coll, index.ErrNotFound)
	}
	var links []index.Link
	if kind == index.KindUnit {
		var err error
		if links, err = index.ResolveLinks(given, kinds); err != nil {
			return nil, err
		}
	}
	size, err := blob.size()
	if err != nil {
		return nil, err
	}
	nv := &newVersion{kind: kind, Content: content(links), size: size}
	return t.create(uuid.New(), coll, nv, draft)
}

// create stores the entity id and its first version (or draft) nv.
func (t *tx) create(id, coll uuid.UUID, nv *newVersion, draft bool) (*verRow, error) {
	t.moveNames(coll, id, nil, index.Heads{}.Commit(nv.Content, draft).HeldNames())
	latest, version := int64(1), int64(1)
	var latestLinks, draftLinks []byte = nv.setID(), nil
	if draft {
		latest, version = 0, 0
		latestLinks, draftLinks = nil, nv.setID()
	}
	t.write(sqlInsertEntity, id, int16(nv.kind), coll, t.now, latest, latestLinks, draftLinks, nv.GarbageCollect)
	if nv.kind == index.KindUnit {
		t.storeLinkSet(nv)
	}
	t.insertVersion(id, version, nv)
	return nv.row(id, coll, version, t, true), nil
}

func (t *tx) CreateUnit(nu index.NewUnit) (index.Unit, error) {
	r, err := t.createMember(index.KindUnit, nu.Collection, nu.Hash, nu.Links, nu.Draft, nu.Content)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: create unit: %w", err)
	}
	return r.unit(), nil
}

func (t *tx) CreateAsset(na index.NewAsset) (index.Asset, error) {
	r, err := t.createMember(index.KindAsset, na.Collection, na.Hash, nil, na.Draft, func([]index.Link) index.Content { return na.Content() })
	if err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: create asset: %w", err)
	}
	return r.asset(), nil
}

// commitVersion adds the next published version of the unit or asset id, or
// creates or replaces its draft, as index.NextVersion makes it of ch. A
// published version identical to the latest returns the latest, created
// false.
func (t *tx) commitVersion(id uuid.UUID, kind index.Kind, ch index.Change, draft bool) (r *verRow, created bool, err error) {
	if err := t.op(); err != nil {
		return nil, false, err
	}
	var (
		cur   current
		blob  blobRef
		kinds map[uuid.UUID]index.Kind
	)
	b := &pgx.Batch{}
	if ch.Links != nil && !draft {
		// The current versions' links are not needed: not as base values
		// (given), nor for a draft that goes away (none does).
		queueCurrentVersions(b, id, sqlLockNoKey, sqlCurrentNoLinks, &cur)
	} else {
		queueCurrent(b, id, sqlLockNoKey, &cur)
	}
	queueBlobShare(b, ch.Hash, &blob)
	if ch.Links != nil && len(*ch.Links) > 0 {
		// When the writer gave every kind, the set's ID is known without a
		// read; checkNewLinks verifies kinds and existence if the set is new
		// (an unchanged set was verified when first stored). Else the kinds
		// are read here, unlocked: the targets are locked later if need be.
		var given bool
		if kinds, given = givenKinds(*ch.Links); !given {
			kinds = make(map[uuid.UUID]index.Kind, len(*ch.Links))
			queueKinds(b, index.LinkTargets(*ch.Links), nil, kinds)
		}
	}
	if err := t.run(t.ctx, b); err != nil {
		return nil, false, err
	}
	t.stamp()
	if !cur.found || cur.kind != kind {
		return nil, false, index.ErrNotFound
	}
	if ch.Links != nil {
		links, err := index.ResolveLinks(*ch.Links, kinds)
		if err != nil {
			return nil, false, err
		}
		ch.Links = &links
	}
	size, err := blob.size()
	if err != nil {
		return nil, false, err
	}
	h := cur.heads()
	next, unchanged, err := index.NextVersion(h, cur.content(h.Base(draft)), ch, draft)
	if err != nil {
		return nil, false, err
	}
	if unchanged {
		latest := *cur.lv
		latest.links = next.Links // the same set (lv's links may not have been read)
		return &latest, false, nil
	}
	r, err = t.store(id, &cur, h, &newVersion{kind: kind, Content: next, size: size}, draft)
	return r, err == nil, err
}

func (t *tx) CommitUnit(id uuid.UUID, c index.UnitChange, draft bool) (index.Unit, bool, error) {
	r, created, err := t.commitVersion(id, index.KindUnit, c.Change(), draft)
	if err != nil {
		return index.Unit{}, false, fmt.Errorf("pgindex: commit unit %s: %w", id, err)
	}
	return r.unit(), created, nil
}

func (t *tx) CommitAsset(id uuid.UUID, c index.AssetChange, draft bool) (index.Asset, bool, error) {
	r, created, err := t.commitVersion(id, index.KindAsset, c.Change(), draft)
	if err != nil {
		return index.Asset{}, false, fmt.Errorf("pgindex: commit asset %s: %w", id, err)
	}
	return r.asset(), created, nil
}

func (t *tx) PublishUnitDraft(id uuid.UUID) (index.Unit, error) {
	r, err := t.publish(id, index.KindUnit)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: publish draft of unit %s: %w", id, err)
	}
	return r.unit(), nil
}

func (t *tx) PublishAssetDraft(id uuid.UUID) (index.Asset, error) {
	r, err := t.publish(id, index.KindAsset)
	if err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: publish draft of asset %s: %w", id, err)
	}
	return r.asset(), nil
}

func (t *tx) DeleteUnitDraft(id uuid.UUID) error {
	if err := t.deleteDraft(id, index.KindUnit); err != nil {
		return fmt.Errorf("pgindex: delete draft of unit %s: %w", id, err)
	}
	return nil
}

func (t *tx) DeleteAssetDraft(id uuid.UUID) error {
	if err := t.deleteDraft(id, index.KindAsset); err != nil {
		return fmt.Errorf("pgindex: delete draft of asset %s: %w", id, err)
	}
	return nil
}

// lockCurrent locks the entity id for a writer and reads its current
// versions; ErrNotFound unless it is of kind.
func (t *tx) lockCurrent(id uuid.UUID, kind index.Kind) (*current, error) {
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
	if !cur.found || cur.kind != kind {
		return nil, index.ErrNotFound
	}
	return &cur, nil
}

// publish turns the draft of id into the next numbered version, created now.
// Nothing goes away, so no asset is unlinked and no link set dropped.
func (t *tx) publish(id uuid.UUID, kind index.Kind) (*verRow, error) {
	cur, err := t.lockCurrent(id, kind)
	if err != nil {
		return nil, err
	}
	h := cur.heads()
	next, err := h.PublishDraft()
	if err != nil {
		return nil, err
	}
	t.moveNames(cur.collection, id, h.HeldNames(), next.HeldNames())
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
	cur, err := t.lockCurrent(id, kind)
	if err != nil {
		return err
	}
	h := cur.heads()
	next, empty, err := h.DeleteDraft()
	if err != nil {
		return err
	}
	if empty {
		return t.deleteEntity(id)
	}
	t.moveNames(cur.collection, id, h.HeldNames(), next.HeldNames())
	t.write(`DELETE FROM versions WHERE entity = $1 AND version IS NULL`, id)
	t.write(`UPDATE entities SET draft_links = NULL, gc = $2 WHERE id = $1`, id, cur.lv.gc)
	if kind == index.KindUnit && !bytes.Equal(cur.dv.linkSet, cur.latestLinks) {
		t.unlinkAssets(cur.dv.links, cur.lv.links)
		t.dropLinkSets([][]byte{cur.dv.linkSet})
	}
	return nil
}

// --- collections -------------------------------------------------------

func (t *tx) CreateCollection(c index.NewCollection) (index.Collection, error) {
	if err := t.op(); err != nil {
		return index.Collection{}, err
	}
	t.stamp()
	id := uuid.New()
	nv := &newVersion{kind: index.KindCollection, Content: index.Content{GarbageCollect: c.GarbageCollect}, fields: c.CollectionFields}
	t.write(sqlInsertEntity, id, int16(index.KindCollection), nil, t.now, int64(1), nil, nil, c.GarbageCollect)
	t.insertVersion(id, 1, nv)
	return nv.row(id, uuid.Nil, 1, t, true).collectionVersion(), nil
}

func (t *tx) UpdateCollection(id uuid.UUID, p index.CollectionPatch) (index.Collection, bool, error) {
	cur, err := t.lockCurrent(id, index.KindCollection)
	if err == nil && cur.lv == nil {
		err = index.ErrNotFound
	}
	if err != nil {
		return index.Collection{}, false, fmt.Errorf("pgindex: update collection %s: %w", id, err)
	}
	next, unchanged := index.NextCollection(index.NewCollection{CollectionFields: cur.lv.fields, GarbageCollect: cur.lv.gc}, p)
	if unchanged {
		return cur.lv.collectionVersion(), false, nil
	}
	nv := &newVersion{kind: index.KindCollection, Content: index.Content{GarbageCollect: next.GarbageCollect}, fields: next.CollectionFields}
	n := cur.latest + 1
	t.insertVersion(id, n, nv)
	t.write(sqlSupersede, id, cur.latest, t.now)
	t.write(sqlSetLatest, id, n, nil, next.GarbageCollect)
	return nv.row(id, uuid.Nil, n, t, false).collectionVersion(), true, nil
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
	// Queued: it goes out with COMMIT. A live record under the key fails
	// the statement (errKeyUsed), which rolls the transaction back.
	t.write(`SELECT blockstore_put_idempotency($1, $2, $3, $4, $5, $6)`,
		[]byte(rec.Key), rec.Fingerprint[:], rec.Status, body, rec.ExpiresAt, t.now)
	return nil
}
