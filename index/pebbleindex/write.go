package pebbleindex

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// tx is a write transaction: an indexed batch (its reads see its writes over
// the committed state) owned by the one writer. Every method checks all its
// rules before its first write, so a method that fails leaves the batch as
// it found it.
type tx struct {
	view
	b  *pebble.Batch
	at int64 // the transaction's time (Unix ns): created_at of what it writes
	// err is the first error of a batch write (Pebble reports none in
	// practice); Update fails with it.
	err error
	// unlinked holds the assets that a removed unit version linked; finish
	// sets their last-unlinked time.
	unlinked map[uuid.UUID]struct{}
	// registry is the registry's turn when the transaction holds only the
	// writer's (an Update): PutInlineBlob takes it, after the writer's as
	// ClaimBlobs does, and the commit gives it back after the apply.
	registry     chan struct{}
	registryHeld bool
	ctx          context.Context    // the Update's, for the wait for registry
	changes      []index.FeedChange // the change feed's records (changes.go)
	// volatile: the commit need not wait for its WAL sync (BeginBlob of a
	// new pending row); the next synced commit makes it durable.
	volatile bool
}

var _ index.Tx = (*tx)(nil)

func newTx(b *pebble.Batch, now time.Time) *tx {
	return &tx{
		view: view{r: b, now: func() time.Time { return now }},
		b:    b,
		at:   now.UnixNano(),
	}
}

func (t *tx) set(k, v []byte) {
	t.ents.wrote(k)
	if err := t.b.Set(k, v, nil); err != nil && t.err == nil {
		t.err = dbErr(err)
	}
}

func (t *tx) del(k []byte) {
	t.ents.wrote(k)
	if err := t.b.Delete(k, nil); err != nil && t.err == nil {
		t.err = dbErr(err)
	}
}

// finish runs before the commit: it records when assets lost a link.
func (t *tx) finish() error {
	if t.err != nil {
		return t.err
	}
	for id := range t.unlinked {
		e, ok, err := t.entity(id)
		if err != nil {
			return err
		}
		if !ok || e.Kind != index.KindAsset {
			continue // deleted in this transaction, or since the link was made
		}
		if e.LastUnlinked != 0 {
			t.del(orphanKey(e.LastUnlinked, id))
		}
		e.LastUnlinked = t.at
		t.set(orphanKey(t.at, id), nil)
		t.putEntity(id, &e)
	}
	return t.err
}

func (t *tx) putEntity(id uuid.UUID, e *entityRec) { t.set(entityKey(id), e.encode()) }

func (t *tx) putVersion(id uuid.UUID, ver int64, r *versionRec) {
	t.set(versionKey(id, ver), r.encode())
}

// --- collections ---------------------------------------------------------

// CreateCollection creates a collection at version 1.
func (t *tx) CreateCollection(nc index.NewCollection) (index.Collection, error) {
	id := uuid.New()
	r := versionRec{
		Created: t.at, GC: nc.GarbageCollect, Name: nc.Name, Description: nc.Description,
		Owner: nc.Owner, Author: nc.Author, License: nc.License,
	}
	e := entityRec{Kind: index.KindCollection, Created: t.at, Latest: 1, LatestCreated: t.at, LatestGC: r.GC, LatestName: r.Name}
	t.putVersion(id, 1, &r)
	t.putEntity(id, &e)
	t.set(collectionListKey(t.at, id), nil)
	return collectionOf(id, 1, r), t.err
}

