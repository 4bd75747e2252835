package pebbleindex

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/index"
)

// Lists: pages of entities walked along their list keys (created, uuid),
// history lists newest first, and the units that link a target.

// listItem is one entity a list page holds: its place in the list and the
// value of its list key.
type listItem struct {
	id      uuid.UUID
	created int64
	val     []byte
}

// pageList walks the list keys prefix|created|uuid after opt.Cursor and
// returns up to the page's limit of those keep accepts, with the cursor of
// the next page when there is one more.
func (v *view) pageList(prefix []byte, opt index.ListOptions, keep func(it listItem) (bool, error)) ([]listItem, string, error) {
	limit, err := index.PageLimit(opt)
	if err != nil {
		return nil, "", err
	}
	lower := prefix
	if opt.Cursor != "" {
		at, id, err := index.DecodeEntityCursor(opt.Cursor)
		if err != nil {
			return nil, "", err
		}
		lower = after(append(appendTime(bytes.Clone(prefix), at.UnixNano()), id[:]...))
	}
	var items []listItem
	more := false
	err = v.scan(lower, prefixEnd(prefix), func(k, val []byte) (bool, error) {
		if len(k) != len(prefix)+sizeListPosition {
			return false, fmt.Errorf("%w: list key of %d bytes", errCorrupt, len(k))
		}
		created, id := listPosition(k)
		it := listItem{id: id, created: created, val: bytes.Clone(val)}
		ok, err := keep(it)
		if err != nil || !ok {
			return err == nil, err
		}
		if len(items) == limit {
			more = true
			return false, nil
		}
		items = append(items, it)
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		last := items[len(items)-1]
		next = index.EncodeEntityCursor(fromNS(last.created), last.id)
	}
	return items, next, nil
}

func keepAll(listItem) (bool, error) { return true, nil }

// Collections lists the collections, latest version of each.
func (v *view) Collections(_ context.Context, opt index.ListOptions) (index.Page[index.Collection], error) {
	var p index.Page[index.Collection]
	items, next, err := v.pageList([]byte{pCollection}, opt, keepAll)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Collection, 0, len(items))
	for _, it := range items {
		c, err := v.Collection(context.Background(), it.id, 0)
		if err != nil {
			return p, fmt.Errorf("index: list collection %s: %w", it.id, err)
		}
		p.Items = append(p.Items, c)
	}
	p.NextCursor = next
	return p, nil
}

// members lists the units or assets of a collection that have a published
// version, filtered by name when opt asks.
func (v *view) members(coll uuid.UUID, kind index.Kind, opt index.ListOptions) ([]listItem, string, error) {
	if _, err := v.entityOf(coll, index.KindCollection); err != nil {
		return nil, "", err
	}
	if opt.HasName && opt.Name != "" {
		return v.memberByName(coll, kind, opt)
	}
	keep := func(it listItem) (bool, error) {
		if len(it.val) != 1 || it.val[0] != 1 {
			return false, nil // no published version
		}
		if !opt.HasName {
			return true, nil
		}
		e, ok, err := v.entity(it.id)
		return ok && e.LatestName == opt.Name, err
	}
	return v.pageList(memberKindPrefix(coll, kind), opt, keep)
}

// memberByName answers a name filter from the name key: a name has at most
// one holder, which is listed when its latest published version has the name.
func (v *view) memberByName(coll uuid.UUID, kind index.Kind, opt index.ListOptions) ([]listItem, string, error) {
	if _, err := index.PageLimit(opt); err != nil {
		return nil, "", err
	}
	var from []byte
	if opt.Cursor != "" {
		at, id, err := index.DecodeEntityCursor(opt.Cursor)
		if err != nil {
			return nil, "", err
		}
		from = append(appendTime(nil, at.UnixNano()), id[:]...)
	}
	b, ok, err := getValue(v.r, nameKey(coll, opt.Name))
	if err != nil || !ok {
		return nil, "", err
	}
	if len(b) != sizeUUID {
		return nil, "", fmt.Errorf("%w: name key value of %d bytes", errCorrupt, len(b))
	}
	holder := readUUID(b)
	e, ok, err := v.entity(holder)
	if err != nil || !ok {
		return nil, "", err
	}
	if e.Kind != kind || e.Latest == 0 || e.LatestName != opt.Name {
		return nil, "", nil
	}
	if from != nil && bytes.Compare(append(appendTime(nil, e.Created), holder[:]...), from) <= 0 {
		return nil, "", nil
	}
	return []listItem{{id: holder, created: e.Created}}, "", nil
}

// Units lists the units of a collection, latest published version of each.
func (v *view) Units(_ context.Context, coll uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	var p index.Page[index.Unit]
	items, next, err := v.members(coll, index.KindUnit, opt)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Unit, 0, len(items))
	for _, it := range items {
		u, err := v.Unit(context.Background(), index.Latest(it.id))
		if err != nil {
			return p, fmt.Errorf("index: list unit %s: %w", it.id, err)
		}
		p.Items = append(p.Items, u)
	}
	p.NextCursor = next
	return p, nil
}

