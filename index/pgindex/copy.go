package pgindex

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The copy capability (index.Exporter, index.Importer): see index/copy.go.
// Export walks entities_list by keyset a page at a time (collections, then
// each collection's units and assets) and reads the page's versions in one
// statement; Import locks the entity row FOR UPDATE and its blobs' rows FOR
// SHARE (as a commit does), compares, and queues only the difference.

var (
	_ index.Exporter = (*Store)(nil)
	_ index.Importer = (*Store)(nil)
)

// exportPage is how many entities one page of an export reads.
const exportPage = 200

const (
	sqlExportCollections = `SELECT id, kind, collection, created_at, ever_linked, last_unlinked_at FROM entities
WHERE collection IS NULL AND kind = 1 AND (created_at, id) > ($1, $2)
ORDER BY created_at, id LIMIT $3`
	sqlExportMembers = `SELECT id, kind, collection, created_at, ever_linked, last_unlinked_at FROM entities
WHERE collection = $4 AND kind = $5 AND (created_at, id) > ($1, $2)
ORDER BY created_at, id LIMIT $3`
	// sqlHistories reads every version of the entities $1, ascending, the
	// draft last.
	sqlHistories = `SELECT v.entity, v.version, v.created_at, v.superseded_at, v.garbage_collect, v.name, v.hash, v.size,
	v.link_set, v.media_type, v.description, v.owner, v.author, v.license, ls.targets, ls.kinds, ls.pins
FROM versions v
` + linksLateral + `
WHERE v.entity = ANY($1)
ORDER BY v.entity, v.version NULLS LAST`
)

// Export streams every entity with its history (index.Exporter).
func (s *Store) Export(ctx context.Context, fn func(index.History) error) error {
	var colls []uuid.UUID
	err := s.exportList(ctx, sqlExportCollections, nil, func(h index.History) error {
		colls = append(colls, h.ID)
		return fn(h)
	})
	if err != nil {
		return err
	}
	for _, c := range colls {
		for _, k := range []index.Kind{index.KindUnit, index.KindAsset} {
			if err := s.exportList(ctx, sqlExportMembers, []any{c, int16(k)}, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// exportList pages through the entities sql lists (keyset on created_at,
// id; extra are its arguments after the page's) and calls fn with each
// one's history, outside any statement.
func (s *Store) exportList(ctx context.Context, sql string, extra []any, fn func(index.History) error) error {
	var (
		after   any = startOfTime
		afterID     = uuid.Nil
	)
	for {
		var page []index.History
		b := &pgx.Batch{}
		args := append([]any{after, afterID, exportPage}, extra...)
		b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				h, err := scanEntity(rows)
				if err != nil {
					return err
				}
				page = append(page, h)
			}
			return rows.Err()
		})
		if err := s.run(ctx, b); err != nil {
			return s.wrap("export", err)
		}
		if len(page) == 0 {
			return nil
		}
		ids := make([]uuid.UUID, len(page))
		for i := range page {
			ids[i] = page[i].ID
		}
		vers, _, err := readHistories(ctx, s, ids)
		if err != nil {
			return s.wrap("export", err)
		}
		for i := range page {
			page[i].Versions = vers[page[i].ID]
			if len(page[i].Versions) == 0 {
				continue // deleted since the page was read
			}
			if err := fn(page[i]); err != nil {
				return err
			}
		}
		last := page[len(page)-1]
		after, afterID = last.CreatedAt, last.ID
		if len(page) < exportPage {
			return nil
		}
	}
}

// scanEntity scans the entity columns of sqlExport… into a History without
// versions.
func scanEntity(row pgx.Row) (index.History, error) {
	var (
		h        index.History
		kind     int16
		coll     pgtype.UUID
		unlinked pgtype.Timestamptz
	)
	if err := row.Scan(bin(&h.ID), &kind, &coll, &h.CreatedAt, &h.EverLinked, &unlinked); err != nil {
		return h, err
	}
	h.Kind = index.Kind(kind)
	if coll.Valid {
		h.Collection = coll.Bytes
	}
	h.CreatedAt = h.CreatedAt.UTC()
	if unlinked.Valid {
		h.LastUnlinked = unlinked.Time.UTC()
	}
	return h, nil
}

// readHistories reads the versions of ids (ascending, draft last) and the
// link set id of each.
func readHistories(ctx context.Context, q runner, ids []uuid.UUID) (map[uuid.UUID][]index.VersionRecord, map[uuid.UUID][][]byte, error) {
	vers := make(map[uuid.UUID][]index.VersionRecord, len(ids))
	sets := make(map[uuid.UUID][][]byte, len(ids))
	b := &pgx.Batch{}
	queueHistories(b, ids, vers, sets)
	if err := q.run(ctx, b); err != nil {
		return nil, nil, err
	}
	return vers, sets, nil
}

func queueHistories(b *pgx.Batch, ids []uuid.UUID, vers map[uuid.UUID][]index.VersionRecord, sets map[uuid.UUID][][]byte) {
	b.Queue(sqlHistories, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				id                          uuid.UUID
				v                           index.VersionRecord
				version, size               pgtype.Int8
				superseded                  pgtype.Timestamptz
				hash, set                   []byte
				media, desc, own, auth, lic pgtype.Text
				targets                     [][16]byte
				kinds                       []int16
				pins                        []int64
			)
			if err := rows.Scan(bin(&id), &version, &v.CreatedAt, &superseded, &v.GarbageCollect, &v.Name, &hash, &size,
				&set, &media, &desc, &own, &auth, &lic, &targets, &kinds, &pins); err != nil {
				return err
			}
			v.Number, v.Size = version.Int64, size.Int64
			v.CreatedAt = v.CreatedAt.UTC()
			if superseded.Valid {
				v.SupersededAt = superseded.Time.UTC()
			}
			if len(hash) == cas.HashSize {
				copy(v.Hash[:], hash)
			}
			v.MediaType, v.Description, v.Owner, v.Author, v.License = media.String, desc.String, own.String, auth.String, lic.String
			if set != nil {
				v.Links = make([]index.Link, len(targets))
				for i := range targets {
					v.Links[i] = index.Link{Target: targets[i], Kind: index.Kind(kinds[i]), Version: pins[i]}
				}
			}
			vers[id] = append(vers[id], v)
			sets[id] = append(sets[id], set)
		}
		return rows.Err()
	})
}

