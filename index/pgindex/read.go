package pgindex

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// bin makes a uuid.UUID scan in binary: pgx reads it as a *[16]byte
// directly, where a uuid.UUID (an sql.Scanner) goes through its text form.
func bin(id *uuid.UUID) *[16]byte { return (*[16]byte)(id) }

// binaryArgs rewrites the uuid arguments of b's queries as [16]byte and
// [][16]byte, which pgx sends in binary; uuid.UUID, a driver.Valuer, would
// be formatted as text and parsed by the server.
func binaryArgs(qs []*pgx.QueuedQuery) {
	for _, q := range qs {
		binaryValues(q.Arguments)
	}
}

func binaryValues(args []any) {
	for i, a := range args {
		switch v := a.(type) {
		case uuid.UUID:
			args[i] = [16]byte(v)
		case []uuid.UUID:
			out := make([][16]byte, len(v))
			for j := range v {
				out[j] = v[j]
			}
			args[i] = out
		}
	}
}

// runner sends a batch in one round trip: the Store over any pooled
// connection, a tx over its own (after its pending writes).
type runner interface {
	run(ctx context.Context, b *pgx.Batch) error
}

// verCols are the columns of one version with its entity (e) and its links
// (ls, from linksLateral), as scanned by scanVersion.
const verCols = `e.id, e.kind, e.collection, e.created_at, v.version, v.created_at, v.garbage_collect, v.name,
	v.hash, v.size, v.link_set, v.media_type, v.description, v.owner, v.author, v.license,
	ls.targets, ls.kinds, ls.pins`

// linksLateral adds the members of v's link set, in order, as three arrays.
const linksLateral = `LEFT JOIN LATERAL (
	SELECT array_agg(lm.target ORDER BY lm.position) AS targets,
	       array_agg(lm.kind ORDER BY lm.position) AS kinds,
	       array_agg(lm.pin ORDER BY lm.position) AS pins
	FROM link_set_members lm WHERE lm.set_id = v.link_set) ls ON v.link_set IS NOT NULL`

// verRow is one scanned version.
type verRow struct {
	id         uuid.UUID
	kind       index.Kind
	collection uuid.UUID // uuid.Nil for a collection
	// entityCreated is the entity's creation time (lists order by it).
	entityCreated time.Time
	version       int64 // 0: the draft
	createdAt     time.Time
	gc            bool
	name          string
	hash          cas.Hash
	size          int64
	linkSet       []byte // nil unless a unit
	mediaType     string
	fields        index.CollectionFields
	links         []index.Link
}

// scanVersion scans verCols (after any leading columns in dest).
func scanVersion(row pgx.Row, lead ...any) (*verRow, error) {
	var (
		r                           verRow
		kind                        int16
		coll                        pgtype.UUID
		version, size               pgtype.Int8
		hash                        []byte
		media, desc, own, auth, lic pgtype.Text
		targets                     [][16]byte
		kinds                       []int16
		pins                        []int64
	)
	dest := append(lead, bin(&r.id), &kind, &coll, &r.entityCreated, &version, &r.createdAt, &r.gc, &r.name,
		&hash, &size, &r.linkSet, &media, &desc, &own, &auth, &lic, &targets, &kinds, &pins)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	r.kind = index.Kind(kind)
	if coll.Valid {
		r.collection = coll.Bytes
	}
	r.version = version.Int64
	r.createdAt = r.createdAt.UTC()
	r.entityCreated = r.entityCreated.UTC()
	if len(hash) == cas.HashSize {
		copy(r.hash[:], hash)
	}
	r.size = size.Int64
	r.mediaType = media.String
	r.fields = index.CollectionFields{Name: r.name, Description: desc.String, Owner: own.String, Author: auth.String, License: lic.String}
	if r.kind == index.KindUnit {
		r.links = make([]index.Link, len(targets))
		for i := range targets {
			r.links[i] = index.Link{Target: targets[i], Kind: index.Kind(kinds[i]), Version: pins[i]}
		}
	}
	return &r, nil
}