// UpdateCollection adds a version with the patch applied, unless it changes
// nothing.
func (t *tx) UpdateCollection(id uuid.UUID, p index.CollectionPatch) (index.Collection, bool, error) {
	e, err := t.entityOf(id, index.KindCollection)
	if err != nil {
		return index.Collection{}, false, err
	}
	cur, err := t.mustVersion(id, e.Latest)
	if err != nil {
		return index.Collection{}, false, err
	}
	latest := index.NewCollection{GarbageCollect: cur.GC, CollectionFields: index.CollectionFields{
		Name: cur.Name, Description: cur.Description, Owner: cur.Owner, Author: cur.Author, License: cur.License,
	}}
	nc, unchanged := index.NextCollection(latest, p)
	if unchanged {
		return collectionOf(id, e.Latest, cur), false, nil
	}
	next := versionRec{
		Created: t.at, GC: nc.GarbageCollect, Name: nc.Name, Description: nc.Description,
		Owner: nc.Owner, Author: nc.Author, License: nc.License,
	}
	ver := e.Latest + 1
	cur.Superseded = t.at
	t.putVersion(id, e.Latest, &cur)
	t.set(supersededKey(t.at, id, e.Latest), []byte{byte(e.Kind)})
	t.putVersion(id, ver, &next)
	e.Latest, e.LatestCreated, e.LatestGC, e.LatestName = ver, t.at, next.GC, next.Name
	t.putEntity(id, &e)
	return collectionOf(id, ver, next), true, t.err
}

// DeleteCollection deletes a collection, and with recursive its units and
// assets, unless a unit of another collection links into it.
func (t *tx) DeleteCollection(id uuid.UUID, recursive bool) error {
	e, err := t.entityOf(id, index.KindCollection)
	if err != nil {
		return err
	}
	// Check everything first, then delete.
	var members []uuid.UUID
	err = t.scan(memberPrefix(id), prefixEnd(memberPrefix(id)), func(k, _ []byte) (bool, error) {
		_, m := listPosition(k)
		members = append(members, m)
		return recursive, nil
	})
	if err != nil {
		return err
	}
	if len(members) > 0 && !recursive {
		return &index.ConflictError{Reason: fmt.Sprintf("collection %s holds units or assets", id), Holder: members[0]}
	}
	for _, m := range members {
		linker, err := t.linkerOutside(m, func(coll uuid.UUID) bool { return coll == id })
		if err != nil {
			return err
		}
		if linker != uuid.Nil {
			return &index.ConflictError{Reason: fmt.Sprintf("%s of collection %s is linked from another collection", m, id), Holder: linker}
		}
	}
	for _, m := range members {
		me, ok, err := t.entity(m)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: member %s of collection %s has no entity record", errCorrupt, m, id)
		}
		if err := t.deleteEntity(m, &me); err != nil {
			return err
		}
	}
	return t.deleteEntity(id, &e)
}

// --- units and assets ----------------------------------------------------

// content is a unit or asset version about to be stored: what the rules
// decided (index.Content) and its blob's size.
type content struct {
	index.Content
	size int64
}

func (c *content) record(at int64) versionRec {
	return versionRec{Created: at, GC: c.GarbageCollect, Hash: c.Hash, Size: c.size, Links: c.LinkSet, Name: c.Name, MediaType: c.MediaType}
}

// heads returns e's index.Heads.
func (e *entityRec) heads() index.Heads {
	return index.Heads{Latest: e.Latest, HasDraft: e.HasDraft, LatestName: e.LatestName, DraftName: e.DraftName,
		LatestLinks: e.LatestLinks, DraftLinks: e.DraftLinks}
}

// setHeads stores h in e. The caller sets the times and flags of the
// versions h names anew.
func (e *entityRec) setHeads(h index.Heads) {
	e.Latest, e.HasDraft, e.LatestName, e.DraftName = h.Latest, h.HasDraft, h.LatestName, h.DraftName
	e.LatestLinks, e.DraftLinks = h.LatestLinks, h.DraftLinks
	if !h.HasDraft {
		e.DraftCreated, e.DraftGC = 0, false
	}
}

// CreateUnit creates a unit at version 1, or with only a draft.
func (t *tx) CreateUnit(nu index.NewUnit) (index.Unit, error) {
	id, e, ver, c, err := t.createMember(index.KindUnit, nu.Collection, nu.Hash, nu.Links, nu.Draft, nu.Content)
	if err != nil {
		return index.Unit{}, err
	}
	return unitOf(id, e, ver, c.record(t.at), c.Links), t.err
}