// Entities streams the kind and uuid of every entity (index.Exporter).
func (s *Store) Entities(ctx context.Context, fn func(index.Kind, uuid.UUID) error) error {
	err := s.query(ctx, func(rows pgx.Rows) error {
		var (
			id   uuid.UUID
			kind int16
		)
		if err := rows.Scan(bin(&id), &kind); err != nil {
			return err
		}
		return fn(index.Kind(kind), id)
	}, `SELECT id, kind FROM entities`)
	return s.wrapStream("entities", err)
}

// Import makes the entity h.ID equal to h (index.Importer).
func (s *Store) Import(ctx context.Context, h index.History) (index.ImportResult, error) {
	if err := h.Check(); err != nil {
		return index.ImportResult{}, fmt.Errorf("pgindex: import: %w", err)
	}
	h = h.Truncate(time.Microsecond)
	var res index.ImportResult
	err := s.update(ctx, func(t *tx) error {
		var err error
		res, err = t.importHistory(&h)
		return err
	})
	if err != nil {
		return index.ImportResult{}, fmt.Errorf("pgindex: import %s %s: %w", h.Kind, h.ID, err)
	}
	return res, nil
}

// ImportGroup imports hs in one transaction, their names released first
// (index.Importer).
func (s *Store) ImportGroup(ctx context.Context, hs []index.History) ([]index.ImportResult, error) {
	ids := make([]uuid.UUID, len(hs))
	for i := range hs {
		if err := hs[i].Check(); err != nil {
			return nil, fmt.Errorf("pgindex: import: %w", err)
		}
		hs[i] = hs[i].Truncate(time.Microsecond)
		ids[i] = hs[i].ID
	}
	out := make([]index.ImportResult, len(hs))
	err := s.update(ctx, func(t *tx) error {
		// Deferred foreign key aside, names rows are plain: releasing them
		// here lets each import below claim what its history holds.
		t.write(`DELETE FROM names WHERE entity = ANY($1)`, ids)
		for i := range hs {
			r, err := t.importHistory(&hs[i])
			if err != nil {
				return fmt.Errorf("%s %s: %w", hs[i].Kind, hs[i].ID, err)
			}
			out[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgindex: import a group of %d: %w", len(hs), err)
	}
	return out, nil
}

// stored is an entity as an import finds it.
type stored struct {
	found      bool
	h          index.History // without versions
	versions   []index.VersionRecord
	sets       [][]byte // link set of each version
	collection index.Kind
	blobs      map[cas.Hash]blobRef
}

func (t *tx) importHistory(h *index.History) (index.ImportResult, error) {
	if err := t.op(); err != nil {
		return index.ImportResult{}, err
	}
	var cur stored
	cur.blobs = make(map[cas.Hash]blobRef)
	vers := make(map[uuid.UUID][]index.VersionRecord, 1)
	sets := make(map[uuid.UUID][][]byte, 1)
	hashes := h.Hashes()
	b := &pgx.Batch{}
	b.Queue(`SELECT id, kind, collection, created_at, ever_linked, last_unlinked_at FROM entities WHERE id = $1 FOR UPDATE`,
		h.ID).QueryRow(func(row pgx.Row) error {
		e, err := scanEntity(row)
		if err == pgx.ErrNoRows {
			return nil
		}
		cur.found, cur.h = err == nil, e
		return err
	})
	queueHistories(b, []uuid.UUID{h.ID}, vers, sets)
	if h.Kind != index.KindCollection {
		queueCollection(b, h.Collection, &cur.collection)
	}
	if len(hashes) > 0 {
		// FOR SHARE, as a commit does: a sweep's claim waits for this
		// transaction, or claimed first and this reads the row as deleting.
		b.Queue(`SELECT hash, state, size FROM blobs WHERE hash = ANY($1) ORDER BY hash FOR SHARE`,
			hashArray(hashes)).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					raw   []byte
					state int16
					ref   blobRef
				)
				if err := rows.Scan(&raw, &state, &ref.row.Size); err != nil {
					return err
				}
				copy(ref.hash[:], raw)
				ref.found, ref.row.State = true, index.BlobState(state)
				cur.blobs[ref.hash] = ref
			}
			return rows.Err()
		})
	}
	if err := t.run(t.ctx, b); err != nil {
		return index.ImportResult{}, err
	}
	cur.versions, cur.sets = vers[h.ID], sets[h.ID]
	t.stamp()

	// Every check before the first write.
	if h.Kind != index.KindCollection && cur.collection != index.KindCollection {
		return index.ImportResult{}, fmt.Errorf("collection %s: %w", h.Collection, index.ErrNotFound)
	}
	if cur.found && (cur.h.Kind != h.Kind || cur.h.Collection != h.Collection || !cur.h.CreatedAt.Equal(h.CreatedAt)) {
		return index.ImportResult{}, fmt.Errorf("%w: %s %s here is a %s of collection %s created %s, the source's a %s of %s created %s",
			index.ErrDiverged, h.Kind, h.ID, cur.h.Kind, cur.h.Collection, cur.h.CreatedAt, h.Kind, h.Collection, h.CreatedAt)
	}
	for _, v := range h.Versions {
		if h.Kind == index.KindCollection {
			break
		}
		ref := cur.blobs[v.Hash]
		ref.hash = v.Hash
		size, err := ref.size()
		if err != nil {
			return index.ImportResult{}, err
		}
		if size != v.Size {
			return index.ImportResult{}, fmt.Errorf("%w: version %d names blob %s of %d bytes, registered here with %d",
				index.ErrDiverged, v.Number, v.Hash, v.Size, size)
		}
	}
	plan, err := index.PlanImport(h, cur.versions)
	if err != nil {
		return index.ImportResult{}, err
	}
	if h.Kind != index.KindCollection {
		t.claimNames(h.Collection, h.ID, h.HeldNames())
	}

	res := index.ImportResult{Created: !cur.found, Written: len(plan.Insert), Removed: len(plan.Remove)}
	var coll any
	if h.Kind != index.KindCollection {
		coll = h.Collection
	}
	latest, latestLinks, draftLinks := int64(0), []byte(nil), []byte(nil)
	if l := h.Latest(); l != nil {
		latest = l.Number
		latestLinks = linkSetOf(h.Kind, l)
	}
	if d := h.Draft(); d != nil {
		draftLinks = linkSetOf(h.Kind, d)
	}
	unlinked := nullTime(h.LastUnlinked)
	if !cur.found {
		t.write(`INSERT INTO entities (id, kind, collection, created_at, latest, latest_links, draft_links, gc, ever_linked, last_unlinked_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			h.ID, int16(h.Kind), coll, h.CreatedAt, latest, latestLinks, draftLinks, h.RetentionGC(), h.EverLinked, unlinked)
	} else {
		if cur.h.EverLinked != h.EverLinked || !cur.h.LastUnlinked.Equal(h.LastUnlinked) {
			res.Metadata = true
		}
		// The other columns follow from the versions; writing them always
		// costs one queued statement and keeps them exact.
		t.write(`UPDATE entities SET latest = $2, latest_links = $3, draft_links = $4, gc = $5, ever_linked = $6,
	last_unlinked_at = $7 WHERE id = $1`, h.ID, latest, latestLinks, draftLinks, h.RetentionGC(), h.EverLinked, unlinked)
	}
	if h.Kind != index.KindCollection {
		t.write(`DELETE FROM names WHERE entity = $1 AND NOT (name = ANY($2))`, h.ID, append([]string{}, h.HeldNames()...))
	}
	var (
		published []int64
		dropDraft bool
		dropSets  [][]byte
	)
	for _, j := range plan.Remove {
		if n := cur.versions[j].Number; n == 0 {
			dropDraft = true
		} else {
			published = append(published, n)
		}
		if cur.sets[j] != nil {
			dropSets = append(dropSets, cur.sets[j])
		}
	}
	if len(published) > 0 {
		t.write(`DELETE FROM versions WHERE entity = $1 AND version = ANY($2)`, h.ID, published)
	}
	if dropDraft {
		t.write(`DELETE FROM versions WHERE entity = $1 AND version IS NULL`, h.ID)
	}
	stored := make(map[string]bool)
	for _, i := range plan.Insert {
		v := &h.Versions[i]
		set := linkSetOf(h.Kind, v)
		if set != nil && !stored[string(set)] {
			stored[string(set)] = true
			t.storeLinkSet(&newVersion{kind: index.KindUnit, Content: index.Content{Links: v.Links, LinkSet: index.LinkSetID(v.Links)}})
		}
		t.insertRecord(h, v, set)
	}
	for _, i := range plan.Supersede {
		v := &h.Versions[i]
		res.Metadata = true
		t.write(sqlSupersede, h.ID, v.Number, nullTime(v.SupersededAt))
	}
	t.dropLinkSets(dropSets)
	return res, nil
}

// linkSetOf returns the link set id of a unit version, nil for other kinds.
func linkSetOf(kind index.Kind, v *index.VersionRecord) []byte {
	if kind != index.KindUnit {
		return nil
	}
	id := index.LinkSetID(v.Links)
	return id[:]
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// insertRecord queues the INSERT of v, with its number and times as given.
func (t *tx) insertRecord(h *index.History, v *index.VersionRecord, set []byte) {
	var ver any
	if v.Number > 0 {
		ver = v.Number
	}
	var hash, size, media, desc, owner, author, licen any
	switch h.Kind {
	case index.KindCollection:
		desc, owner, author, licen = v.Description, v.Owner, v.Author, v.License
	case index.KindAsset:
		hash, size, media = v.Hash[:], v.Size, v.MediaType
	case index.KindUnit:
		hash, size = v.Hash[:], v.Size
	}
	t.write(`INSERT INTO versions (entity, version, created_at, superseded_at, garbage_collect, name, hash, size, link_set,
	media_type, description, owner, author, license)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		h.ID, ver, v.CreatedAt, nullTime(v.SupersededAt), v.GarbageCollect, v.Name, hash, size, set,
		media, desc, owner, author, licen)
}

// CopySource returns the recorded source of a copy, "" when none.
func (s *Store) CopySource(ctx context.Context) (string, error) {
	var src string
	err := s.query(ctx, func(r pgx.Rows) error { return r.Scan(&src) }, `SELECT source FROM copy_source`)
	if err != nil {
		return "", s.wrap("read copy source", err)
	}
	return src, nil
}

// SetCopySource records source as the store this index is a copy of.
func (s *Store) SetCopySource(ctx context.Context, source string) error {
	if source == "" {
		return fmt.Errorf("pgindex: record copy source: %w: empty source", index.ErrInvalid)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO copy_source (source) VALUES ($1)
ON CONFLICT (singleton) DO UPDATE SET source = EXCLUDED.source, recorded_at = now()`, source)
	return s.wrap("record copy source", s.run(ctx, b))
}
