package pgindex

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/blockstore/blockstore/index"
)

// Entity lists walk entities_list (collection, kind, created_at, id) by
// keyset: never OFFSET. They read limit+1 rows to know whether a next page
// exists, so that the last page carries no cursor.

const sqlCollections = `SELECT ` + verCols + `
FROM entities e JOIN versions v ON v.entity = e.id AND v.version = e.latest
` + linksLateral + `
WHERE e.collection IS NULL AND e.kind = 1 AND (e.created_at, e.id) > ($1, $2)
ORDER BY e.created_at, e.id LIMIT $3`

const sqlMembers = `SELECT ` + verCols + `
FROM entities e JOIN versions v ON v.entity = e.id AND v.version = e.latest
` + linksLateral + `
WHERE e.collection = $1 AND e.kind = $2 AND (e.created_at, e.id) > ($3, $4)
ORDER BY e.created_at, e.id LIMIT $5`

const sqlMembersUnnamed = `SELECT ` + verCols + `
FROM entities e JOIN versions v ON v.entity = e.id AND v.version = e.latest
` + linksLateral + `
WHERE e.collection = $1 AND e.kind = $2 AND (e.created_at, e.id) > ($3, $4) AND v.name = ''
ORDER BY e.created_at, e.id LIMIT $5`

// sqlMembersNamed finds the holder of a name through the names table (at
// most one entity) and keeps it when its latest version has that name.
const sqlMembersNamed = `SELECT ` + verCols + `
FROM names n JOIN entities e ON e.id = n.entity
JOIN versions v ON v.entity = e.id AND v.version = e.latest
` + linksLateral + `
WHERE n.collection = $1 AND n.name = $6 AND e.kind = $2 AND v.name = $6 AND (e.created_at, e.id) > ($3, $4)
ORDER BY e.created_at, e.id LIMIT $5`

const sqlHistory = `SELECT ` + verCols + `
FROM entities e JOIN versions v ON v.entity = e.id
` + linksLateral + `
WHERE e.id = $1 AND v.version < $2
ORDER BY v.version DESC LIMIT $3`

// sqlLinkedBy lists the units whose latest published version's link set
// links $1, once each (the pin of the first such link), by keyset.
const sqlLinkedBy = `SELECT DISTINCT ON (e.created_at, e.id) m.pin, ` + verCols + `
FROM link_set_members m
JOIN entities e ON e.latest_links = m.set_id
JOIN versions v ON v.entity = e.id AND v.version = e.latest
` + linksLateral + `
WHERE m.target = $1 AND (e.created_at, e.id) > ($2, $3)
ORDER BY e.created_at, e.id, m.position LIMIT $4`

func listCollections(ctx context.Context, q runner, opt index.ListOptions) (index.Page[index.Collection], error) {
	after, afterID, limit, err := entityCursor(opt)
	if err != nil {
		return index.Page[index.Collection]{}, fmt.Errorf("pgindex: collections: %w", err)
	}
	var rows []*verRow
	b := &pgx.Batch{}
	queueRows(b, &rows, sqlCollections, after, afterID, limit+1)
	if err := q.run(ctx, b); err != nil {
		return index.Page[index.Collection]{}, fmt.Errorf("pgindex: collections: %w", err)
	}
	return entityPage(rows, limit, (*verRow).collectionVersion), nil
}

// listMembers reads a page of the units or assets (kind) of a collection.
func listMembers(ctx context.Context, q runner, coll uuid.UUID, kind index.Kind, opt index.ListOptions) ([]*verRow, int, error) {
	after, afterID, limit, err := entityCursor(opt)
	if err != nil {
		return nil, 0, err
	}
	var (
		rows   []*verRow
		found  bool
		ck     index.Kind
		latest int64
	)
	b := &pgx.Batch{}
	queueEntity(b, coll, &found, &ck, &latest)
	switch {
	case opt.HasName && opt.Name == "":
		// No name is held in names: filter the members.
		queueRows(b, &rows, sqlMembersUnnamed, coll, int16(kind), after, afterID, limit+1)
	case opt.HasName:
		queueRows(b, &rows, sqlMembersNamed, coll, int16(kind), after, afterID, limit+1, opt.Name)
	default:
		queueRows(b, &rows, sqlMembers, coll, int16(kind), after, afterID, limit+1)
	}
	if err := q.run(ctx, b); err != nil {
		return nil, 0, err
	}
	if !found || ck != index.KindCollection {
		return nil, 0, fmt.Errorf("collection %s: %w", coll, index.ErrNotFound)
	}
	return rows, limit, nil
}