// CreateAsset creates an asset at version 1, or with only a draft.
func (t *tx) CreateAsset(na index.NewAsset) (index.Asset, error) {
	id, e, ver, c, err := t.createMember(index.KindAsset, na.Collection, na.Hash, nil, na.Draft,
		func([]index.Link) index.Content { return na.Content() })
	if err != nil {
		return index.Asset{}, err
	}
	return assetOf(id, e, ver, c.record(t.at)), t.err
}

// createMember creates a unit or an asset in coll: its first version, or
// (draft) only a draft, of the content made of its links (units) resolved.
// It returns the entity and its version's number (0: the draft).
func (t *tx) createMember(kind index.Kind, coll uuid.UUID, hash cas.Hash, given []index.Link, draft bool,
	made func(links []index.Link) index.Content) (uuid.UUID, entityRec, int64, content, error) {
	if _, err := t.entityOf(coll, index.KindCollection); err != nil {
		return uuid.Nil, entityRec{}, 0, content{}, err
	}
	size, err := t.liveBlob(hash)
	if err != nil {
		return uuid.Nil, entityRec{}, 0, content{}, err
	}
	var links []index.Link
	if kind == index.KindUnit {
		if links, err = t.resolveLinks(given); err != nil {
			return uuid.Nil, entityRec{}, 0, content{}, err
		}
	}
	c := content{Content: made(links), size: size}
	// A new entity has no incoming edge: its links cannot close a cycle.
	id := uuid.New()
	claim := index.Heads{}.Commit(c.Content, draft).HeldNames()
	if err := t.checkNames(id, coll, claim); err != nil {
		return uuid.Nil, entityRec{}, 0, content{}, err
	}
	e := entityRec{Kind: kind, Collection: coll, Created: t.at}
	t.set(memberKey(e.Collection, e.Kind, e.Created, id), []byte{0})
	ver := int64(0)
	if draft {
		err = t.writeDraft(id, &e, &c)
	} else {
		ver, err = t.publish(id, &e, &c, nil)
	}
	return id, e, ver, c, err
}

// CommitUnit adds the next published version of a unit, or writes its draft.
func (t *tx) CommitUnit(id uuid.UUID, ch index.UnitChange, draft bool) (index.Unit, bool, error) {
	e, ver, r, links, created, err := t.commit(id, index.KindUnit, ch.Change(), draft)
	if err != nil {
		return index.Unit{}, false, err
	}
	return unitOf(id, e, ver, r, links), created, t.err
}

// CommitAsset adds the next published version of an asset, or writes its draft.
func (t *tx) CommitAsset(id uuid.UUID, ch index.AssetChange, draft bool) (index.Asset, bool, error) {
	e, ver, r, _, created, err := t.commit(id, index.KindAsset, ch.Change(), draft)
	if err != nil {
		return index.Asset{}, false, err
	}
	return assetOf(id, e, ver, r), created, t.err
}

// commit adds the next published version of the unit or asset id, or writes
// its draft, as index.NextVersion makes it of ch. It returns the version
// stored (or, when identical, the latest: created false) with its links.
func (t *tx) commit(id uuid.UUID, kind index.Kind, ch index.Change, draft bool) (
	e entityRec, ver int64, r versionRec, links []index.Link, created bool, err error) {
	if e, err = t.entityOf(id, kind); err != nil {
		return
	}
	if ch.Links != nil {
		var resolved []index.Link
		if resolved, err = t.resolveLinks(*ch.Links); err != nil {
			return
		}
		ch.Links = &resolved
	}
	h := e.heads()
	baseVer, hasBase := h.Base(draft)
	var (
		base    *index.Content
		baseRec versionRec
	)
	if hasBase {
		if baseRec, err = t.mustVersion(id, baseVer); err != nil {
			return
		}
		base = &index.Content{Name: baseRec.Name, MediaType: baseRec.MediaType, Hash: baseRec.Hash,
			GarbageCollect: baseRec.GC, LinkSet: baseRec.Links}
		if kind == index.KindUnit && ch.Links == nil {
			if base.Links, err = t.links(baseRec.Links); err != nil {
				return
			}
		}
	}
	next, unchanged, err := index.NextVersion(h, base, ch, draft)
	if err != nil {
		return
	}
	if unchanged {
		return e, e.Latest, baseRec, next.Links, false, nil
	}
	c := content{Content: next}
	if c.size, err = t.liveBlob(c.Hash); err != nil {
		return
	}
	if kind == index.KindUnit {
		if err = t.checkCycle(id, h, c.LinkSet, c.Links); err != nil {
			return
		}
	}
	claim, _ := index.NameMoves(h.HeldNames(), h.Commit(c.Content, draft).HeldNames())
	if err = t.checkNames(id, e.Collection, claim); err != nil {
		return
	}
	if draft {
		err = t.writeDraft(id, &e, &c)
	} else {
		var latest *versionRec
		if e.Latest > 0 {
			latest = &baseRec // the base of a published version is the latest
		}
		ver, err = t.publish(id, &e, &c, latest)
	}
	return e, ver, c.record(t.at), c.Links, err == nil, err
}

