package httpapi

import (
	"time"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/cas"
	"github.com/blockstore/blockstore/index"
)

// The objects of API.md as they go over the wire. Field names are part of
// the contract.

type collectionJSON struct {
	UUID           uuid.UUID `json:"uuid"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Owner          string    `json:"owner"`
	Author         string    `json:"author"`
	License        string    `json:"license"`
	GarbageCollect bool      `json:"garbage_collect"`
}

type linkJSON struct {
	Target  uuid.UUID `json:"target"`
	Kind    string    `json:"kind"`
	Version *int64    `json:"version"`
	// Resolved is present with ?expand=links: the target's version, or null.
	Resolved *resolvedLink `json:"resolved,omitempty"`
}

// resolvedLink encodes as the resolved object, or null when the link's
// target has no such version.
type resolvedLink struct{ v *resolvedJSON }

func (r *resolvedLink) MarshalJSON() ([]byte, error) {
	if r.v == nil {
		return []byte("null"), nil
	}
	return encodeJSON(r.v)
}

type resolvedJSON struct {
	UUID    uuid.UUID `json:"uuid"`
	Kind    string    `json:"kind"`
	Version *int64    `json:"version"`
	Hash    cas.Hash  `json:"hash"`
	Size    int64     `json:"size"`
}

type unitJSON struct {
	UUID           uuid.UUID  `json:"uuid"`
	Collection     uuid.UUID  `json:"collection"`
	Name           string     `json:"name"`
	Version        *int64     `json:"version"`
	CreatedAt      time.Time  `json:"created_at"`
	Hash           cas.Hash   `json:"hash"`
	Size           int64      `json:"size"`
	Links          []linkJSON `json:"links"`
	GarbageCollect bool       `json:"garbage_collect"`
}

type assetJSON struct {
	UUID           uuid.UUID `json:"uuid"`
	Collection     uuid.UUID `json:"collection"`
	Version        *int64    `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	Name           string    `json:"name"`
	MediaType      string    `json:"media_type"`
	Hash           cas.Hash  `json:"hash"`
	Size           int64     `json:"size"`
	GarbageCollect bool      `json:"garbage_collect"`
}

type linkingUnitJSON struct {
	unitJSON
	LinkVersion *int64 `json:"link_version"`
}

// Items of POST /resolve: the object with its kind and the ref it answers.
type resolvedCollectionJSON struct {
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
	collectionJSON
}

type resolvedUnitJSON struct {
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
	unitJSON
	OLX *string `json:"olx,omitempty"`
}

type resolvedAssetJSON struct {
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
	assetJSON
}

type listJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// version is a version number as JSON: null for the draft (0).
func version(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func collectionView(c index.Collection) collectionJSON {
	return collectionJSON{
		UUID:           c.ID,
		Version:        c.Version,
		CreatedAt:      c.CreatedAt.UTC(),
		Name:           c.Name,
		Description:    c.Description,
		Owner:          c.Owner,
		Author:         c.Author,
		License:        c.License,
		GarbageCollect: c.GarbageCollect,
	}
}

// unitView converts a unit; when targets is not nil each link gets its
// resolved object (targets[i] answers u.Links[i]).
func unitView(u index.Unit, targets []index.Entity, expand bool) unitJSON {
	return unitJSON{
		UUID:           u.ID,
		Collection:     u.Collection,
		Name:           u.Name,
		Version:        version(u.Version),
		CreatedAt:      u.CreatedAt.UTC(),
		Hash:           u.Hash,
		Size:           u.Size,
		Links:          linksView(u.Links, targets, expand),
		GarbageCollect: u.GarbageCollect,
	}
}

func linksView(links []index.Link, targets []index.Entity, expand bool) []linkJSON {
	out := make([]linkJSON, len(links))
	for i, l := range links {
		out[i] = linkJSON{Target: l.Target, Kind: l.Kind.String(), Version: version(l.Version)}
		if expand {
			var t index.Entity
			if i < len(targets) {
				t = targets[i]
			}
			out[i].Resolved = &resolvedLink{resolvedView(t)}
		}
	}
	return out
}

func resolvedView(e index.Entity) *resolvedJSON {
	switch {
	case e.Kind == index.KindUnit && e.Unit != nil:
		u := e.Unit
		return &resolvedJSON{UUID: u.ID, Kind: "unit", Version: version(u.Version), Hash: u.Hash, Size: u.Size}
	case e.Kind == index.KindAsset && e.Asset != nil:
		a := e.Asset
		return &resolvedJSON{UUID: a.ID, Kind: "asset", Version: version(a.Version), Hash: a.Hash, Size: a.Size}
	}
	return nil
}

func assetView(a index.Asset) assetJSON {
	return assetJSON{
		UUID:           a.ID,
		Collection:     a.Collection,
		Version:        version(a.Version),
		CreatedAt:      a.CreatedAt.UTC(),
		Name:           a.Name,
		MediaType:      a.MediaType,
		Hash:           a.Hash,
		Size:           a.Size,
		GarbageCollect: a.GarbageCollect,
	}
}

func collectionsView(p index.Page[index.Collection]) listJSON[collectionJSON] {
	out := listJSON[collectionJSON]{Items: make([]collectionJSON, len(p.Items)), NextCursor: p.NextCursor}
	for i, c := range p.Items {
		out.Items[i] = collectionView(c)
	}
	return out
}

func unitsView(p index.Page[index.Unit]) listJSON[unitJSON] {
	out := listJSON[unitJSON]{Items: make([]unitJSON, len(p.Items)), NextCursor: p.NextCursor}
	for i, u := range p.Items {
		out.Items[i] = unitView(u, nil, false)
	}
	return out
}

func assetsView(p index.Page[index.Asset]) listJSON[assetJSON] {
	out := listJSON[assetJSON]{Items: make([]assetJSON, len(p.Items)), NextCursor: p.NextCursor}
	for i, a := range p.Items {
		out.Items[i] = assetView(a)
	}
	return out
}

func linkingView(p index.Page[index.LinkingUnit]) listJSON[linkingUnitJSON] {
	out := listJSON[linkingUnitJSON]{Items: make([]linkingUnitJSON, len(p.Items)), NextCursor: p.NextCursor}
	for i, u := range p.Items {
		out.Items[i] = linkingUnitJSON{unitJSON: unitView(u.Unit, nil, false), LinkVersion: version(u.LinkVersion)}
	}
	return out
}