func (r *verRow) unit() index.Unit {
	return index.Unit{ID: r.id, Collection: r.collection, Name: r.name, Version: r.version, CreatedAt: r.createdAt,
		Hash: r.hash, Size: r.size, Links: r.links, GarbageCollect: r.gc}
}

func (r *verRow) asset() index.Asset {
	return index.Asset{ID: r.id, Collection: r.collection, Name: r.name, MediaType: r.mediaType, Version: r.version,
		CreatedAt: r.createdAt, Hash: r.hash, Size: r.size, GarbageCollect: r.gc}
}

func (r *verRow) collectionVersion() index.Collection {
	return index.Collection{ID: r.id, Version: r.version, CreatedAt: r.createdAt, GarbageCollect: r.gc, CollectionFields: r.fields}
}

func (r *verRow) entity() index.Entity {
	switch r.kind {
	case index.KindCollection:
		c := r.collectionVersion()
		return index.Entity{Kind: r.kind, Collection: &c}
	case index.KindUnit:
		u := r.unit()
		return index.Entity{Kind: r.kind, Unit: &u}
	case index.KindAsset:
		a := r.asset()
		return index.Entity{Kind: r.kind, Asset: &a}
	}
	return index.Entity{}
}

// sqlLookup resolves refs given as three arrays (id, version, draft): the
// latest published version (version 0), version N, or the draft.
const sqlLookup = `SELECT r.i, ` + verCols + `
FROM unnest($1::uuid[], $2::bigint[], $3::boolean[]) WITH ORDINALITY AS r(id, ver, draft, i)
JOIN entities e ON e.id = r.id
JOIN LATERAL (
	SELECT * FROM versions x WHERE r.draft AND x.entity = r.id AND x.version IS NULL
	UNION ALL
	SELECT * FROM versions x WHERE NOT r.draft AND x.entity = r.id
		AND x.version = CASE WHEN r.ver = 0 THEN e.latest ELSE r.ver END
) v ON true
` + linksLateral

// lookup resolves refs in one statement; out[i] is nil when refs[i] is not found.
func lookup(ctx context.Context, q runner, refs []index.Ref) ([]*verRow, error) {
	ids := make([]uuid.UUID, len(refs))
	vers := make([]int64, len(refs))
	drafts := make([]bool, len(refs))
	for i, r := range refs {
		ids[i], vers[i], drafts[i] = r.ID, r.Version, r.Draft
	}
	out := make([]*verRow, len(refs))
	b := &pgx.Batch{}
	b.Queue(sqlLookup, ids, vers, drafts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var i int64
			r, err := scanVersion(rows, &i)
			if err != nil {
				return err
			}
			if i >= 1 && int(i) <= len(out) {
				out[i-1] = r
			}
		}
		return rows.Err()
	})
	if err := q.run(ctx, b); err != nil {
		return nil, err
	}
	return out, nil
}

// one resolves a single ref of kind k.
func one(ctx context.Context, q runner, ref index.Ref, k index.Kind) (*verRow, error) {
	if ref.Version < 0 || ref.Draft && k == index.KindCollection {
		return nil, index.ErrNotFound
	}
	rs, err := lookup(ctx, q, []index.Ref{ref})
	if err != nil {
		return nil, err
	}
	if rs[0] == nil || rs[0].kind != k {
		return nil, index.ErrNotFound
	}
	return rs[0], nil
}