// PublishUnitDraft turns the draft into the next numbered version.
func (t *tx) PublishUnitDraft(id uuid.UUID) (index.Unit, error) {
	e, err := t.entityOf(id, index.KindUnit)
	if err != nil {
		return index.Unit{}, err
	}
	ver, r, err := t.publishDraft(id, &e)
	if err != nil {
		return index.Unit{}, err
	}
	links, err := t.links(r.Links)
	if err != nil {
		return index.Unit{}, err
	}
	return unitOf(id, e, ver, r, links), t.err
}

// PublishAssetDraft turns the draft into the next numbered version.
func (t *tx) PublishAssetDraft(id uuid.UUID) (index.Asset, error) {
	e, err := t.entityOf(id, index.KindAsset)
	if err != nil {
		return index.Asset{}, err
	}
	ver, r, err := t.publishDraft(id, &e)
	if err != nil {
		return index.Asset{}, err
	}
	return assetOf(id, e, ver, r), t.err
}

// DeleteUnitDraft deletes the draft of a unit.
func (t *tx) DeleteUnitDraft(id uuid.UUID) error { return t.deleteDraftOf(id, index.KindUnit) }

// DeleteAssetDraft deletes the draft of an asset.
func (t *tx) DeleteAssetDraft(id uuid.UUID) error { return t.deleteDraftOf(id, index.KindAsset) }

// deleteDraftOf deletes the draft of a unit or an asset. A draft-only entity
// is nothing without its draft: it goes as DeleteEntity would take it
// (refused while another unit links it), as on PostgreSQL.
func (t *tx) deleteDraftOf(id uuid.UUID, kind index.Kind) error {
	e, err := t.entityOf(id, kind)
	if err != nil {
		return err
	}
	next, empty, err := e.heads().DeleteDraft()
	if err != nil {
		return fmt.Errorf("delete draft of %s: %w", id, err)
	}
	if empty {
		return t.DeleteEntity(id)
	}
	return t.deleteDraft(id, &e, next)
}

// DeleteEntity deletes a unit or an asset with all its versions, unless
// another unit's latest version or draft links it.
func (t *tx) DeleteEntity(id uuid.UUID) error {
	e, ok, err := t.entity(id)
	if err != nil {
		return err
	}
	if !ok || e.Kind == index.KindCollection {
		return fmt.Errorf("%w: unit or asset %s", index.ErrNotFound, id)
	}
	linker, err := t.linkerOutside(id, func(uuid.UUID) bool { return false })
	if err != nil {
		return err
	}
	if linker != uuid.Nil {
		return &index.ConflictError{Reason: fmt.Sprintf("%s is linked by another unit", id), Holder: linker}
	}
	return t.deleteEntity(id, &e)
}

// PutIdempotency stores rec unless a live record holds its key.
func (t *tx) PutIdempotency(rec index.IdempotencyRecord) error {
	if rec.Key == "" || len(rec.Key) > 1024 {
		return fmt.Errorf("%w: idempotency key of %d bytes", index.ErrInvalid, len(rec.Key))
	}
	old, ok, err := t.idempotency(rec.Key)
	if err != nil {
		return err
	}
	if ok && old.ExpiresAt.UnixNano() > t.at {
		return &index.ConflictError{Reason: "the idempotency key is in use"}
	}
	if ok {
		t.del(idemExpiryKey(old.ExpiresAt.UnixNano(), old.Key))
	}
	t.set(idemKey(rec.Key), encodeIdempotency(rec))
	t.set(idemExpiryKey(rec.ExpiresAt.UnixNano(), rec.Key), nil)
	return t.err
}