// Assets lists the assets of a collection, latest published version of each.
func (v *view) Assets(_ context.Context, coll uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	var p index.Page[index.Asset]
	items, next, err := v.members(coll, index.KindAsset, opt)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Asset, 0, len(items))
	for _, it := range items {
		a, err := v.Asset(context.Background(), index.Latest(it.id))
		if err != nil {
			return p, fmt.Errorf("index: list asset %s: %w", it.id, err)
		}
		p.Items = append(p.Items, a)
	}
	p.NextCursor = next
	return p, nil
}

// history returns the published version numbers of id for one page of its
// history (newest first) and the next page's cursor.
func (v *view) history(id uuid.UUID, e entityRec, opt index.ListOptions) ([]int64, string, error) {
	limit, err := index.PageLimit(opt)
	if err != nil {
		return nil, "", err
	}
	if e.Latest == 0 {
		return nil, "", fmt.Errorf("%w: %s has no published version", index.ErrNotFound, id)
	}
	upper := versionKey(id, e.Latest+1)
	if opt.Cursor != "" {
		c, err := index.DecodeVersionCursor(opt.Cursor)
		if err != nil {
			return nil, "", err
		}
		if c <= e.Latest {
			upper = versionKey(id, c)
		}
	}
	var vers []int64
	more := false
	err = v.scanReverse(versionKey(id, 1), upper, func(k, _ []byte) (bool, error) {
		if len(vers) == limit {
			more = true
			return false, nil
		}
		vers = append(vers, versionOfKey(k))
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = index.EncodeVersionCursor(vers[len(vers)-1])
	}
	return vers, next, nil
}

// CollectionVersions lists the versions of a collection, newest first.
func (v *view) CollectionVersions(_ context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Collection], error) {
	var p index.Page[index.Collection]
	e, err := v.entityOf(id, index.KindCollection)
	if err != nil {
		return p, err
	}
	vers, next, err := v.history(id, e, opt)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Collection, 0, len(vers))
	for _, ver := range vers {
		r, err := v.mustVersion(id, ver)
		if err != nil {
			return p, err
		}
		p.Items = append(p.Items, collectionOf(id, ver, r))
	}
	p.NextCursor = next
	return p, nil
}

// UnitVersions lists the published versions of a unit, newest first.
func (v *view) UnitVersions(_ context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Unit], error) {
	var p index.Page[index.Unit]
	e, err := v.entityOf(id, index.KindUnit)
	if err != nil {
		return p, err
	}
	vers, next, err := v.history(id, e, opt)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Unit, 0, len(vers))
	for _, ver := range vers {
		u, err := v.unitAt(e, index.Ref{ID: id, Version: ver})
		if err != nil {
			return p, err
		}
		p.Items = append(p.Items, u)
	}
	p.NextCursor = next
	return p, nil
}

// AssetVersions lists the published versions of an asset, newest first.
func (v *view) AssetVersions(_ context.Context, id uuid.UUID, opt index.ListOptions) (index.Page[index.Asset], error) {
	var p index.Page[index.Asset]
	e, err := v.entityOf(id, index.KindAsset)
	if err != nil {
		return p, err
	}
	vers, next, err := v.history(id, e, opt)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.Asset, 0, len(vers))
	for _, ver := range vers {
		a, err := v.assetAt(e, index.Ref{ID: id, Version: ver})
		if err != nil {
			return p, err
		}
		p.Items = append(p.Items, a)
	}
	p.NextCursor = next
	return p, nil
}

// LinkedBy lists the units whose latest published version links target.
func (v *view) LinkedBy(_ context.Context, target uuid.UUID, opt index.ListOptions) (index.Page[index.LinkingUnit], error) {
	var p index.Page[index.LinkingUnit]
	e, ok, err := v.entity(target)
	if err != nil {
		return p, err
	}
	if !ok || e.Kind == index.KindCollection || e.Latest == 0 {
		return p, fmt.Errorf("%w: unit or asset %s", index.ErrNotFound, target)
	}
	items, next, err := v.pageList(edgeRolePrefix(target, roleLatest), opt, keepAll)
	if err != nil {
		return p, err
	}
	p.Items = make([]index.LinkingUnit, 0, len(items))
	for _, it := range items {
		pin, _, err := decodeEdge(it.val)
		if err != nil {
			return p, err
		}
		u, err := v.Unit(context.Background(), index.Latest(it.id))
		if err != nil {
			return p, fmt.Errorf("index: linked-by %s: unit %s: %w", target, it.id, err)
		}
		p.Items = append(p.Items, index.LinkingUnit{Unit: u, LinkVersion: pin})
	}
	p.NextCursor = next
	return p, nil
}
