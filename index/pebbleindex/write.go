package pebbleindex

import (
	"fmt"
	"slices"
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
	changes  []index.Change // the change feed's records (changes.go)
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
	if err := t.b.Set(k, v, nil); err != nil && t.err == nil {
		t.err = dbErr(err)
	}
}

func (t *tx) del(k []byte) {
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
	next := versionRec{
		Created:     t.at,
		GC:          deref(p.GarbageCollect, cur.GC),
		Name:        deref(p.Name, cur.Name),
		Description: deref(p.Description, cur.Description),
		Owner:       deref(p.Owner, cur.Owner),
		Author:      deref(p.Author, cur.Author),
		License:     deref(p.License, cur.License),
	}
	if next.GC == cur.GC && next.Name == cur.Name && next.Description == cur.Description &&
		next.Owner == cur.Owner && next.Author == cur.Author && next.License == cur.License {
		return collectionOf(id, e.Latest, cur), false, nil
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

// content is what a unit or asset version holds beside its number and time.
type content struct {
	name, mediaType string
	hash            cas.Hash
	size            int64
	gc              bool
	links           []index.Link // units: normalized, kinds filled in
	set             cas.Hash     // units: LinkSetID(links)
}

func (c *content) record(at int64) versionRec {
	return versionRec{Created: at, GC: c.gc, Hash: c.hash, Size: c.size, Links: c.set, Name: c.name, MediaType: c.mediaType}
}

func (c *content) unit(id uuid.UUID, e *entityRec, ver, at int64) index.Unit {
	r := c.record(at)
	return unitOf(id, *e, ver, r, c.links)
}

func (c *content) asset(id uuid.UUID, e *entityRec, ver, at int64) index.Asset {
	return assetOf(id, *e, ver, c.record(at))
}

// CreateUnit creates a unit at version 1, or with only a draft.
func (t *tx) CreateUnit(nu index.NewUnit) (index.Unit, error) {
	c := content{name: nu.Name, hash: nu.Hash, gc: nu.GarbageCollect}
	e, err := t.newMember(index.KindUnit, nu.Collection, &c)
	if err != nil {
		return index.Unit{}, err
	}
	if c.links, c.set, err = t.checkLinks(nu.Links); err != nil {
		return index.Unit{}, err
	}
	// A new unit has no incoming edge: its links cannot close a cycle.
	id := uuid.New()
	if err := t.checkNames(id, e.Collection, nil, nameSet(c.name)); err != nil {
		return index.Unit{}, err
	}
	ver, err := t.createMember(id, &e, &c, nu.Draft)
	if err != nil {
		return index.Unit{}, err
	}
	return c.unit(id, &e, ver, t.at), t.err
}

// CreateAsset creates an asset at version 1, or with only a draft.
func (t *tx) CreateAsset(na index.NewAsset) (index.Asset, error) {
	c := content{name: na.Name, mediaType: na.MediaType, hash: na.Hash, gc: na.GarbageCollect}
	e, err := t.newMember(index.KindAsset, na.Collection, &c)
	if err != nil {
		return index.Asset{}, err
	}
	id := uuid.New()
	if err := t.checkNames(id, e.Collection, nil, nameSet(c.name)); err != nil {
		return index.Asset{}, err
	}
	ver, err := t.createMember(id, &e, &c, na.Draft)
	if err != nil {
		return index.Asset{}, err
	}
	return c.asset(id, &e, ver, t.at), t.err
}

// newMember checks the collection and the blob of a new unit or asset and
// returns its entity record (not yet stored).
func (t *tx) newMember(kind index.Kind, coll uuid.UUID, c *content) (entityRec, error) {
	if _, err := t.entityOf(coll, index.KindCollection); err != nil {
		return entityRec{}, err
	}
	size, err := t.liveBlob(c.hash)
	if err != nil {
		return entityRec{}, err
	}
	c.size = size
	return entityRec{Kind: kind, Collection: coll, Created: t.at}, nil
}

// createMember stores a new unit or asset (checks done) and returns the
// number of its version (0: the draft).
func (t *tx) createMember(id uuid.UUID, e *entityRec, c *content, draft bool) (int64, error) {
	t.set(memberKey(e.Collection, e.Kind, e.Created, id), []byte{0})
	if draft {
		return 0, t.writeDraft(id, e, c)
	}
	return t.publish(id, e, c, nil)
}

// CommitUnit adds the next published version of a unit, or writes its draft.
func (t *tx) CommitUnit(id uuid.UUID, ch index.UnitChange, draft bool) (index.Unit, bool, error) {
	e, err := t.entityOf(id, index.KindUnit)
	if err != nil {
		return index.Unit{}, false, err
	}
	base, hasBase, err := t.base(id, &e, draft)
	if err != nil {
		return index.Unit{}, false, err
	}
	c := content{hash: ch.Hash, name: deref(ch.Name, base.Name), gc: deref(ch.GarbageCollect, base.GC)}
	switch {
	case ch.Links != nil:
		if c.links, c.set, err = t.checkLinks(*ch.Links); err != nil {
			return index.Unit{}, false, err
		}
	case hasBase:
		c.set = base.Links
		if c.links, err = t.links(base.Links); err != nil {
			return index.Unit{}, false, err
		}
	default:
		c.links = []index.Link{}
		c.set = index.LinkSetID(c.links)
	}
	if !draft && e.Latest > 0 && base.Hash == c.hash && base.Name == c.name && base.Links == c.set && base.GC == c.gc {
		return unitOf(id, e, e.Latest, base, c.links), false, nil
	}
	if c.size, err = t.liveBlob(c.hash); err != nil {
		return index.Unit{}, false, err
	}
	if err := t.checkCycle(id, &e, c.set, c.links); err != nil {
		return index.Unit{}, false, err
	}
	if err := t.checkNames(id, e.Collection, heldNames(&e), t.namesAfter(&e, c.name, draft)); err != nil {
		return index.Unit{}, false, err
	}
	if draft {
		if err := t.writeDraft(id, &e, &c); err != nil {
			return index.Unit{}, false, err
		}
		return c.unit(id, &e, 0, t.at), true, t.err
	}
	ver, err := t.publish(id, &e, &c, latestOf(&e, &base, hasBase))
	if err != nil {
		return index.Unit{}, false, err
	}
	return c.unit(id, &e, ver, t.at), true, t.err
}

// CommitAsset adds the next published version of an asset, or writes its draft.
func (t *tx) CommitAsset(id uuid.UUID, ch index.AssetChange, draft bool) (index.Asset, bool, error) {
	e, err := t.entityOf(id, index.KindAsset)
	if err != nil {
		return index.Asset{}, false, err
	}
	base, hasBase, err := t.base(id, &e, draft)
	if err != nil {
		return index.Asset{}, false, err
	}
	c := content{
		hash:      ch.Hash,
		name:      deref(ch.Name, base.Name),
		mediaType: deref(ch.MediaType, base.MediaType),
		gc:        deref(ch.GarbageCollect, base.GC),
	}
	if !draft && e.Latest > 0 && base.Hash == c.hash && base.Name == c.name && base.MediaType == c.mediaType && base.GC == c.gc {
		return assetOf(id, e, e.Latest, base), false, nil
	}
	if c.size, err = t.liveBlob(c.hash); err != nil {
		return index.Asset{}, false, err
	}
	if err := t.checkNames(id, e.Collection, heldNames(&e), t.namesAfter(&e, c.name, draft)); err != nil {
		return index.Asset{}, false, err
	}
	if draft {
		if err := t.writeDraft(id, &e, &c); err != nil {
			return index.Asset{}, false, err
		}
		return c.asset(id, &e, 0, t.at), true, t.err
	}
	ver, err := t.publish(id, &e, &c, latestOf(&e, &base, hasBase))
	if err != nil {
		return index.Asset{}, false, err
	}
	return c.asset(id, &e, ver, t.at), true, t.err
}

// base returns the version that omitted fields come from: for a draft the
// draft, else the latest published version; for a published version the
// latest, else the draft. hasBase is false for an entity with neither.
func (t *tx) base(id uuid.UUID, e *entityRec, draft bool) (versionRec, bool, error) {
	ver := int64(-1)
	switch {
	case draft && e.HasDraft:
		ver = 0
	case e.Latest > 0:
		ver = e.Latest
	case e.HasDraft:
		ver = 0
	}
	if ver < 0 {
		return versionRec{}, false, nil
	}
	r, err := t.mustVersion(id, ver)
	return r, err == nil, err
}

// latestOf returns base when it is the latest published version (the base of
// a published version of an entity that has one), else nil.
func latestOf(e *entityRec, base *versionRec, hasBase bool) *versionRec {
	if hasBase && e.Latest > 0 {
		return base
	}
	return nil
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
	if e.Latest == 0 && e.HasDraft {
		return t.DeleteEntity(id)
	}
	return t.deleteDraft(id, &e)
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

// --- checks -------------------------------------------------------------

// liveBlob returns the registry size of h, or a *BlobMissingError unless h
// is live. The single writer holds the row against ClaimBlobs until commit.
func (t *tx) liveBlob(h cas.Hash) (int64, error) {
	b, ok, err := t.blob(h)
	if err != nil {
		return 0, err
	}
	if !ok || b.State != index.BlobLive {
		return 0, &index.BlobMissingError{Hash: h}
	}
	return b.Size, nil
}

// checkLinks checks that each link names an existing unit or asset of the
// kind it gives, and returns the normalized links with kinds filled in and
// their set's id.
func (t *tx) checkLinks(given []index.Link) ([]index.Link, cas.Hash, error) {
	filled := make([]index.Link, len(given))
	kinds := make(map[uuid.UUID]index.Kind, len(given))
	for i, l := range given {
		if l.Version < 0 {
			return nil, cas.Hash{}, fmt.Errorf("%w: link to %s: version %d", index.ErrInvalid, l.Target, l.Version)
		}
		k, ok := kinds[l.Target]
		if !ok {
			e, found, err := t.entity(l.Target)
			if err != nil {
				return nil, cas.Hash{}, err
			}
			if !found {
				return nil, cas.Hash{}, fmt.Errorf("%w: link target %s does not exist", index.ErrInvalid, l.Target)
			}
			k = e.Kind
			kinds[l.Target] = k
		}
		if k != index.KindUnit && k != index.KindAsset {
			return nil, cas.Hash{}, fmt.Errorf("%w: link target %s is a %s", index.ErrInvalid, l.Target, k)
		}
		if l.Kind != 0 && l.Kind != k {
			return nil, cas.Hash{}, fmt.Errorf("%w: link to %s says %s, the target is a %s", index.ErrInvalid, l.Target, l.Kind, k)
		}
		filled[i] = index.Link{Target: l.Target, Kind: k, Version: l.Version}
	}
	links := index.NormalizeLinks(filled)
	return links, index.LinkSetID(links), nil
}

// unitTargets returns the distinct unit targets of links, in order.
func unitTargets(links []index.Link) []uuid.UUID {
	var out []uuid.UUID
	for _, l := range links {
		if l.Kind == index.KindUnit && !slices.Contains(out, l.Target) {
			out = append(out, l.Target)
		}
	}
	return out
}

// unitEdges returns the units that unit n has an edge to: those its latest
// published version or its draft links, pinned or not.
func (t *tx) unitEdges(n uuid.UUID) ([]uuid.UUID, error) {
	e, ok, err := t.entity(n)
	if err != nil || !ok || e.Kind != index.KindUnit {
		return nil, err
	}
	var out []uuid.UUID
	if e.Latest > 0 {
		links, err := t.links(e.LatestLinks)
		if err != nil {
			return nil, err
		}
		out = unitTargets(links)
	}
	if e.HasDraft && (e.Latest == 0 || e.DraftLinks != e.LatestLinks) {
		links, err := t.links(e.DraftLinks)
		if err != nil {
			return nil, err
		}
		out = append(out, unitTargets(links)...)
	}
	return out, nil
}

// checkCycle refuses links of unit id that would close a cycle. The graph
// has none, so only targets that are not already edges of id can close one.
func (t *tx) checkCycle(id uuid.UUID, e *entityRec, set cas.Hash, links []index.Link) error {
	if e.Latest > 0 && set == e.LatestLinks || e.HasDraft && set == e.DraftLinks {
		return nil // the links are already edges
	}
	targets := unitTargets(links)
	if len(targets) == 0 {
		return nil
	}
	current, err := t.unitEdges(id)
	if err != nil {
		return err
	}
	var fresh []uuid.UUID
	for _, u := range targets {
		if !slices.Contains(current, u) {
			fresh = append(fresh, u)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	cycle, err := index.Reaches(fresh, id, t.unitEdges)
	if err != nil {
		return err
	}
	if cycle {
		return fmt.Errorf("%w: the links of unit %s would close a cycle", index.ErrInvalid, id)
	}
	return nil
}

// nameSet returns the non-empty names given, without repeats.
func nameSet(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// heldNames returns the names e holds: its latest published version's and
// its draft's.
func heldNames(e *entityRec) []string {
	var latest, draft string
	if e.Latest > 0 {
		latest = e.LatestName
	}
	if e.HasDraft {
		draft = e.DraftName
	}
	return nameSet(latest, draft)
}

// namesAfter returns the names e will hold once a version (or draft) named
// name is written.
func (t *tx) namesAfter(e *entityRec, name string, draft bool) []string {
	if draft {
		latest := ""
		if e.Latest > 0 {
			latest = e.LatestName
		}
		return nameSet(latest, name)
	}
	d := ""
	if e.HasDraft {
		d = e.DraftName
	}
	return nameSet(name, d)
}

// checkNames refuses names that id would take from another holder.
func (t *tx) checkNames(id, coll uuid.UUID, held, next []string) error {
	for _, n := range next {
		if slices.Contains(held, n) {
			continue
		}
		b, ok, err := getValue(t.r, nameKey(coll, n))
		if err != nil {
			return err
		}
		if ok && len(b) == sizeUUID && readUUID(b) != id {
			return &index.ConflictError{Reason: fmt.Sprintf("name %q is taken in collection %s", n, coll), Holder: readUUID(b)}
		}
	}
	return nil
}

// moveNames releases the names id no longer holds and takes the new ones.
func (t *tx) moveNames(id, coll uuid.UUID, held, next []string) {
	for _, n := range held {
		if !slices.Contains(next, n) {
			t.del(nameKey(coll, n))
		}
	}
	for _, n := range next {
		if !slices.Contains(held, n) {
			t.set(nameKey(coll, n), id[:])
		}
	}
}

// linkerOutside returns a unit other than target whose latest version or
// draft links target and whose collection inside does not accept, or uuid.Nil.
func (t *tx) linkerOutside(target uuid.UUID, inside func(coll uuid.UUID) bool) (uuid.UUID, error) {
	found := uuid.Nil
	p := edgePrefix(target)
	err := t.scan(p, prefixEnd(p), func(k, val []byte) (bool, error) {
		_, linker := listPosition(k)
		if linker == target {
			return true, nil
		}
		_, coll, err := decodeEdge(val)
		if err != nil {
			return false, err
		}
		if inside(coll) {
			return true, nil
		}
		found = linker
		return false, nil
	})
	return found, err
}

// --- stored versions -------------------------------------------------------

// publish stores c as the next published version of id (its checks done);
// latest is the record of the latest published version when the caller has
// read it, else nil.
func (t *tx) publish(id uuid.UUID, e *entityRec, c *content, latest *versionRec) (int64, error) {
	held := heldNames(e)
	ver := e.Latest + 1
	if e.Latest > 0 {
		if err := t.supersede(id, e, latest); err != nil {
			return 0, err
		}
	}
	r := c.record(t.at)
	t.putVersion(id, ver, &r)
	t.set(hashRefKey(c.hash, e.Kind, id, ver), nil)
	if e.Kind == index.KindUnit {
		if err := t.refLinkSet(c.set, c.links); err != nil {
			return 0, err
		}
		if e.Latest == 0 || e.LatestLinks != c.set {
			var old []index.Link
			if e.Latest > 0 {
				var err error
				if old, err = t.links(e.LatestLinks); err != nil {
					return 0, err
				}
			}
			t.setEdges(id, e, roleLatest, old, c.links)
		}
	}
	if e.Latest == 0 {
		t.set(memberKey(e.Collection, e.Kind, e.Created, id), []byte{1})
	}
	e.Latest, e.LatestCreated, e.LatestGC, e.LatestName, e.LatestLinks = ver, t.at, c.gc, c.name, c.set
	t.moveNames(id, e.Collection, held, heldNames(e))
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
	held := heldNames(e)
	var oldLinks []index.Link
	if e.Kind == index.KindUnit {
		if err := t.refLinkSet(c.set, c.links); err != nil {
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
	t.set(hashRefKey(c.hash, e.Kind, id, 0), nil)
	if e.Kind == index.KindUnit && (!e.HasDraft || e.DraftLinks != c.set) {
		t.setEdges(id, e, roleDraft, oldLinks, c.links)
	}
	e.HasDraft, e.DraftCreated, e.DraftGC, e.DraftName, e.DraftLinks = true, t.at, c.gc, c.name, c.set
	t.moveNames(id, e.Collection, held, heldNames(e))
	t.putEntity(id, e)
	return nil
}

// publishDraft turns the draft of id into its next published version.
func (t *tx) publishDraft(id uuid.UUID, e *entityRec) (int64, versionRec, error) {
	if !e.HasDraft {
		return 0, versionRec{}, fmt.Errorf("%w: %s has no draft", index.ErrNotFound, id)
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
	held := heldNames(e)
	ver := e.Latest + 1
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
	e.Latest, e.LatestCreated, e.LatestGC, e.LatestName, e.LatestLinks = ver, t.at, d.GC, d.Name, d.Links
	clearDraft(e)
	t.moveNames(id, e.Collection, held, heldNames(e))
	t.putEntity(id, e)
	return ver, r, nil
}

func clearDraft(e *entityRec) {
	e.HasDraft, e.DraftCreated, e.DraftGC, e.DraftName, e.DraftLinks = false, 0, false, "", cas.Hash{}
}

// deleteDraft deletes the draft of id. An entity left with no version at
// all keeps its uuid and kind (links to it stay valid) and holds no name.
func (t *tx) deleteDraft(id uuid.UUID, e *entityRec) error {
	if !e.HasDraft {
		return fmt.Errorf("%w: %s has no draft", index.ErrNotFound, id)
	}
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
	held := heldNames(e)
	t.del(versionKey(id, 0))
	t.del(hashRefKey(d.Hash, e.Kind, id, 0))
	if e.Kind == index.KindUnit {
		t.setEdges(id, e, roleDraft, links, nil)
		if err := t.unrefLinkSet(d.Links); err != nil {
			return err
		}
	}
	clearDraft(e)
	t.moveNames(id, e.Collection, held, heldNames(e))
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
		for _, n := range heldNames(e) {
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

func deref[T any](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}