// --- stored versions -------------------------------------------------------

// publish stores c as the next published version of id (its checks done);
// latest is the record of the latest published version when the caller has
// read it, else nil.
func (t *tx) publish(id uuid.UUID, e *entityRec, c *content, latest *versionRec) (int64, error) {
	h := e.heads()
	next := h.Commit(c.Content, false)
	ver := next.Latest
	if e.Latest > 0 {
		if err := t.supersede(id, e, latest); err != nil {
			return 0, err
		}
	}
	r := c.record(t.at)
	t.putVersion(id, ver, &r)
	t.set(hashRefKey(c.Hash, e.Kind, id, ver), nil)
	if e.Kind == index.KindUnit {
		if err := t.refLinkSet(c.LinkSet, c.Links); err != nil {
			return 0, err
		}
		if e.Latest == 0 || e.LatestLinks != c.LinkSet {
			var old []index.Link
			if e.Latest > 0 {
				var err error
				if old, err = t.links(e.LatestLinks); err != nil {
					return 0, err
				}
			}
			t.setEdges(id, e, roleLatest, old, c.Links)
		}
	}
	if e.Latest == 0 {
		t.set(memberKey(e.Collection, e.Kind, e.Created, id), []byte{1})
	}
	e.setHeads(next)
	e.LatestCreated, e.LatestGC = t.at, c.GarbageCollect
	t.moveNames(id, e.Collection, h.HeldNames(), next.HeldNames())
	t.putEntity(id, e)
	return ver, nil
}

// supersede records that the latest published version of id is superseded now.
// latest is its record when the caller has read it, else nil.
func (t *tx) supersede(id uuid.UUID, e *entityRec, latest *versionRec) error {
	var r versionRec
	if latest != nil {
		r = *latest
	} else {
		var err error
		if r, err = t.mustVersion(id, e.Latest); err != nil {
			return err
		}
	}
	r.Superseded = t.at
	t.putVersion(id, e.Latest, &r)
	t.set(supersededKey(t.at, id, e.Latest), []byte{byte(e.Kind)})
	return nil
}

// writeDraft creates or replaces the draft of id with c (its checks done).
func (t *tx) writeDraft(id uuid.UUID, e *entityRec, c *content) error {
	h := e.heads()
	var oldLinks []index.Link
	if e.Kind == index.KindUnit {
		if err := t.refLinkSet(c.LinkSet, c.Links); err != nil {
			return err
		}
	}
	if e.HasDraft {
		old, err := t.mustVersion(id, 0)
		if err != nil {
			return err
		}
		t.del(hashRefKey(old.Hash, e.Kind, id, 0))
		if e.Kind == index.KindUnit {
			if oldLinks, err = t.links(old.Links); err != nil {
				return err
			}
			if err := t.unrefLinkSet(old.Links); err != nil {
				return err
			}
		}
	}
	r := c.record(t.at)
	t.putVersion(id, 0, &r)
	t.set(hashRefKey(c.Hash, e.Kind, id, 0), nil)
	if e.Kind == index.KindUnit && (!e.HasDraft || e.DraftLinks != c.LinkSet) {
		t.setEdges(id, e, roleDraft, oldLinks, c.Links)
	}
	next := h.Commit(c.Content, true)
	e.setHeads(next)
	e.DraftCreated, e.DraftGC = t.at, c.GarbageCollect
	t.moveNames(id, e.Collection, h.HeldNames(), next.HeldNames())
	t.putEntity(id, e)
	return nil
}