func readKind(ctx context.Context, q runner, id uuid.UUID) (index.Kind, error) {
	var kind int16
	found := false
	b := &pgx.Batch{}
	b.Queue(`SELECT kind FROM entities WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&kind)
		if err == pgx.ErrNoRows {
			return nil
		}
		found = err == nil
		return err
	})
	if err := q.run(ctx, b); err != nil {
		return 0, fmt.Errorf("pgindex: kind of %s: %w", id, err)
	}
	if !found {
		return 0, fmt.Errorf("pgindex: kind of %s: %w", id, index.ErrNotFound)
	}
	return index.Kind(kind), nil
}

func readCollection(ctx context.Context, q runner, id uuid.UUID, version int64) (index.Collection, error) {
	r, err := one(ctx, q, index.Ref{ID: id, Version: version}, index.KindCollection)
	if err != nil {
		return index.Collection{}, fmt.Errorf("pgindex: collection %s: %w", index.Ref{ID: id, Version: version}, err)
	}
	return r.collectionVersion(), nil
}

func readUnit(ctx context.Context, q runner, ref index.Ref) (index.Unit, error) {
	r, err := one(ctx, q, ref, index.KindUnit)
	if err != nil {
		return index.Unit{}, fmt.Errorf("pgindex: unit %s: %w", ref, err)
	}
	return r.unit(), nil
}

func readAsset(ctx context.Context, q runner, ref index.Ref) (index.Asset, error) {
	r, err := one(ctx, q, ref, index.KindAsset)
	if err != nil {
		return index.Asset{}, fmt.Errorf("pgindex: asset %s: %w", ref, err)
	}
	return r.asset(), nil
}

func readLookup(ctx context.Context, q runner, refs []index.Ref) ([]index.Entity, error) {
	out := make([]index.Entity, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	rs, err := lookup(ctx, q, refs)
	if err != nil {
		return nil, fmt.Errorf("pgindex: lookup: %w", err)
	}
	for i, r := range rs {
		if r != nil && !(refs[i].Draft && r.kind == index.KindCollection) {
			out[i] = r.entity()
		}
	}
	return out, nil
}

// Keyset pagination: an entity list continues after (created_at, id); the
// first page starts after (-infinity, nil).
var startOfTime = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}

func entityCursor(opt index.ListOptions) (after any, afterID uuid.UUID, limit int, err error) {
	limit, err = index.PageLimit(opt)
	if err != nil {
		return nil, uuid.Nil, 0, err
	}
	if opt.Cursor == "" {
		return startOfTime, uuid.Nil, limit, nil
	}
	t, id, err := index.DecodeEntityCursor(opt.Cursor)
	if err != nil {
		return nil, uuid.Nil, 0, err
	}
	return t, id, limit, nil
}

func versionCursor(opt index.ListOptions) (before int64, limit int, err error) {
	limit, err = index.PageLimit(opt)
	if err != nil {
		return 0, 0, err
	}
	if opt.Cursor == "" {
		return math.MaxInt64, limit, nil
	}
	v, err := index.DecodeVersionCursor(opt.Cursor)
	return v, limit, err
}

// queueRows queues sql and collects its rows as versions.
func queueRows(b *pgx.Batch, out *[]*verRow, sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			r, err := scanVersion(rows)
			if err != nil {
				return err
			}
			*out = append(*out, r)
		}
		return rows.Err()
	})
}

// queueEntity queues a read of id's kind and latest version number.
func queueEntity(b *pgx.Batch, id uuid.UUID, found *bool, kind *index.Kind, latest *int64) {
	b.Queue(`SELECT kind, latest FROM entities WHERE id = $1`, id).QueryRow(func(row pgx.Row) error {
		var k int16
		err := row.Scan(&k, latest)
		if err == pgx.ErrNoRows {
			return nil
		}
		*found, *kind = err == nil, index.Kind(k)
		return err
	})
}

// entityPage cuts rows (limit+1 read) into a page of limit items.
func entityPage[T any](rows []*verRow, limit int, conv func(*verRow) T) index.Page[T] {
	p := index.Page[T]{Items: make([]T, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := rows[limit-1]
			p.NextCursor = index.EncodeEntityCursor(last.entityCreated, last.id)
			break
		}
		p.Items = append(p.Items, conv(r))
	}
	return p
}

func versionPage[T any](rows []*verRow, limit int, conv func(*verRow) T) index.Page[T] {
	p := index.Page[T]{Items: make([]T, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			p.NextCursor = index.EncodeVersionCursor(rows[limit-1].version)
			break
		}
		p.Items = append(p.Items, conv(r))
	}
	return p
}