func listUnits(ctx context.Context, q runner, coll uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	rows, limit, err := listMembers(ctx, q, coll, index.KindUnit, opt)
	if err != nil {
		return index.Page[index.Unit]{}, fmt.Errorf("pgindex: units of %s: %w", coll, err)
	}
	return entityPage(rows, limit, (*verRow).unit), nil
}

func listAssets(ctx context.Context, q runner, coll uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	rows, limit, err := listMembers(ctx, q, coll, index.KindAsset, opt)
	if err != nil {
		return index.Page[index.Asset]{}, fmt.Errorf("pgindex: assets of %s: %w", coll, err)
	}
	return entityPage(rows, limit, (*verRow).asset), nil
}

// history reads a page of id's published versions, newest first; a
// draft-only entity, or one of another kind, is not found.
func history(ctx context.Context, q runner, id uuid.UUID, kind index.Kind, opt index.ListOptions) ([]*verRow, int, error) {
	before, limit, err := versionCursor(opt)
	if err != nil {
		return nil, 0, err
	}
	var (
		rows   []*verRow
		found  bool
		k      index.Kind
		latest int64
	)
	b := &pgx.Batch{}
	queueEntity(b, id, &found, &k, &latest)
	queueRows(b, &rows, sqlHistory, id, before, limit+1)
	if err := q.run(ctx, b); err != nil {
		return nil, 0, err
	}
	if !found || k != kind || latest == 0 {
		return nil, 0, index.ErrNotFound
	}
	return rows, limit, nil
}

func listCollectionVersions(ctx context.Context, q runner, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	rows, limit, err := history(ctx, q, id, index.KindCollection, opt)
	if err != nil {
		return index.Page[index.Collection]{}, fmt.Errorf("pgindex: versions of collection %s: %w", id, err)
	}
	return versionPage(rows, limit, (*verRow).collectionVersion), nil
}

func listUnitVersions(ctx context.Context, q runner, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	rows, limit, err := history(ctx, q, id, index.KindUnit, opt)
	if err != nil {
		return index.Page[index.Unit]{}, fmt.Errorf("pgindex: versions of unit %s: %w", id, err)
	}
	return versionPage(rows, limit, (*verRow).unit), nil
}

func listAssetVersions(ctx context.Context, q runner, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	rows, limit, err := history(ctx, q, id, index.KindAsset, opt)
	if err != nil {
		return index.Page[index.Asset]{}, fmt.Errorf("pgindex: versions of asset %s: %w", id, err)
	}
	return versionPage(rows, limit, (*verRow).asset), nil
}

func listLinkedBy(ctx context.Context, q runner, target uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	after, afterID, limit, err := entityCursor(opt)
	if err != nil {
		return index.Page[index.LinkingUnit]{}, fmt.Errorf("pgindex: linked-by %s: %w", target, err)
	}
	var (
		rows   []*verRow
		pins   []int64
		found  bool
		k      index.Kind
		latest int64
	)
	b := &pgx.Batch{}
	queueEntity(b, target, &found, &k, &latest)
	b.Queue(sqlLinkedBy, target, after, afterID, limit+1).Query(func(rs pgx.Rows) error {
		for rs.Next() {
			var pin int64
			r, err := scanVersion(rs, &pin)
			if err != nil {
				return err
			}
			rows, pins = append(rows, r), append(pins, pin)
		}
		return rs.Err()
	})
	if err := q.run(ctx, b); err != nil {
		return index.Page[index.LinkingUnit]{}, fmt.Errorf("pgindex: linked-by %s: %w", target, err)
	}
	if !found || k == index.KindCollection || latest == 0 {
		return index.Page[index.LinkingUnit]{}, fmt.Errorf("pgindex: linked-by %s: %w", target, index.ErrNotFound)
	}
	pin := make(map[*verRow]int64, len(rows))
	for i, r := range rows {
		pin[r] = pins[i]
	}
	return entityPage(rows, limit, func(r *verRow) index.LinkingUnit {
		return index.LinkingUnit{Unit: r.unit(), LinkVersion: pin[r]}
	}), nil
}