// publishDraft turns the draft of id into its next published version.
func (t *tx) publishDraft(id uuid.UUID, e *entityRec) (int64, versionRec, error) {
	h := e.heads()
	next, err := h.PublishDraft()
	if err != nil {
		return 0, versionRec{}, fmt.Errorf("publish draft of %s: %w", id, err)
	}
	d, err := t.mustVersion(id, 0)
	if err != nil {
		return 0, versionRec{}, err
	}
	if _, err := t.liveBlob(d.Hash); err != nil {
		return 0, versionRec{}, err
	}
	var draftLinks, oldLinks []index.Link
	if e.Kind == index.KindUnit {
		if draftLinks, err = t.links(d.Links); err != nil {
			return 0, versionRec{}, err
		}
		if e.Latest > 0 && e.LatestLinks != d.Links {
			if oldLinks, err = t.links(e.LatestLinks); err != nil {
				return 0, versionRec{}, err
			}
		}
	}
	ver := next.Latest
	if e.Latest > 0 {
		if err := t.supersede(id, e, nil); err != nil {
			return 0, versionRec{}, err
		}
	}
	t.del(versionKey(id, 0))
	t.del(hashRefKey(d.Hash, e.Kind, id, 0))
	r := d
	r.Created, r.Superseded = t.at, 0
	t.putVersion(id, ver, &r)
	t.set(hashRefKey(r.Hash, e.Kind, id, ver), nil)
	if e.Kind == index.KindUnit {
		if e.Latest == 0 || e.LatestLinks != d.Links {
			t.setEdges(id, e, roleLatest, oldLinks, draftLinks)
		}
		t.setEdges(id, e, roleDraft, draftLinks, nil)
	}
	if e.Latest == 0 {
		t.set(memberKey(e.Collection, e.Kind, e.Created, id), []byte{1})
	}
	e.setHeads(next)
	e.LatestCreated, e.LatestGC = t.at, d.GC
	t.moveNames(id, e.Collection, h.HeldNames(), next.HeldNames())
	t.putEntity(id, e)
	return ver, r, nil
}

// deleteDraft deletes the draft of id, which keeps its latest published
// version (heads next).
func (t *tx) deleteDraft(id uuid.UUID, e *entityRec, next index.Heads) error {
	h := e.heads()
	d, err := t.mustVersion(id, 0)
	if err != nil {
		return err
	}
	var links []index.Link
	if e.Kind == index.KindUnit {
		if links, err = t.links(d.Links); err != nil {
			return err
		}
	}
	t.del(versionKey(id, 0))
	t.del(hashRefKey(d.Hash, e.Kind, id, 0))
	if e.Kind == index.KindUnit {
		t.setEdges(id, e, roleDraft, links, nil)
		if err := t.unrefLinkSet(d.Links); err != nil {
			return err
		}
	}
	e.setHeads(next)
	t.moveNames(id, e.Collection, h.HeldNames(), next.HeldNames())
	t.putEntity(id, e)
	return nil
}

// deleteEntity deletes an entity of any kind with everything that names it
// (its checks done).
func (t *tx) deleteEntity(id uuid.UUID, e *entityRec) error {
	if e.Kind == index.KindUnit {
		// Its edges first: the link sets may go with its versions.
		for _, side := range []struct {
			has  bool
			set  cas.Hash
			role byte
		}{{e.Latest > 0, e.LatestLinks, roleLatest}, {e.HasDraft, e.DraftLinks, roleDraft}} {
			if !side.has {
				continue
			}
			links, err := t.links(side.set)
			if err != nil {
				return err
			}
			t.setEdges(id, e, side.role, links, nil)
		}
	}
	p := versionPrefix(id)
	err := t.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
		r, err := decodeVersion(val)
		if err != nil {
			return false, fmt.Errorf("index: version of %s: %w", id, err)
		}
		return true, t.removeVersion(id, e.Kind, versionOfKey(k), &r)
	})
	if err != nil {
		return err
	}
	switch e.Kind {
	case index.KindCollection:
		t.del(collectionListKey(e.Created, id))
	default:
		for _, n := range e.heads().HeldNames() {
			t.del(nameKey(e.Collection, n))
		}
		t.del(memberKey(e.Collection, e.Kind, e.Created, id))
	}
	if e.LastUnlinked != 0 {
		t.del(orphanKey(e.LastUnlinked, id))
	}
	t.del(entityKey(id))
	return nil
}
